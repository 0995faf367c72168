"""Outbound webhooks (us → staff-registered endpoints): endpoints, events, and handing deliveries to the worker."""

from __future__ import annotations

import json
import secrets
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from accounts import vault
from config import net
from config.errors import ServiceError

from ..choices import DeliveryStatus, WebhookEvent
from ..models import WebhookDelivery, WebhookEndpoint

#: Sent after the commit that stored deliveries ready to go, with ``delivery_ids`` (a list of str).
#: ``IntegrationsConfig.ready`` connects the Celery hand-off (``tasks.deliveries_enqueue``): the tasks call these
#: services, so the services announce instead of importing the tasks. Deliveries nobody hands off are still sent
#: by the beat job ``deliver_due_webhooks`` (their next attempt is due at once).
deliveries_ready = Signal()


def _announce(delivery_ids: list[str]) -> None:
    transaction.on_commit(lambda: deliveries_ready.send(sender=WebhookDelivery, delivery_ids=delivery_ids))


def webhook_url_validate(url: str) -> str:
    """An http(s) URL whose host resolves to public addresses only (unless WEBHOOK_ALLOW_PRIVATE_URLS)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises for a port that is not a number)
    except ValueError:
        raise ServiceError("The webhook URL is not a valid URL.", code="invalid_url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ServiceError("The webhook URL must be an http(s) URL with a host.", code="invalid_url")
    if settings.WEBHOOK_ALLOW_PRIVATE_URLS:
        return url
    # Early feedback for staff only: the address is checked again, and pinned, every time a delivery is sent
    # (net.PinnedTransport), because the name can resolve elsewhere by then.
    try:
        net.resolve_vetted(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except net.AddressRefused as exc:
        raise ServiceError(
            f"Webhook URLs must not point at private or loopback addresses: {exc}.", code="invalid_url"
        ) from None
    except (OSError, UnicodeError):
        raise ServiceError(f"The host {parts.hostname!r} does not resolve.", code="invalid_url") from None
    return url


def _validate_events(events: list[str]) -> list[str]:
    known = set(WebhookEvent.values) | {"*"}
    unknown = sorted(set(events) - known)
    if unknown or not events:
        raise ServiceError(
            'Choose at least one known event (or "*").',
            code="invalid_events",
            details={"unknown": unknown, "known": sorted(known)},
        )
    return sorted(set(events))


def webhook_endpoint_create(
    *, url: str, events: list[str], secret: str = "", description: str = "", created_by=None
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; returns it and its signing secret (generated when not given; shown once)."""
    secret = secret or secrets.token_urlsafe(32)
    endpoint = WebhookEndpoint.objects.create(
        url=webhook_url_validate(url),
        events=_validate_events(events),
        secret_encrypted=vault.encrypt(secret),
        description=description,
        created_by=created_by,
    )
    return endpoint, secret


def webhook_endpoint_update(*, endpoint: WebhookEndpoint, **changes: Any) -> WebhookEndpoint:
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        if "url" in changes:
            endpoint.url = webhook_url_validate(changes.pop("url"))
        if "events" in changes:
            endpoint.events = _validate_events(changes.pop("events"))
        if changes.get("secret"):
            endpoint.secret_encrypted = vault.encrypt(changes.pop("secret"))
        changes.pop("secret", None)
        if changes.get("is_active") and not endpoint.is_active:
            endpoint.consecutive_failures, endpoint.disabled_at, endpoint.disabled_reason = 0, None, ""
        for name, value in changes.items():
            setattr(endpoint, name, value)
        endpoint.save()
    return endpoint


def webhook_emit(event: str, payload: dict) -> list[WebhookDelivery]:
    """Queue ``event`` for every active endpoint that wants it; delivery happens after the commit, in Celery.

    Payload values go through Django's JSON encoder (Decimal, datetime and UUID are fine)."""
    if not isinstance(event, str) or not event or len(event) > 64:
        raise ValueError("event must be a non-empty string of at most 64 characters")
    data = json.loads(json.dumps(payload, cls=DjangoJSONEncoder))
    endpoints = [e for e in WebhookEndpoint.objects.filter(is_active=True) if e.wants(event)]
    if not endpoints:
        return []
    with transaction.atomic():
        deliveries = WebhookDelivery.objects.bulk_create(
            [WebhookDelivery(endpoint=endpoint, event=event, payload=data) for endpoint in endpoints]
        )
        _announce([str(delivery.pk) for delivery in deliveries])
    return deliveries


def webhook_delivery_retry(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Staff: try a given-up delivery again (from now)."""
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.PENDING, next_attempt_at=timezone.now(), attempts=0
    )
    delivery.refresh_from_db()
    _announce([str(delivery.pk)])
    return delivery


def webhook_ping(*, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """Staff: queue a test delivery to one endpoint (even one that does not subscribe to "ping")."""
    if not endpoint.is_active:
        raise ServiceError("The endpoint is disabled; enable it first.", code="endpoint_disabled")
    with transaction.atomic():
        delivery = WebhookDelivery.objects.create(
            endpoint=endpoint, event=WebhookEvent.PING, payload={"message": "test delivery"}
        )
        _announce([str(delivery.pk)])
    return delivery
