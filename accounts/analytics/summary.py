"""The stored statistics summary of an account's whole history: read it, fold what arrived since, save it.

One row per account in ``accounts_analyticssummary`` (migration accounts 0006): the running state
(`accounts.analytics.running`) and its watermark (the last deal by time and ticket, the last snapshot).
A read folds the deals and snapshots after the watermark into the state (a few milliseconds for a few
hundred deals) instead of reading and computing the whole history. The database keeps it honest: a trigger
on deals and snapshots clears the state when a change touches what it was built from (a deal or snapshot
inserted at or before the watermark, or changed or deleted there), whoever made the change, and bumps
``generation`` on every change so a state computed while the history moved is not saved (the save is
conditional on the generation read before the history). A batch the fold cannot append (a late deal of a
trade already counted, a symbol showing more price digits) also rebuilds. PostgreSQL only.
"""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.core.cache import cache
from django.db import connection

from .columns import DEAL_FIELDS, history_state_of
from .report import report
from .running import Running, fold
from .tables import MIN_TRADES, DealTable, SnapshotTable

#: More new deals or snapshots than this since the state was stored: rebuilding from the whole history is as quick.
MAX_FOLD_ROWS = 20_000
#: Histories shorter than this (deals and snapshots) are computed whole on each read: a few milliseconds, less
#: than keeping a stored state. An account read whole with more is remembered (cache) and summarised from then on.
SUMMARY_MIN_ROWS = 5_000
_LONG_KEY = "analytics:long-history:v1:{}"
_LONG_TTL = 7 * 86_400
#: A rebuild reads and folds the history in parts of about this many deals and snapshots (at most ``MAX_PARTS``):
#: PostgreSQL computes each while the one before is folded (`accounts.analytics.columns.history_state_of`).
PART_ROWS = 15_000
MAX_PARTS = 8
#: The folded state is stored again once this many rows arrived since it was (storing it costs more than
#: folding a few hundred rows again on the next read, which reads every row after the stored watermark).
SAVE_AFTER_ROWS = 500
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# The stored row and, when it holds a state, the deals and snapshots after its watermark (as JSON text:
# numerics keep their exact decimal digits), in one statement.
_READ_SQL = f"""
SELECT s.generation, s.state, s.last_deal_time, s.last_deal_ticket, s.last_snapshot_time,
  (SELECT coalesce(json_agg(json_build_array({", ".join(f"d.{c}" for c in DEAL_FIELDS)}) ORDER BY d.time, d.ticket),
                   '[]')::text
   FROM (SELECT * FROM accounts_deal d WHERE s.state IS NOT NULL AND d.account_id = s.account_id
           AND d.time >= coalesce(s.last_deal_time, '-infinity')
           AND (d.time, d.ticket) > (coalesce(s.last_deal_time, '-infinity'), coalesce(s.last_deal_ticket, -1))
         ORDER BY d.time, d.ticket LIMIT %(limit)s) d),
  (SELECT coalesce(json_agg(json_build_array(n.taken_at, n.balance, n.equity, n.credit) ORDER BY n.taken_at),
                   '[]')::text
   FROM (SELECT * FROM accounts_accountsnapshot n WHERE s.state IS NOT NULL AND n.account_id = s.account_id
           AND n.taken_at > coalesce(s.last_snapshot_time, '-infinity')
         ORDER BY n.taken_at LIMIT %(limit)s) n)
FROM accounts_analyticssummary s WHERE s.account_id = %(account)s
"""


def noted_history_size(account) -> int | None:
    """The deals and snapshots of ``account``'s last long read (`note_history_size`); None when none was long. Its
    whole history is read through its stored summary once it was seen long."""
    return cache.get(_LONG_KEY.format(account.pk)) if connection.vendor == "postgresql" else None


def note_history_size(account, rows: int) -> None:
    """After a read of ``rows`` deals and snapshots: summarise this account's whole history from now on if long, and
    read it in parts (`parts_for`)."""
    if rows >= SUMMARY_MIN_ROWS:
        cache.set(_LONG_KEY.format(account.pk), rows, _LONG_TTL)


