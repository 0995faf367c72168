"""Write paths of the integrations app: Systeme.io sync and rules, inbound and outbound webhooks, pre-flight.

Services that call a remote API keep each local write in its own short transaction (one per contact, per
firing, per delivery) instead of one transaction around network calls.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts import vault
from accounts.choices import Role
from config import net
from config.errors import ServiceError

from . import systeme
from .choices import DeliveryStatus, FiringResult, InboundStatus, RuleAction, WebhookEvent
from .figures import condition_met, contact_fields
from .models import (
    AutomationRule,
    ContactSync,
    InboundWebhookEvent,
    RuleFiring,
    RuleState,
    SystemeSettings,
    WebhookDelivery,
    WebhookEndpoint,
)
from .selectors import account_figures, contact_accounts

logger = logging.getLogger(__name__)

ERROR_LIMIT = 500
SIGNATURE_HEADER = "X-MT5BO-Signature"
TIMESTAMP_HEADER = "X-MT5BO-Timestamp"
EVENT_HEADER = "X-MT5BO-Event"
DELIVERY_HEADER = "X-MT5BO-Delivery"


class SystemeNotConfigured(ServiceError):
    code = "systeme_not_configured"
    status_code = 409


# --- Systeme.io connection -----------------------------------------------------------------


def systeme_settings_update(*, api_key: str | None = None, **changes: Any) -> SystemeSettings:
    """Store the API key (encrypted; "" removes it) and the other connection settings."""
    with transaction.atomic():
        row = SystemeSettings.objects.select_for_update().get(pk=SystemeSettings.load().pk)
        if api_key is not None:
            row.api_key_encrypted = vault.encrypt(api_key) if api_key else b""
            row.connection_ok, row.connection_error = None, ""
        for name, value in changes.items():
            setattr(row, name, value)
        row.save()
    return row


def _client() -> systeme.SystemeClient:
    row = SystemeSettings.load()
    if not row.enabled:
        raise SystemeNotConfigured("The Systeme.io connection is switched off in the admin.")
    try:
        return systeme.client_from_settings()
    except systeme.SystemeAuthError as exc:
        raise SystemeNotConfigured(str(exc)) from None
    except vault.SecretUnreadable:
        raise SystemeNotConfigured("The stored Systeme.io API key cannot be decrypted; enter it again.") from None


def _record_connection(ok: bool, error: str = "") -> None:
    SystemeSettings.objects.filter(pk=SystemeSettings.load().pk).update(
        connection_ok=ok, connection_error=error[:ERROR_LIMIT], connection_checked_at=timezone.now()
    )


def systeme_connection_check() -> SystemeSettings:
    """Call the API once and record whether the key works."""
    try:
        with _client() as client:
            client.ping()
        _record_connection(True)
    except systeme.SystemeError as exc:
        _record_connection(False, str(exc))
    except SystemeNotConfigured as exc:
        _record_connection(False, exc.message)
    return SystemeSettings.load()


# --- Contact sync --------------------------------------------------------------------------


def contacts_to_sync(user_ids: list[int] | None = None):
    """Users whose figures go to Systeme.io: every trader with an account, or the staff-chosen set."""
    User = get_user_model()
    users = User.objects.filter(is_active=True, trading_accounts__is_active=True).distinct()
    if user_ids is not None:
        return users.filter(pk__in=user_ids)
    if SystemeSettings.load().sync_all_traders:
        return users.exclude(systeme_contact__included=False)
    return users.filter(systeme_contact__included=True)


def contact_sync(*, user, client: systeme.SystemeClient, known_slugs: set[str] | None, now=None) -> ContactSync:
    """Create or update one user's contact with their figures (only fields Systeme.io knows are sent)."""
    from .figures import combine

    record, _ = ContactSync.objects.get_or_create(user=user, defaults={"email": user.email})
    figures = combine([account_figures(account, now) for account in contact_accounts(user)])
    wanted = contact_fields(figures, settings.SYSTEME_FIELD_PREFIX) if figures else {}
    sent = {slug: value for slug, value in wanted.items() if known_slugs is None or slug in known_slugs}
    try:
        contact = None
        if record.contact_id:
            try:
                contact = client.set_contact_fields(int(record.contact_id), sent) if sent else None
            except systeme.SystemeNotFound:
                record.contact_id = ""  # deleted in Systeme.io: find or create it again
        if not record.contact_id:
            contact = client.find_contact_by_email(user.email)
            if contact is None:
                contact = client.create_contact(user.email, fields=sent, locale=SystemeSettings.load().locale)
            elif sent:
                contact = client.set_contact_fields(contact.id, sent)
        with transaction.atomic():
            if contact is not None:
                record.contact_id = str(contact.id)
                record.tags = sorted(tag.name for tag in contact.tags)
            record.email = user.email
            record.fields = sent
            record.last_synced_at = timezone.now()
            record.last_error = ""
            record.save()
            webhook_emit(
                WebhookEvent.CONTACT_SYNCED, {"email": record.email, "contact_id": record.contact_id, "fields": sent}
            )
    except systeme.SystemeAuthError:
        raise
    except systeme.SystemeError as exc:
        record.last_error = str(exc)[:ERROR_LIMIT]
        record.save(update_fields=["last_error"])
    return record


