"""Bonus reconciliation: every credit the bonus engine posted against the credit deals MT5 reports for the account.

The bonus engine records each MT5 posting first (``BonusOperation``) and sends it with ``BONUS <bonus> op <op>``
in the deal comment. The account sync (``mt5bridge.sync``) stores the deals MT5 reports in ``accounts.Deal``.
A run compares the two, login by login, and keeps one row per disagreement (``ReconciliationMismatch``):

- **missing**: an operation is done but no credit deal carries it (a dealer deleted it, MT5 lost it);
- **duplicated**: two or more credit deals carry one operation (posted twice);
- **amount**: the one deal's amount differs from the operation's (signed: credit in positive, out negative);
- **orphan**: a credit deal on a bonus account that no operation explains (credit posted by hand, or a
  deal for an operation recorded as refused).

The comparison itself (``compare``) is a pure function over plain rows. A rerun finds its earlier rows by
key: it updates them, reopens one that had cleared, and marks an open one that is no longer found cleared;
a reviewed one stays reviewed.
"""

from __future__ import annotations

import logging
import re
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from accounts.models import Deal, TradingAccount
from config.errors import Conflict, ServiceError
from mt5bridge import gateway as gw

from .choices import OperationKind, OperationStatus
from .models import Bonus, BonusOperation, MonitoredAccount
from .reconciliation_models import (
    MISMATCH_REVIEWED,
    MismatchKind,
    MismatchStatus,
    ReconciliationMismatch,
    ReconciliationRun,
    RunStatus,
    RunTrigger,
)
from .services.audit import SYSTEM, actor_label, audit_write

logger = logging.getLogger(__name__)

# How each credit operation shows on MT5: a CREDIT deal, positive in, negative out (services/operations.py).
CREDIT_SIGN = {OperationKind.CREDIT_IN: 1, OperationKind.CREDIT_OUT: -1, OperationKind.CREDIT_CONVERTED: -1}
CREDIT_DEAL = int(gw.DealType.CREDIT)
# Operations whose deal may still be on its way (the engine finds it by comment before posting again).
IN_FLIGHT = (OperationStatus.PENDING, OperationStatus.FAILED)
COMMENT = re.compile(r"^BONUS (\d+) op (\d+)\b")
CHUNK = 200
LOCK_KEY = "bonuses:reconciliation:running"
LOCK_SECONDS = 6 * 3600
MAX_NOTE = 2000
ZERO = Decimal("0")


# --- The comparison (pure) --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OperationRow:
    id: int
    bonus_id: int
    kind: str
    status: str
    amount: Decimal
    deal_ticket: int | None
    done_at: datetime | None

    @property
    def expected(self) -> Decimal:
        return self.amount * CREDIT_SIGN[self.kind]


@dataclass(frozen=True)
class DealRow:
    ticket: int
    time: datetime
    profit: Decimal
    comment: str


@dataclass(frozen=True)
class Coverage:
    """The stretch of MT5 history the synced deals are known to hold: an operation outside it is not judged missing."""

    start: datetime | None  # the oldest deal synced (any type)
    end: datetime  # the last successful sync


@dataclass(frozen=True)
class Finding:
    key: str
    kind: str
    login: int
    operation_id: int | None
    bonus_id: int | None
    expected: Decimal | None
    found: Decimal | None
    tickets: tuple[int, ...]
    deal_time: datetime | None
    message: str


def operation_named(comment: str) -> int | None:
    """The operation id a bonus deal's comment carries (``BONUS 12 op 34`` -> 34), or None."""
    match = COMMENT.match(comment or "")
    return int(match.group(2)) if match else None


