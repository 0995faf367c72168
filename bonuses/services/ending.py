"""Ending bonuses: staff cancel, expiry, type C conversion steps, force-convert, leverage override."""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from config.errors import Conflict, ServiceError
from mt5bridge import gateway as gw

from ..choices import (
    OPEN_BONUS_STATUSES,
    AuditAction,
    BonusStatus,
    BonusType,
    CancelReason,
    OperationKind,
)
from ..formulas import ZERO
from ..models import Bonus, BonusOperation
from ..signals import bonus_cancelled, bonus_converted
from .audit import SYSTEM, announce, audit_write, bonus_state
from .leverage import leverage_operation, leverage_plan
from .monitored import account_ensure, account_lock, default_gateway
from .operations import movable_credit, operation_create, operations_resume, operations_run

logger = logging.getLogger(__name__)


def bonuses_end(
    *,
    login: int,
    bonuses: list[Bonus],
    status: str,
    reason: str,
    actor,
    gateway,
    balance: Decimal | None = None,
    check_margin: bool = True,
) -> list[BonusOperation]:
    """Mark bonuses ended and plan the removal of their credit and the leverage restore (in a transaction).

    ``check_margin`` False takes the credit back whatever the free margin (drawdown: the
    positions are closed and the credit is the broker's). Each ended bonus is announced
    (``bonus_cancelled`` with ``reason``) once the transaction commits.
    """
    account = account_lock(login)
    operations: list[BonusOperation] = []
    ended = set()
    for bonus in bonuses:
        bonus = Bonus.objects.select_for_update().get(pk=bonus.pk)
        if not bonus.is_open:
            continue
        before = bonus_state(bonus)
        bonus.status, bonus.cancel_reason, bonus.ended_at = status, reason, timezone.now()
        bonus.save(update_fields=["status", "cancel_reason", "ended_at"])
        ended.add(bonus.pk)
        action = AuditAction.BONUS_EXPIRED if status == BonusStatus.EXPIRED else AuditAction.BONUS_CANCELLED
        audit_write(actor=actor, action=action, bonus=bonus, before=before, after=bonus_state(bonus), message=reason)
        announce(bonus_cancelled, bonus, reason=reason)
        movable = movable_credit(bonus)
        if movable > 0:
            operations.append(
                operation_create(bonus, OperationKind.CREDIT_OUT, amount=movable, check_margin=check_margin)
            )
    last = next((b for b in bonuses if b.bonus_type == BonusType.DYNAMIC_LEVERAGE and b.pk in ended), None)
    if last is not None:
        if balance is None:
            info = gateway.accounts_info([login]).get(login)
            balance = info.balance if info else ZERO
        target = leverage_plan(account, balance=balance, exclude=ended)
        op = leverage_operation(account, last, target)
        if op:
            operations.append(op)
    return operations


def bonus_cancel(*, actor, bonus: Bonus, reason: str = CancelReason.MANUAL, gateway=None) -> Bonus:
    """Cancel one open bonus and take back its credit.

    The state is checked with the bonus row locked (after the account row, the order every
    writer takes them in), so a cancel racing a force-convert or the monitor's conversion of
    the same bonus either wins or answers 409: the credit is never both converted and removed.
    """
    gateway = gateway or default_gateway()
    operations_resume(bonus=bonus, actor=actor, gateway=gateway, when_due=False)
    with transaction.atomic():
        account_ensure(login=bonus.login)
        account_lock(bonus.login)
        bonus = Bonus.objects.select_for_update().get(pk=bonus.pk)
        if not bonus.is_open:
            raise Conflict(f"The bonus is already {bonus.status}.", code="bonus_not_active")
        operations = bonuses_end(
            login=bonus.login,
            bonuses=[bonus],
            status=BonusStatus.CANCELLED,
            reason=reason,
            actor=actor,
            gateway=gateway,
        )
    operations_run(operations, actor=actor, gateway=gateway)
    bonus.refresh_from_db()
    return bonus


