"""Celery entry points of the integrations app: thin, they call the services."""

from __future__ import annotations

from celery import shared_task

from .services.contacts import SystemeNotConfigured, systeme_sync
from .services.delivery import webhook_deliveries_due, webhook_delivery_attempt
from .services.rules import rules_evaluate
from .systeme import SystemeUnavailable


@shared_task(
    bind=True,
    acks_late=True,
    ignore_result=True,
    autoretry_for=(SystemeUnavailable,),
    retry_backoff=30,
    retry_backoff_max=900,
    retry_jitter=True,
    max_retries=3,
)
def systeme_sync_contacts(self, user_ids: list[int] | None = None) -> dict:
    try:
        return systeme_sync(user_ids=user_ids)
    except SystemeNotConfigured:
        return {"skipped": "Systeme.io is not configured"}


@shared_task(ignore_result=True, expires=600)
def systeme_sync_and_evaluate() -> dict:
    """Beat: push figures, then evaluate the automation rules on the fresh contacts."""
    try:
        synced = systeme_sync()
        fired = rules_evaluate()
    except SystemeNotConfigured:
        return {"skipped": "Systeme.io is not configured"}
    return {"sync": synced, "rules": fired}


@shared_task(ignore_result=True, expires=600)
def systeme_evaluate_rules() -> dict:
    try:
        return rules_evaluate()
    except SystemeNotConfigured:
        return {"skipped": "Systeme.io is not configured"}


@shared_task(acks_late=True, ignore_result=True)
def deliver_webhook(delivery_id: str) -> str | None:
    """One attempt; a failed one is picked up again by ``deliver_due_webhooks`` when its backoff has passed."""
    delivery = webhook_delivery_attempt(delivery_id=delivery_id)
    return delivery.status if delivery is not None else None


@shared_task(ignore_result=True, expires=55)
def deliver_due_webhooks() -> int:
    """Beat: retry every delivery whose backoff has passed."""
    due = webhook_deliveries_due()
    for delivery_id in due:
        deliver_webhook.delay(delivery_id)
    return len(due)


def deliveries_enqueue(sender, delivery_ids: list[str], **kwargs) -> None:
    """Receiver of ``services.webhooks.deliveries_ready`` (connected in ``IntegrationsConfig.ready``)."""
    for delivery_id in delivery_ids:
        deliver_webhook.delay(delivery_id)
