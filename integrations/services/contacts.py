"""The Systeme.io connection (key, health) and the contact sync that pushes each trader's figures."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from accounts import vault
from config.errors import ServiceError
from entitlements.gates import systeme_contacts

from .. import systeme
from ..choices import WebhookEvent
from ..figures import Figures, combine, contact_fields
from ..models import ContactSync, SystemeSettings
from ..selectors import account_figures, contact_accounts, marketing_permitted
from . import ERROR_LIMIT
from .webhooks import webhook_emit

logger = logging.getLogger(__name__)


class SystemeNotConfigured(ServiceError):
    code = "systeme_not_configured"
    status_code = 409


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


def systeme_client() -> systeme.SystemeClient:
    """A client with the key stored in the admin (encrypted), else SYSTEME_API_KEY; SystemeNotConfigured when the
    connection is switched off, has no key, or its stored key cannot be decrypted."""
    row = SystemeSettings.load()
    if not row.enabled:
        raise SystemeNotConfigured("The Systeme.io connection is switched off in the admin.")
    try:
        key = vault.decrypt(row.api_key_encrypted) if row.api_key_encrypted else settings.SYSTEME_API_KEY
        return systeme.SystemeClient(
            key,
            base_url=settings.SYSTEME_API_URL,
            timeout=settings.SYSTEME_TIMEOUT,
            retries=settings.SYSTEME_RETRIES,
            max_wait=settings.SYSTEME_RETRY_MAX_WAIT,
        )
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
        with systeme_client() as client:
            client.ping()
        _record_connection(True)
    except systeme.SystemeError as exc:
        _record_connection(False, str(exc))
    except SystemeNotConfigured as exc:
        _record_connection(False, exc.message)
    return SystemeSettings.load()


def contacts_to_sync(user_ids: list[int] | None = None):
    """Users whose figures go to Systeme.io: every trader with an account, or the staff-chosen set; of those, only
    people who opted in unless the broker's legal basis is the contract (`marketing_permitted`)."""
    User = get_user_model()
    users = marketing_permitted(User.objects.filter(is_active=True, trading_accounts__is_active=True).distinct())
    if user_ids is not None:
        return users.filter(pk__in=user_ids)
    if SystemeSettings.load().sync_all_traders:
        return users.exclude(systeme_contact__included=False)
    return users.filter(systeme_contact__included=True)


def contact_sync(*, user, client: systeme.SystemeClient, known_slugs: set[str] | None, now=None) -> ContactSync:
    """Create or update one user's contact with their figures (only fields Systeme.io knows are sent)."""
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
    client = client or systeme_client()
    started = timezone.now()
    summary = {"synced": 0, "failed": 0, "errors": []}
    ok = True
    try:
        known = {f.slug for f in client.list_contact_fields()}
        wanted = set(contact_fields_template())
        missing = sorted(wanted - known)
        if missing:
            logger.warning("Systeme.io has no custom contact fields %s; create them to receive those figures", missing)
        for user in systeme_contacts(contacts_to_sync(user_ids).iterator()):  # Enterprise: the plan gate
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
    """The slugs the sync sets (with the configured prefix), to list the ones Systeme.io lacks."""
    zero = Figures(Decimal(0), Decimal(0), Decimal(0), Decimal(0), 0, 0, None, None)
    return list(contact_fields(zero, settings.SYSTEME_FIELD_PREFIX))


def contact_include(*, user, included: bool) -> ContactSync:
    """Staff choose who is synced when not every trader is."""
    record, _ = ContactSync.objects.update_or_create(user=user, defaults={"included": included, "email": user.email})
    return record
