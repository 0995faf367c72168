"""Stripe webhooks at /api/webhooks/stripe: dj-stripe verifies, stores and processes; our handlers follow.

dj-stripe mounts its own view at a per-endpoint UUID URL; the path here is fixed, so this
view hands the request to dj-stripe's `WebhookEventTrigger.from_request` with one local
`WebhookEndpoint` row carrying `DJSTRIPE_WEBHOOK_SECRET` and the tolerance. dj-stripe
stores every delivery as a `WebhookEventTrigger`, checks the signature (HMAC-SHA256 over
"{t}.{body}" within the tolerance), creates each `Event` once (a replay finds the stored
event and runs no handler), and re-reads the object from Stripe before syncing it, so
deliveries out of order converge on Stripe's current state.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from djstripe.enums import WebhookEndpointStatus, WebhookEndpointValidation
from djstripe.event_handlers import djstripe_receiver
from djstripe.models import Customer, Subscription, WebhookEndpoint, WebhookEventTrigger

from accounts.permissions import capability_required
from accounts.roles import PUBLIC
from config.errors import error_body
from entitlements.selectors import local_mode

from .local_events import local_webhook
from .services import customer_plan_sync

logger = logging.getLogger(__name__)

LOCAL_ENDPOINT_ID = "we_local_api_webhooks_stripe"
SUBSCRIPTION_EVENTS = (
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.paused",
    "customer.subscription.resumed",
    "customer.subscription.trial_will_end",
    "customer.subscription.pending_update_applied",
    "customer.subscription.pending_update_expired",
)


def local_endpoint():
    """The WebhookEndpoint row for /api/webhooks/stripe, kept in step with the settings."""
    wanted = {
        "secret": settings.DJSTRIPE_WEBHOOK_SECRET,
        "djstripe_tolerance": settings.BILLING_WEBHOOK_TOLERANCE,
        "livemode": settings.STRIPE_LIVE_MODE,
        "djstripe_validation_method": WebhookEndpointValidation.verify_signature,
    }
    endpoint = WebhookEndpoint.objects.filter(id=LOCAL_ENDPOINT_ID).first()
    if endpoint is None:
        endpoint, _ = WebhookEndpoint.objects.get_or_create(
            id=LOCAL_ENDPOINT_ID,
            defaults={
                **wanted,
                "url": f"{settings.SITE_URL.rstrip('/')}/api/webhooks/stripe",
                "enabled_events": ["*"],
                "status": WebhookEndpointStatus.enabled,
                "stripe_data": {},
            },
        )
    changed = [field for field, value in wanted.items() if getattr(endpoint, field) != value]
    if changed:
        for field in changed:
            setattr(endpoint, field, wanted[field])
        endpoint.save(update_fields=changed)
    return endpoint


@csrf_exempt
@capability_required(PUBLIC)  # the Stripe signature is the credential
@require_POST
@transaction.non_atomic_requests
def stripe_webhook(request: HttpRequest):
    """Receive one Stripe event delivery. 200 once stored and processed (or already processed).

    In local mode with BILLING_LOCAL_WEBHOOK_SECRET set, local billing events are received instead.
    """
    if settings.BILLING_LOCAL_WEBHOOK_SECRET and local_mode():
        return local_webhook(request)
    if not settings.DJSTRIPE_WEBHOOK_SECRET:
        return JsonResponse(
            error_body("webhook_not_configured", "Stripe webhooks are off: set STRIPE_WEBHOOK_SECRET."), status=400
        )
    # dj-stripe lets this header replace the secret when DEBUG is on (for the Stripe CLI);
    # a public endpoint must never accept a secret chosen by the caller.
    request.META.pop("HTTP_X_DJSTRIPE_WEBHOOK_SECRET", None)
    request.__dict__.pop("headers", None)
    if "stripe-signature" not in request.headers:
        return JsonResponse(error_body("signature_missing", "The Stripe-Signature header is missing."), status=400)
    try:
        trigger = WebhookEventTrigger.from_request(request, webhook_endpoint=local_endpoint())
    except Exception:
        # dj-stripe has stored the trigger with its traceback; a 5xx makes Stripe deliver again later.
        logger.exception("Stripe webhook processing failed")
        return JsonResponse(
            error_body("processing_failed", "The event could not be processed; Stripe will retry."), status=500
        )
    if not trigger.valid:
        return JsonResponse(
            error_body(
                "signature_invalid", "The signature did not verify (wrong secret, stale timestamp or bad body)."
            ),
            status=400,
        )
    return JsonResponse({"received": True, "event": trigger.event_id, "trigger": trigger.pk})


def on_subscription_event(sender, event, **kwargs) -> None:
    """After dj-stripe synced the subscription from Stripe: mirror the customer's state onto the plan."""
    sub_id = (event.data.get("object") or {}).get("id")
    subscription = Subscription.objects.filter(id=sub_id).select_related("customer").first()
    if subscription is None:
        logger.warning("event %s: subscription %s is not stored; nothing to mirror", event.id, sub_id)
        return
    customer_plan_sync(customer=subscription.customer, event_id=event.id)


def on_checkout_completed(sender, event, **kwargs) -> None:
    """A Checkout finished: fetch its subscription now rather than wait for the subscription event."""
    session = event.data.get("object") or {}
    sub_id = session.get("subscription")
    if isinstance(sub_id, dict):
        sub_id = sub_id.get("id")
    if not sub_id or session.get("mode") != "subscription":
        return
    data = Subscription(id=sub_id).api_retrieve(api_key=event.default_api_key)
    subscription = Subscription.sync_from_stripe_data(data, api_key=event.default_api_key)
    customer = subscription.customer or Customer.objects.filter(id=session.get("customer")).first()
    customer_plan_sync(customer=customer, event_id=event.id)


def connect_handlers() -> None:
    """Called from the app's ready(): after dj-stripe's own handlers, so its sync has happened."""
    djstripe_receiver(list(SUBSCRIPTION_EVENTS))(on_subscription_event)
    djstripe_receiver("checkout.session.completed")(on_checkout_completed)