def systeme_sync(*, user_ids: list[int] | None = None, client: systeme.SystemeClient | None = None) -> dict:
    """Sync every contact that should be synced; record the summary on the connection row."""
    own_client = client is None
    client = client or _client()
    started = timezone.now()
    summary = {"synced": 0, "failed": 0, "errors": []}
    ok = True
    try:
        known = {f.slug for f in client.list_contact_fields()}
        wanted = set(contact_fields_template())
        missing = sorted(wanted - known)
        if missing:
            logger.warning("Systeme.io has no custom contact fields %s; create them to receive those figures", missing)
        for user in contacts_to_sync(user_ids).iterator():
            record = contact_sync(user=user, client=client, known_slugs=known)
            if record.last_error:
                summary["failed"] += 1
                summary["errors"].append(f"{user.email}: {record.last_error}"[:200])
            else:
                summary["synced"] += 1
        _record_connection(True)
    except systeme.SystemeError as exc:
        ok, missing = False, []
        summary["errors"].append(str(exc)[:ERROR_LIMIT])
        _record_connection(False, str(exc))
    finally:
        if own_client:
            client.close()
    summary["errors"] = summary["errors"][:20]
    SystemeSettings.objects.filter(pk=SystemeSettings.load().pk).update(
        last_sync_at=started,
        last_sync_ok=ok and summary["failed"] == 0,
        last_sync_summary=summary,
        **({"missing_fields": missing} if ok else {}),
    )
    return summary


def contact_fields_template() -> list[str]:
    from decimal import Decimal

    from .figures import Figures

    zero = Figures(Decimal(0), Decimal(0), Decimal(0), Decimal(0), 0, 0, None, None)
    return list(contact_fields(zero, settings.SYSTEME_FIELD_PREFIX))


def contact_include(*, user, included: bool) -> ContactSync:
    """Staff choose who is synced when not every trader is."""
    record, _ = ContactSync.objects.update_or_create(user=user, defaults={"included": included, "email": user.email})
    return record


# --- Automation rules ----------------------------------------------------------------------


def rules_evaluate(
    *, client: systeme.SystemeClient | None = None, now: datetime | None = None, user_ids: list[int] | None = None
) -> dict:
    """Evaluate every enabled rule for every linked contact; act on crossings only."""
    now = now or timezone.now()
    rules = list(AutomationRule.objects.filter(enabled=True))
    result = {"evaluated": 0, "fired": 0, "failed": 0, "rearmed": 0}
    if not rules:
        return result
    own_client = client is None
    client = client or _client()
    tag_ids: dict[str, int] = {}
    contacts = ContactSync.objects.exclude(contact_id="").select_related("user")
    if user_ids is not None:
        contacts = contacts.filter(user_id__in=user_ids)
    try:
        for contact in contacts.iterator():
            per_account = [(account, account_figures(account, now)) for account in contact_accounts(contact.user)]
            for rule in rules:
                result["evaluated"] += 1
                hits = [(a, f) for a, f in per_account if condition_met(rule.condition, rule.threshold, f, now)]
                outcome = _rule_apply(rule=rule, contact=contact, hits=hits, client=client, tag_ids=tag_ids)
                if outcome:
                    result[outcome] += 1
    finally:
        if own_client:
            client.close()
    return result


