"""Inbound webhooks (Systeme.io → us): the signature check, the replay key, storing and handling an event."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q

from config.errors import ServiceError

from ..choices import InboundStatus
from ..models import ContactSync, InboundWebhookEvent
from . import ERROR_LIMIT


class InvalidSignature(ServiceError):
    """The webhook's signature is missing, malformed, wrong or too old: 401, and nothing is stored."""

    code = "invalid_signature"
    status_code = 401


_HEX64 = frozenset("0123456789abcdef")


def _hex_digest(value: str) -> str | None:
    """A 64-character hex SHA-256 digest in lower case, or None for anything else."""
    value = value.strip().lower()
    return value if len(value) == 64 and set(value) <= _HEX64 else None


def _signature_parts(header: str) -> tuple[int | None, list[str]]:
    """(timestamp, digests) of ``t=<unix>,v1=<hex>[,v1=<hex>]`` or (None, [digest]) of a bare ``<hex>``
    (``sha256=<hex>`` too). Anything else raises ``InvalidSignature``."""
    if not header.isascii() or len(header) > 1000:
        raise InvalidSignature("The webhook signature header is malformed.")
    header = header.strip()
    if "=" in header and not header.lower().startswith("sha256="):
        timestamp, digests = None, []
        for item in header.split(","):
            key, _, value = item.strip().partition("=")
            if key == "t":
                if timestamp is not None or not value.isdigit() or len(value) > 12:
                    raise InvalidSignature("The webhook signature's timestamp (t=) is malformed.")
                timestamp = int(value)
            elif key == "v1":
                digest = _hex_digest(value)
                if digest is None:
                    raise InvalidSignature("The webhook signature (v1=) is not 64 hex characters.")
                digests.append(digest)
        if timestamp is None or not digests:
            raise InvalidSignature("The webhook signature needs both t= and v1=.")
        return timestamp, digests
    digest = _hex_digest(header[7:] if header.lower().startswith("sha256=") else header)
    if digest is None:
        raise InvalidSignature("The webhook signature is not 64 hex characters.")
    return None, [digest]


def inbound_signature_verify(*, body: bytes, header: str | None, secret: str, now: float | None = None) -> int | None:
    """Check a Systeme.io webhook's signature over the raw body; return its signed timestamp (None when unsigned).

    Two forms (docs/integrations.md):
    - ``t=<unix seconds>,v1=<hex HMAC-SHA256 of "{t}.{raw body}">``: the timestamp is signed and must be within
      ``SYSTEME_WEBHOOK_TOLERANCE`` seconds (5 minutes) of now; several ``v1`` (secret rotation) may be given.
    - ``<hex HMAC-SHA256 of the raw body>`` (``sha256=`` prefix allowed): what Systeme.io itself sends. It carries
      no time, so it is refused when ``SYSTEME_WEBHOOK_REQUIRE_TIMESTAMP`` is on; its replays are caught by the
      replay key (the signed body), not by age.
    Raises ``InvalidSignature`` (401) for a missing, malformed, wrong or stale signature; digests are compared in
    constant time.
    """
    if not secret:
        raise InvalidSignature("Webhooks are not accepted: no SYSTEME_WEBHOOK_SECRET is configured.")
    if not header:
        raise InvalidSignature("The webhook signature header is missing.")
    timestamp, digests = _signature_parts(header)
    if timestamp is None:
        if settings.SYSTEME_WEBHOOK_REQUIRE_TIMESTAMP:
            raise InvalidSignature("A timestamped signature (t=...,v1=...) is required.")
        message = body
    else:
        message = str(timestamp).encode() + b"." + body
    expected = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, digest) for digest in digests):
        raise InvalidSignature("The webhook signature does not match the body.")
    if timestamp is not None:
        age = (time.time() if now is None else now) - timestamp
        if abs(age) > settings.SYSTEME_WEBHOOK_TOLERANCE:
            raise InvalidSignature(
                f"The webhook signature's timestamp is {int(age)} s from now "
                f"(more than {settings.SYSTEME_WEBHOOK_TOLERANCE} s)."
            )
    return timestamp