def compare(
    login: int, operations: Sequence[OperationRow], deals: Sequence[DealRow], coverage: Coverage
) -> list[Finding]:
    """The mismatches between one login's credit operations and its synced credit deals."""
    by_id = {op.id: op for op in operations}
    by_ticket = {op.deal_ticket: op for op in operations if op.deal_ticket}
    matched: dict[int, list[DealRow]] = defaultdict(list)
    findings: list[Finding] = []
    for deal in sorted(deals, key=lambda d: (d.time, d.ticket)):
        op = by_id.get(operation_named(deal.comment)) or by_ticket.get(deal.ticket)  # type: ignore[arg-type]
        if op is not None and op.status not in (OperationStatus.REFUSED,):
            matched[op.id].append(deal)
            continue
        note = f"recorded as refused (operation #{op.id})" if op is not None else "no bonus operation carries it"
        findings.append(
            Finding(
                key=f"orphan:{login}:{deal.ticket}",
                kind=MismatchKind.ORPHAN,
                login=login,
                operation_id=op.id if op is not None else None,
                bonus_id=op.bonus_id if op is not None else None,
                expected=None,
                found=deal.profit,
                tickets=(deal.ticket,),
                deal_time=deal.time,
                message=f"credit deal #{deal.ticket} of {deal.profit} ({deal.comment or 'no comment'}): {note}",
            )
        )
    for op in operations:
        if op.status != OperationStatus.DONE or op.amount <= 0:
            continue  # in flight, refused, settled by hand, or nothing to post (a removal of zero)
        found_deals = matched.get(op.id, [])
        tickets = tuple(d.ticket for d in found_deals)
        total = sum((d.profit for d in found_deals), ZERO)
        if not found_deals:
            if op.done_at is None or op.done_at >= coverage.end:
                continue  # posted after the last sync: the next sync brings its deal
            if coverage.start is None or op.done_at < coverage.start:
                continue  # older than the history the sync holds
            kind, found = MismatchKind.MISSING, None
            message = f"operation #{op.id} ({op.kind}, {op.expected}) done {op.done_at:%Y-%m-%d %H:%M} has no deal"
        elif len(found_deals) > 1:
            kind, found = MismatchKind.DUPLICATED, total
            listed = ", ".join(f"#{t}" for t in tickets)
            message = f"operation #{op.id} ({op.expected}) is on MT5 {len(tickets)} times: {listed}, {total} in all"
        elif total != op.expected:
            kind, found = MismatchKind.AMOUNT, total
            message = f"operation #{op.id} posted {op.expected}, deal #{tickets[0]} says {total}"
        else:
            continue
        findings.append(
            Finding(
                key=f"{kind}:{op.id}",
                kind=kind,
                login=login,
                operation_id=op.id,
                bonus_id=op.bonus_id,
                expected=op.expected,
                found=found,
                tickets=tickets,
                deal_time=found_deals[0].time if found_deals else None,
                message=message,
            )
        )
    return findings


# --- Reading one chunk of logins ----------------------------------------------------------------------------------


@dataclass
class LoginData:
    operations: list[OperationRow]
    deals: list[DealRow]
    coverage: Coverage | None  # None: no synced account holds this login


def _servers(logins: Sequence[int]) -> dict[int, str]:
    known = dict(MonitoredAccount.objects.filter(login__in=logins).exclude(server="").values_list("login", "server"))
    default = settings.BONUS_MT5_SERVER
    return {login: known.get(login, default) for login in logins}


def _synced_accounts(logins: Sequence[int]) -> dict[int, list]:
    """The synced trading accounts of each login, on the bonus server when it is known."""
    servers = _servers(logins)
    found: dict[int, list] = defaultdict(list)
    rows = TradingAccount.objects.filter(login__in=logins, last_sync_at__isnull=False).values_list(
        "pk", "login", "server", "last_sync_at"
    )
    for pk, login, server, synced_at in rows:
        if not servers[login] or server == servers[login]:
            found[login].append((pk, synced_at))
    return found


def load(logins: Sequence[int]) -> dict[int, LoginData]:
    """The credit operations and synced credit deals of these logins, with what the sync covers."""
    operations: dict[int, list[OperationRow]] = defaultdict(list)
    rows = BonusOperation.objects.filter(login__in=logins, kind__in=list(CREDIT_SIGN)).values_list(
        "id", "login", "bonus_id", "kind", "status", "amount", "deal_ticket", "done_at"
    )
    for pk, login, bonus_id, kind, status, amount, ticket, done_at in rows.order_by("id"):
        operations[login].append(OperationRow(pk, bonus_id, kind, status, amount, ticket, done_at))
    accounts = _synced_accounts(logins)
    account_login = {pk: login for login, pairs in accounts.items() for pk, _ in pairs}
    first = dict(
        Deal.objects.filter(account_id__in=list(account_login))
        .values("account_id")
        .annotate(first=Min("time"))
        .values_list("account_id", "first")
    )
    deals: dict[int, dict[int, DealRow]] = defaultdict(dict)
    credit = Deal.objects.filter(account_id__in=list(account_login), deal_type=CREDIT_DEAL).values_list(
        "account_id", "ticket", "time", "profit", "comment"
    )
    for account_id, ticket, when, profit, comment in credit:
        # The same MT5 account connected twice shows each deal twice: one deal per ticket.
        deals[account_login[account_id]][ticket] = DealRow(ticket, when, profit, comment)
    result = {}
    for login in logins:
        pairs = accounts.get(login, [])
        coverage = None
        if pairs:
            starts = [first[pk] for pk, _ in pairs if pk in first]
            coverage = Coverage(start=min(starts) if starts else None, end=max(at for _, at in pairs))
        result[login] = LoginData(operations[login], list(deals[login].values()), coverage)
    return result


