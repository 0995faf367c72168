"""The database entry points of the statistics: `statistics_for_account` and `chart_for_account`.

The read itself is `accounts.analytics.columns.statistics_history` (re-exported here); kept apart from
`accounts.selectors` so that the processes that only need the common read paths never load numpy.
"""

from __future__ import annotations

from datetime import date, datetime

from accounts import ports

from . import summary
from .columns import statistics_history, statistics_history_portable
from .curves import account_curves, chart_series, ledger, window
from .statistics import compute_statistics, period_bounds, sort_deals

__all__ = ["chart_for_account", "statistics_for_account", "statistics_history", "statistics_history_portable"]


def statistics_for_account(account, *, date_from: date | None = None, date_to: date | None = None, viewer=None) -> dict:
    """Statistics of one account over whole UTC days (both bounds optional, inclusive).

    The whole history (no period, no plan window) of a long history comes from the account's stored summary
    (`accounts.analytics.summary`: the state stored before, plus what arrived since); a period reads
    the deals, snapshots and opening balance in one query (`statistics_history`) and hands them to the pure
    `accounts.analytics.statistics.compute_statistics`. Both give the same result. Callers check access first (`restrict`).
    The owner's plan bounds the period (its history window) and the parts shown to ``viewer``
    (`accounts.ports.history_start`, `analytics_view`).
    """
    start, end = period_bounds(date_from, date_to)
    floor = ports.history_start(account.owner_id, viewer=viewer)
    if floor is not None and (start is None or start < floor):
        start = floor
    whole = start is None and end is None
    if whole and summary.worth_summarising(account):
        result = summary.whole_history_statistics(account)  # the stored summary and what arrived since
    else:
        deals, snapshots, opening = statistics_history(account, start=start, end=end)
        result = compute_statistics(deals, snapshots, opening_balance=opening)
        if whole:
            summary.note_history_size(account, len(deals) + len(snapshots))
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
