"""MT5 postings of the bonus engine: recorded first, claimed, sent once, applied to the bonus and audited."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from mt5bridge import gateway as gw

from ..choices import (
    OPEN_BONUS_STATUSES,
    AuditAction,
    BonusStatus,
    OperationKind,
    OperationStatus,
)
from ..formulas import ZERO
from ..models import Bonus, BonusOperation, MonitoredAccount
from .audit import MONITOR, audit_write, bonus_state
from .monitored import default_gateway

logger = logging.getLogger(__name__)


def operation_create(bonus: Bonus, kind: str, *, amount: Decimal = ZERO, leverage: int | None = None):
    return BonusOperation.objects.create(bonus=bonus, login=bonus.login, kind=kind, amount=amount, leverage=leverage)


_CREDIT_LEAVING = (OperationKind.CREDIT_OUT, OperationKind.CREDIT_CONVERTED)


def movable_credit(bonus: Bonus) -> Decimal:
    """The bonus's credit not yet promised to a removal or a conversion (call with the bonus row locked).

    ``credit_outstanding`` only drops once MT5 has confirmed a removal, so a removal or a
    conversion planned by another actor and still in flight is subtracted here: a cancel, a
    force-convert and the monitor's conversion of one bonus never plan the same credit twice.
    """
    leaving = (
        BonusOperation.objects.filter(bonus=bonus, status=OperationStatus.PENDING, kind__in=_CREDIT_LEAVING).aggregate(
            s=Sum("amount")
        )["s"]
        or ZERO
    )
    return max(ZERO, bonus.credit_outstanding - leaving)


_DEAL_TYPES = {
    OperationKind.CREDIT_IN: (gw.DealType.CREDIT, 1),
    OperationKind.CREDIT_OUT: (gw.DealType.CREDIT, -1),
    OperationKind.CREDIT_CONVERTED: (gw.DealType.CREDIT, -1),
    OperationKind.BALANCE_IN: (gw.DealType.BALANCE, 1),
}


def _claim_seconds() -> float:
    return settings.BONUS_OPERATION_CLAIM_SECONDS


class _ClaimHeld:
    """Keeps an operation's claim alive while this worker sends it, so it cannot lapse mid-call.

    A gateway call can outlast the claim (the manager bridge retries with backoff, a slow
    server answers late). Were the claim to lapse, another worker would find no deal with the
    comment yet and post a second time. A background thread renews the claim every third of
    its length for as long as the call runs; a renewal only touches the claim taken with this
    worker's attempt number (a fencing token). If the worker dies the renewals stop and the
    claim lapses, and the next worker finds the deal by its comment before posting again.
    """

    def __init__(self, pk: int, attempt: int):
        self.pk, self.attempt, self.seconds = pk, attempt, _claim_seconds()
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"bonus-operation-{pk}-claim", daemon=True)

    def __enter__(self) -> _ClaimHeld:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def _renew(self) -> None:
        try:
            while not self._stop.wait(self.seconds / 3):
                renewed = BonusOperation.objects.filter(
                    pk=self.pk, status=OperationStatus.PENDING, attempts=self.attempt
                ).update(claimed_until=timezone.now() + timedelta(seconds=self.seconds))
                if not renewed:
                    self.lost = not self._stop.is_set()
                    return
        except Exception:  # noqa: BLE001 — a failed renewal must not kill the call it guards
            logger.exception("could not renew the claim of bonus operation %s", self.pk)
        finally:
            connection.close()


def operation_execute(*, operation: BonusOperation, actor=MONITOR, gateway=None) -> bool:
    """Send one recorded operation to MT5 once; True when it is done (now or earlier).

    The row is claimed with a conditional UPDATE so two processes never send it together, and
    the claim is renewed for as long as the gateway call runs (``_ClaimHeld``). Before posting,
    the deal history is searched for the operation's comment, so a post whose answer was lost
    (timeout) is recognised instead of being sent again.
    """
    gateway = gateway or default_gateway()
    now = timezone.now()
    claimed = (
        BonusOperation.objects.filter(pk=operation.pk, status=OperationStatus.PENDING)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .update(claimed_until=now + timedelta(seconds=_claim_seconds()), attempts=F("attempts") + 1)
    )
    operation.refresh_from_db()
    if not claimed:
        return operation.status == OperationStatus.DONE
    mine = BonusOperation.objects.filter(pk=operation.pk, attempts=operation.attempts)
    follow_up = None
    with _ClaimHeld(operation.pk, operation.attempts) as held:
        ticket = None
        try:
            if operation.kind == OperationKind.LEVERAGE:
                gateway.set_leverage(operation.login, int(operation.leverage))
            else:
                found = gateway.deals_by_comment(operation.login, operation.comment)
                if found:
                    ticket = found[0].ticket
                elif operation.kind == OperationKind.CREDIT_IN and not _bonus_open(operation.bonus_id):
                    # Cancelled (drawdown, staff, expiry) before its credit went out: never post it.
                    mine.filter(status=OperationStatus.PENDING).update(
                        status=OperationStatus.REFUSED,
                        claimed_until=None,
                        error="the bonus ended before its credit was posted",
                    )
                    return False
                else:
                    deal_type, sign = _DEAL_TYPES[operation.kind]
                    amount = operation.amount
                    if sign < 0:
                        # Never ask MT5 to remove more credit than the account holds (it would refuse).
                        info = gateway.accounts_info([operation.login]).get(operation.login)
                        if info is not None and info.credit < amount:
                            amount = max(ZERO, info.credit)
                            BonusOperation.objects.filter(pk=operation.pk).update(amount=amount)
                            operation.amount = amount
                    if amount > 0:
                        ticket = gateway.balance_operation(operation.login, amount * sign, deal_type, operation.comment)
        except gw.GatewayUnavailable as exc:
            mine.update(claimed_until=None, error=str(exc)[:255])
            raise
        except gw.GatewayError as exc:
            _operation_refused(operation, str(exc), actor=actor)
            return False
        finally:
            if held.lost:
                logger.error("bonus operation %s: its claim was taken over during the gateway call", operation.pk)
        follow_up = _operation_done(operation, ticket, actor=actor)
    if follow_up is not None:
        try:
            operation_execute(operation=follow_up, actor=actor, gateway=gateway)
        except gw.GatewayUnavailable:
            logger.warning(
                "MT5 unavailable taking back credit of ended bonus %s; the monitor retries", follow_up.bonus_id
            )
    return True


def _bonus_open(bonus_id: int) -> bool:
    return Bonus.objects.filter(pk=bonus_id, status__in=OPEN_BONUS_STATUSES).exists()


@transaction.atomic
def _operation_refused(operation: BonusOperation, error: str, *, actor) -> None:
    retryable = operation.kind != OperationKind.CREDIT_IN and "money" in error.lower()
    if retryable:
        # Drawdown: credit cannot leave while positions still hold margin; the next cycle retries.
        BonusOperation.objects.filter(pk=operation.pk).update(claimed_until=None, error=error[:255])
        return
    BonusOperation.objects.filter(pk=operation.pk).update(
        status=OperationStatus.REFUSED, error=error[:255], claimed_until=None
    )
    bonus = Bonus.objects.select_for_update().get(pk=operation.bonus_id)
    if operation.kind == OperationKind.CREDIT_IN and bonus.status == BonusStatus.PENDING:
        before = bonus_state(bonus)
        bonus.status, bonus.ended_at = BonusStatus.FAILED, timezone.now()
        bonus.save(update_fields=["status", "ended_at"])
        audit_write(
            actor=actor,
            action=AuditAction.CREDIT_POSTED,
            bonus=bonus,
            before=before,
            after=bonus_state(bonus),
            message=f"MT5 refused the credit: {error}",
        )


@transaction.atomic
def _operation_done(operation: BonusOperation, ticket: int | None, *, actor) -> BonusOperation | None:
    """Apply a posted operation to its bonus (one transaction, audited); returns a follow-up to send, if any."""
    updated = BonusOperation.objects.filter(pk=operation.pk, status=OperationStatus.PENDING).update(
        status=OperationStatus.DONE, deal_ticket=ticket, done_at=timezone.now(), claimed_until=None, error=""
    )
    if not updated:
        return None
    if operation.kind == OperationKind.LEVERAGE:
        # The account row before the bonus row: the order every other writer takes them in.
        MonitoredAccount.objects.filter(login=operation.login).update(leverage=operation.leverage)
    bonus = Bonus.objects.select_for_update().get(pk=operation.bonus_id)
    before = bonus_state(bonus)
    amount = operation.amount
    if operation.kind == OperationKind.CREDIT_IN:
        bonus.credit_outstanding += amount
        if bonus.status == BonusStatus.PENDING:
            bonus.status = BonusStatus.ACTIVE
        action = AuditAction.CREDIT_POSTED
    elif operation.kind == OperationKind.CREDIT_OUT:
        bonus.credit_outstanding = max(ZERO, bonus.credit_outstanding - amount)
        bonus.removed_amount += amount
        action = AuditAction.CREDIT_REMOVED
    elif operation.kind == OperationKind.CREDIT_CONVERTED:
        bonus.credit_outstanding = max(ZERO, bonus.credit_outstanding - amount)
        action = AuditAction.CREDIT_REMOVED
    elif operation.kind == OperationKind.BALANCE_IN:
        bonus.converted_amount += amount
        action = AuditAction.CONVERTED
    else:
        bonus.applied_leverage = operation.leverage
        action = AuditAction.LEVERAGE_CHANGED
    bonus.save()
    message = f"deal #{ticket}" if ticket else ""
    if operation.kind == OperationKind.LEVERAGE:
        message = f"leverage 1:{operation.leverage}"
    audit_write(
        actor=actor,
        action=action,
        bonus=bonus,
        before=before,
        after=bonus_state(bonus),
        message=f"{operation.comment}: {amount} {message}".strip(),
    )
    if operation.kind == OperationKind.CREDIT_IN and not bonus.is_open and amount > 0:
        # The bonus ended while its credit was in flight: the credit it never should have had goes back.
        return operation_create(bonus, OperationKind.CREDIT_OUT, amount=amount)
    return None


def operations_resume(*, login: int | None = None, bonus: Bonus | None = None, actor=MONITOR, gateway=None) -> int:
    """Send the operations still pending (after a timeout or a crash); returns how many are done now."""
    pending = BonusOperation.objects.filter(status=OperationStatus.PENDING).order_by("id")
    if bonus is not None:
        pending = pending.filter(bonus=bonus)
    elif login is not None:
        pending = pending.filter(login=login)
    done = 0
    for operation in pending:
        if operation_execute(operation=operation, actor=actor, gateway=gateway):
            done += 1
    return done


def operations_run(operations: list[BonusOperation], *, actor, gateway) -> None:
    for operation in operations:
        if not operation_execute(operation=operation, actor=actor, gateway=gateway):
            # An operation still pending blocks the ones after it (a leverage after its credit).
            if BonusOperation.objects.filter(pk=operation.pk, status=OperationStatus.PENDING).exists():
                return
