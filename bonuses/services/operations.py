"""MT5 postings of the bonus engine: recorded first, claimed, sent once, applied to the bonus and audited."""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from config.errors import Conflict
from mt5bridge import gateway as gw

from .. import formulas
from ..choices import (
    OPEN_BONUS_STATUSES,
    AuditAction,
    BonusStatus,
    OperationKind,
    OperationStatus,
)
from ..formulas import ZERO
from ..models import Bonus, BonusOperation, MonitoredAccount
from ..signals import bonus_granted, bonus_operation_failed
from .audit import MONITOR, announce, audit_write, bonus_state
from .monitored import default_gateway

logger = logging.getLogger(__name__)


def operation_create(
    bonus: Bonus, kind: str, *, amount: Decimal = ZERO, leverage: int | None = None, check_margin: bool = True
) -> BonusOperation:
    return BonusOperation.objects.create(
        bonus=bonus, login=bonus.login, kind=kind, amount=amount, leverage=leverage, check_margin=check_margin
    )


_CREDIT_LEAVING = (OperationKind.CREDIT_OUT, OperationKind.CREDIT_CONVERTED)
# Still to do: a pending operation is retried, a failed one waits for a person. Either blocks what follows
# it, and the credit either would move stays promised to it (a retry may still send it).
UNFINISHED = (OperationStatus.PENDING, OperationStatus.FAILED)


def movable_credit(bonus: Bonus) -> Decimal:
    """The bonus's credit not yet promised to a removal or a conversion (call with the bonus row locked).

    ``credit_outstanding`` only drops once MT5 has confirmed a removal, so a removal or a
    conversion planned by another actor and still in flight is subtracted here: a cancel, a
    force-convert and the monitor's conversion of one bonus never plan the same credit twice.
    """
    leaving = (
        BonusOperation.objects.filter(bonus=bonus, status__in=UNFINISHED, kind__in=_CREDIT_LEAVING).aggregate(
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
    OperationKind.BALANCE_CORRECTION: (gw.DealType.CORRECTION, 1),
}


class _RetryLater(Exception):
    """MT5 cannot take the posting yet (positions still open): retry after the backoff."""


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


def operation_execute(*, operation: BonusOperation, actor=MONITOR, gateway=None, when_due: bool = True) -> bool:
    """Send one recorded operation to MT5 once; True when it is done (now or earlier).

    The row is claimed with a conditional UPDATE so two processes never send it together, and
    the claim is renewed for as long as the gateway call runs (``_ClaimHeld``). Before posting,
    the deal history is searched for the operation's comment, so a post whose answer was lost
    (timeout) is recognised instead of being sent again. An attempt that MT5 refuses for want of
    money, or that gets no answer, is retried after a growing delay (``when_due``: not before
    it; a person's or a client's own retry passes False) and after
    ``BONUS_OPERATION_MAX_ATTEMPTS`` the operation is marked failed for a person.
    """
    gateway = gateway or default_gateway()
    now = timezone.now()
    claimable = BonusOperation.objects.filter(pk=operation.pk, status=OperationStatus.PENDING).filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    )
    if when_due:
        claimable = claimable.filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
    claimed = claimable.update(claimed_until=now + timedelta(seconds=_claim_seconds()), attempts=F("attempts") + 1)
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
                elif operation.kind == OperationKind.BALANCE_CORRECTION:
                    ticket = _correct_negative_balance(operation, gateway)
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
                        ticket = gateway.balance_operation(
                            operation.login,
                            amount * sign,
                            deal_type,
                            operation.comment,
                            check_margin=operation.check_margin,
                        )
        except gw.GatewayUnavailable as exc:
            _retry_later(operation, str(exc), actor=actor)
            raise
        except _RetryLater as exc:
            _retry_later(operation, str(exc), actor=actor)
            return False
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


