"""Feature gates and limits: the one place every caller asks "may this user do X?".

The REST API, the web UI, the EA protocol, the copy engine and the sync schedule all call
these functions; the plan behind them comes from `entitlements.selectors.plan_for_user`
(local mode, staff choice or subscription state). Refusals are `NotAllowed` (403) whose
message and details name the plan that unlocks the feature or the higher limit. Staff
roles are never refused (`entitlements.refusals.exempt`).

Features: analytics_advanced, copy_trading, web_terminal, templates, rules, systeme_sync, api_access.
Limits: accounts, history_days, copy_links, slaves_per_master.
"""

from __future__ import annotations

from bisect import bisect_left
from datetime import UTC, datetime, timedelta

from django.utils import timezone

from accounts.models import TradingAccount
from config.errors import NotAllowed

from .refusals import Refusal, exempt, feature_refusal, feature_state, limit_refusal
from .selectors import plan_for_user, plan_unlocking_feature, plan_unlocking_limit

# "Unlimited history": everything the broker holds, read from before any MT5 deal can exist.
HISTORY_BEGINNING = datetime(2000, 1, 1, tzinfo=UTC)
# The parts of the statistics that are advanced analytics (Pro and up); the rest is every plan's.
ADVANCED_SERIES = ("monthly_returns", "by_symbol", "by_magic", "by_hour", "by_weekday", "profit_distribution")


def _raise(refusal: Refusal | None) -> None:
    if refusal is not None:
        raise NotAllowed(refusal.message, code=refusal.code, details=refusal.details)


def has_feature(user, feature: str) -> bool:
    return feature_refusal(user, feature) is None


def feature_gate(user, feature: str) -> dict:
    """What the UI needs to show a control enabled, or disabled with an upgrade link."""
    return feature_state(user, feature)


def require_feature(user, feature: str) -> None:
    """Raise a 403 ServiceError naming the plan that unlocks ``feature`` when the user lacks it."""
    _raise(feature_refusal(user, feature))


def require_limit(user, limit: str, current: int) -> None:
    """Raise a 403 ServiceError naming the plan that unlocks more when ``current`` is at ``limit``."""
    _raise(limit_refusal(user, limit, current))


def history_start(owner, *, viewer=None, now: datetime | None = None) -> datetime | None:
    """The oldest deal time of ``owner``'s accounts that may be read; None: all of it (an unlimited plan).

    The one function behind every history read (deals list, analytics, exports, statement import) and the
    sync window (`sync_history_start`). The account owner's plan decides; a staff ``viewer`` sees everything.
    """
    if viewer is not None and exempt(viewer):
        return None
    days = plan_for_user(getattr(owner, "pk", owner)).limit_history_days
    if days is None:
        return None
    return (now or timezone.now()) - timedelta(days=days)


def sync_history_start(owner, *, now: datetime | None = None) -> datetime:
    """Where a first sync of ``owner``'s account starts reading deals: the plan's window, or all the broker holds."""
    return history_start(owner, now=now) or HISTORY_BEGINNING


def analytics_for(statistics: dict, owner, *, viewer=None) -> dict:
    """``statistics`` (accounts' statistics payload) as ``owner``'s plan shows it to ``viewer``.

    Without advanced analytics the breakdowns and distributions (`ADVANCED_SERIES`) are left out and
    ``advanced`` says which plan unlocks them; the summary and the equity and drawdown curves stay. With
    them, ``statistics`` comes back as it is.
    """
    gate = feature_state(viewer if viewer is not None and exempt(viewer) else owner, "analytics_advanced")
    if gate["allowed"]:
        return statistics
    series = {k: v for k, v in (statistics.get("series") or {}).items() if k not in ADVANCED_SERIES}
    return {**statistics, "series": series, "advanced": gate}


def systeme_contacts(users) -> list:
    """The users whose plan includes Systeme.io sync: the only ones the sync sends as contacts."""
    return [user for user in users if has_feature(user, "systeme_sync")]


def ea_access(account) -> tuple[bool, str]:
    """Whether the EA of ``account`` may receive commands this beat, and why not.

    Refused for a paused account, for an account beyond the owner's account limit (the
    oldest active accounts are the ones within it) and for a plan without copy trading.
    """
    plan = plan_for_user(account.owner_id)
    refusal = _ea_refusal(account, plan)
    if refusal != "":  # decided without counting
        return refusal is None, refusal or ""
    older = TradingAccount.objects.filter(
        owner_id=account.owner_id, is_active=True, created_at__lt=account.created_at
    ).count()
    return _ea_within_limit(plan, older)


def ea_access_many(accounts) -> list[tuple[bool, str]]:
    """``ea_access`` of many accounts with one query for all their owners' account limits (the EA edge's periodic
    refresh of cached answers)."""
    plans = {owner_id: plan_for_user(owner_id) for owner_id in {a.owner_id for a in accounts}}
    limited = [owner_id for owner_id, plan in plans.items() if plan.limit_accounts is not None]
    created: dict = {owner_id: [] for owner_id in limited}
    if limited:
        rows = TradingAccount.objects.filter(owner_id__in=limited, is_active=True).values_list("owner_id", "created_at")
        for owner_id, at in rows:
            created[owner_id].append(at)
        for times in created.values():
            times.sort()
    answers = []
    for account in accounts:
        plan = plans[account.owner_id]
        refusal = _ea_refusal(account, plan)
        if refusal != "":
            answers.append((refusal is None, refusal or ""))
        else:
            answers.append(_ea_within_limit(plan, bisect_left(created[account.owner_id], account.created_at)))
    return answers


def _ea_refusal(account, plan) -> str | None:
    """The refusal that needs no count (paused account, no copy trading); "" when the account limit must be
    counted; None when allowed without one."""
    if not account.is_active:
        return "account_paused: this account is paused; choose it as active on the billing page."
    if not plan.copy_trading:
        unlock = plan_unlocking_feature("copy_trading")
        return (
            f"plan_required: the {plan.name} plan has no copy trading or remote control"
            f"{f'; upgrade to {unlock.name}' if unlock else ''}."
        )
    return None if plan.limit_accounts is None else ""


def _ea_within_limit(plan, older: int) -> tuple[bool, str]:
    """The answer for an account with ``older`` active accounts of its owner created before it."""
    allowed = plan.limit_accounts
    if allowed is not None and older >= allowed:
        unlock = plan_unlocking_limit("accounts", older + 1)
        return False, (
            f"plan_limit: the {plan.name} plan allows {allowed} MT5 accounts and this one is over it"
            f"{f'; upgrade to {unlock.name}' if unlock else ''}."
        )
    return True, ""