def inbound_replay_key(body: bytes, payload: dict) -> str:
    """The replay key, from signed data only: the body's event id when it carries one (``event_id``, or ``id`` of an
    event envelope that also names its ``type``/``event``; a bare ``id`` may be the contact's), else the SHA-256 of
    the body. Headers such as a delivery id are not covered by the signature, so a captured body re-sent with a new
    one would otherwise be processed again.
    """
    event_id = payload.get("event_id")
    if event_id in (None, "") and (payload.get("type") or payload.get("event")):
        event_id = payload.get("id")
    if isinstance(event_id, (str, int)) and not isinstance(event_id, bool) and str(event_id).strip():
        return f"id:{str(event_id).strip()}"[:128]
    return f"sha256:{hashlib.sha256(body).hexdigest()}"


def inbound_webhook_receive(*, body: bytes, event_header: str = "") -> tuple[InboundWebhookEvent, bool]:
    """Store and handle one verified webhook; a replay (same event id, or same body) is recognised and not re-run.

    The event type is the body's ``type`` / ``event`` when it names one (signed); otherwise ``X-Webhook-Event``,
    the only place Systeme.io names it. That header is not covered by Systeme.io's signature, but the replay key
    is, so a captured body re-sent under another event name is a duplicate and changes nothing.
    """
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ServiceError("The webhook body is not JSON.", code="invalid_json") from None
    if not isinstance(payload, dict):
        raise ServiceError("The webhook body must be a JSON object.", code="invalid_json")
    key = inbound_replay_key(body, payload)
    named = payload.get("type") or payload.get("event")
    event_type = (str(named) if isinstance(named, str) and named else event_header)[:64]
    with transaction.atomic():
        event, created = InboundWebhookEvent.objects.select_for_update().get_or_create(
            key=key, defaults={"event_type": event_type, "payload": payload, "status": InboundStatus.IGNORED}
        )
        if not created:
            InboundWebhookEvent.objects.filter(pk=event.pk).update(replays=event.replays + 1)
            return event, False
        status, note = _inbound_handle(event_type, payload)
        event.status, event.note = status, note[:ERROR_LIMIT]
        event.save(update_fields=["status", "note"])
    return event, True


def _inbound_handle(event_type: str, payload: dict) -> tuple[str, str]:
    contact = payload.get("contact") or (payload.get("data") or {}).get("contact") or payload.get("data") or {}
    if not isinstance(contact, dict):
        return InboundStatus.IGNORED, "no contact in the payload"
    email = str(contact.get("email") or "").strip()
    kind = event_type.upper().replace(".", "_")
    record = None
    if email:
        record = ContactSync.objects.filter(Q(email__iexact=email) | Q(user__email__iexact=email)).first()
    if record is None and email:
        User = get_user_model()
        user = User.objects.filter(email__iexact=email).first()
        if user is not None:
            record = ContactSync.objects.create(user=user, email=user.email)
    if record is None:
        return InboundStatus.IGNORED, f"no user with the contact's email {email!r}" if email else "no email"
    if contact.get("id") and not record.contact_id:
        record.contact_id = str(contact["id"])
    tags = contact.get("tags")
    if isinstance(tags, list):
        record.tags = sorted({str(t.get("name")) for t in tags if isinstance(t, dict) and t.get("name")})
    tag = payload.get("tag") if isinstance(payload.get("tag"), dict) else None
    if tag and tag.get("name"):
        if "TAG_ADDED" in kind:
            record.tags = sorted(set(record.tags) | {str(tag["name"])})
        elif "TAG_REMOVED" in kind:
            record.tags = sorted(set(record.tags) - {str(tag["name"])})
    record.save(update_fields=["contact_id", "tags"])
    return InboundStatus.PROCESSED, f"contact {record.email} updated ({kind or 'event'})"
