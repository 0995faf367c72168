"""Local billing events: Stripe-shaped subscription events, signed with BILLING_LOCAL_WEBHOOK_SECRET, applied
without Stripe.

Only in local mode (no Stripe key; settings refuse the secret next to a key). `POST /api/webhooks/stripe` hands
the request here when the secret is set: the signature is Stripe's scheme (``Stripe-Signature: t=…,v1=…``,
HMAC-SHA256 of "{t}.{body}", verified offline by the stripe library within STRIPE_WEBHOOK_TOLERANCE), and
``customer.subscription.created/updated/deleted`` write the user's subscription fields and go through
``entitlements.services.plan_apply`` like Stripe's own events (same PlanChange audit row, with the event id).
Nothing here talks to Stripe. ``manage.py billing_send_event`` builds and signs such events.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime

import stripe
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone

from accounts.models import User
from config.errors import ServiceError, error_body
from entitlements.models import Plan, PlanAssignment
from entitlements.resolution import LOCAL_SUBSCRIPTION_PREFIX, STATUS_PRIORITY, best_subscription, past_due_since
from entitlements.selectors import plans
from entitlements.services import locked_assignment, plan_apply

from .models import LocalBillingEvent
from .services import subscription_facts

logger = logging.getLogger(__name__)

HANDLED_EVENTS = (
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
)
STATUSES = tuple(s for s in STATUS_PRIORITY if s)


class EventRefused(ServiceError):
    """A well-signed event that cannot be applied (malformed, unknown user or plan): 4xx, nothing stored."""


# --- Receiving ----------------------------------------------------------------------------------


def local_webhook(request: HttpRequest) -> JsonResponse:
    """Verify one local event delivery and apply it. Every answer is JSON; bad input is a 4xx."""
    header = request.headers.get("stripe-signature", "")
    if not header:
        return JsonResponse(error_body("signature_missing", "The Stripe-Signature header is missing."), status=400)
    try:
        payload = request.body.decode("utf-8")
    except UnicodeDecodeError:
        return JsonResponse(error_body("malformed_event", "The body is not UTF-8 JSON."), status=400)
    if not signature_valid(payload, header):
        return JsonResponse(
            error_body(
                "signature_invalid", "The signature did not verify (wrong secret, stale timestamp or bad body)."
            ),
            status=400,
        )
    try:
        event = json.loads(payload)
    except ValueError:
        return JsonResponse(error_body("malformed_event", "The body is not a JSON object."), status=400)
    try:
        result = local_event_apply(event)
    except EventRefused as exc:
        return JsonResponse(error_body(exc.code, exc.message, exc.details), status=exc.status_code)
    return JsonResponse({"received": True, **result})


def signature_valid(payload: str, header: str) -> bool:
    """Stripe's scheme, checked offline by the stripe library; a timestamp too far in the future is refused too."""
    tolerance = settings.BILLING_WEBHOOK_TOLERANCE
    try:
        stripe.WebhookSignature.verify_header(payload, header, settings.BILLING_LOCAL_WEBHOOK_SECRET, tolerance)
    except stripe.SignatureVerificationError:
        return False
    stamps = [part[2:] for part in header.split(",") if part.strip().startswith("t=")]
    return bool(stamps) and int(stamps[0]) <= time.time() + tolerance  # the library parsed it: an integer


# --- Applying -----------------------------------------------------------------------------------


def local_event_apply(event) -> dict:
    """Apply one verified event once: {"event", "outcome" (applied|ignored|stale|duplicate), "plan"?}."""
    if not isinstance(event, dict):
        raise EventRefused("The event is not a JSON object.", code="malformed_event")
    event_id, event_type = event.get("id"), event.get("type")
    if not isinstance(event_id, str) or not event_id or len(event_id) > 255:
        raise EventRefused("The event has no id.", code="malformed_event")
    if not isinstance(event_type, str) or not event_type or len(event_type) > 100:
        raise EventRefused("The event has no type.", code="malformed_event")
    with transaction.atomic():
        # The row is the lock: a concurrent delivery of the same id waits here, then finds it.
        record, created = LocalBillingEvent.objects.get_or_create(
            id=event_id, defaults={"type": event_type, "outcome": "received"}
        )
        if not created:
            return {"event": event_id, "outcome": "duplicate", "first_outcome": record.outcome}
        if event_type not in HANDLED_EVENTS:
            record.outcome = "ignored"
            record.save(update_fields=["outcome"])
            return {"event": event_id, "outcome": "ignored"}
        return _subscription_event_apply(record, event)