# --- Storing what a run found --------------------------------------------------------------------------------------

STORED_FIELDS = ("kind", "login", "operation_id", "bonus_id", "expected_amount", "found_amount", "deal_tickets",
                 "deal_time", "message", "last_seen_at", "last_run")  # fmt: skip


def _store(run: ReconciliationRun, logins: Sequence[int], findings: list[Finding], now: datetime) -> tuple[int, int]:
    """Upsert the findings of these logins by key; clear their open rows not found again. Returns (new, cleared)."""
    with transaction.atomic():
        existing = {m.key: m for m in ReconciliationMismatch.objects.select_for_update().filter(login__in=list(logins))}
        created, changed = [], []
        for f in findings:
            values = {
                "kind": f.kind, "login": f.login, "operation_id": f.operation_id, "bonus_id": f.bonus_id,
                "expected_amount": f.expected, "found_amount": f.found, "deal_tickets": list(f.tickets),
                "deal_time": f.deal_time, "message": f.message[:255], "last_seen_at": now, "last_run": run,
            }  # fmt: skip
            row = existing.pop(f.key, None)
            if row is None:
                created.append(ReconciliationMismatch(key=f.key, first_seen_at=now, first_run=run, **values))
                continue
            for name, value in values.items():
                setattr(row, name, value)
            if row.status == MismatchStatus.CLEARED:
                row.status, row.cleared_at = MismatchStatus.OPEN, None  # it is back
            changed.append(row)
        gone = [row for row in existing.values() if row.status == MismatchStatus.OPEN]
        for row in gone:
            row.status, row.cleared_at, row.last_run = MismatchStatus.CLEARED, now, run
        ReconciliationMismatch.objects.bulk_create(created)
        fields = [*STORED_FIELDS, "status", "cleared_at"]
        ReconciliationMismatch.objects.bulk_update(changed + gone, fields, batch_size=500)
    return len(created), len(gone)


# --- Runs --------------------------------------------------------------------------------------------------------


def reconciliation_request(*, actor, trigger: str, logins: Iterable[int] = ()) -> ReconciliationRun:
    """Record a run to be made (the caller queues ``bonuses.tasks.reconcile_run`` once this has committed)."""
    if trigger not in RunTrigger.values:
        raise ServiceError(f"unknown trigger {trigger!r}", code="invalid_trigger")
    user = actor if actor is not None and not isinstance(actor, str) else None
    return ReconciliationRun.objects.create(
        trigger=trigger,
        actor=user,
        actor_label=actor_label(actor)[:254],
        logins=sorted({int(login) for login in logins}),
    )


