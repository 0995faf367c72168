"""The integrations app's part of a person's data export and account deletion (accounts.ports.provide_personal_data;
the module registers itself when accounts discovers it at start-up).

Export: the person's Systeme.io contact as last pushed (contact id, fields, tags). Deletion: that record and its rule
states and firings go, and so do the outbound webhook deliveries that carried their address; nothing is pushed for
them again (the row is inactive and has no consent). The contact at Systeme.io is the broker's to delete there
(docs/privacy.md).
"""

from __future__ import annotations

from accounts.ports import provide_marketing_basis, provide_personal_data

from .models import ContactSync, WebhookDelivery
from .selectors import legal_basis


def marketing_data_export(user) -> dict | None:
    record = ContactSync.objects.filter(user=user).first()
    if record is None:
        return None
    return {
        "contact_id": record.contact_id,
        "email": record.email,
        "fields": record.fields,
        "tags": record.tags,
        "last_synced_at": record.last_synced_at,
        "included_by_staff": record.included,
    }


def marketing_data_erase(user, _pseudonym: str) -> None:
    ContactSync.objects.filter(user=user).delete()
    WebhookDelivery.objects.filter(payload__email__iexact=user.email).delete()


provide_personal_data("marketing_contact", marketing_data_export, marketing_data_erase)
provide_marketing_basis(legal_basis)  # shown next to the person's consent (Settings, GET /api/me/consent)
