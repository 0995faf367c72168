"""The database entry points of the statistics: `statistics_for_account` and `chart_for_account`.

The read itself is `accounts.analytics.columns.statistics_history` (re-exported here); kept apart from
`accounts.selectors` so that the processes that only need the common read paths never load numpy.
"""

from __future__ import annotations

from datetime import date, datetime

from accounts import ports

from . import summary
from .columns import history_state_of, statistics_history, statistics_history_portable
from .curves import account_curves, chart_series, ledger, window
from .report import report
from .statistics import period_bounds, sort_deals
from .tables import MIN_TRADES

__all__ = ["chart_for_account", "statistics_for_account", "statistics_history", "statistics_history_portable"]


def statistics_for_account(account, *, date_from: date | None = None, date_to: date | None = None, viewer=None) -> dict:
    """Statistics of one account over whole UTC days (both bounds optional, inclusive).

    The whole history (no period, no plan window) of a long history comes from the account's stored summary
    (`accounts.analytics.summary`: the state stored before, plus what arrived since); a period (or a history not seen
    long yet) reads the deals, snapshots and opening balance in one statement and folds them
    (`accounts.analytics.columns.history_state_of`: in parts, each folded while the next is computed, for a history
    seen long before). All give what the pure `accounts.analytics.statistics.compute_statistics` gives. Callers
    check access first (`restrict`).
    The owner's plan bounds the period (its history window) and the parts shown to ``viewer``
    (`accounts.ports.history_start`, `analytics_view`).
    """
    start, end = period_bounds(date_from, date_to)
    floor = ports.history_start(account.owner_id, viewer=viewer)
    if floor is not None and (start is None or start < floor):
        start = floor
    whole = start is None and end is None
    noted = summary.noted_history_size(account)  # the size of its last long read, or None
    if whole and noted is not None:
        result = summary.whole_history_statistics(account)  # the stored summary and what arrived since
    else:
        state, rows = history_state_of(account, start=start, end=end, parts=summary.parts_for(noted))
        result = report(state, MIN_TRADES)
        summary.note_history_size(account, rows)
    result["account_id"] = str(account.pk)
    result["currency"] = account.currency
    result["date_from"] = date_from.isoformat() if date_from else None
    result["date_to"] = date_to.isoformat() if date_to else None
    return ports.analytics_view(result, account.owner_id, viewer=viewer)


def chart_for_account(account, *, start: datetime | None = None, end: datetime | None = None, viewer=None) -> dict:
    """The equity & balance, growth and drawdown rows of ``account`` over [start, end] (both optional).

    The curves are built from the whole history the owner's plan shows (the balance needs every deal since
    the first deposit), then cut to the range, with the state carried to its edges; growth and drawdown
    start afresh at the range's start.
    """
    floor = ports.history_start(account.owner_id, viewer=viewer)
    deals, snapshots, opening = statistics_history(account, start=floor)
    d = sort_deals(deals)
    curves = account_curves(d, ledger(d, opening), snapshots, opening)
    cut = window(curves, start.timestamp() if start else None, end.timestamp() if end else None)
    return {
        "account_id": str(account.pk),
        "currency": account.currency,
        "start": start.isoformat().replace("+00:00", "Z") if start else None,
        "end": end.isoformat().replace("+00:00", "Z") if end else None,
        **chart_series(cut),
    }
