"""Trading statistics of one account: every figure, breakdown and chart series, from deals and snapshots.

Pure, vectorised functions; every formula is described in docs/analytics.md. The database read that
feeds them is `accounts.analytics.history`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np

from .curves import account_curves, chart_series, ledger
from .series import (
    balance_drawdown,
    breakdown,
    calendar,
    distribution,
    equity_drawdown,
    monthly_returns,
)
from .tables import (
    BALANCE,
    BONUS,
    COMMISSION_TYPES,
    DAY,
    DAYS_PER_MONTH,
    GUARDED,
    MIN_CAGR_DAYS,
    MIN_TRADES,
    DealTable,
    SnapshotTable,
    empty_snapshots,
    iso,
    money,
    pct,
    ratio,
)
from .trades import closed_trades, trade_summary


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
    snapshots = snapshots if snapshots is not None else empty_snapshots()
    d = sort_deals(deals)
    n = len(d)
    kind = d.deal_type
    led = ledger(d, opening_balance)
    cash, is_flow, is_credit, is_pl = led.cash, led.is_flow, led.is_credit, led.is_pl
    balance_after, balance_before, index = led.balance_after, led.balance_before, led.index
    gain = float(index[-1] - 1.0) if n else 0.0

    pl_cents = np.where(is_pl, cash, 0)
    cum_pl = np.cumsum(pl_cents)
    net_profit = int(cum_pl[-1]) if n else 0
    deposits = int(cash[is_flow & (kind == BALANCE) & (cash > 0)].sum())
    withdrawals = int(-cash[is_flow & (kind == BALANCE) & (cash < 0)].sum())
    bonuses = int(cash[kind == BONUS].sum())
    credit_total = int(cash[is_credit].sum())

    trades = closed_trades(d, cash, balance_before, digits or {})
    t = trades
    tn = len(t["profit"])

    first_time = float(d.time[0]) if n else None
    last_time = float(d.time[-1]) if n else None
    if len(snapshots):
        first_time = (
            float(min(first_time, snapshots.time.min())) if first_time is not None else float(snapshots.time.min())
        )
        last_time = (
            float(max(last_time, snapshots.time.max())) if last_time is not None else float(snapshots.time.max())
        )
    days = max((last_time - first_time) / DAY, 1.0) if first_time is not None and last_time is not None else None

    summary: dict[str, Any] = {
        "period_start": iso(first_time) if first_time is not None else None,
        "period_end": iso(last_time) if last_time is not None else None,
        "days": ratio(days, 2) if days else None,
        "deals": n,
        "opening_balance": money(opening_balance),
        "closing_balance": money(balance_after[-1] if n else opening_balance),
        "deposits": money(deposits),
        "withdrawals": money(withdrawals),
        "bonuses": money(bonuses),
        "credit": money(credit_total),
        "net_profit": money(net_profit),
        "gain_pct": pct(gain),
        "absolute_gain_pct": pct(net_profit / (opening_balance + deposits + bonuses))
        if (opening_balance + deposits + bonuses) > 0
        else None,
        "daily_gain_pct": pct(_compound(gain, 1.0 / days)) if days else None,
        "monthly_gain_pct": pct(_compound(gain, DAYS_PER_MONTH / days)) if days else None,
        # Annualising less than a month of history extrapolates noise into absurd figures.
        "cagr_pct": pct(_compound(gain, 365.2425 / days)) if days and days >= MIN_CAGR_DAYS else None,
        "commissions": money(int(d.commission.sum()) + int(cash[np.isin(kind, COMMISSION_TYPES)].sum())),
        "swaps": money(int(d.swap.sum())),
        "fees": money(int(d.fee.sum())),
    }
    summary.update(balance_drawdown(d.time, index, cum_pl))
    summary.update(equity_drawdown(snapshots, d.time, np.where(is_flow, cash, 0)))
    summary.update(trade_summary(t))
    insufficient: list[str] = []
    if tn < min_trades:
        insufficient = list(GUARDED)
        for name in GUARDED:
            summary[name] = None

    series = {
        # Equity & balance, growth and drawdown over the whole period (accounts.analytics.curves).
        **chart_series(account_curves(d, led, snapshots, opening_balance)),
        "monthly_returns": monthly_returns(d.time, index, pl_cents, t),
        "by_symbol": breakdown(t, t["symbol"], [d.symbols[i] for i in range(len(d.symbols))], "symbol"),
        "by_magic": breakdown(t, t["magic"], None, "magic"),
        "by_hour": calendar(t, "hour"),
        "by_weekday": calendar(t, "weekday"),
        "profit_distribution": distribution(t["profit"]),
    }
    return {
        "summary": summary,
        "insufficient": insufficient,
        "series": series,
        "min_trades": min_trades,
        "trades_count": tn,
    }


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


def _compound(gain: float, exponent: float) -> float | None:
    if gain <= -1.0:
        return -1.0
    try:
        return math.expm1(math.log1p(gain) * exponent)
    except OverflowError:
        return None


def period_bounds(date_from: date | None, date_to: date | None) -> tuple[datetime | None, datetime | None]:
    """Whole UTC days: [date_from 00:00, date_to + 1 day 00:00)."""
    start = datetime.combine(date_from, time.min, tzinfo=UTC) if date_from else None
    end = datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=UTC) if date_to else None
    return start, end
