"""The one-query read of an account's deals and snapshots as columns (`statistics_history`).

Kept apart from `accounts.selectors` so that the processes that only need the common read paths (the EA
edge, the monitor) never load numpy; `accounts.analytics.history` and `accounts.analytics.summary` use it.
"""

from __future__ import annotations

from contextlib import closing
from datetime import datetime
from decimal import Decimal

import numpy as np
from django.db import connection

from accounts import sql
from accounts.models import AccountSnapshot, Deal, TradingAccount

from .running import Running, fold
from .statistics import history_state, sort_deals
from .tables import CREDIT, DealTable, SnapshotTable, concat_tables

# One statement (`accounts.sql.statistics_history_parts`) reads everything the statistics need, so deals, snapshots
# and the opening balance come from the same database snapshot, and each group of columns comes back as one string that
# numpy parses without a Python object per value. Most of the time is PostgreSQL's work per value,
# hence (measured in docs/benchmarks-analytics.md):
# - integers and decimals travel in one comma-separated text aggregate. A numeric's text shows
#   exactly its column's scale ("-3.50" in numeric(20,2)), so dropping the point gives exact cents
#   and 1/10,000 lots (volume has 4 places) with no float in between; the tests compare the result
#   with model instances, so a change of scale fails them. Prices too (in 1/10^8, their column's scale): an exact
#   integer divided by 10^8 is the float nearest the decimal, as `float(Decimal)` gives (IEEE division rounds
#   correctly), up to 2^53 / 10^8 (90 million); beyond, each is converted through Decimal. PostgreSQL's own
#   float8 conversion formats and re-parses each price: 15 ms more for 100,000 deals;
# - time travels as packed binary: microseconds since 2000;
# - the account's symbols come from skipping through the (account, symbol, time) index; each deal
#   carries its symbol's position in that list.
_PG_EPOCH_US = 946_684_800 * 1_000_000  # 2000-01-01 in Unix microseconds
# The deal fields the statistics read (also the stored summary's columns, accounts.analytics.summary).
DEAL_FIELDS = (
    "time",
    "ticket",
    "deal_type",
    "entry",
    "position_id",
    "magic",
    "symbol",
    "volume",
    "price",
    "profit",
    "commission",
    "swap",
    "fee",
)
_DEAL_TEXT_COLUMNS = 12
_PRICE_SCALE = 10**8  # numeric(20, 8)
_EXACT_INT = 2**53
_SNAPSHOT_TEXT_COLUMNS = 3


def statistics_history(
    account: TradingAccount, *, start: datetime | None = None, end: datetime | None = None
) -> tuple[DealTable, SnapshotTable, int]:
    """The deals and snapshots of ``account`` in [start, end) as columns, and the balance at ``start``.

    Returns ``(DealTable, SnapshotTable, opening_balance_cents)`` for `accounts.analytics.statistics.compute_statistics`.
    One query on PostgreSQL, whatever the number of deals.
    """
    if connection.vendor != "postgresql":
        return statistics_history_portable(account, start=start, end=end)
    row = sql.statistics_history_row(account.pk, start=start, end=end, credit=CREDIT)
    names, opening = row[0], row[1]
    deals, snapshots = _tables(tuple(names), row)
    return deals, snapshots, int(opening.scaleb(2))


def history_state_of(
    account: TradingAccount, *, start: datetime | None = None, end: datetime | None = None, parts: int = 1
) -> tuple[Running, int]:
    """The running state of ``account``'s history in [start, end) and how many deals and snapshots it holds.

    The same as `accounts.analytics.statistics.history_state` over `statistics_history`, but read in ``parts`` spans
    of time (`accounts.sql.statistics_history_parts`, one statement) and folded span by span as each arrives, so
    PostgreSQL computes the next span while this process folds the last (100,000 deals and 35,040 snapshots in 8
    parts: 162 against 268 ms in one, docs/benchmarks.md). A span the fold cannot append (`fold` refuses, e.g. a
    symbol showing more price digits than its earlier deals did) makes it fold the whole history in one batch,
    which always gives the same result.
    """
    if connection.vendor != "postgresql":
        deals, snapshots, opening = statistics_history_portable(account, start=start, end=end)
        return history_state(deals, snapshots, opening_balance=opening), len(deals) + len(snapshots)
    names: tuple[str, ...] = ()
    read: list[tuple[DealTable, SnapshotTable]] = []
    state, appending = Running.start(), True
    # Closed on the way out, whatever happens: a statement left streaming would hold the connection.
    with closing(sql.statistics_history_parts(account.pk, start=start, end=end, credit=CREDIT, parts=parts)) as stream:
        for row in stream:
            if not read:
                names, state = tuple(row[0]), Running.start(int(row[1].scaleb(2)))
            deals, snapshots = _tables(names, row)
            read.append((deals, snapshots))
            appending = appending and fold(state, sort_deals(deals), snapshots)
    rows = sum(len(d) + len(s) for d, s in read)
    if appending:
        return state, rows
    deals, snapshots = concat_tables([d for d, _ in read]), concat_tables([s for _, s in read])
    return history_state(deals, snapshots, opening_balance=state.opening), rows


