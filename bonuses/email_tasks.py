"""The Celery task that mails a bonus event to the client (registered wherever bonuses.receivers is loaded)."""

from __future__ import annotations

from smtplib import SMTPException

from celery import shared_task

from .services.notify import bonus_email_send


@shared_task(
    name="bonuses.tasks.send_bonus_email",
    acks_late=True,
    ignore_result=True,
    autoretry_for=(OSError, SMTPException),
    retry_backoff=True,
    max_retries=8,
)
def send_bonus_email(bonus_id: int, event: str) -> bool:
    """Mail the client one bonus event (granted, converted, cancelled, drawdown), once."""
    return bonus_email_send(bonus_id=bonus_id, event=event) is not None