def _subscription_event_apply(record: LocalBillingEvent, event: dict) -> dict:
    data = (event.get("data") or {}).get("object") if isinstance(event.get("data"), dict) else None
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
        raise EventRefused("data.object must be a subscription with an id.", code="malformed_event")
    try:
        facts = subscription_facts(data)
    except (TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise EventRefused(f"The subscription is malformed: {exc}.", code="malformed_event") from exc
    status = "canceled" if record.type == "customer.subscription.deleted" else facts["status"]
    if status not in STATUSES:
        raise EventRefused(
            f"Unknown subscription status {status!r}.", code="malformed_event", details={"allowed": list(STATUSES)}
        )
    plan = _plan_of(data) or facts["plan"]
    if plan is None:
        raise EventRefused(
            "No plan: give the price a lookup_key or the subscription metadata a plan, naming a plan slug.",
            code="unknown_plan",
            status_code=422,
            details={"plans": list(plans())},
        )
    user = _user_of(data)
    created = _event_time(event.get("created"))
    subscription_id = LOCAL_SUBSCRIPTION_PREFIX + data["id"]
    record.created, record.subscription_id, record.user = created, subscription_id, user

    newer = LocalBillingEvent.objects.filter(
        subscription_id=subscription_id, outcome="applied", created__gt=created
    ).exists()
    assignment = locked_assignment(user)
    if newer or not _replaces(assignment, subscription_id, status, plan):
        # Older news about this subscription, or another subscription worse than the one that decides.
        record.outcome = "stale"
        record.save()
        return {"event": record.id, "outcome": "stale", "user": str(user.pk)}
    assignment.past_due_since = past_due_since(
        previous_status=assignment.subscription_status,
        previous_since=assignment.past_due_since,
        status=status,
        now=timezone.now(),
    )
    assignment.subscription_id = subscription_id
    assignment.subscription_status = status
    assignment.subscribed_plan = plan
    assignment.interval = facts["interval"][:8]
    assignment.trial_end = facts["trial_end"]
    assignment.current_period_end = facts["current_period_end"]
    assignment.cancel_at_period_end = facts["cancel_at_period_end"]
    if facts["trial_end"]:
        assignment.trial_used = True
    change = plan_apply(
        assignment, reason="stripe", detail=f"local event: subscription {data['id']} {status}", event_id=record.id
    )
    record.outcome = "applied"
    record.save()
    logger.info("local billing event %s: user %s %s on %s", record.id, user.pk, status, plan.slug)
    return {
        "event": record.id,
        "outcome": "applied",
        "user": str(user.pk),
        "status": status,
        "plan": assignment.effective_plan.slug if assignment.effective_plan else None,
        "plan_changed": change is not None,
    }


def _plan_of(data: dict) -> Plan | None:
    """The plan named by the first item's price lookup_key (Stripe's price lookup key = our plan slug)."""
    items = data.get("items")
    rows = items.get("data") if isinstance(items, dict) else None
    price = rows[0].get("price") if isinstance(rows, list) and rows and isinstance(rows[0], dict) else None
    lookup_key = price.get("lookup_key") if isinstance(price, dict) else None
    return plans().get(lookup_key) if isinstance(lookup_key, str) and lookup_key else None


def _user_of(data: dict) -> User:
    """The person: metadata user_id, else the (expanded) customer's email, else metadata email."""
    metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    customer = data.get("customer") if isinstance(data.get("customer"), dict) else {}
    user_id = metadata.get("user_id")
    email = customer.get("email") or metadata.get("email")
    user = None
    if user_id:
        try:
            user = User.objects.filter(pk=str(user_id)).first()
        except (ValueError, TypeError, ValidationError):
            user = None
    elif isinstance(email, str) and email:
        user = User.objects.filter(email__iexact=email).first()
    if user is None:
        raise EventRefused(
            "No user matches metadata.user_id or the customer's email.",
            code="unknown_user",
            status_code=422,
            details={"user_id": str(user_id or ""), "email": str(email or "")},
        )
    return user


def _event_time(value) -> datetime:
    try:
        return datetime.fromtimestamp(int(value), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return datetime.now(tz=UTC)


def _replaces(assignment: PlanAssignment, subscription_id: str, status: str, plan: Plan) -> bool:
    """Whether this subscription's news decides: the same subscription always; another one when it is better
    than the recorded one (or nothing local is recorded)."""
    current = assignment.subscription_id
    if current == subscription_id or not current.startswith(LOCAL_SUBSCRIPTION_PREFIX):
        return True
    recorded = assignment.subscribed_plan
    chosen = best_subscription(
        [
            {"id": current, "status": assignment.subscription_status, "rank": recorded.rank if recorded else -1},
            {"id": subscription_id, "status": status, "rank": plan.rank, "created": 1},
        ]
    )
    return chosen is not None and chosen["id"] == subscription_id