def _correct_negative_balance(operation: BonusOperation, gateway) -> int | None:
    """Bring a negative balance back to zero with a CORRECTION deal (MT5 never checks margin on one).

    The amount is what the balance lacks when the deal is sent, recorded on the operation (and
    so in its audit row); a balance at or above zero needs no deal. Positions still open (a
    close that the server has only queued) would move the balance again: retried later.
    """
    info = gateway.accounts_info([operation.login]).get(operation.login)
    if info is None:
        raise gw.NotFound(f"login {operation.login} is not on MT5")
    if info.margin > 0:
        raise _RetryLater("positions are still open; the balance is corrected once they are closed")
    amount = max(ZERO, -info.balance)
    BonusOperation.objects.filter(pk=operation.pk).update(amount=amount)
    operation.amount = amount
    if amount <= 0:
        return None
    return gateway.balance_operation(operation.login, amount, gw.DealType.CORRECTION, operation.comment)


def _bonus_open(bonus_id: int) -> bool:
    return Bonus.objects.filter(pk=bonus_id, status__in=OPEN_BONUS_STATUSES).exists()


def _retry_later(operation: BonusOperation, error: str, *, actor) -> None:
    """Schedule the next attempt after a growing delay, or mark the operation failed after the last one."""
    if operation.attempts >= settings.BONUS_OPERATION_MAX_ATTEMPTS:
        _operation_failed(operation, error, actor=actor)
        return
    delay = formulas.retry_delay(
        operation.attempts, settings.BONUS_OPERATION_RETRY_SECONDS, settings.BONUS_OPERATION_RETRY_MAX_SECONDS
    )
    BonusOperation.objects.filter(pk=operation.pk, attempts=operation.attempts).update(
        claimed_until=None, error=error[:255], next_attempt_at=timezone.now() + timedelta(seconds=delay)
    )


@transaction.atomic
def _operation_failed(operation: BonusOperation, error: str, *, actor) -> None:
    failed = BonusOperation.objects.filter(
        pk=operation.pk, status=OperationStatus.PENDING, attempts=operation.attempts
    ).update(status=OperationStatus.FAILED, claimed_until=None, next_attempt_at=None, error=error[:255])
    if not failed:
        return
    # The alert: an ERROR log line, an audit row, the bonus monitor page lists failed postings, and the
    # bonus_operation_failed signal (the "bonus.operation_failed" outbound webhook) after commit.
    logger.error(
        "bonus operation %s (%s %s on login %s) failed after %s attempts: %s; retry it or mark it resolved "
        "on the bonus monitor page",
        operation.pk,
        operation.kind,
        operation.amount,
        operation.login,
        operation.attempts,
        error,
    )
    bonus = Bonus.objects.get(pk=operation.bonus_id)
    audit_write(
        actor=actor,
        action=AuditAction.OPERATION_FAILED,
        bonus=bonus,
        after=operation_state(operation, status=OperationStatus.FAILED, error=error),
        message=f"{operation.comment}: {operation.kind} {operation.amount} failed after {operation.attempts} attempts",
    )
    announce(bonus_operation_failed, bonus, operation=operation, error=error)


def operation_state(operation: BonusOperation, **changes) -> dict:
    state = {
        "operation": operation.pk,
        "kind": operation.kind,
        "amount": str(operation.amount),
        "leverage": operation.leverage,
        "status": operation.status,
        "attempts": operation.attempts,
        "error": operation.error,
    }
    return {**state, **changes}


def _retryable(operation: BonusOperation, error: str) -> bool:
    # A removal refused for want of money (positions still hold margin) may go through later.
    return operation.kind != OperationKind.CREDIT_IN and "money" in error.lower()


@transaction.atomic
def _operation_refused(operation: BonusOperation, error: str, *, actor) -> None:
    if _retryable(operation, error):
        _retry_later(operation, error, actor=actor)
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
            announce(bonus_granted, bonus)
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
    elif operation.kind == OperationKind.BALANCE_CORRECTION:
        action = AuditAction.BALANCE_CORRECTED
    else:
        bonus.applied_leverage = operation.leverage
        action = AuditAction.LEVERAGE_CHANGED
    bonus.save()
    message = f"deal #{ticket}" if ticket else ""
    if operation.kind == OperationKind.LEVERAGE:
        message = f"leverage 1:{operation.leverage}"
    elif operation.kind == OperationKind.BALANCE_CORRECTION:
        message = f"balance corrected by {amount} to zero {message}" if amount > 0 else "balance not negative"
    audit_write(
        actor=actor,
        action=action,
        bonus=bonus,
        before=before,
        after={**bonus_state(bonus), "correction": str(amount)}
        if operation.kind == OperationKind.BALANCE_CORRECTION
        else bonus_state(bonus),
        message=f"{operation.comment}: {amount} {message}".strip(),
    )
    if operation.kind == OperationKind.CREDIT_IN and not bonus.is_open and amount > 0:
        # The bonus ended while its credit was in flight: the credit it never should have had goes back.
        return operation_create(bonus, OperationKind.CREDIT_OUT, amount=amount)
    return None


