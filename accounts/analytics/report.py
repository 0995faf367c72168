"""The statistics payload (docs/analytics.md) read from a running state (`accounts.analytics.running`).

Nothing here looks at deals: every figure comes from the state's exact sums, extremes and ordered folds, so a
state built in one batch and one built in many give the same payload.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np

from .running import BALANCE_C, EQIDX, ESTIMATED, FALL, GAIN, SEQ, TIME, Running, chart_equity, settled
from .running_trades import (
    G_GL,
    G_GP,
    G_LONG,
    G_LOTS,
    G_PIPS,
    G_PIPS_N,
    G_PROFIT,
    G_TRADES,
    G_WINS,
    TradeState,
    consider_longest,
    consider_richest,
)
from .series import distribution
from .tables import DAY, DAYS_PER_MONTH, GUARDED, MIN_CAGR_DAYS, iso, lots, money, pct, pip_count, ratio


def report(state: Running, min_trades: int) -> dict:
    """The payload of ``state``, its pending points settled as things stand."""
    state = settled(state)
    n = state.deals
    times = [
        t for t in (state.first_time, state.last_time, state.snap_first_time, state.snap_last_time) if t is not None
    ]
    first_time, last_time = (min(times), max(times)) if times else (None, None)
    days = max((last_time - first_time) / DAY, 1.0) if first_time is not None and last_time is not None else None
    gain = state.index - 1.0 if n else 0.0
    base = state.opening + state.deposits + state.bonuses
    summary: dict[str, Any] = {
        "period_start": iso(first_time) if first_time is not None else None,
        "period_end": iso(last_time) if last_time is not None else None,
        "days": ratio(days, 2) if days else None,
        "deals": n,
        "opening_balance": money(state.opening),
        "closing_balance": money(state.balance),
        "deposits": money(state.deposits),
        "withdrawals": money(state.withdrawals),
        "bonuses": money(state.bonuses),
        "credit": money(state.credit_total),
        "net_profit": money(state.cum_pl),
        "gain_pct": pct(gain),
        "absolute_gain_pct": pct(state.cum_pl / base) if base > 0 else None,
        "daily_gain_pct": pct(_compound(gain, 1.0 / days)) if days else None,
        "monthly_gain_pct": pct(_compound(gain, DAYS_PER_MONTH / days)) if days else None,
        # Annualising less than a month of history extrapolates noise into absurd figures.
        "cagr_pct": pct(_compound(gain, 365.2425 / days)) if days and days >= MIN_CAGR_DAYS else None,
        "commissions": money(state.commissions),
        "swaps": money(state.swaps),
        "fees": money(state.fees),
    }
    summary.update(_drawdowns(state))
    ts = state.trades
    summary.update(trade_summary(ts))
    insufficient: list[str] = []
    if ts.n < min_trades:
        insufficient = list(GUARDED)
        for name in GUARDED:
            summary[name] = None
    series = {
        **chart(state),
        "monthly_returns": monthly_returns(state.months),
        "by_symbol": breakdown(ts.groups["symbol"], "symbol", str),
        "by_magic": breakdown(ts.groups["magic"], "magic", int),
        "by_hour": calendar(ts.groups["hour"], "hour", 24),
        "by_weekday": calendar(ts.groups["weekday"], "weekday", 7),
        "profit_distribution": distribution(ts.profit),
    }
    return {
        "summary": summary,
        "insufficient": insufficient,
        "series": series,
        "min_trades": min_trades,
        "trades_count": ts.n,
    }


def _compound(gain: float, exponent: float) -> float | None:
    if gain <= -1.0:
        return -1.0
    try:
        return math.expm1(math.log1p(gain) * exponent)
    except OverflowError:
        return None


def _drawdowns(s: Running) -> dict:
    out: dict[str, Any] = {}
    if s.deals:
        out["max_drawdown_balance_pct"] = pct(s.bpct_max)
        out["max_drawdown_balance"] = money(s.babs_max)
        out["max_drawdown_balance_peak_at"] = _at(s.babs_from) if s.babs_max > 0 else None
        out["max_drawdown_balance_trough_at"] = _at(s.babs_to) if s.babs_max > 0 else None
    else:
        out.update(
            dict.fromkeys(
                (
                    "max_drawdown_balance_pct",
                    "max_drawdown_balance",
                    "max_drawdown_balance_peak_at",
                    "max_drawdown_balance_trough_at",
                )
            )
        )
    enough = s.snaps >= 2
    out["max_drawdown_equity_pct"] = pct(s.epct_max) if enough else None
    out["max_drawdown_equity"] = money(s.eabs_max) if enough else None
    out["max_drawdown_equity_peak_at"] = _at(s.eabs_from) if enough and s.eabs_max > 0 else None
    out["max_drawdown_equity_trough_at"] = _at(s.eabs_to) if enough and s.eabs_max > 0 else None
    return out


def _at(epoch: float | None) -> str | None:
    return None if epoch is None else iso(epoch)


def chart(state: Running) -> dict:
    """Equity & balance, growth and drawdown rows over the thinned timeline (first, last and deepest kept)."""
    thin, first, keep, last = state.thin, state.first_point, state.keep_point, state.last_point
    if not len(first):
        return {"equity": [], "growth": [], "drawdown": []}
    rows = np.vstack([thin, first, keep, last])
    _, unique = np.unique(rows[:, SEQ], return_index=True)
    rows = rows[unique]
    base = first[0, GAIN] if first[0, GAIN] > 0 else 1.0
    columns = (
        rows[:, TIME].tolist(),
        chart_equity(rows, state.credit_offset).tolist(),
        rows[:, BALANCE_C].tolist(),
        rows[:, ESTIMATED].tolist(),
        (rows[:, GAIN] / base - 1.0).tolist(),
        (rows[:, EQIDX] - 1.0).tolist(),
        rows[:, FALL].tolist(),
    )
    formatted = [_chart_row(*values) for values in zip(*columns, strict=True)]
    return {
        "equity": [list(f[0]) for f in formatted],
        "growth": [list(f[1]) for f in formatted],
        "drawdown": [list(f[2]) for f in formatted],
    }


@lru_cache(maxsize=8192)  # a few charts (about 6 MB)
def _chart_row(t: float, equity: float, balance: float, estimated: float, gain: float, eq_gain: float, fall: float):
    """One point's three chart rows, formatted (cached: most points of a chart are the same from read to read)."""
    stamp = iso(t)
    return (stamp, money(equity), money(balance), bool(estimated)), (stamp, pct(gain), pct(eq_gain)), (stamp, pct(fall))