def bonuses_expire(*, now: datetime | None = None, gateway=None) -> int:
    """Cancel every open bonus past its expiry (the hourly job); returns how many expired."""
    gateway = gateway or default_gateway()
    now = now or timezone.now()
    count = 0
    for bonus in Bonus.objects.filter(status__in=OPEN_BONUS_STATUSES, expires_at__lte=now).order_by("id"):
        with transaction.atomic():
            operations = bonuses_end(
                login=bonus.login,
                bonuses=[bonus],
                status=BonusStatus.EXPIRED,
                reason=CancelReason.EXPIRY,
                actor=SYSTEM,
                gateway=gateway,
            )
        count += 1
        try:
            operations_run(operations, actor=SYSTEM, gateway=gateway)
        except gw.GatewayUnavailable:
            logger.warning("MT5 unavailable while expiring bonus %s; the monitor retries", bonus.pk)
    return count


def bonus_convert(*, actor, bonus: Bonus, amount: Decimal | None, gateway) -> list[BonusOperation]:
    """Plan one type C conversion step: a balance deal of ``amount`` and the same credit out (in a transaction).

    ``amount`` None converts all the credit still movable. With the bonus row locked, the step
    is capped at the credit no other removal or conversion has claimed yet; the step that
    leaves nothing to move marks the bonus converted.
    """
    bonus = Bonus.objects.select_for_update().get(pk=bonus.pk)
    if not bonus.is_open:
        return []
    movable = movable_credit(bonus)
    amount = movable if amount is None else min(amount, movable)
    if amount <= 0:
        return []
    out = operation_create(bonus, OperationKind.CREDIT_CONVERTED, amount=amount)
    into = operation_create(bonus, OperationKind.BALANCE_IN, amount=amount)
    if movable - amount <= 0:
        before = bonus_state(bonus)
        bonus.status, bonus.cancel_reason, bonus.ended_at = (
            BonusStatus.CONVERTED,
            CancelReason.CONVERSION,
            timezone.now(),
        )
        bonus.save(update_fields=["status", "cancel_reason", "ended_at"])
        announce(bonus_converted, bonus)
        audit_write(
            actor=actor,
            action=AuditAction.CONVERTED,
            bonus=bonus,
            before=before,
            after=bonus_state(bonus),
            message="fully converted",
        )
    return [out, into]


def bonus_force_convert(*, actor, bonus: Bonus, gateway=None) -> Bonus:
    gateway = gateway or default_gateway()
    if bonus.bonus_type != BonusType.CONVERTIBLE:
        raise ServiceError("Only type C bonuses convert.", code="not_convertible")
    operations_resume(bonus=bonus, actor=actor, gateway=gateway, when_due=False)
    with transaction.atomic():
        # Checked with the row locked: a cancel or a conversion that got there first wins, this one answers 409.
        bonus = Bonus.objects.select_for_update().get(pk=bonus.pk)
        if bonus.status != BonusStatus.ACTIVE:
            raise Conflict(f"The bonus is {bonus.status}, not active.", code="bonus_not_active")
        operations = bonus_convert(actor=actor, bonus=bonus, amount=None, gateway=gateway)
        if not operations:
            raise Conflict("The bonus has no credit left to convert.", code="nothing_to_convert")
    operations_run(operations, actor=actor, gateway=gateway)
    bonus.refresh_from_db()
    return bonus


def bonus_override_leverage(*, actor, bonus: Bonus, leverage: int, gateway=None) -> Bonus:
    gateway = gateway or default_gateway()
    if bonus.bonus_type != BonusType.DYNAMIC_LEVERAGE:
        raise ServiceError("Only type A bonuses adjust leverage.", code="not_dynamic_leverage")
    if not 1 <= leverage <= 1000:
        raise ServiceError("Leverage must be between 1 and 1000.", code="invalid_leverage")
    with transaction.atomic():
        bonus = Bonus.objects.select_for_update().get(pk=bonus.pk)
        if not bonus.is_open:
            raise Conflict(f"The bonus is {bonus.status}, not active.", code="bonus_not_active")
        op = operation_create(bonus, OperationKind.LEVERAGE, leverage=leverage)
    operations_run([op], actor=actor, gateway=gateway)
    bonus.refresh_from_db()
    return bonus
