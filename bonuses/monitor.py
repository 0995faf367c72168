"""The account monitor: one pass over a shard of the monitored accounts every 0.3 s.

A pass reads every active account of the shard with one bulk ``accounts_info`` call and
compares it with the last snapshot kept in memory. Only accounts whose balance or credit
moved (or whose equity fell to the credit) cost more: their deals are read to confirm
deposits, withdrawals and closed trades, which the services turn into bonus changes. The
steady state is one gateway call, two small UPDATEs (lease and figures) and a loop in Python.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Mod
from django.utils import timezone

from mt5bridge import gateway as gw

from .choices import AuditAction, CampaignStatus, MonitorStatus, OperationStatus, Trigger
from .models import AuditLog, BonusOperation, Campaign, MonitorCycle, MonitoredAccount, MonitorShard
from .services.audit import MONITOR, audit_write
from .services.detection import (
    account_deposit_detected,
    account_drawdown_protect,
    account_trades_detected,
    account_withdrawal_detected,
)
from .services.monitored import default_gateway
from .services.operations import operations_resume
from .services.triggers import trigger_registration

logger = logging.getLogger(__name__)

_FIRST_LOOK = timedelta(seconds=60)  # an account loaded without a baseline time looks back this far
_STATUS_RELOAD_SECONDS = 1.0
_TRADES = (gw.DealType.BUY, gw.DealType.SELL)


@dataclass(slots=True)
class _Snapshot:
    balance: Decimal | None
    credit: Decimal | None
    errors: int
    deals_checked_at: datetime | None
    registration: datetime | None = None
    # Below its credit when last looked at: drawdown protection acts once per event, not once per cycle.
    drawdown: bool = False


@dataclass
class CycleResult:
    """What one pass did (also written to MonitorCycle / MonitorShard)."""

    started_at: datetime
    duration_ms: float = 0.0
    accounts: int = 0
    discovered: int = 0
    deposits: int = 0
    withdrawals: int = 0
    drawdowns: int = 0
    conversions: int = 0
    errors: int = 0
    paused: int = 0
    skipped: bool = False
    error: str = ""
    failed_logins: list[int] = field(default_factory=list)

    @property
    def eventful(self) -> bool:
        return bool(
            self.discovered
            or self.deposits
            or self.withdrawals
            or self.drawdowns
            or self.conversions
            or self.errors
            or self.paused
        )


def default_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Monitor:
    """One shard's monitor state and its cycle. ``gateway`` defaults to the bonus engine's gateway."""

    def __init__(self, *, shard: int = 0, shards: int = 1, gateway=None, worker: str | None = None):
        if shards < 1 or not 0 <= shard < shards:
            raise ValueError(f"shard must be in 0..{shards - 1}")
        self.shard, self.shards = shard, shards
        self.gateway = gateway or default_gateway()
        self.worker = worker or default_worker_name()
        self.max_errors = settings.BONUS_MONITOR_MAX_ERRORS
        self.snapshots: dict[int, _Snapshot] = {}
        self.active: list[int] = []
        self.paused: set[int] = set()
        self.max_id = 0
        self._next_discovery = 0.0
        self._next_status_reload = 0.0
        self._last_history = 0.0
        self._dirty: set[int] = set()
        self._infos: dict[int, gw.AccountInfo] = {}

    # --- accounts of this shard ---

    def _shard_rows(self):
        rows = MonitoredAccount.objects.all()
        if self.shards > 1:
            rows = rows.annotate(_shard=Mod("login", self.shards)).filter(_shard=self.shard)
        return rows

    def mine(self, login: int) -> bool:
        return login % self.shards == self.shard

    def load_new(self) -> int:
        """Pick up accounts registered since the last look (by id: one indexed query)."""
        rows = (
            self._shard_rows()
            .filter(id__gt=self.max_id)
            .values_list(
                "id", "login", "status", "balance", "credit", "consecutive_errors", "deals_checked_at", "registration"
            )
        )
        added = 0
        for pk, login, status, balance, credit, errors, checked, registration in rows:
            self.max_id = max(self.max_id, pk)
            if login in self.snapshots:
                continue
            self.snapshots[login] = _Snapshot(balance, credit, errors, checked, registration)
            if status == MonitorStatus.PAUSED:
                self.paused.add(login)
            else:
                self.active.append(login)
            added += 1
        return added

    def reload_statuses(self) -> None:
        """Follow pauses and resumes made elsewhere (reset-errors endpoint, another shard's outage handling)."""
        paused_now = set(self._shard_rows().filter(status=MonitorStatus.PAUSED).values_list("login", flat=True))
        resumed = self.paused - paused_now
        if paused_now != self.paused:
            for login in resumed:
                snap = self.snapshots.get(login)
                if snap is not None:
                    snap.errors = 0
            self.paused = paused_now & self.snapshots.keys()
            self.active = [login for login in self.snapshots if login not in self.paused]

    def discover(self, result: CycleResult) -> None:
        """Register the MT5 accounts of this shard not monitored yet; fire registration triggers for them."""
        users = [u for u in self.gateway.users("*") if self.mine(u.login)]
        known = set(self.snapshots)
        new = [u for u in users if u.login not in known]
        if not new:
            return
        MonitoredAccount.objects.bulk_create(
            [
                MonitoredAccount(
                    login=u.login,
                    group=u.group,
                    country=u.country,
                    lead_source=u.lead_source,
                    registration=u.registration,
                    leverage=u.leverage,
                )
                for u in new
            ],
            ignore_conflicts=True,
            batch_size=1000,
        )
        result.discovered = self.load_new()
        registration_running = any(
            Trigger.REGISTRATION in (triggers or [])
            for triggers in Campaign.objects.filter(status=CampaignStatus.ACTIVE).values_list("triggers", flat=True)
        )
        if registration_running:
            for user in new:
                try:
                    trigger_registration(login=user.login, actor=MONITOR, gateway=self.gateway, user=user)
                except Exception as exc:  # one account's failure must not stop the loop
                    logger.warning("registration trigger for %s failed: %s", user.login, exc)

    # --- lease ---

    def claim(self) -> bool:
        """Hold this shard for the next few seconds (conditional UPDATE: another live holder wins)."""
        now = timezone.now()
        lease = now + timedelta(seconds=settings.BONUS_MONITOR_LEASE_SECONDS)
        MonitorShard.objects.get_or_create(shard=self.shard, shards=self.shards)
        return bool(
            MonitorShard.objects.filter(shard=self.shard, shards=self.shards)
            .filter(Q(holder=self.worker) | Q(lease_until__isnull=True) | Q(lease_until__lt=now))
            .update(holder=self.worker, lease_until=lease)
        )

    def release(self) -> None:
        MonitorShard.objects.filter(shard=self.shard, shards=self.shards, holder=self.worker).update(lease_until=None)

    # --- the cycle ---

    def cycle(self) -> CycleResult:
        started = time.perf_counter()
        result = CycleResult(started_at=timezone.now())
        if not self.claim():
            result.skipped = True
            return result
        clock = time.monotonic()
        try:
            self.load_new()
            if clock >= self._next_status_reload:
                self.reload_statuses()
                self._next_status_reload = clock + _STATUS_RELOAD_SECONDS
            if clock >= self._next_discovery:
                self._next_discovery = clock + settings.BONUS_MONITOR_DISCOVERY_SECONDS
                try:
                    self.discover(result)
                except gw.GatewayError as exc:
                    result.error = f"discovery: {exc}"[:255]
            self._scan(result)
        finally:
            result.duration_ms = (time.perf_counter() - started) * 1000
            self._record(result)
        return result

    def _scan(self, result: CycleResult) -> None:
        logins = self.active
        result.accounts = len(logins)
        if not logins:
            return
        try:
            infos = self.gateway.accounts_info(logins)
        except gw.GatewayError as exc:
            self._all_failed(logins, str(exc), result)
            return
        self._infos = infos
        changed = []
        first = []
        snapshots = self.snapshots
        for login in logins:
            info = infos.get(login)
            if info is None:
                continue
            snap = snapshots[login]
            below = info.credit > 0 and info.equity <= info.credit
            if snap.balance is None:
                first.append(login)
            elif info.balance != snap.balance or info.credit != snap.credit or (below and not snap.drawdown):
                changed.append(login)
            else:
                snap.drawdown = below
                if snap.errors:
                    self._succeeded(login, snap)
        for login in first:
            self._first_sight(login, infos[login], result)
        for login in changed:
            self._process(login, infos[login], result)
        self._resume_pending(result)
        self._flush()

    def _first_sight(self, login: int, info: gw.AccountInfo, result: CycleResult) -> None:
        """The baseline of an account seen for the first time, and what it did between registration and now.

        Discovery runs every few seconds, so a trader can register and deposit before the
        monitor first looks: the deals since the registration (at most
        ``BONUS_DEPOSIT_LOOKBACK_DAYS`` back) are read, and a deposit among them earns its bonus
        once (``AccountEvent`` and the trigger's idempotency key). An account with nothing on
        its balance, or whose registration MT5 did not give, only takes the baseline.
        """
        snap = self.snapshots[login]
        now = timezone.now()
        if snap.registration is None or info.balance <= 0:
            snap.balance, snap.credit, snap.deals_checked_at = info.balance, info.credit, now
            self._dirty.add(login)
            return
        snap.deals_checked_at = max(snap.registration, now - timedelta(days=settings.BONUS_DEPOSIT_LOOKBACK_DAYS))
        self._process(login, info, result, first=True)

    def _process(self, login: int, info: gw.AccountInfo, result: CycleResult, *, first: bool = False) -> None:
        snap = self.snapshots[login]
        try:
            if first or info.balance != snap.balance:
                # Deposits and withdrawals before drawdown: a full withdrawal leaves the equity at the
                # credit, and it is a withdrawal (its bonuses end as such), not a drawdown.
                self._deals(login, info, snap, result)
                info = self.gateway.accounts_info([login]).get(login, info)
            below = info.credit > 0 and info.equity <= info.credit
            if below and not snap.drawdown:
                if account_drawdown_protect(login=login, gateway=self.gateway):
                    result.drawdowns += 1
                info = self.gateway.accounts_info([login]).get(login, info)
            snap.drawdown = below
        except Exception as exc:  # noqa: BLE001 — one account's failure is counted, the loop goes on
            self._failed(login, snap, str(exc) or type(exc).__name__, result)
            return
        snap.balance, snap.credit = info.balance, info.credit
        self._infos[login] = info
        self._dirty.add(login)
        if snap.errors:
            self._succeeded(login, snap)

    def _deals(self, login: int, info: gw.AccountInfo, snap: _Snapshot, result: CycleResult) -> None:
        # Inclusive of the last deal's instant; deals seen twice are recognised by their ticket.
        since = snap.deals_checked_at or timezone.now() - _FIRST_LOOK
        deals = self.gateway.deals(login, since, timezone.now() + timedelta(days=1))
        own = [d for d in deals if d.type == gw.DealType.BALANCE and not d.comment.startswith("BONUS ")]
        withdrawals = [d for d in own if d.profit < 0]
        for deal in own:
            if deal.profit > 0:
                if account_deposit_detected(login=login, deal=deal, gateway=self.gateway):
                    result.deposits += 1
            else:
                later = sum((-w.profit for w in withdrawals if w.ticket > deal.ticket), Decimal(0))
                if (
                    account_withdrawal_detected(
                        login=login, deal=deal, balance_after=info.balance + later, gateway=self.gateway
                    )
                    is not None
                ):
                    result.withdrawals += 1
        trades = [d for d in deals if d.type in _TRADES]
        if trades:
            result.conversions += account_trades_detected(login=login, deals=trades, gateway=self.gateway)
        if deals:
            snap.deals_checked_at = max(d.time for d in deals)

    def _resume_pending(self, result: CycleResult) -> None:
        # Only the postings whose backoff has run out (BONUS_OPERATION_RETRY_*): one indexed query a cycle.
        due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=timezone.now())
        pending = set(
            BonusOperation.objects.filter(due, status=OperationStatus.PENDING).values_list("login", flat=True)
        )
        for login in pending:
            if not self.mine(login) or login in self.paused:
                continue
            try:
                operations_resume(login=login, gateway=self.gateway)
            except gw.GatewayError as exc:
                snap = self.snapshots.get(login)
                if snap is not None:
                    self._failed(login, snap, str(exc), result)

    # --- errors ---

    def _failed(self, login: int, snap: _Snapshot, error: str, result: CycleResult) -> None:
        result.errors += 1
        result.failed_logins.append(login)
        snap.errors += 1
        pause = snap.errors >= self.max_errors
        values = {"consecutive_errors": snap.errors, "last_error": error[:255]}
        if pause:
            values["status"] = MonitorStatus.PAUSED
        with transaction.atomic():
            MonitoredAccount.objects.filter(login=login).update(**values)
            if pause:
                audit_write(
                    actor=MONITOR,
                    action=AuditAction.ACCOUNT_PAUSED,
                    login=login,
                    after={"consecutive_errors": snap.errors, "error": error[:200]},
                )
        if pause:
            result.paused += 1
            self.paused.add(login)
            self.active = [x for x in self.active if x != login]

    def _succeeded(self, login: int, snap: _Snapshot) -> None:
        snap.errors = 0
        MonitoredAccount.objects.filter(login=login).update(consecutive_errors=0, last_error="")

    def _all_failed(self, logins: list[int], error: str, result: CycleResult) -> None:
        """The gateway is down: every account of the shard counts one error; those at the limit pause."""
        result.error = error[:255]
        result.errors = len(logins)
        newly_paused = []
        for login in logins:
            snap = self.snapshots[login]
            snap.errors += 1
            if snap.errors >= self.max_errors:
                newly_paused.append(login)
        with transaction.atomic():
            MonitoredAccount.objects.filter(login__in=logins).update(
                consecutive_errors=F("consecutive_errors") + 1, last_error=error[:255]
            )
            if newly_paused:
                MonitoredAccount.objects.filter(login__in=newly_paused).update(status=MonitorStatus.PAUSED)
                now = timezone.now()
                AuditLog.objects.bulk_create(
                    [
                        AuditLog(
                            created_at=now,
                            actor_label=MONITOR,
                            action=AuditAction.ACCOUNT_PAUSED,
                            login=login,
                            after={"consecutive_errors": self.snapshots[login].errors, "error": error[:200]},
                        )
                        for login in newly_paused
                    ],
                    batch_size=1000,
                )
        if newly_paused:
            result.paused = len(newly_paused)
            self.paused.update(newly_paused)
            gone = set(newly_paused)
            self.active = [x for x in self.active if x not in gone]

    # --- persistence ---

    def _flush(self) -> None:
        """Write the snapshots that moved (balance, credit, equity, leverage) in one bulk UPDATE."""
        if not self._dirty:
            return
        now = timezone.now()
        rows = []
        for login in self._dirty:
            snap = self.snapshots[login]
            info = self._infos.get(login)
            rows.append(
                MonitoredAccount(
                    login=login,
                    balance=snap.balance,
                    credit=snap.credit,
                    equity=info.equity if info else None,
                    leverage=info.leverage if info else None,
                    deals_checked_at=snap.deals_checked_at,
                    snapshot_at=now,
                )
            )
        self._dirty.clear()
        if connection.vendor == "postgresql":
            # One statement over arrays: bulk_update's CASE per row costs seconds for a 10,000-account baseline.
            table = connection.ops.quote_name(MonitoredAccount._meta.db_table)
            with connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {table} m SET balance = v.balance, credit = v.credit, equity = v.equity, "
                    "leverage = v.leverage, deals_checked_at = v.checked, snapshot_at = %s "
                    "FROM unnest(%s::bigint[], %s::numeric[], %s::numeric[], %s::numeric[], %s::integer[], "
                    "%s::timestamptz[]) AS v(login, balance, credit, equity, leverage, checked) "
                    "WHERE m.login = v.login",
                    [
                        now,
                        [r.login for r in rows],
                        [r.balance for r in rows],
                        [r.credit for r in rows],
                        [r.equity for r in rows],
                        [r.leverage for r in rows],
                        [r.deals_checked_at for r in rows],
                    ],
                )
            return
        by_login = dict(MonitoredAccount.objects.filter(login__in=[r.login for r in rows]).values_list("login", "id"))
        for row in rows:
            row.pk = by_login.get(row.login)
        MonitoredAccount.objects.bulk_update(
            [r for r in rows if r.pk],
            ["balance", "credit", "equity", "leverage", "deals_checked_at", "snapshot_at"],
            batch_size=1000,
        )

    def _record(self, result: CycleResult) -> None:
        if result.skipped:
            return
        MonitorShard.objects.filter(shard=self.shard, shards=self.shards).update(
            last_cycle_at=result.started_at,
            last_duration_ms=result.duration_ms,
            last_accounts=result.accounts,
            last_errors=result.errors,
            cycles=F("cycles") + 1,
            deposits=F("deposits") + result.deposits,
            withdrawals=F("withdrawals") + result.withdrawals,
            drawdowns=F("drawdowns") + result.drawdowns,
            errors=F("errors") + result.errors,
        )
        clock = time.monotonic()
        # Quiet cycles leave one row a minute; a cycle that found or failed something always leaves one.
        if result.eventful or result.error or clock - self._last_history >= settings.BONUS_MONITOR_HISTORY_SECONDS:
            self._last_history = clock
            MonitorCycle.objects.create(
                started_at=result.started_at,
                duration_ms=result.duration_ms,
                shard=self.shard,
                shards=self.shards,
                worker=self.worker[:120],
                accounts=result.accounts,
                discovered=result.discovered,
                deposits=result.deposits,
                withdrawals=result.withdrawals,
                drawdowns=result.drawdowns,
                conversions=result.conversions,
                errors=result.errors,
                paused=result.paused,
                error=result.error,
            )

    # --- the loop ---

    def run(self, *, stop, interval: float | None = None, max_cycles: int | None = None) -> int:
        """Cycle every ``interval`` seconds until ``stop`` (a threading.Event) is set; returns cycles run."""
        interval = settings.BONUS_MONITOR_INTERVAL if interval is None else interval
        cycles = 0
        try:
            while not stop.is_set() and (max_cycles is None or cycles < max_cycles):
                began = time.monotonic()
                try:
                    self.cycle()
                except Exception:  # the loop outlives any bug in one cycle; the log says what broke
                    logger.exception("bonus monitor cycle failed")
                    connection.close()  # a broken connection would fail every later cycle too
                cycles += 1
                stop.wait(max(0.0, interval - (time.monotonic() - began)))
        finally:
            try:
                self.release()
            except Exception:  # noqa: BLE001 — shutting down: the lease expires by itself
                logger.warning("could not release the monitor lease")
        return cycles


def fallback_cycle() -> CycleResult | None:
    """One pass over every account when no monitor worker holds a live lease (the Celery-beat fallback)."""
    alive = MonitorShard.objects.filter(lease_until__gt=timezone.now()).exclude(holder__startswith="celery:").exists()
    if alive:
        return None
    monitor = Monitor(shard=0, shards=1, worker=f"celery:{default_worker_name()}")
    monitor._next_discovery = time.monotonic() + 3600  # discovery belongs to the workers and Scan MT5
    result = monitor.cycle()
    monitor.release()
    return result


def prune_history(*, now: datetime | None = None) -> int:
    cutoff = (now or timezone.now()) - timedelta(days=settings.BONUS_MONITOR_KEEP_DAYS)
    deleted, _ = MonitorCycle.objects.filter(started_at__lt=cutoff).delete()
    return deleted