def monthly_returns(months: dict) -> list:
    if not months:
        return []
    keys = sorted(int(k) for k in months)
    out, start, end = [], 1.0, 1.0
    for m in range(keys[0], keys[-1] + 1):
        row = months.get(str(m))
        end, profit, trades = (row[0], row[1], row[2]) if row else (end, 0, 0)
        ret = end / start - 1.0 if start > 0 else None
        out.append(
            {"month": str(np.datetime64(m, "M")), "return_pct": pct(ret), "profit": money(profit), "trades": trades}
        )
        start = end
    return out


def breakdown(groups: dict, label: str, cast) -> list:
    rows = []
    for key, g in groups.items():
        n, gp, gl = g[G_TRADES], g[G_GP], g[G_GL]
        rows.append(
            {
                label: cast(key),
                "trades": n,
                "long_trades": g[G_LONG],
                "short_trades": n - g[G_LONG],
                "winning_trades": g[G_WINS],
                "win_rate_pct": pct(g[G_WINS] / n) if n else None,
                "profit": money(g[G_PROFIT]),
                "gross_profit": money(gp),
                "gross_loss": money(gl),
                "profit_factor": ratio(gp / -gl) if gl else None,
                "expectancy": money(float(g[G_PROFIT]) / n) if n else None,
                "pips": pip_count(g[G_PIPS]) if g[G_PIPS_N] else None,
                "lots": lots(g[G_LOTS]),
            }
        )
    rows.sort(key=lambda row: (-row["trades"], str(row[label])))
    return rows


def calendar(groups: dict, unit: str, size: int) -> list:
    rows = []
    for k in range(size):
        g = groups.get(str(k)) or [0] * (G_LOTS + 1)
        n = g[G_TRADES]
        rows.append(
            {unit: k, "trades": n, "profit": money(g[G_PROFIT]), "win_rate_pct": pct(g[G_WINS] / n) if n else None}
        )
    return rows


