"""Write paths of billing: plan changes (staff, Stripe), pausing accounts over a limit, Checkout and Portal."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import stripe
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.errors import Conflict, NotAllowed, ServiceError

from .models import BillingPause, Plan, PlanAssignment, PlanChange
from .resolution import best_subscription, past_due_since
from .selectors import forget_user_plan, local_mode, plan_by_slug, plans, resolve_for

logger = logging.getLogger(__name__)


class StripeUnavailable(ServiceError):
    status_code = 502
    code = "stripe_error"


def _tstamp(value) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromtimestamp(int(value), tz=UTC)


# --- Plan assignment ---------------------------------------------------------------------------


def _locked_assignment(user) -> PlanAssignment:
    assignment, _ = PlanAssignment.objects.get_or_create(user=user)
    return PlanAssignment.objects.select_for_update().get(pk=assignment.pk)


def _apply(
    assignment: PlanAssignment, *, reason: str, detail: str = "", event_id: str = "", actor=None, now=None
) -> PlanChange | None:
    """Recompute the effective plan, audit a change, and keep active accounts within the limit."""
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
        return _apply(_locked_assignment(user), reason=reason, now=now)


def plan_assign_manual(*, user, plan: Plan | None, until=None, note: str = "", actor=None) -> PlanChange | None:
    """Staff put a user on ``plan`` (None: back to the default plan or the subscription)."""
    if until is not None and until <= timezone.now():
        raise ServiceError("The end of the staff choice must be in the future.", code="invalid_until")
    with transaction.atomic():
        assignment = _locked_assignment(user)
        assignment.manual_plan = plan
        assignment.manual_until = until if plan else None
        assignment.note = note[:255]
        return _apply(assignment, reason="staff", detail=note or (f"set to {plan}" if plan else "cleared"), actor=actor)


def plan_limits_enforce_all(*, now=None) -> int:
    """Periodic job: re-apply the rules for every user with a subscription or a staff choice."""
    changed = 0
    ids = PlanAssignment.objects.values_list("user_id", flat=True)
    from accounts.models import User

    for user in User.objects.filter(pk__in=list(ids)):
        if plan_assignment_refresh(user=user, reason="schedule", now=now):
            changed += 1
    return changed


# --- Accounts over the limit --------------------------------------------------------------------


def enforce_account_limit(*, user, plan: Plan, keep: list | None = None) -> int:
    """Pause active accounts beyond ``plan``'s limit (never delete); resume billing-paused ones when room returns.

    Returns how many accounts were paused. ``keep`` lists account ids to keep active first.
    """
    from accounts.models import TradingAccount

    limit = plan.limit_accounts
    accounts = TradingAccount.objects.select_for_update().filter(owner=user).order_by("created_at", "pk")
    active = [a.pk for a in accounts if a.is_active]
    paused = 0
    if limit is not None and len(active) > limit:
        from .resolution import accounts_to_keep

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
    from accounts.models import TradingAccount

    from .selectors import plan_for_user

    plan = plan_for_user(user)
    wanted = list(dict.fromkeys(account_ids))
    if plan.limit_accounts is not None and len(wanted) > plan.limit_accounts:
        from .gates import require_limit

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


# --- Stripe subscription state ------------------------------------------------------------------


def plan_for_price(price_id: str, metadata_plan: str = "") -> Plan | None:
    for plan in plans().values():
        if price_id and price_id in (plan.stripe_price_monthly, plan.stripe_price_yearly):
            return plan
    return plans().get(metadata_plan) if metadata_plan else None


def _subscription_facts(data: dict) -> dict:
    """Plain facts from a Stripe subscription object (prices may be expanded or ids)."""
    items = (data.get("items") or {}).get("data") or []
    item = items[0] if items else {}
    price = item.get("price") or data.get("plan") or {}
    price_id = price.get("id", "") if isinstance(price, dict) else str(price)
    interval = (
        ((price.get("recurring") or {}).get("interval") or price.get("interval") or "")
        if isinstance(price, dict)
        else ""
    )
    plan = plan_for_price(price_id, (data.get("metadata") or {}).get("plan", ""))
    return {
        "id": data.get("id", ""),
        "status": data.get("status") or "",
        "plan": plan,
        "rank": plan.rank if plan else -1,
        "interval": interval,
        "trial_end": _tstamp(data.get("trial_end")),
        # Newer API versions keep the period on the item.
        "current_period_end": _tstamp(data.get("current_period_end") or item.get("current_period_end")),
        "cancel_at_period_end": bool(data.get("cancel_at_period_end")),
        "created": data.get("created") or 0,
        "metadata": data.get("metadata") or {},
    }


def user_for_customer(customer):
    """The user a dj-stripe Customer belongs to (its subscriber, or the subscriber id in its metadata)."""
    if customer is None:
        return None
    if customer.subscriber_id:
        return customer.subscriber
    from djstripe.settings import djstripe_settings

    from accounts.models import User

    subscriber_id = (customer.metadata or {}).get(djstripe_settings.SUBSCRIBER_CUSTOMER_KEY)
    if subscriber_id and str(subscriber_id).isdigit():
        return User.objects.filter(pk=int(subscriber_id)).first()
    return None


def customer_plan_sync(*, customer, event_id: str = "", now=None) -> PlanChange | None:
    """Mirror the customer's deciding subscription (from dj-stripe's tables) onto the user's assignment."""
    from djstripe.models import Subscription

    user = user_for_customer(customer)
    if user is None:
        logger.warning("Stripe customer %s has no user; subscription ignored", customer.id if customer else None)
        return None
    facts = [_subscription_facts(sub.stripe_data or {}) for sub in Subscription.objects.filter(customer=customer)]
    chosen = best_subscription(facts)
    now = now or timezone.now()
    with transaction.atomic():
        assignment = _locked_assignment(user)
        status = chosen["status"] if chosen else ""
        assignment.past_due_since = past_due_since(
            previous_status=assignment.subscription_status,
            previous_since=assignment.past_due_since,
            status=status,
            now=now,
        )
        assignment.subscription_id = chosen["id"] if chosen else ""
        assignment.subscription_status = status
        assignment.subscribed_plan = chosen["plan"] if chosen else None
        assignment.interval = chosen["interval"] if chosen else ""
        assignment.trial_end = chosen["trial_end"] if chosen else None
        assignment.current_period_end = chosen["current_period_end"] if chosen else None
        assignment.cancel_at_period_end = chosen["cancel_at_period_end"] if chosen else False
        if any(f["trial_end"] for f in facts):
            assignment.trial_used = True
        change = _apply(
            assignment,
            reason="stripe",
            detail=f"subscription {assignment.subscription_id} {status}",
            event_id=event_id,
            now=now,
        )
    if chosen and status in ("active", "trialing"):
        _cancel_replaced(chosen, facts, customer)
    return change