def _tables(names: tuple[str, ...], row: tuple) -> tuple[DealTable, SnapshotTable]:
    """One row (or part) of `accounts.sql.statistics_history_parts` as deal and snapshot columns."""
    n, times, deal_text, s_n, s_times, snapshot_text = row[2:]
    d = _integer_columns(deal_text, n, _DEAL_TEXT_COLUMNS)
    s = _integer_columns(snapshot_text, s_n, _SNAPSHOT_TEXT_COLUMNS)
    deals = DealTable(
        time=_pg_epoch(times),
        ticket=d[0],
        deal_type=d[1],
        entry=d[2],
        position_id=d[3],
        magic=d[4],
        symbol=d[5] - 1,  # array_position counts from 1
        symbols=names,
        volume=d[6],
        price=_prices(d[7]),
        profit=d[8],
        commission=d[9],
        swap=d[10],
        fee=d[11],
    )
    return deals, SnapshotTable(time=_pg_epoch(s_times), balance=s[0], equity=s[1], credit=s[2])


def _pg_epoch(raw: bytes | None) -> np.ndarray:
    """PostgreSQL's binary timestamps as Unix seconds, rounded as `datetime.timestamp()` rounds them."""
    micros = np.frombuffer(raw or b"", dtype=">i8").astype(np.int64) + _PG_EPOCH_US
    return micros / 1_000_000


def _prices(units: np.ndarray) -> np.ndarray:
    """Prices in 1/10^8 as floats, each the one nearest its decimal (as ``float(Decimal)``)."""
    prices = units / _PRICE_SCALE
    big = np.abs(units) >= _EXACT_INT  # not exact as a float: through Decimal
    if big.any():
        prices[big] = [float(Decimal(int(value)).scaleb(-8)) for value in units[big]]
    return prices


def _integer_columns(text: str | None, rows: int, width: int) -> np.ndarray:
    """``rows`` x ``width`` comma-separated numbers (decimals without their point) as ``width`` int64 columns."""
    values = (
        np.fromstring((text or "").replace(".", ""), dtype=np.int64, sep=",") if rows else np.zeros(0, dtype=np.int64)
    )
    if values.size != rows * width:  # numpy stops at the first value it cannot read
        raise ValueError(f"statistics history: expected {rows * width} numbers, read {values.size}")
    return values.reshape(rows, width).T.copy()


def statistics_history_portable(
    account: TradingAccount, *, start: datetime | None = None, end: datetime | None = None
) -> tuple[DealTable, SnapshotTable, int]:
    """`statistics_history` for databases other than PostgreSQL (development on SQLite): the ORM, row by row."""
    deals = Deal.objects.filter(account=account).order_by()
    snapshots = AccountSnapshot.objects.filter(account=account).order_by()
    opening = 0
    if start:
        deals, snapshots = deals.filter(time__gte=start), snapshots.filter(taken_at__gte=start)
        before = Deal.objects.filter(account=account, time__lt=start).exclude(deal_type=CREDIT)
        cash = before.values_list("profit", "commission", "swap", "fee")
        opening = int(sum((sum(row, Decimal(0)) for row in cash), Decimal(0)).scaleb(2))
    if end:
        deals, snapshots = deals.filter(time__lt=end), snapshots.filter(taken_at__lt=end)
    return (
        DealTable.from_records(deals.values(*DEAL_FIELDS)),
        SnapshotTable.from_records(snapshots.values("taken_at", "balance", "equity", "credit")),
        opening,
    )