def _chunks(values: list[int], size: int = CHUNK) -> Iterator[list[int]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


def _scope(run: ReconciliationRun) -> list[int]:
    if run.logins:
        return sorted({int(login) for login in run.logins})
    return list(Bonus.objects.order_by("login").values_list("login", flat=True).distinct())


def reconciliation_execute(*, run_id: int) -> ReconciliationRun:
    """Make a recorded run (once: it is claimed with a conditional UPDATE; one run at a time across processes)."""
    now = timezone.now()
    claimed = ReconciliationRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
        status=RunStatus.RUNNING, started_at=now
    )
    run = ReconciliationRun.objects.get(pk=run_id)
    if not claimed:
        return run
    if not cache.add(LOCK_KEY, run_id, timeout=LOCK_SECONDS):
        ReconciliationRun.objects.filter(pk=run_id).update(
            status=RunStatus.SKIPPED, finished_at=timezone.now(), error="another reconciliation was running"
        )
        run.refresh_from_db()
        return run
    started = time.perf_counter()
    counts = defaultdict(int)
    try:
        for logins in _chunks(_scope(run)):
            data = load(logins)
            findings: list[Finding] = []
            checked = []
            for login in logins:
                item = data[login]
                if item.coverage is None:
                    counts["accounts_not_synced"] += 1
                    continue
                checked.append(login)
                counts["operations_checked"] += sum(1 for op in item.operations if op.status == OperationStatus.DONE)
                counts["deals_checked"] += len(item.deals)
                findings += compare(login, item.operations, item.deals, item.coverage)
            counts["accounts_checked"] += len(checked)
            counts["found"] += len(findings)
            new, cleared = _store(run, checked, findings, timezone.now())
            counts["new"] += new
            counts["cleared"] += cleared
    except Exception as exc:
        logger.exception("bonus reconciliation run %s failed", run_id)
        ReconciliationRun.objects.filter(pk=run_id).update(
            status=RunStatus.FAILED,
            finished_at=timezone.now(),
            duration_ms=(time.perf_counter() - started) * 1000,
            error=str(exc)[:255],
            **counts,
        )
        raise
    finally:
        if cache.get(LOCK_KEY) == run_id:
            cache.delete(LOCK_KEY)
    ReconciliationRun.objects.filter(pk=run_id).update(
        status=RunStatus.DONE, finished_at=timezone.now(), duration_ms=(time.perf_counter() - started) * 1000, **counts
    )
    run.refresh_from_db()
    return run


def reconciliation_run_now(*, actor=SYSTEM, trigger: str = RunTrigger.NIGHTLY, logins: Iterable[int] = ()):
    """Record a run and make it in this process (the nightly task, the management command)."""
    run = reconciliation_request(actor=actor, trigger=trigger, logins=logins)
    return reconciliation_execute(run_id=run.pk)


def last_run() -> ReconciliationRun | None:
    return ReconciliationRun.objects.exclude(status=RunStatus.QUEUED).order_by("-created_at", "-id").first()


def runs_newest(limit: int = 5) -> list[ReconciliationRun]:
    return list(ReconciliationRun.objects.order_by("-created_at", "-id")[:limit])


# --- Review --------------------------------------------------------------------------------------------------------


def mismatches_review(*, actor, mismatches: Iterable[int], note: str) -> int:
    """Mark mismatches reviewed with a note (one audit row each); already reviewed ones are left as they are."""
    note = (note or "").strip()
    if not note:
        raise ServiceError("A note is required: say what was found or done.", code="note_required")
    if len(note) > MAX_NOTE:
        raise ServiceError(f"The note is longer than {MAX_NOTE} characters.", code="note_too_long")
    ids = list(mismatches)
    done = 0
    with transaction.atomic():
        rows = ReconciliationMismatch.objects.select_for_update(of=("self",)).filter(pk__in=ids).select_related("bonus")
        for row in rows.order_by("pk"):
            if row.status == MismatchStatus.REVIEWED:
                continue
            before = {"status": row.status}
            row.status, row.reviewed_at, row.review_note = MismatchStatus.REVIEWED, timezone.now(), note
            row.reviewed_by = actor if actor is not None and not isinstance(actor, str) else None
            row.save(update_fields=["status", "reviewed_at", "review_note", "reviewed_by"])
            audit_write(
                actor=actor,
                action=MISMATCH_REVIEWED,
                login=row.login,
                bonus=row.bonus,
                before=before,
                after={"status": row.status, "key": row.key, "note": note},
                message=f"{row.get_kind_display().split(':')[0]} {row.key} reviewed: {note}",
            )
            done += 1
    return done


def mismatch_review(*, actor, mismatch: ReconciliationMismatch, note: str) -> ReconciliationMismatch:
    """Mark one mismatch reviewed (409 when it already is)."""
    if mismatch.status == MismatchStatus.REVIEWED:
        raise Conflict("This mismatch is already reviewed.", code="already_reviewed")
    mismatches_review(actor=actor, mismatches=[mismatch.pk], note=note)
    mismatch.refresh_from_db()
    return mismatch


def open_count() -> int:
    return ReconciliationMismatch.objects.filter(status=MismatchStatus.OPEN).count()