def _cancel_replaced(chosen: dict, facts: list[dict], customer) -> None:
    """An upgrade through Checkout names the subscription it replaces; cancel that one (prorated)."""
    replaced = chosen["metadata"].get("replaces")
    if not replaced or not any(
        f["id"] == replaced and f["status"] not in ("canceled", "incomplete_expired") for f in facts
    ):
        return
    from djstripe.models import Subscription

    old = Subscription.objects.filter(id=replaced, customer=customer).first()
    if old is None:
        return
    try:
        old.cancel(at_period_end=False, prorate=True)
    except stripe.StripeError:
        logger.exception("could not cancel replaced subscription %s", replaced)


# --- Checkout and Customer Portal --------------------------------------------------------------


def _require_stripe() -> str:
    from djstripe.settings import djstripe_settings

    if local_mode():
        raise Conflict(
            "Billing runs in local mode (no Stripe keys): staff change plans in the admin.", code="billing_local_mode"
        )
    return djstripe_settings.STRIPE_SECRET_KEY


def checkout_session_create(*, user, plan_slug: str, interval: str, success_url: str, cancel_url: str) -> dict:
    """A Stripe Checkout session to subscribe to (or upgrade to) ``plan_slug``; returns its id and url."""
    from djstripe.models import Customer

    api_key = _require_stripe()
    plan = plans().get(plan_slug)
    if plan is None or not plan.is_public:
        raise ServiceError(f"There is no plan {plan_slug!r}.", code="unknown_plan")
    price = plan.stripe_price(interval)
    if not price:
        raise ServiceError(
            f"The {plan.name} plan has no {interval}ly Stripe price; staff set it in the admin.",
            code="plan_not_for_sale",
        )
    assignment = PlanAssignment.objects.filter(user=user).first()
    current = (
        assignment.subscribed_plan
        if assignment and assignment.subscription_status in ("active", "trialing", "past_due")
        else None
    )
    if current is not None and current.rank >= plan.rank:
        raise Conflict(
            f"You are already subscribed to {current.name}; change or downgrade it in the customer portal.",
            code="use_portal",
        )
    subscription_data: dict = {"metadata": {"plan": plan.slug, "user_id": str(user.pk)}}
    if current is not None:
        subscription_data["metadata"]["replaces"] = assignment.subscription_id
    elif plan.trial_days and not (assignment and assignment.trial_used):
        subscription_data["trial_period_days"] = plan.trial_days
    try:
        customer, _ = Customer.get_or_create(subscriber=user, livemode=settings.STRIPE_LIVE_MODE)
        session = stripe.checkout.Session.create(
            api_key=api_key,
            mode="subscription",
            customer=customer.id,
            client_reference_id=str(user.pk),
            line_items=[{"price": price, "quantity": 1}],
            subscription_data=subscription_data,
            success_url=success_url,
            cancel_url=cancel_url,
            allow_promotion_codes=True,
            metadata={"plan": plan.slug, "interval": interval},
        )
    except stripe.StripeError as exc:
        raise StripeUnavailable(f"Stripe refused the checkout: {exc.user_message or exc}") from None
    return {
        "id": session["id"],
        "url": session["url"],
        "plan": plan.slug,
        "interval": interval,
        "trial_days": subscription_data.get("trial_period_days", 0),
    }


def portal_session_create(*, user, return_url: str) -> dict:
    """A Stripe Customer Portal session (cards, invoices, cancel, downgrade); returns its url."""
    from djstripe.models import Customer

    api_key = _require_stripe()
    customer = Customer.objects.filter(subscriber=user, livemode=settings.STRIPE_LIVE_MODE).first()
    if customer is None:
        raise Conflict("You have no Stripe customer yet: subscribe to a plan first.", code="no_customer")
    try:
        session = stripe.billing_portal.Session.create(api_key=api_key, customer=customer.id, return_url=return_url)
    except stripe.StripeError as exc:
        raise StripeUnavailable(f"Stripe refused the portal session: {exc.user_message or exc}") from None
    return {"url": session["url"]}
