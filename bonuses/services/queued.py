"""The monitor's slow work on the account queue: deal reading and MT5 postings, one account at a time.

With ``BONUS_OPERATIONS_QUEUED`` on, the 0.3 s monitor cycle only notices which accounts moved and
checks drawdown; an account whose balance moved, or that has postings to send, is handed to the
``bonuses.tasks.account_work`` Celery task on ``BONUS_OPERATIONS_QUEUE``. The task holds the account's
PostgreSQL advisory lock while it works, so two tasks of one account never run at once, and it sends
the account's postings in the order they were recorded, stopping at the first one not done. Every
posting keeps its idempotency (the operation row and its deal comment, services/operations.py) and
its audit rows. What the task has to do is kept in PostgreSQL (``MonitoredAccount.review_seq``,
pending ``BonusOperation`` rows), never only in the queue: the monitor sends an account again when the
work is still there a few seconds later, so a message lost with Redis delays a bonus, never loses it.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection
from django.db.models import F, Q, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from config.celery import app as celery_app
from mt5bridge import gateway as gw

from .. import sql
from ..choices import OperationStatus
from ..models import BonusOperation, MonitoredAccount
from .audit import MONITOR
from .detection import account_deals_review, account_drawdown_protect
from .monitored import default_gateway
from .operations import UNFINISHED, operation_execute

logger = logging.getLogger(__name__)

ACCOUNT_WORK_TASK = "bonuses.tasks.account_work"


def postings_queued() -> bool:
    """Whether the monitor hands postings to the account queue (a broker to send them through, not eager)."""
    mode = settings.BONUS_OPERATIONS_QUEUED
    if mode != "auto":
        return mode == "true"
    if celery_app.conf.task_always_eager:
        return False
    return not str(celery_app.conf.broker_url or "").startswith("filesystem")


class AccountBusy(Exception):
    """Another task holds the account: this one runs again shortly (ordering is per account)."""


@contextmanager
def account_serialised(login: int) -> Iterator[None]:
    """Hold the account's advisory lock for the block, or raise AccountBusy.

    A session lock, so the gateway calls inside need no open transaction; a connection that dies
    releases it with itself, so a killed worker never leaves an account locked.
    """
    if connection.vendor != "postgresql":
        yield
        return
    if not sql.advisory_lock_try(f"bonus-account:{login}"):
        raise AccountBusy(login)
    try:
        yield
    finally:
        try:
            sql.advisory_unlock(f"bonus-account:{login}")
        except Exception:  # noqa: BLE001 — the connection broke: the server dropped the lock with it
            logger.debug("advisory unlock of account %s failed", login, exc_info=True)


@dataclass
class AccountWork:
    """What one run of the account task did."""

    reviewed: bool = False
    deposits: int = 0
    withdrawals: int = 0
    drawdown: bool = False
    posted: int = 0
    waiting: int = 0  # postings left pending (backoff, or blocked behind an earlier one)
    errors: list[str] = field(default_factory=list)


def account_work(*, login: int, gateway=None) -> AccountWork:
    """The account task's body: read the deals the monitor asked for, then send the pending postings in order."""
    gateway = gateway or default_gateway()
    work = AccountWork()
    with account_serialised(login):
        _review(login, gateway, work)
        _post_in_order(login, gateway, work)
    return work


def _review(login: int, gateway, work: AccountWork) -> None:
    row = (
        MonitoredAccount.objects.filter(login=login)
        .values("review_seq", "reviewed_seq", "deals_checked_at", "registration")
        .first()
    )
    if row is None or row["review_seq"] <= row["reviewed_seq"]:
        return
    info = gateway.accounts_info([login]).get(login)
    if info is None:
        raise gw.NotFound(f"login {login} is not on MT5")
    since = row["deals_checked_at"] or row["registration"] or timezone.now()
    seen = account_deals_review(login=login, balance=info.balance, since=since, gateway=gateway)
    work.reviewed, work.deposits, work.withdrawals = True, seen.deposits, seen.withdrawals
    # Deposits and withdrawals before drawdown (as in the monitor's own cycle): a full withdrawal leaves the
    # equity at the credit and is a withdrawal. The drawdown seen after them is acted on here.
    info = gateway.accounts_info([login]).get(login, info)
    if info.credit > 0 and info.equity <= info.credit:
        work.drawdown = account_drawdown_protect(login=login, gateway=gateway)
    values = {"reviewed_seq": row["review_seq"]}
    if seen.latest is not None:
        values["deals_checked_at"] = Greatest(F("deals_checked_at"), Value(seen.latest))  # NULL is ignored
    # Never backwards: a newer request (review_seq bumped meanwhile) stays to be done.
    MonitoredAccount.objects.filter(login=login, reviewed_seq__lt=row["review_seq"]).update(**values)


def _post_in_order(login: int, gateway, work: AccountWork) -> None:
    for operation in BonusOperation.objects.filter(login=login, status=OperationStatus.PENDING).order_by("id"):
        if operation_execute(operation=operation, actor=MONITOR, gateway=gateway):
            work.posted += 1
            continue
        if BonusOperation.objects.filter(pk=operation.pk, status__in=UNFINISHED).exists():
            # Not done (backoff, MT5 refused for now): what follows it waits, in order.
            work.waiting += 1
            return


def accounts_with_work(logins: set[int] | None = None) -> set[int]:
    """Accounts whose deals wait to be read or whose postings are due (the monitor's sweep)."""
    now = timezone.now()
    review = set(MonitoredAccount.objects.filter(review_seq__gt=F("reviewed_seq")).values_list("login", flat=True))
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    postings = set(
        BonusOperation.objects.filter(due, free, status=OperationStatus.PENDING).values_list("login", flat=True)
    )
    found = review | postings
    return found if logins is None else found & logins


def account_work_send(login: int) -> None:
    celery_app.send_task(ACCOUNT_WORK_TASK, args=[login], queue=settings.BONUS_OPERATIONS_QUEUE)


class Dispatcher:
    """Sends account tasks from a thread of its own, so a slow or stalled Redis never holds up the cycle.

    A send that fails is dropped with one log line per outage: the work is in PostgreSQL and the
    monitor's sweep sends the account again. ``threaded=False`` sends inline (tests).
    """

    def __init__(self, *, threaded: bool = True, send=account_work_send):
        self.send_one = send
        self.threaded = threaded
        self.sent = 0
        self._failing = False
        self._queue: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def send(self, login: int) -> None:
        if not self.threaded:
            self._send(login)
            return
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._drain, name="bonus-account-dispatch", daemon=True)
            self._thread.start()
        self._queue.put(login)

    def close(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=5)

    def _drain(self) -> None:
        while (login := self._queue.get()) is not None:
            self._send(login)

    def _send(self, login: int) -> None:
        try:
            self.send_one(login)
        except Exception as exc:  # noqa: BLE001 — the broker is down: the sweep sends it again later
            if not self._failing:
                logger.warning(
                    "bonus account queue: cannot send (%s: %s); the monitor resends", type(exc).__name__, exc
                )
                self._failing = True
            return
        self.sent += 1
        if self._failing:
            logger.warning("bonus account queue: sending again")
            self._failing = False
