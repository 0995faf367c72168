"""Closed trades from deals; and the streak, dispersion, runs-test and risk-of-ruin formulas over a trades table.

The payload reads these figures from running aggregates (`accounts.analytics.running_trades`, `report`); the
functions here compute them straight from a table of trades, the reference the tests hold the aggregates to.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .tables import (
    BUY,
    ENTRY_IN,
    ENTRY_INOUT,
    GUARDED,
    SELL,
    DealTable,
    money,
    pct,
    pip_size,
    price_digits,
    ratio,
)


def closed_trades(d: DealTable, cash: np.ndarray, balance_before: np.ndarray, digits: Mapping[str, int]) -> dict:
    """Closed positions: deals grouped by position id, in order of closing."""
    sel = np.flatnonzero((d.deal_type == BUY) | (d.deal_type == SELL))
    if not len(sel):
        return _no_trades()
    pos = d.position_id[sel]
    # Group contiguously by position, time order inside (deals are already time-sorted).
    order = sel[np.argsort(pos, kind="stable")]
    pos = d.position_id[order]
    starts = np.flatnonzero(np.r_[True, pos[1:] != pos[:-1]])
    entry = d.entry[order]
    is_in = entry == ENTRY_IN
    is_exit = ~is_in
    vol = d.volume[order]
    price = d.price[order]
    in_vol = np.add.reduceat(np.where(is_in, vol, 0), starts)
    out_vol = np.add.reduceat(np.where(is_exit & (entry != ENTRY_INOUT), vol, 0), starts)
    has_exit = np.add.reduceat(is_exit.astype(np.int64), starts) > 0
    has_inout = np.add.reduceat((entry == ENTRY_INOUT).astype(np.int64), starts) > 0
    closed = has_exit & ((in_vol <= out_vol) | has_inout | (in_vol == 0))
    if not closed.any():
        return _no_trades()

    profit = np.add.reduceat(cash[order], starts)
    first = order[starts]
    exit_time = np.where(is_exit, d.time[order], -np.inf)
    close_time = np.maximum.reduceat(exit_time, starts)
    # The closing deal: the last exit deal of each group (groups are time-ordered inside).
    exit_rank = np.where(is_exit, np.arange(len(order)), -1)
    close_idx = order[np.maximum.reduceat(exit_rank, starts)]
    open_time = d.time[first]
    first_is_in = d.entry[first] == ENTRY_IN
    long = np.where(first_is_in, d.deal_type[first] == BUY, d.deal_type[first] == SELL)
    lot_units = np.where(in_vol > 0, in_vol, np.add.reduceat(np.where(is_exit, vol, 0), starts))
    pv_in = np.add.reduceat(np.where(is_in, price * vol, 0.0), starts)
    exit_vol = np.add.reduceat(np.where(is_exit, vol, 0), starts)
    pv_out = np.add.reduceat(np.where(is_exit, price * vol, 0.0), starts)
    symbol = d.symbol[first]

    # Pip size per symbol from the digits its prices show (or the caller's override).
    pip = np.full(len(d.symbols), np.nan)
    trade_sel = d.symbol[sel]
    trade_price = d.price[sel]
    sym_order = np.argsort(trade_sel, kind="stable")
    sorted_codes = trade_sel[sym_order]
    bounds = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1], True])
    for a, b in zip(bounds[:-1], bounds[1:], strict=False):
        code = int(sorted_codes[a])
        name = d.symbols[code]
        dg = digits[name] if name in digits else price_digits(trade_price[sym_order[a:b]])
        pip[code] = pip_size(int(dg))
    with np.errstate(divide="ignore", invalid="ignore"):
        entry_price = np.where(in_vol > 0, pv_in / np.where(in_vol > 0, in_vol, 1), np.nan)
        exit_price = np.where(exit_vol > 0, pv_out / np.where(exit_vol > 0, exit_vol, 1), np.nan)
        pips = (exit_price - entry_price) * np.where(long, 1.0, -1.0) / pip[symbol]
        base = balance_before[close_idx].astype(np.float64)
        returns = np.where(base > 0, profit / np.where(base > 0, base, 1), np.nan)

    keep = np.flatnonzero(closed)
    by_close = keep[np.lexsort((pos[starts][keep], close_time[keep]))]
    return {
        "position": pos[starts][by_close],
        "profit": profit[by_close].astype(np.int64),
        "open_time": open_time[by_close],
        "close_time": close_time[by_close],
        "long": long[by_close].astype(bool),
        "lots": lot_units[by_close].astype(np.int64),
        "pips": pips[by_close],
        "returns": returns[by_close],
        "symbol": symbol[by_close],
        "magic": d.magic[first][by_close],
    }


def _no_trades() -> dict:
    f, i = np.zeros(0, dtype=np.float64), np.zeros(0, dtype=np.int64)
    return {
        "position": i,
        "profit": i,
        "open_time": f,
        "close_time": f,
        "long": np.zeros(0, dtype=bool),
        "lots": i,
        "pips": f,
        "returns": f,
        "symbol": i,
        "magic": i,
    }


def streaks(profit: np.ndarray) -> dict:
    """Longest runs of wins and losses (by count, ties to the larger money) and the richest runs."""
    out: dict[str, Any] = {
        "max_consecutive_wins": None,
        "max_consecutive_losses": None,
        "max_consecutive_profit": None,
        "max_consecutive_loss": None,
    }
    if not len(profit):
        return out
    sign = np.sign(profit)
    starts = np.flatnonzero(np.r_[True, sign[1:] != sign[:-1]])
    run_sign = sign[starts]
    run_len = np.diff(np.r_[starts, len(sign)])
    run_sum = np.add.reduceat(profit, starts)
    for s, longest_key, richest_key in (
        (1, "max_consecutive_wins", "max_consecutive_profit"),
        (-1, "max_consecutive_losses", "max_consecutive_loss"),
    ):
        idx = np.flatnonzero(run_sign == s)
        if not len(idx):
            out[longest_key] = {"count": 0, "money": money(0)}
            out[richest_key] = {"count": 0, "money": money(0)}
            continue
        # Longest: most trades; among equals, the largest absolute money.
        best = idx[np.lexsort((np.abs(run_sum[idx]), run_len[idx]))[-1]]
        out[longest_key] = {"count": int(run_len[best]), "money": money(run_sum[best])}
        rich = idx[np.argmax(np.abs(run_sum[idx]))]
        out[richest_key] = {"count": int(run_len[rich]), "money": money(run_sum[rich])}
    return out


def dispersion(t: dict) -> dict:
    """Statistics that only mean something over many trades (withheld below MIN_TRADES)."""
    p = t["profit"].astype(np.float64)
    r = t["returns"][np.isfinite(t["returns"])]
    n = len(p)
    out: dict[str, Any] = dict.fromkeys(GUARDED)
    if n >= 2:
        out["std_dev_profit"] = money(p.std(ddof=1))
    if len(r) >= 2:
        sd = r.std(ddof=1)
        out["std_dev_returns_pct"] = pct(sd)
        out["sharpe"] = ratio(r.mean() / sd) if sd > 0 else None
        downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
        out["sortino"] = ratio(r.mean() / downside) if downside > 0 else None
    if len(r):
        hpr = 1.0 + r
        out["ahpr_pct"] = pct(hpr.mean() - 1.0)
        out["ghpr_pct"] = pct(math.expm1(float(np.log(hpr).mean()))) if (hpr > 0).all() else -100.0
    out["z_score"] = ratio(z_score(t["profit"]))
    out["risk_of_ruin_pct"] = risk_of_ruin(t)
    return out


def z_score(profit: np.ndarray) -> float | None:
    """Runs test on the win/loss sequence (break-even trades left out)."""
    s = np.sign(profit[profit != 0])
    n = len(s)
    w = int((s > 0).sum())
    lo = n - w
    if n < 2 or w == 0 or lo == 0:
        return None
    runs = 1 + int((s[1:] != s[:-1]).sum())
    x = 2.0 * w * lo
    denom = math.sqrt(x * (x - n) / (n - 1)) if x > n else 0.0
    return (n * (runs - 0.5) - x) / denom if denom else None


def risk_of_ruin(t: dict) -> float | None:
    """Chance of losing the whole balance, from win rate, payoff and capital in average losses."""
    p = t["profit"]
    r = t["returns"]
    wins, losses = p > 0, p < 0
    if not wins.any() or not losses.any():
        return None
    decided = wins.sum() + losses.sum()
    q_win = wins.sum() / decided
    avg_win = p[wins].mean()
    avg_loss = -p[losses].mean()
    edge = (q_win * avg_win - (1 - q_win) * avg_loss) / (q_win * avg_win + (1 - q_win) * avg_loss)
    if edge <= 0:
        return 100.0
    # Capital units: the last trade's balance base over the average loss.
    finite = np.flatnonzero(np.isfinite(r) & (r != 0))
    if not len(finite):
        return None
    last = finite[-1]
    capital = p[last] / r[last]
    units = capital / avg_loss
    return pct(((1 - edge) / (1 + edge)) ** units, 6)
