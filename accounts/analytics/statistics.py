"""Trading statistics of one account: every figure, breakdown and chart series, from deals and snapshots.

Pure functions; every formula is described in docs/analytics.md. The deals and snapshots are folded into a
running state (`accounts.analytics.running`) and the payload is read from it (`accounts.analytics.report`);
the stored per-account summary (`accounts.analytics.summary`) folds only what arrived since. The database
read that feeds them is `accounts.analytics.history`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta

import numpy as np

from .report import report
from .running import Running, fold
from .tables import MIN_TRADES, DealTable, SnapshotTable, empty_snapshots


def compute_statistics(
    deals: DealTable,
    snapshots: SnapshotTable | None = None,
    *,
    opening_balance: int = 0,
    digits: Mapping[str, int] | None = None,
    min_trades: int = MIN_TRADES,
) -> dict:
    """Every statistic, breakdown and chart series for one account.

    ``deals`` are the account's deals in the period; ``opening_balance`` (cents) is the balance
    before the first of them (0 when the history starts with the first deposit). ``digits``
    overrides the quote digits derived from deal prices, per symbol.
    """
    return report(history_state(deals, snapshots, opening_balance=opening_balance, digits=digits), min_trades)


def history_state(
    deals: DealTable,
    snapshots: SnapshotTable | None = None,
    *,
    opening_balance: int = 0,
    digits: Mapping[str, int] | None = None,
) -> Running:
    """The running state of a whole history (one batch: a fresh state takes any)."""
    state = Running.start(opening_balance)
    fold(state, sort_deals(deals), snapshots if snapshots is not None else empty_snapshots(), digits)
    return state


def sort_deals(deals: DealTable) -> DealTable:
    """``deals`` in time order (ticket order within a second), as every computation here reads them."""
    return _take(deals, np.lexsort((deals.ticket, deals.time)))


def _take(d: DealTable, order: np.ndarray) -> DealTable:
    return DealTable(
        time=d.time[order],
        ticket=d.ticket[order],
        deal_type=d.deal_type[order],
        entry=d.entry[order],
        position_id=d.position_id[order],
        magic=d.magic[order],
        symbol=d.symbol[order],
        symbols=d.symbols,
        volume=d.volume[order],
        price=d.price[order],
        profit=d.profit[order],
        commission=d.commission[order],
        swap=d.swap[order],
        fee=d.fee[order],
    )


def period_bounds(date_from: date | None, date_to: date | None) -> tuple[datetime | None, datetime | None]:
    """Whole UTC days: [date_from 00:00, date_to + 1 day 00:00)."""
    start = datetime.combine(date_from, time.min, tzinfo=UTC) if date_from else None
    end = datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=UTC) if date_to else None
    return start, end