def trade_summary(ts: TradeState) -> dict:
    n, wins, losses, longs = ts.n, ts.wins, ts.losses, ts.longs
    shorts = n - longs
    total = ts.gross_profit + ts.gross_loss
    out: dict[str, Any] = {
        "trades": n,
        "long_trades": longs,
        "short_trades": shorts,
        "winning_trades": wins,
        "losing_trades": losses,
        "breakeven_trades": n - wins - losses,
        "lots": lots(ts.lots),
        "gross_profit": money(ts.gross_profit),
        "gross_loss": money(ts.gross_loss),
        "trades_profit": money(total),
        "profit_factor": ratio(ts.gross_profit / -ts.gross_loss) if ts.gross_loss else None,
        "expectancy": money(float(total) / n) if n else None,
        "expectancy_pips": pip_count(ts.pips_sum / ts.pips_n) if ts.pips_n else None,
        "average_win": money(float(ts.gross_profit) / wins) if wins else None,
        "average_loss": money(float(ts.gross_loss) / losses) if losses else None,
        "average_win_pips": pip_count(ts.win_pips_sum / ts.win_pips_n) if ts.win_pips_n else None,
        "average_loss_pips": pip_count(ts.loss_pips_sum / ts.loss_pips_n) if ts.loss_pips_n else None,
        "win_rate_pct": pct(wins / n) if n else None,
        "long_win_rate_pct": pct(ts.long_wins / longs) if longs else None,
        "short_win_rate_pct": pct((wins - ts.long_wins) / shorts) if shorts else None,
        "best_trade": _trade_ref(ts.best) if n else None,
        "worst_trade": _trade_ref(ts.worst) if n else None,
        "best_trade_pips": pip_count(ts.pips_max) if ts.pips_n else None,
        "worst_trade_pips": pip_count(ts.pips_min) if ts.pips_n else None,
        "average_trade_seconds": ratio(ts.seconds_sum / n, 1) if n else None,
    }
    out.update(_streaks(ts))
    out.update(_dispersion(ts))
    return out


def _trade_ref(ref: list | None) -> dict | None:
    if ref is None:
        return None
    return {"position": ref[0], "profit": money(ref[1]), "closed_at": iso(ref[2])}


def _streaks(ts: TradeState) -> dict:
    keys = (
        ("1", "max_consecutive_wins", "max_consecutive_profit"),
        ("-1", "max_consecutive_losses", "max_consecutive_loss"),
    )
    if not ts.n:
        return {name: None for _, a, b in keys for name in (a, b)}
    out: dict[str, Any] = {}
    for sign, longest_key, richest_key in keys:
        longest, richest = dict(ts.longest), dict(ts.richest)
        if ts.run is not None and str(ts.run[0]) == sign:  # the run still going is the last one
            consider_longest(longest, ts.run[0], ts.run[1], ts.run[2])
            consider_richest(richest, ts.run[0], ts.run[1], ts.run[2])
        for key, best in ((longest_key, longest.get(sign)), (richest_key, richest.get(sign))):
            out[key] = (
                {"count": best[0], "money": money(best[2])} if best is not None else {"count": 0, "money": "0.00"}
            )
    return out


def _dispersion(ts: TradeState) -> dict:
    """Statistics that only mean something over many trades (withheld below MIN_TRADES)."""
    out: dict[str, Any] = dict.fromkeys(GUARDED)
    n = ts.n
    if n >= 2:
        s1 = ts.gross_profit + ts.gross_loss
        out["std_dev_profit"] = money(math.sqrt((n * ts.profit_sq - s1 * s1) / (n * (n - 1))))
    m = ts.r_n
    if m >= 2:
        mean = ts.r_sum / m
        sd = math.sqrt(max((ts.r_sq - ts.r_sum * mean) / (m - 1), 0.0))
        out["std_dev_returns_pct"] = pct(sd)
        out["sharpe"] = ratio(mean / sd) if sd > 0 else None
        downside = math.sqrt(ts.r_down / m)
        out["sortino"] = ratio(mean / downside) if downside > 0 else None
    if m:
        out["ahpr_pct"] = pct(ts.r_hpr / m - 1.0)
        out["ghpr_pct"] = pct(math.expm1(ts.r_log / m)) if not ts.r_ruined else -100.0
    out["z_score"] = ratio(_z_score(ts))
    out["risk_of_ruin_pct"] = _risk_of_ruin(ts)
    return out


def _z_score(ts: TradeState) -> float | None:
    n, w = ts.nz_n, ts.nz_wins
    lo = n - w
    if n < 2 or w == 0 or lo == 0:
        return None
    x = 2.0 * w * lo
    denom = math.sqrt(x * (x - n) / (n - 1)) if x > n else 0.0
    return (n * (ts.nz_runs - 0.5) - x) / denom if denom else None


def _risk_of_ruin(ts: TradeState) -> float | None:
    if not ts.wins or not ts.losses:
        return None
    q_win = ts.wins / (ts.wins + ts.losses)
    avg_win = float(ts.gross_profit) / ts.wins
    avg_loss = -float(ts.gross_loss) / ts.losses
    edge = (q_win * avg_win - (1 - q_win) * avg_loss) / (q_win * avg_win + (1 - q_win) * avg_loss)
    if edge <= 0:
        return 100.0
    if ts.last_return is None:
        return None
    capital = ts.last_return[0] / ts.last_return[1]
    return pct(((1 - edge) / (1 + edge)) ** (capital / avg_loss), 6)
