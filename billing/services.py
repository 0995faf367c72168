"""Write paths of billing: Stripe subscription state mirrored onto the plan assignment, Checkout and Portal.

The plan rules themselves (which plan applies, pausing accounts over a limit, the audit) are entitlements'.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import stripe
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from djstripe.models import Customer, Subscription
from djstripe.settings import djstripe_settings

from accounts.models import User
from config.errors import Conflict, ServiceError
from entitlements.models import Plan, PlanAssignment, PlanChange
from entitlements.resolution import best_subscription, past_due_since
from entitlements.selectors import local_mode, plans
from entitlements.services import locked_assignment, plan_apply

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


# --- Stripe subscription state ------------------------------------------------------------------


def plan_for_price(price_id: str, metadata_plan: str = "") -> Plan | None:
    for plan in plans().values():
        if price_id and price_id in (plan.stripe_price_monthly, plan.stripe_price_yearly):
            return plan
    return plans().get(metadata_plan) if metadata_plan else None


def subscription_facts(data: dict) -> dict:
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
    subscriber_id = (customer.metadata or {}).get(djstripe_settings.SUBSCRIBER_CUSTOMER_KEY)
    if subscriber_id and str(subscriber_id).isdigit():
        return User.objects.filter(pk=int(subscriber_id)).first()
    return None


def customer_plan_sync(*, customer, event_id: str = "", now=None) -> PlanChange | None:
    """Mirror the customer's deciding subscription (from dj-stripe's tables) onto the user's assignment."""
    user = user_for_customer(customer)
    if user is None:
        logger.warning("Stripe customer %s has no user; subscription ignored", customer.id if customer else None)
        return None
    facts = [subscription_facts(sub.stripe_data or {}) for sub in Subscription.objects.filter(customer=customer)]
    chosen = best_subscription(facts)
    now = now or timezone.now()
    with transaction.atomic():
        assignment = locked_assignment(user)
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
        change = plan_apply(
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
    old = Subscription.objects.filter(id=replaced, customer=customer).first()
    if old is None:
        return
    try:
        old.cancel(at_period_end=False, prorate=True)
    except stripe.StripeError:
        logger.exception("could not cancel replaced subscription %s", replaced)


# --- Checkout and Customer Portal --------------------------------------------------------------


def _require_stripe() -> str:
    if local_mode():
        raise Conflict(
            "Billing runs in local mode (no Stripe keys): staff change plans in the admin.", code="billing_local_mode"
        )
    return djstripe_settings.STRIPE_SECRET_KEY


def checkout_session_create(*, user, plan_slug: str, interval: str, success_url: str, cancel_url: str) -> dict:
    """A Stripe Checkout session to subscribe to (or upgrade to) ``plan_slug``; returns its id and url."""
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
    api_key = _require_stripe()
    customer = Customer.objects.filter(subscriber=user, livemode=settings.STRIPE_LIVE_MODE).first()
    if customer is None:
        raise Conflict("You have no Stripe customer yet: subscribe to a plan first.", code="no_customer")
    try:
        session = stripe.billing_portal.Session.create(api_key=api_key, customer=customer.id, return_url=return_url)
    except stripe.StripeError as exc:
        raise StripeUnavailable(f"Stripe refused the portal session: {exc.user_message or exc}") from None
    return {"url": session["url"]}
