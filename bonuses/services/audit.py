"""The bonus audit trail: one insert-only row per change, with the state before and after."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.dispatch import Signal

from ..models import AuditLog, Bonus, Campaign

MONITOR = "monitor"
SYSTEM = "system"


def actor_label(actor) -> str:
    if actor is None:
        return SYSTEM
    if isinstance(actor, str):
        return actor
    return actor.email


def _json(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    return value


def bonus_state(bonus: Bonus) -> dict:
    return _json(
        {
            "status": bonus.status,
            "amount": bonus.amount,
            "credit_outstanding": bonus.credit_outstanding,
            "converted_amount": bonus.converted_amount,
            "removed_amount": bonus.removed_amount,
            "lots_traded": bonus.lots_traded,
            "applied_leverage": bonus.applied_leverage,
        }
    )


def audit_write(
    *,
    actor,
    action: str,
    login: int | None = None,
    bonus: Bonus | None = None,
    campaign: Campaign | None = None,
    before: dict | None = None,
    after: dict | None = None,
    message: str = "",
) -> AuditLog:
    """Append one audit row (the table refuses updates and deletes on PostgreSQL)."""
    return AuditLog.objects.create(
        actor=actor if actor is not None and not isinstance(actor, str) else None,
        actor_label=actor_label(actor)[:254],
        action=action,
        login=login if login is not None else (bonus.login if bonus else None),
        bonus=bonus,
        campaign=campaign or (bonus.campaign if bonus else None),
        before=_json(before or {}),
        after=_json(after or {}),
        message=message[:255],
    )


def announce(signal: Signal, bonus: Bonus, **kwargs) -> None:
    """Send one of ``bonuses.signals`` once the change it announces has committed (never for a rolled-back one)."""
    transaction.on_commit(lambda: signal.send_robust(sender=Bonus, bonus=bonus, **kwargs))
