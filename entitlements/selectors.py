"""Read paths of entitlements: the plan catalogue, each user's plan (cached), usage against limits.

Usage that lives in apps above this one (copy links) is counted by those apps: they connect a receiver
to ``usage_counted`` (a documented port), so this module imports none of them.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.dispatch import Signal
from django.utils import timezone

from accounts.models import TradingAccount

from .counters import api_calls_today
from .models import Plan, PlanAssignment
from .resolution import PlanState, resolve_plan

CATALOG_KEY = "billing:plans:v1"

# Sent when a user's plan may have changed (user_id) or the plan catalog did (user_id=None): answers cached from
# the plans elsewhere (the EA's plan gate) are dropped on it.
plan_changed = Signal()

# Sent with ``user`` to count usage kept by other apps: each receiver returns {limit name: count}
# (copy trading answers {"copy_links": n}). A limit nobody counts reads 0.
usage_counted = Signal()


def local_mode() -> bool:
    """True without a payment provider's secret key: everyone is on BILLING_DEFAULT_PLAN, staff change plans.

    Read from the settings the payment provider's library reads (the key of the mode in use), so entitlements
    needs none of billing's code to know it.
    """
    key = getattr(settings, "STRIPE_SECRET_KEY", None)
    if key is None:
        key = settings.STRIPE_LIVE_SECRET_KEY if settings.STRIPE_LIVE_MODE else settings.STRIPE_TEST_SECRET_KEY
    return not key


def plans() -> dict[str, Plan]:
    """Every plan by slug, cheapest first (cached; edits in the admin clear it)."""
    catalog = cache.get(CATALOG_KEY)
    if catalog is None:
        catalog = {plan.slug: plan for plan in Plan.objects.order_by("rank")}
        if catalog:  # an empty catalogue (before the plans are seeded) is not worth remembering
            cache.set(CATALOG_KEY, catalog, settings.BILLING_CACHE_SECONDS)
    return catalog


def forget_catalog() -> None:
    cache.delete(CATALOG_KEY)
    plan_changed.send(sender=None, user_id=None)


def plan_by_slug(slug: str) -> Plan:
    catalog = plans()
    if slug in catalog:
        return catalog[slug]
    # A misconfigured slug must not lock everyone out: fall back to the cheapest plan.
    return next(iter(catalog.values())) if catalog else Plan(slug=slug, name=slug, rank=0)


def _user_key(user_id, local: bool) -> str:
    # The mode is part of the key so adding or removing the payment keys takes effect at once.
    return f"billing:user-plan:v1:{'local' if local else 'stripe'}:{user_id}"


def forget_user_plan(user_id) -> None:
    cache.delete_many([_user_key(user_id, True), _user_key(user_id, False)])
    plan_changed.send(sender=None, user_id=user_id)


def state_of(assignment: PlanAssignment | None) -> PlanState:
    if assignment is None:
        return PlanState()
    catalog_by_id = {plan.pk: plan.slug for plan in plans().values()}
    return PlanState(
        manual_slug=catalog_by_id.get(assignment.manual_plan_id, "") if assignment.manual_plan_id else "",
        manual_until=assignment.manual_until,
        subscribed_slug=catalog_by_id.get(assignment.subscribed_plan_id, "") if assignment.subscribed_plan_id else "",
        status=assignment.subscription_status,
        trial_end=assignment.trial_end,
        past_due_since=assignment.past_due_since,
        subscription_id=assignment.subscription_id,
    )


def resolve_for(assignment: PlanAssignment | None, *, now=None) -> tuple[str, str]:
    return resolve_plan(
        state_of(assignment),
        local_mode=local_mode(),
        default_slug=settings.BILLING_DEFAULT_PLAN,
        free_slug=settings.BILLING_FREE_PLAN,
        grace=timedelta(days=settings.BILLING_PAST_DUE_GRACE_DAYS),
        now=now or timezone.now(),
    )


def plan_for_user(user_or_id) -> Plan:
    """The plan the gates apply to this user now. Cached for BILLING_CACHE_SECONDS (hot path: EA heartbeats)."""
    user_id = getattr(user_or_id, "pk", user_or_id)
    if user_id is None:
        return plan_by_slug(settings.BILLING_DEFAULT_PLAN if local_mode() else settings.BILLING_FREE_PLAN)
    key = _user_key(user_id, local_mode())
    slug = cache.get(key)
    if slug is None:
        assignment = PlanAssignment.objects.filter(user_id=user_id).first()
        slug, _reason = resolve_for(assignment)
        cache.set(key, slug, settings.BILLING_CACHE_SECONDS)
    return plan_by_slug(slug)


def plan_unlocking_feature(feature: str) -> Plan | None:
    """The cheapest public plan that has ``feature``."""
    for plan in plans().values():
        if plan.is_public and getattr(plan, feature, False):
            return plan
    return None


def plan_unlocking_limit(limit: str, needed: int) -> Plan | None:
    """The cheapest public plan whose ``limit`` allows ``needed``."""
    for plan in plans().values():
        allowed = plan.limit(limit)
        if plan.is_public and (allowed is None or allowed >= needed):
            return plan
    return None


def counted_usage(user) -> dict[str, int]:
    """Usage counted by other apps through ``usage_counted``, summed per limit name."""
    totals: dict[str, int] = {}
    for _receiver, answer in usage_counted.send(sender=None, user=user):
        if not isinstance(answer, dict):  # a receiver that counts nothing answers None
            continue
        for name, count in answer.items():
            totals[name] = totals.get(name, 0) + int(count)
    return totals


def usage_for(user) -> dict:
    """Usage against the plan's limits: accounts, copy links, API calls today."""
    plan = plan_for_user(user)
    accounts = TradingAccount.objects.filter(owner=user)
    return {
        "plan": plan.slug,
        "accounts": {
            "used": accounts.filter(is_active=True).count(),
            "paused": accounts.filter(is_active=False).count(),
            "limit": plan.limit_accounts,
        },
        "copy_links": {"used": counted_usage(user).get("copy_links", 0), "limit": plan.limit_copy_links},
        "history_days": {"limit": plan.limit_history_days},
        "slaves_per_master": {"limit": plan.limit_slaves_per_master},
        "api_calls_today": api_calls_today(user.pk),
    }
