"""One signed delivery attempt, its backoff, giving up and disabling an endpoint, and the deliveries due."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from datetime import datetime, timedelta

import httpx
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts import vault
from accounts.choices import Role
from config import net

from ..choices import DeliveryStatus
from ..models import WebhookDelivery, WebhookEndpoint
from . import ERROR_LIMIT

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-MT5BO-Signature"
TIMESTAMP_HEADER = "X-MT5BO-Timestamp"
EVENT_HEADER = "X-MT5BO-Event"
DELIVERY_HEADER = "X-MT5BO-Delivery"


def webhook_signature(secret: str, timestamp: int, body: bytes) -> str:
    """``v1=`` + hex HMAC-SHA256 over ``"{timestamp}.{body}"`` (the receiver checks the timestamp is fresh)."""
    message = str(timestamp).encode() + b"." + body
    return "v1=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def backoff_seconds(attempt: int, *, base: int, cap: int) -> int:
    """Wait after failed attempt ``attempt`` (1-based): base, 2×base, 4×base ... at most ``cap``."""
    return min(base * 2 ** max(attempt - 1, 0), cap)


def delivery_body(delivery: WebhookDelivery) -> bytes:
    envelope = {
        "id": str(delivery.pk),
        "event": delivery.event,
        "created_at": delivery.created_at.isoformat(),
        "data": delivery.payload,
    }
    return json.dumps(envelope, separators=(",", ":"), sort_keys=True).encode()


def webhook_delivery_attempt(*, delivery_id, transport: httpx.BaseTransport | None = None) -> WebhookDelivery | None:
    """One signed attempt; on failure schedule the next one with backoff, give up and disable as configured.

    A host that resolves to a loopback, private, CGNAT ... address fails the delivery at once with the reason.
    ``transport`` does the I/O behind the address pinning (tests pass a recording one)."""
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .select_related("endpoint")
            .filter(pk=delivery_id, status=DeliveryStatus.PENDING)
            .first()
        )
        if delivery is None:
            return None  # delivered, given up, or another worker has it
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=delivery.endpoint_id)
        if not endpoint.is_active:
            return delivery
        body = delivery_body(delivery)
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "mt5-backoffice-webhooks/1",
            EVENT_HEADER: delivery.event,
            DELIVERY_HEADER: str(delivery.pk),
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: webhook_signature(vault.decrypt(endpoint.secret_encrypted), timestamp, body),
        }
        status_code, error, refused = None, "", False
        # The host is resolved and vetted now, and the connection goes to that vetted address (DNS rebinding).
        pinned = net.PinnedTransport(allow_private=settings.WEBHOOK_ALLOW_PRIVATE_URLS, inner=transport)
        try:
            with httpx.Client(timeout=settings.WEBHOOK_TIMEOUT, transport=pinned, follow_redirects=False) as http:
                response = http.post(endpoint.url, content=body, headers=headers)
            status_code = response.status_code
            if not 200 <= status_code < 300:
                error = f"HTTP {status_code}"
        except net.AddressRefused as exc:
            refused, error = True, f"Refused: {exc}; only public addresses are allowed (WEBHOOK_ALLOW_PRIVATE_URLS)."
            error = error[:ERROR_LIMIT]
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:ERROR_LIMIT]
        now = timezone.now()
        delivery.attempts += 1
        delivery.last_status_code = status_code
        delivery.last_error = error
        delivery.log = [*delivery.log, {"at": now.isoformat(), "status_code": status_code, "error": error}][-20:]
        if not error:
            delivery.status, delivery.delivered_at = DeliveryStatus.SUCCEEDED, now
            endpoint.consecutive_failures = 0
        else:
            endpoint.consecutive_failures += 1
            if refused or delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
                # A refused address is the endpoint's configuration, not a passing fault: no retries.
                delivery.status = DeliveryStatus.FAILED
            else:
                delivery.next_attempt_at = now + timedelta(
                    seconds=backoff_seconds(
                        delivery.attempts,
                        base=settings.WEBHOOK_BACKOFF_SECONDS,
                        cap=settings.WEBHOOK_BACKOFF_MAX_SECONDS,
                    )
                )
            if endpoint.consecutive_failures >= settings.WEBHOOK_DISABLE_AFTER_FAILURES and endpoint.is_active:
                _endpoint_disable(
                    endpoint, f"{endpoint.consecutive_failures} failed deliveries in a row (last: {error})"
                )
        delivery.save()
        endpoint.save()
    return delivery


def _endpoint_disable(endpoint: WebhookEndpoint, reason: str) -> None:
    endpoint.is_active = False
    endpoint.disabled_at = timezone.now()
    endpoint.disabled_reason = reason[:300]
    logger.warning("webhook endpoint %s disabled: %s", endpoint.url, reason)
    url, pk = endpoint.url, endpoint.pk
    transaction.on_commit(lambda: _tell_staff_endpoint_disabled(pk, url, reason))


def _tell_staff_endpoint_disabled(pk, url: str, reason: str) -> None:
    User = get_user_model()
    recipients = list(
        User.objects.filter(is_active=True, is_staff=True)
        .filter(Q(is_superuser=True) | Q(groups__name=Role.SUPER_ADMIN))
        .exclude(email="")
        .values_list("email", flat=True)
        .distinct()
    )
    if recipients:
        send_mail(
            subject=f"Webhook endpoint disabled: {url}",
            message=f"The webhook endpoint {url} (id {pk}) was disabled: {reason}.\n"
            f"Fix the receiver, then re-enable it in the admin ({settings.SITE_URL}/admin/integrations/"
            f"webhookendpoint/{pk}/change/).",
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=recipients,
            fail_silently=True,
        )


def webhook_deliveries_due(*, now: datetime | None = None, limit: int = 200) -> list[str]:
    """Ids of pending deliveries whose next attempt is due, on active endpoints."""
    now = now or timezone.now()
    return [
        str(pk)
        for pk in WebhookDelivery.objects.filter(
            status=DeliveryStatus.PENDING,
            next_attempt_at__lte=now,
            endpoint__is_active=True,
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    ]