def _rule_apply(*, rule, contact, hits, client, tag_ids) -> str | None:
    with transaction.atomic():
        RuleState.objects.get_or_create(rule=rule, contact=contact)
        # skip_locked: another evaluator holding this pair is already acting on it.
        state = RuleState.objects.select_for_update(skip_locked=True).filter(rule=rule, contact=contact).first()
        if state is None:
            return None
        if not hits:
            if state.active:
                state.active, state.changed_at = False, timezone.now()
                state.save(update_fields=["active", "changed_at"])
                return "rearmed"
            return None
        if state.active:
            return None  # still above the line: it fired when it crossed
        account, figures = hits[0]
        error = ""
        try:
            tag_id = tag_ids.get(rule.tag)
            if tag_id is None:
                tag_id = tag_ids[rule.tag] = client.ensure_tag(rule.tag).id
            if rule.action == RuleAction.ADD_TAG:
                client.add_tag(int(contact.contact_id), tag_id)
                contact.tags = sorted(set(contact.tags) | {rule.tag})
            else:
                client.remove_tag(int(contact.contact_id), tag_id)
                contact.tags = sorted(set(contact.tags) - {rule.tag})
            contact.save(update_fields=["tags"])
        except systeme.SystemeError as exc:
            error = str(exc)[:ERROR_LIMIT]
        firing = RuleFiring.objects.create(
            rule=rule,
            contact=contact,
            account=account,
            figures=figures.as_json(),
            action=rule.action,
            tag=rule.tag,
            result=FiringResult.FAILED if error else FiringResult.OK,
            error=error,
        )
        if error:
            return "failed"  # the state stays inactive, so the next evaluation tries again
        state.active, state.changed_at = True, timezone.now()
        state.save(update_fields=["active", "changed_at"])
        webhook_emit(
            WebhookEvent.RULE_HIT,
            {
                "rule": rule.slug,
                "action": rule.action,
                "tag": rule.tag,
                "email": contact.email,
                "account_id": str(account.pk),
                "login": account.login,
                "figures": firing.figures,
            },
        )
    return "fired"


# --- Inbound webhooks (Systeme.io → us) ----------------------------------------------------


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


# --- Outbound webhooks (us → staff-registered endpoints) -----------------------------------


def _validate_url(url: str) -> str:
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
        url=_validate_url(url),
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
            endpoint.url = _validate_url(changes.pop("url"))
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
    """Queue ``event`` for every active endpoint that wants it; delivery happens after the commit, in Celery."""
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

        def enqueue() -> None:
            from .tasks import deliver_webhook

            for delivery in deliveries:
                deliver_webhook.delay(str(delivery.pk))

        transaction.on_commit(enqueue)
    return deliveries


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


def webhook_delivery_retry(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Staff: try a given-up delivery again (from now)."""
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.PENDING, next_attempt_at=timezone.now(), attempts=0
    )
    delivery.refresh_from_db()
    transaction.on_commit(lambda: _enqueue_delivery(delivery.pk))
    return delivery


def _enqueue_delivery(pk) -> None:
    from .tasks import deliver_webhook

    deliver_webhook.delay(str(pk))


def webhook_ping(*, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """Staff: queue a test delivery to one endpoint (even one that does not subscribe to "ping")."""
    if not endpoint.is_active:
        raise ServiceError("The endpoint is disabled; enable it first.", code="endpoint_disabled")
    with transaction.atomic():
        delivery = WebhookDelivery.objects.create(
            endpoint=endpoint, event=WebhookEvent.PING, payload={"message": "test delivery"}
        )
        transaction.on_commit(lambda: _enqueue_delivery(delivery.pk))
    return delivery


# --- Symbol pre-flight ---------------------------------------------------------------------


def preflight_run(*, account, user=None, options=None, gateway=None):
    """Run the pre-flight on a stored account and keep the result on it (a failed run is kept too)."""
    from mt5bridge import gateway as gw

    from .choices import PreflightStatus
    from .models import PreflightResult
    from .preflight import PreflightFailed, options_from_settings, preflight_check

    if options is None:
        options = options_from_settings()
        options.s3_prefix = f"{options.s3_prefix}{account.pk}/"  # one folder per account
    try:
        password = vault.decrypt(account.password_encrypted)
    except vault.SecretUnreadable:
        raise ServiceError(
            "The stored MT5 password cannot be decrypted; enter it again.", code="secret_unreadable"
        ) from None
    credentials = gw.Credentials(login=account.login, password=password, server=account.server)
    try:
        gateway = gateway or gw.get_gateway(account.gateway_kind, server=account.server)
        report = preflight_check(gateway, credentials, options)
    except (PreflightFailed, gw.GatewayError) as exc:
        result = PreflightResult.objects.create(
            account=account, created_by=user, status=PreflightStatus.FAILED, error=str(exc)[:ERROR_LIMIT]
        )
        return result
    with transaction.atomic():
        result = PreflightResult.objects.create(
            account=account,
            created_by=user,
            status=PreflightStatus.PARTIAL if report.warnings else PreflightStatus.OK,
            payload=report.payload,
            chart_symbol=report.chart_symbol,
            chart_period=report.chart_period,
            template=report.template,
            startup_ini=report.startup_ini,
            warnings=report.warnings,
            symbols_found=report.symbols_found,
        )
        webhook_emit(
            WebhookEvent.PREFLIGHT_DONE,
            {
                "account_id": str(account.pk),
                "login": account.login,
                "server": account.server,
                "status": result.status,
                "result_id": result.pk,
                "chart_symbol": result.chart_symbol,
                "warnings": report.warnings,
            },
        )
    return result
