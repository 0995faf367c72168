"""Feature gates and limits: the one place every caller asks "may this user do X?".

The REST API, the web UI, the EA protocol, the copy engine and the sync schedule all call
these functions; the plan behind them comes from `billing.selectors.plan_for_user`
(local mode, staff choice or Stripe subscription state). Refusals are `NotAllowed` (403)
whose message and details name the plan that unlocks the feature or the higher limit.

Features: analytics_advanced, copy_trading, web_terminal, templates, rules, systeme_sync, api_access.
Limits: accounts, history_days, copy_links, slaves_per_master.
"""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse

from config.errors import NotAllowed

from .models import FEATURE_LABELS, LIMIT_LABELS
from .selectors import plan_for_user, plan_unlocking_feature, plan_unlocking_limit

FEATURES = ("analytics_advanced", "copy_trading", "web_terminal", "templates", "rules", "systeme_sync", "api_access")
LIMITS = ("accounts", "history_days", "copy_links", "slaves_per_master")


def _check_name(name: str, known: tuple[str, ...], kind: str) -> None:
    if name not in known:
        raise ValueError(f"unknown {kind} {name!r}; one of {', '.join(known)}")


def upgrade_url() -> str:
    return reverse("billing:pricing")


def has_feature(user, feature: str) -> bool:
    _check_name(feature, FEATURES, "feature")
    return bool(getattr(plan_for_user(user), feature))


def feature_gate(user, feature: str) -> dict:
    """What the UI needs to show a control enabled, or disabled with an upgrade link."""
    _check_name(feature, FEATURES, "feature")
    plan = plan_for_user(user)
    allowed = bool(getattr(plan, feature))
    unlock = None if allowed else plan_unlocking_feature(feature)
    return {
        "feature": feature,
        "label": FEATURE_LABELS[feature],
        "allowed": allowed,
        "current_plan": plan.slug,
        "required_plan": unlock.slug if unlock else None,
        "required_plan_name": unlock.name if unlock else None,
        "upgrade_url": upgrade_url(),
    }


def require_feature(user, feature: str) -> None:
    """Raise a 403 ServiceError naming the plan that unlocks ``feature`` when the user lacks it."""
    gate = feature_gate(user, feature)
    if gate["allowed"]:
        return
    current = plan_for_user(user)
    if gate["required_plan"]:
        message = f"{gate['label']} needs the {gate['required_plan_name']} plan; you are on {current.name}."
    else:
        message = f"{gate['label']} is not available on any plan; contact us."
    raise NotAllowed(
        message,
        code="plan_required",
        details={
            "feature": feature,
            "current_plan": current.slug,
            "required_plan": gate["required_plan"],
            "upgrade_url": gate["upgrade_url"],
        },
    )


def require_limit(user, limit: str, current: int) -> None:
    """Raise a 403 ServiceError naming the plan that unlocks more when ``current`` is at ``limit``."""
    _check_name(limit, LIMITS, "limit")
    plan = plan_for_user(user)
    allowed = plan.limit(limit)
    if allowed is None or current < allowed:
        return
    unlock = plan_unlocking_limit(limit, current + 1)
    label = LIMIT_LABELS[limit]
    if unlock is not None and unlock.slug != plan.slug:
        message = (
            f"The {plan.name} plan allows {allowed} {label}; the {unlock.name} plan allows "
            f"{'unlimited' if unlock.limit(limit) is None else unlock.limit(limit)}."
        )
    else:
        message = f"The {plan.name} plan allows {allowed} {label}, the most any plan offers; contact us."
        unlock = None
    raise NotAllowed(
        message,
        code="plan_limit",
        details={
            "limit": limit,
            "allowed": allowed,
            "current": current,
            "current_plan": plan.slug,
            "required_plan": unlock.slug if unlock else None,
            "upgrade_url": upgrade_url(),
        },
    )


def history_days_for_user(user_id) -> int:
    """Days of deal history the sync keeps for this user (Free: 30)."""
    days = plan_for_user(user_id).limit_history_days
    return settings.SYNC_HISTORY_DAYS if days is None else min(days, settings.SYNC_HISTORY_DAYS)


def ea_access(account) -> tuple[bool, str]:
    """Whether the EA of ``account`` may receive commands this beat, and why not.

    Refused for a paused account, for an account beyond the owner's account limit (the
    oldest active accounts are the ones within it) and for a plan without copy trading.
    """
    if not account.is_active:
        return False, "account_paused: this account is paused; choose it as active on the billing page."
    plan = plan_for_user(account.owner_id)
    if not plan.copy_trading:
        unlock = plan_unlocking_feature("copy_trading")
        return False, (
            f"plan_required: the {plan.name} plan has no copy trading or remote control"
            f"{f'; upgrade to {unlock.name}' if unlock else ''}."
        )
    allowed = plan.limit_accounts
    if allowed is not None:
        from accounts.models import TradingAccount

        older = TradingAccount.objects.filter(
            owner_id=account.owner_id, is_active=True, created_at__lt=account.created_at
        ).count()
        if older >= allowed:
            unlock = plan_unlocking_limit("accounts", older + 1)
            return False, (
                f"plan_limit: the {plan.name} plan allows {allowed} MT5 accounts and this one is over it"
                f"{f'; upgrade to {unlock.name}' if unlock else ''}."
            )
    return True, ""
