"""Emails to the client about their bonus: granted, converted, cancelled, drawdown close-out. Each event once."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.models import TradingAccount
from mt5bridge import gateway as gw

from ..choices import BonusStatus, CancelReason, EmailEvent
from ..models import Bonus, BonusEmail
from .monitored import broker_user, default_gateway

logger = logging.getLogger(__name__)


def email_event_for(reason: str) -> str:
    """Which email a cancelled bonus gets: a drawdown close-out has its own."""
    return EmailEvent.DRAWDOWN if reason == CancelReason.DRAWDOWN else EmailEvent.CANCELLED


def event_happened(bonus: Bonus, event: str) -> bool:
    """Whether the bonus is in the state the event announces (a stray or misrouted task mails nothing)."""
    if event == EmailEvent.GRANTED:
        return bonus.status not in (BonusStatus.PENDING, BonusStatus.FAILED)
    if event == EmailEvent.CONVERTED:
        return bonus.status == BonusStatus.CONVERTED
    if event == EmailEvent.DRAWDOWN:
        return bonus.cancel_reason == CancelReason.DRAWDOWN
    return bonus.status in (BonusStatus.CANCELLED, BonusStatus.EXPIRED) and bonus.cancel_reason != CancelReason.DRAWDOWN


def bonus_recipients(bonus: Bonus, *, gateway=None) -> list[str]:
    """The people to tell: the web app's owners of the MT5 account, else the email MT5 holds for the client."""
    owners = TradingAccount.objects.filter(login=bonus.login, owner__is_active=True)
    if settings.BONUS_MT5_SERVER:
        owners = owners.filter(server=settings.BONUS_MT5_SERVER)
    emails = sorted(set(owners.values_list("owner__email", flat=True)))
    if emails:
        return emails
    try:
        user = broker_user(gateway or default_gateway(), bonus.login)
    except gw.GatewayError:
        user = None
    return [user.email] if user is not None and user.email else []


def bonus_email_send(*, bonus_id: int, event: str, gateway=None) -> BonusEmail | None:
    """Mail one bonus event once: the row is recorded before sending, so a repeat (a retried task) sends nothing.

    A send that fails removes its row again, so the task's retry can send it.
    """
    bonus = Bonus.objects.select_related("campaign").filter(pk=bonus_id).first()
    if bonus is None or event not in EmailEvent.values or not event_happened(bonus, event):
        return None
    if BonusEmail.objects.filter(bonus=bonus, event=event).exists():
        return None
    recipients = bonus_recipients(bonus, gateway=gateway)
    if not recipients:
        return None
    try:
        with transaction.atomic():
            record = BonusEmail.objects.create(bonus=bonus, event=event, recipients=recipients)
    except IntegrityError:
        return None  # another worker has it
    context = {"bonus": bonus, "event": event, "campaign": bonus.campaign}
    subject = render_to_string("bonuses/email/bonus_event_subject.txt", context).strip()
    body = render_to_string("bonuses/email/bonus_event.txt", context)
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
    except Exception:
        record.delete()
        raise
    BonusEmail.objects.filter(pk=record.pk).update(sent_at=timezone.now())
    logger.info("bonus %s: %s email sent to %d recipient(s)", bonus.pk, event, len(recipients))
    return record