def parts_for(rows: int | None) -> int:
    """How many parts to read a history of about ``rows`` deals and snapshots in (`columns.history_state_of`)."""
    return min(MAX_PARTS, max(1, (rows or 0) // PART_ROWS))


def whole_history_statistics(account, *, min_trades: int = MIN_TRADES) -> dict:
    """`accounts.analytics.statistics.compute_statistics` over the account's whole history, from its summary."""
    return report(whole_history_state(account), min_trades)


def whole_history_state(account) -> Running:
    """The account's running state, up to date: the stored one with what arrived since, or rebuilt."""
    with connection.cursor() as cursor:
        cursor.execute(_READ_SQL, {"account": account.pk, "limit": MAX_FOLD_ROWS + 1})
        row = cursor.fetchone()
        if row is None:
            cursor.execute(
                "INSERT INTO accounts_analyticssummary (account_id) VALUES (%s) ON CONFLICT DO NOTHING", [account.pk]
            )
            cursor.execute("SELECT generation FROM accounts_analyticssummary WHERE account_id = %s", [account.pk])
            row = (cursor.fetchone()[0], None, None, None, None, "[]", "[]")
    generation, raw, _, _, _, deal_json, snapshot_json = row
    state = _load(raw)
    if state is None:
        return _rebuild(account, generation)
    deal_rows = json.loads(deal_json, parse_float=Decimal)
    snapshot_rows = json.loads(snapshot_json, parse_float=Decimal)
    if len(deal_rows) > MAX_FOLD_ROWS or len(snapshot_rows) > MAX_FOLD_ROWS:
        return _rebuild(account, generation)
    if not deal_rows and not snapshot_rows:
        return state
    deals = DealTable.from_records(
        {**dict(zip(DEAL_FIELDS, r, strict=True)), "time": datetime.fromisoformat(r[0])} for r in deal_rows
    )
    snapshots = SnapshotTable.from_records(
        {"taken_at": datetime.fromisoformat(r[0]), "balance": r[1], "equity": r[2], "credit": r[3]}
        for r in snapshot_rows
    )
    if not fold(state, deals, snapshots):
        return _rebuild(account, generation)
    if len(deal_rows) + len(snapshot_rows) >= SAVE_AFTER_ROWS:
        _save(account.pk, generation, state)
    return state


def _load(raw) -> Running | None:
    if raw is None:
        return None
    try:
        return Running.from_bytes(bytes(raw))
    except (ValueError, TypeError, KeyError, OSError, zipfile.BadZipFile):  # another version's: rebuild
        return None


def _rebuild(account, generation: int) -> Running:
    state, _ = history_state_of(account, parts=parts_for(noted_history_size(account)))
    _save(account.pk, generation, state)
    return state


def _moment(epoch: float | None) -> datetime | None:
    """Epoch seconds (microseconds / 10**6, as the tables hold them) back to the exact database timestamp."""
    return None if epoch is None else _EPOCH + timedelta(microseconds=round(epoch * 1_000_000))


def _save(account_id, generation: int, state: Running) -> None:
    """Store ``state`` unless the history changed since ``generation`` was read (then the next read rebuilds), and
    without waiting for a writer."""
    with connection.cursor() as cursor:
        cursor.execute(
            # A writer holding the row (its trigger ran in a transaction not yet committed) is about to move the
            # generation: skip rather than wait for it.
            "UPDATE accounts_analyticssummary SET state = %s, last_deal_time = %s, last_deal_ticket = %s, "
            "last_snapshot_time = %s, updated_at = now() WHERE account_id = (SELECT account_id FROM "
            "accounts_analyticssummary WHERE account_id = %s AND generation = %s FOR UPDATE SKIP LOCKED)",
            [
                state.to_bytes(),
                _moment(state.last_time),
                state.last_ticket,
                _moment(state.seen_snap_time),
                account_id,
                generation,
            ],
        )
