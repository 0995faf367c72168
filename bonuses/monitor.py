"""The account monitor: one pass over a shard of the monitored accounts every 0.3 s.

A pass reads every active account of the shard with one bulk ``accounts_info`` call and
compares it with the last snapshot kept in memory. Only accounts whose balance or credit
moved (or whose equity fell to the credit) cost more: their deals are read to confirm
deposits, withdrawals and closed trades, which the services turn into bonus changes. The
steady state is one gateway call, two small UPDATEs (lease and figures) and a loop in Python.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Mod
from django.utils import timezone

from config.resilience import Resilient
from mt5bridge import gateway as gw

from .choices import AuditAction, CampaignStatus, MonitorStatus, OperationStatus, Trigger
from .leases import ShardLeases
from .models import AuditLog, BonusOperation, Campaign, MonitorCycle, MonitoredAccount, MonitorShard
from .services.audit import MONITOR, audit_write
from .services.detection import account_deals_review, account_drawdown_protect
from .services.monitored import default_gateway
from .services.operations import operations_resume, postings_deferred
from .services.queued import Dispatcher, accounts_with_work, postings_queued
from .services.triggers import trigger_registration
from .snapshots import CycleResult, Snapshot, snapshots_write

logger = logging.getLogger(__name__)

_FIRST_LOOK = timedelta(seconds=60)  # an account loaded without a baseline time looks back this far
_STATUS_RELOAD_SECONDS = 1.0
_SWEEP_SECONDS = 1.0  # queued mode: how often the accounts with work left are looked for
_RESEND_SECONDS = 5.0  # queued mode: an account's task is sent again when its work is still there after this,
_RESEND_MAX_SECONDS = 300.0  # then after twice as long each time (a slow queue is not flooded with repeats)


def default_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Monitor:
    """One shard's monitor state and its cycle. ``gateway`` defaults to the bonus engine's gateway."""

    def __init__(
        self,
        *,
        shard: int = 0,
        shards: int = 1,
        gateway=None,
        worker: str | None = None,
        queued: bool | None = None,
        dispatcher: Dispatcher | None = None,
        trace: str | None = None,
    ):
        if shards < 1 or not 0 <= shard < shards:
            raise ValueError(f"shard must be in 0..{shards - 1}")
        self.shard, self.shards = shard, shards
        self.gateway = gateway or default_gateway()
        self.worker = worker or default_worker_name()
        self.leases = ShardLeases(shard=shard, shards=shards, worker=self.worker)
        # Queued: deal reading and MT5 postings go to the account queue (services/queued.py).
        self.queued = postings_queued() if queued is None else queued
        self.dispatcher = dispatcher or (Dispatcher() if self.queued else None)
        self._handoff: set[int] = set()
        self._sent_at: dict[int, tuple[float, float]] = {}  # login -> (when sent, wait before sending again)
        self._next_sweep = 0.0
        self._gateway_down = False
        self.trace = trace  # a file that gets one JSON line per cycle: held shards and the cycle's window
        self.max_errors = settings.BONUS_MONITOR_MAX_ERRORS
        self.snapshots: dict[int, Snapshot] = {}
        self.active: list[int] = []
        self.paused: set[int] = set()
        self.max_id = 0
        self._next_discovery = 0.0
        self._next_status_reload = 0.0
        self._last_history = 0.0
        self._dirty: set[int] = set()
        self._infos: dict[int, gw.AccountInfo] = {}

    # --- accounts of this shard ---

    @property
    def slots(self) -> set[int]:
        """The shards this process holds now: its own and any it took over."""
        return self.leases.held

    def _shard_rows(self, slots: set[int] | None = None):
        rows = MonitoredAccount.objects.all()
        if self.shards > 1:
            rows = rows.annotate(_shard=Mod("login", self.shards)).filter(_shard__in=sorted(slots or self.slots))
        return rows

    def mine(self, login: int) -> bool:
        return login % self.shards in self.slots

    def load_new(self, slots: set[int] | None = None) -> int:
        """Pick up accounts registered since the last look (by id: one indexed query), or all of new ``slots``."""
        rows = self._shard_rows(slots)
        if slots is None:
            rows = rows.filter(id__gt=self.max_id)
        rows = rows.values_list(
            "id", "login", "status", "balance", "credit", "consecutive_errors", "deals_checked_at", "registration"
        )
        added = 0
        for pk, login, status, balance, credit, errors, checked, registration in rows:
            if slots is None:  # a shard taken over is read whole; the id mark stays the own shards'
                self.max_id = max(self.max_id, pk)
            if login in self.snapshots:
                continue
            self.snapshots[login] = Snapshot(balance, credit, errors, checked, registration)
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
        """Renew the leases of this process (its shard, shards it took over); False when it holds none."""
        change = self.leases.renew()
        if change.lost:
            self._forget(change.lost)
        if change.gained and self.snapshots:
            self.load_new(change.gained)
        if change.gained or change.lost:
            logger.info(
                "bonus monitor %s: now holds shards %s of %s (gained %s, handed over %s)",
                self.worker,
                sorted(self.slots),
                self.shards,
                sorted(change.gained),
                sorted(change.lost),
            )
        return bool(self.slots)

    def _forget(self, slots: set[int]) -> None:
        gone = {login for login in self.snapshots if login % self.shards in slots}
        for login in gone:
            del self.snapshots[login]
            self._sent_at.pop(login, None)
        self.paused -= gone
        self._dirty -= gone
        self._handoff -= gone
        self.active = [login for login in self.active if login not in gone]

    def release(self) -> None:
        self.leases.release()
        self._forget(set(range(self.shards)))

    # --- the cycle ---

    def cycle(self) -> CycleResult:
        started = time.perf_counter()
        result = CycleResult(started_at=timezone.now())
        if not self.claim():
            result.skipped = True
            return result
        clock = time.monotonic()
        window = (time.time(), sorted(self.slots))
        deferred = postings_deferred.set(self.dispatcher.send) if self.queued else None
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
            if deferred is not None:
                postings_deferred.reset(deferred)
            result.duration_ms = (time.perf_counter() - started) * 1000
            self._record(result)
            if self.trace:
                self._trace(*window)
        return result

    def _trace(self, began: float, slots: list[int]) -> None:
        with open(self.trace, "a") as out:
            out.write(json.dumps({"worker": self.worker, "slots": slots, "start": began, "end": time.time()}) + "\n")

    def _scan(self, result: CycleResult) -> None:
        logins = self.active
        result.accounts = len(logins)
        if not logins:
            return
        try:
            infos = self.gateway.accounts_info(logins)
        except gw.GatewayError as exc:
            if not self._gateway_down:
                logger.warning("bonus monitor %s: MT5 gateway outage: %s", self.worker, exc)
                self._gateway_down = True
            self._all_failed(logins, str(exc), result)
            return
        if self._gateway_down:
            logger.warning("bonus monitor %s: MT5 gateway answers again", self.worker)
            self._gateway_down = False
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
            if self.queued and infos[login].balance != snapshots[login].balance:
                self._hand_off(login, infos[login])
            else:
                self._process(login, infos[login], result)
        if self.queued:
            self._flush()
            self._send_work()
        else:
            self._resume_pending(result)
            self._flush()

    def _hand_off(self, login: int, info: gw.AccountInfo) -> None:
        """Queued mode: the balance moved; the account task reads its deals (and then checks drawdown).

        The snapshot follows MT5 now, so the next cycles compare against it; the request to read the
        deals is written with the snapshot (``review_seq``), in PostgreSQL, before the task is sent.
        """
        snap = self.snapshots[login]
        snap.balance, snap.credit = info.balance, info.credit
        snap.drawdown = info.credit > 0 and info.equity <= info.credit
        self._dirty.add(login)
        self._handoff.add(login)

    def _send_work(self) -> None:
        """Send the accounts handed off this cycle, and (every second) those whose work is still left."""
        clock = time.monotonic()
        due = set(self._handoff)
        self._handoff.clear()
        if clock >= self._next_sweep:
            self._next_sweep = clock + _SWEEP_SECONDS
            waiting = {login for login in accounts_with_work() if self.mine(login) and login not in self.paused}
            for login in waiting - due:
                sent, wait = self._sent_at.get(login, (-1e9, _RESEND_SECONDS / 2))
                if clock - sent >= wait:
                    due.add(login)
            for login in set(self._sent_at) - waiting - due:
                del self._sent_at[login]
        for login in sorted(due):
            _, wait = self._sent_at.get(login, (0.0, _RESEND_SECONDS / 2))
            self._sent_at[login] = (clock, min(_RESEND_MAX_SECONDS, wait * 2))
            self.dispatcher.send(login)

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
        if self.queued:
            self._hand_off(login, info)
            return
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

    def _deals(self, login: int, info: gw.AccountInfo, snap: Snapshot, result: CycleResult) -> None:
        since = snap.deals_checked_at or timezone.now() - _FIRST_LOOK
        seen = account_deals_review(login=login, balance=info.balance, since=since, gateway=self.gateway)
        result.deposits += seen.deposits
        result.withdrawals += seen.withdrawals
        result.conversions += seen.conversions
        if seen.latest is not None:
            snap.deals_checked_at = seen.latest

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

    def _failed(self, login: int, snap: Snapshot, error: str, result: CycleResult) -> None:
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

    def _succeeded(self, login: int, snap: Snapshot) -> None:
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
        snapshots_write(rows, handoff=self._handoff, now=now)

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
        # PostgreSQL or Redis gone, a connection terminated: logged once, retried with backoff, recovery logged
        # once (config.resilience). The loop outlives any bug in one cycle too; the log says what broke.
        guard = Resilient(f"bonus monitor {self.worker}", transient=(gw.GatewayUnavailable,), max_delay=5.0, log=logger)
        cycles = 0
        try:
            while not stop.is_set() and (max_cycles is None or cycles < max_cycles):
                began = time.monotonic()
                ok, _ = guard.call(self.cycle)
                if not ok:
                    self.reset()
                cycles += 1
                wait = guard.next_wait(interval)
                stop.wait(max(0.0, wait - (time.monotonic() - began) if guard.healthy else wait))
        finally:
            try:
                self.release()
            except Exception:  # noqa: BLE001 — shutting down: the lease expires by itself
                logger.warning("could not release the monitor lease")
            if self.dispatcher is not None:
                self.dispatcher.close()
        return cycles

    def reset(self) -> None:
        """Forget what is in memory after a failed cycle: the next one starts from what PostgreSQL holds.

        A cycle cut short may have moved a snapshot without writing it (or the review it asked for);
        reading the rows again finds those changes again, so nothing seen is lost with the cycle.
        """
        self.snapshots.clear()
        self.active, self.paused, self.max_id = [], set(), 0
        self._dirty.clear()
        self._handoff.clear()
        self._infos = {}


def fallback_cycle() -> CycleResult | None:
    """One pass over every account when no monitor worker holds a live lease (the Celery-beat fallback)."""
    alive = MonitorShard.objects.filter(lease_until__gt=timezone.now()).exclude(holder__startswith="celery:").exists()
    if alive:
        return None
    # Already inside a Celery worker: the postings run here, in order, with no queue of its own to drain.
    monitor = Monitor(shard=0, shards=1, worker=f"celery:{default_worker_name()}", queued=False)
    monitor._next_discovery = time.monotonic() + 3600  # discovery belongs to the workers and Scan MT5
    result = monitor.cycle()
    monitor.release()
    return result


def prune_history(*, now: datetime | None = None) -> int:
    cutoff = (now or timezone.now()) - timedelta(days=settings.BONUS_MONITOR_KEEP_DAYS)
    deleted, _ = MonitorCycle.objects.filter(started_at__lt=cutoff).delete()
    return deleted