def operations_resume(
    *, login: int | None = None, bonus: Bonus | None = None, actor=MONITOR, gateway=None, when_due: bool = True
) -> int:
    """Send the operations still pending (after a timeout or a crash); returns how many are done now.

    ``when_due`` False (a person's action, a client repeating its request) tries them now
    instead of waiting for their backoff.
    """
    pending = BonusOperation.objects.filter(status=OperationStatus.PENDING).order_by("id")
    if bonus is not None:
        pending = pending.filter(bonus=bonus)
    elif login is not None:
        pending = pending.filter(login=login)
    done = 0
    for operation in pending:
        if operation_execute(operation=operation, actor=actor, gateway=gateway, when_due=when_due):
            done += 1
    return done


# Set by a monitor whose postings go through the account queue (services/queued.py): operations_run hands
# the account to it instead of calling MT5 inside the 0.3 s cycle. The rows are already committed.
postings_deferred: contextvars.ContextVar[Callable[[int], None] | None] = contextvars.ContextVar(
    "bonus_postings_deferred", default=None
)


def operations_run(operations: list[BonusOperation], *, actor, gateway) -> None:
    defer = postings_deferred.get()
    if defer is not None:
        for login in dict.fromkeys(op.login for op in operations):
            defer(login)
        return
    for operation in operations:
        if not operation_execute(operation=operation, actor=actor, gateway=gateway):
            # An operation still pending blocks the ones after it (a leverage after its credit).
            if BonusOperation.objects.filter(pk=operation.pk, status__in=UNFINISHED).exists():
                return


def operation_retry(*, actor, operation: BonusOperation, gateway=None) -> BonusOperation:
    """A person retries a failed (or waiting) posting now; its attempts start again from zero. Audited."""
    with transaction.atomic():
        operation = BonusOperation.objects.select_for_update().get(pk=operation.pk)
        if operation.status not in UNFINISHED:
            raise Conflict(f"The posting is {operation.status}, not failed or pending.", code="operation_not_failed")
        before = operation_state(operation)
        BonusOperation.objects.filter(pk=operation.pk).update(
            status=OperationStatus.PENDING, attempts=0, next_attempt_at=None, claimed_until=None
        )
        audit_write(
            actor=actor,
            action=AuditAction.OPERATION_RETRIED,
            bonus=operation.bonus,
            before=before,
            after=operation_state(operation, status=OperationStatus.PENDING, attempts=0),
            message=f"{operation.comment}: retried by staff",
        )
    try:
        operation_execute(operation=operation, actor=actor, gateway=gateway, when_due=False)
    except gw.GatewayUnavailable:
        logger.warning("MT5 unavailable retrying bonus operation %s; it stays pending", operation.pk)
    operation.refresh_from_db()
    return operation


@transaction.atomic
def operation_resolve(*, actor, operation: BonusOperation, note: str = "") -> BonusOperation:
    """A person has settled a failed posting by hand (in MT5 or with the client): it is closed, audited, not sent."""
    operation = BonusOperation.objects.select_for_update().get(pk=operation.pk)
    if operation.status != OperationStatus.FAILED:
        raise Conflict(f"The posting is {operation.status}, not failed.", code="operation_not_failed")
    before = operation_state(operation)
    operation.status, operation.done_at = OperationStatus.RESOLVED, timezone.now()
    operation.save(update_fields=["status", "done_at"])
    audit_write(
        actor=actor,
        action=AuditAction.OPERATION_RESOLVED,
        bonus=operation.bonus,
        before=before,
        after=operation_state(operation),
        message=f"{operation.comment}: marked resolved {note}".strip()[:255],
    )
    return operation
