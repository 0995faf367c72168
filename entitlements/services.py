"""Write paths of entitlements: plan changes (staff, subscription state), pausing accounts over a limit.

A payment provider (billing) writes the subscription fields of a ``PlanAssignment`` under
``locked_assignment`` and calls ``plan_apply``; everything else here is the same for every source.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from accounts.models import TradingAccount, User
from config.errors import NotAllowed, ServiceError

from .gates import require_limit
from .models import BillingPause, Plan, PlanAssignment, PlanChange
from .resolution import accounts_to_keep
from .selectors import forget_user_plan, plan_by_slug, plan_for_user, resolve_for

logger = logging.getLogger(__name__)


# --- Plan assignment ---------------------------------------------------------------------------


def locked_assignment(user) -> PlanAssignment:
    """The user's assignment, created when missing, locked for the rest of the transaction."""
    assignment, _ = PlanAssignment.objects.get_or_create(user=user)
    return PlanAssignment.objects.select_for_update().get(pk=assignment.pk)


def plan_apply(
    assignment: PlanAssignment, *, reason: str, detail: str = "", event_id: str = "", actor=None, now=None
) -> PlanChange | None:
    """Recompute the effective plan, audit a change, and keep active accounts within the limit.

    Call inside a transaction with ``assignment`` from ``locked_assignment``.
    """
    slug, why = resolve_for(assignment, now=now)
    plan = plan_by_slug(slug)
    previous = assignment.effective_plan
    paused = enforce_account_limit(user=assignment.user, plan=plan)
    change = None
    if previous is None or previous.pk != plan.pk:
        assignment.effective_plan = plan
        change = PlanChange.objects.create(
            user=assignment.user,
            from_plan=previous,
            to_plan=plan,
            reason=reason,
            detail=(detail or why)[:255],
            stripe_event_id=event_id,
            actor=actor,
            accounts_paused=paused,
        )
        logger.info("user %s plan %s -> %s (%s)", assignment.user_id, previous, plan, reason)
    assignment.save()
    user_id = assignment.user_id
    transaction.on_commit(lambda: forget_user_plan(user_id))
    forget_user_plan(user_id)
    return change


def plan_assignment_refresh(*, user, reason: str = "refresh", now=None) -> PlanChange | None:
    """Re-apply the rules (time passes: grace periods and staff choices end)."""
    with transaction.atomic():
        return plan_apply(locked_assignment(user), reason=reason, now=now)


def plan_assign_manual(*, user, plan: Plan | None, until=None, note: str = "", actor=None) -> PlanChange | None:
    """Staff put a user on ``plan`` (None: back to the default plan or the subscription)."""
    if until is not None and until <= timezone.now():
        raise ServiceError("The end of the staff choice must be in the future.", code="invalid_until")
    with transaction.atomic():
        assignment = locked_assignment(user)
        assignment.manual_plan = plan
        assignment.manual_until = until if plan else None
        assignment.note = note[:255]
        return plan_apply(
            assignment, reason="staff", detail=note or (f"set to {plan}" if plan else "cleared"), actor=actor
        )


def plan_limits_enforce_all(*, now=None) -> int:
    """Periodic job: re-apply the rules for every user with a subscription or a staff choice."""
    changed = 0
    ids = PlanAssignment.objects.values_list("user_id", flat=True)
    for user in User.objects.filter(pk__in=list(ids)):
        if plan_assignment_refresh(user=user, reason="schedule", now=now):
            changed += 1
    return changed


# --- Accounts over the limit --------------------------------------------------------------------


def enforce_account_limit(*, user, plan: Plan, keep: list | None = None) -> int:
    """Pause active accounts beyond ``plan``'s limit (never delete); resume billing-paused ones when room returns.

    Returns how many accounts were paused. ``keep`` lists account ids to keep active first.
    """
    limit = plan.limit_accounts
    accounts = TradingAccount.objects.select_for_update().filter(owner=user).order_by("created_at", "pk")
    active = [a.pk for a in accounts if a.is_active]
    paused = 0
    if limit is not None and len(active) > limit:
        kept = set(accounts_to_keep(active, limit, preferred=keep))
        extra = [pk for pk in active if pk not in kept]
        TradingAccount.objects.filter(pk__in=extra).update(is_active=False, updated_at=timezone.now())
        for pk in extra:
            BillingPause.objects.update_or_create(account_id=pk, defaults={"plan": plan})
        paused = len(extra)
        logger.info("user %s: paused %d accounts over the %s limit of %d", user.pk, paused, plan.slug, limit)
    elif limit is None or len(active) < limit:
        room = None if limit is None else limit - len(active)
        waiting = list(
            BillingPause.objects.filter(account__owner=user, account__is_active=False)
            .order_by("account__created_at")
            .values_list("account_id", flat=True)
        )
        resume = waiting if room is None else waiting[:room]
        if resume:
            TradingAccount.objects.filter(pk__in=resume).update(is_active=True, updated_at=timezone.now())
            BillingPause.objects.filter(account_id__in=resume).delete()
            logger.info("user %s: resumed %d accounts on %s", user.pk, len(resume), plan.slug)
    return paused


def active_accounts_choose(*, user, account_ids: list) -> dict:
    """The trader picks which accounts stay active under the plan's limit; the others are paused."""
    plan = plan_for_user(user)
    wanted = list(dict.fromkeys(account_ids))
    if plan.limit_accounts is not None and len(wanted) > plan.limit_accounts:
        require_limit(user, "accounts", len(wanted) - 1)
    with transaction.atomic():
        owned = {a.pk: a for a in TradingAccount.objects.select_for_update().filter(owner=user)}
        unknown = [str(pk) for pk in wanted if pk not in owned]
        if unknown:
            raise NotAllowed("These accounts are not yours: " + ", ".join(unknown), code="not_your_account")
        now = timezone.now()
        to_pause = [pk for pk, a in owned.items() if pk not in wanted and a.is_active]
        to_activate = [pk for pk in wanted if not owned[pk].is_active]
        TradingAccount.objects.filter(pk__in=to_pause).update(is_active=False, updated_at=now)
        TradingAccount.objects.filter(pk__in=to_activate).update(is_active=True, updated_at=now)
        for pk in to_pause:
            BillingPause.objects.update_or_create(account_id=pk, defaults={"plan": plan})
        BillingPause.objects.filter(account_id__in=wanted).delete()
        # The pauses above are queryset updates (no post_save): tell the plan's listeners (the EA's billing gate
        # and token caches) now and after commit.
        user_id = user.pk
        transaction.on_commit(lambda: forget_user_plan(user_id))
        forget_user_plan(user_id)
    logger.info("user %s chose active accounts: +%d -%d", user.pk, len(to_activate), len(to_pause))
    return {"active": [str(pk) for pk in wanted], "paused": [str(pk) for pk in owned if pk not in wanted]}
