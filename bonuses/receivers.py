"""The bonus app's own listeners on its port (bonuses.signals): the client's emails, sent by a Celery task."""

from __future__ import annotations

from .choices import EmailEvent
from .email_tasks import send_bonus_email
from .services.notify import email_event_for


def _queue(bonus, event: str) -> None:
    send_bonus_email.delay(bonus.pk, event)


def on_granted(sender, bonus, **kwargs) -> None:
    _queue(bonus, EmailEvent.GRANTED)


def on_converted(sender, bonus, **kwargs) -> None:
    _queue(bonus, EmailEvent.CONVERTED)


def on_cancelled(sender, bonus, reason: str = "", **kwargs) -> None:
    _queue(bonus, email_event_for(reason))
