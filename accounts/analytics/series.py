"""Drawdowns and chart series: balance and equity curves, monthly returns, breakdowns by symbol, magic and time."""

from __future__ import annotations

import numpy as np

from .tables import DAY, DISTRIBUTION_BINS, SnapshotTable, iso, lots, money, pct, pip_count, ratio


def _dd(values: np.ndarray, relative: bool) -> tuple[float, int, int, np.ndarray]:
    """Largest fall from a running peak: (size, peak index, trough index, fall at every point)."""
    peak = np.maximum.accumulate(values)
    if relative:
        with np.errstate(divide="ignore", invalid="ignore"):
            fall = np.where(peak > 0, 1.0 - values / peak, 0.0)
    else:
        fall = peak - values
    trough = int(np.argmax(fall))
    size = float(fall[trough])
    peak_at = int(np.flatnonzero(values[: trough + 1] == peak[trough])[0]) if size > 0 else trough
    return size, peak_at, trough, fall


def balance_drawdown(times: np.ndarray, index: np.ndarray, cum_pl: np.ndarray) -> dict:
    keys = (
        "max_drawdown_balance_pct",
        "max_drawdown_balance",
        "max_drawdown_balance_peak_at",
        "max_drawdown_balance_trough_at",
    )
    if not len(times):
        return dict.fromkeys(keys)
    # A start point at 1.0 / 0 money so a first losing deal counts as a fall from the start.
    t = np.r_[times[0], times]
    size_pct, _, _, _ = _dd(np.r_[1.0, index], relative=True)
    size_abs, peak_i, trough_i, _ = _dd(np.r_[0, cum_pl].astype(np.float64), relative=False)
    return {
        "max_drawdown_balance_pct": pct(size_pct),
        "max_drawdown_balance": money(size_abs),
        "max_drawdown_balance_peak_at": iso(t[peak_i]) if size_abs > 0 else None,
        "max_drawdown_balance_trough_at": iso(t[trough_i]) if size_abs > 0 else None,
    }


def _equity_curves(snaps: SnapshotTable, deal_times: np.ndarray, flows: np.ndarray):
    """Own equity (equity less credit), flow-adjusted P/L and a chained index, at each snapshot."""
    order = np.argsort(snaps.time, kind="stable")
    st = snaps.time[order]
    own = (snaps.equity - snaps.credit)[order].astype(np.float64)
    cum_flows = np.r_[0, np.cumsum(flows)].astype(np.float64)
    flows_at = cum_flows[np.searchsorted(deal_times, st, side="right")]
    pl_curve = own - flows_at
    step_flow = np.diff(flows_at)
    prev = own[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = np.where(prev > 0, (own[1:] - step_flow) / np.where(prev > 0, prev, 1), 1.0)
    idx = np.r_[1.0, np.cumprod(np.clip(growth, 0.0, None))]
    return st, own, pl_curve, idx


def equity_drawdown(snaps: SnapshotTable, deal_times: np.ndarray, flows: np.ndarray) -> dict:
    keys = (
        "max_drawdown_equity_pct",
        "max_drawdown_equity",
        "max_drawdown_equity_peak_at",
        "max_drawdown_equity_trough_at",
    )
    if len(snaps) < 2:
        return dict.fromkeys(keys)
    st, _, pl_curve, idx = _equity_curves(snaps, deal_times, flows)
    size_pct, _, _, _ = _dd(idx, relative=True)
    size_abs, peak_i, trough_i, _ = _dd(pl_curve, relative=False)
    return {
        "max_drawdown_equity_pct": pct(size_pct),
        "max_drawdown_equity": money(size_abs),
        "max_drawdown_equity_peak_at": iso(st[peak_i]) if size_abs > 0 else None,
        "max_drawdown_equity_trough_at": iso(st[trough_i]) if size_abs > 0 else None,
    }


# --- Series -------------------------------------------------------------------------------


def _month_keys(times: np.ndarray) -> np.ndarray:
    return times.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64)  # months since 1970-01


def monthly_returns(times: np.ndarray, index: np.ndarray, pl_cents: np.ndarray, t: dict) -> list:
    if not len(times):
        return []
    months = _month_keys(times)
    first, last = int(months[0]), int(months[-1])
    # Index at the end of each month = index at the month's last deal (carried over empty months).
    ends = np.searchsorted(months, np.arange(first, last + 1), side="right") - 1
    end_index = index[ends]
    start_index = np.r_[1.0, end_index[:-1]]
    profit = np.bincount(months - first, weights=pl_cents, minlength=last - first + 1)
    trade_months = _month_keys(t["close_time"]) - first if len(t["close_time"]) else np.zeros(0, dtype=np.int64)
    trade_months = trade_months[(trade_months >= 0) & (trade_months <= last - first)]
    counts = np.bincount(trade_months, minlength=last - first + 1)
    out = []
    for k in range(last - first + 1):
        label = str(np.datetime64(first + k, "M"))
        ret = end_index[k] / start_index[k] - 1.0 if start_index[k] > 0 else None
        out.append({"month": label, "return_pct": pct(ret), "profit": money(profit[k]), "trades": int(counts[k])})
    return out


def _group_stats(t: dict, idx: np.ndarray) -> dict:
    p = t["profit"][idx]
    n = len(p)
    gp, gl = int(p[p > 0].sum()), int(p[p < 0].sum())
    pips = t["pips"][idx]
    return {
        "trades": n,
        "long_trades": int(t["long"][idx].sum()),
        "short_trades": int(n - t["long"][idx].sum()),
        "winning_trades": int((p > 0).sum()),
        "win_rate_pct": pct((p > 0).sum() / n) if n else None,
        "profit": money(int(p.sum())),
        "gross_profit": money(gp),
        "gross_loss": money(gl),
        "profit_factor": ratio(gp / -gl) if gl else None,
        "expectancy": money(p.mean()) if n else None,
        "pips": pip_count(np.nansum(pips)) if np.isfinite(pips).any() else None,
        "lots": lots(int(t["lots"][idx].sum())),
    }


def breakdown(t: dict, keys: np.ndarray, names: list[str] | None, label: str) -> list:
    if not len(keys):
        return []
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    bounds = np.flatnonzero(np.r_[True, sk[1:] != sk[:-1], True])
    rows = []
    for a, b in zip(bounds[:-1], bounds[1:], strict=False):
        key = int(sk[a])
        rows.append({label: names[key] if names is not None else key, **_group_stats(t, order[a:b])})
    rows.sort(key=lambda row: (-row["trades"], str(row[label])))  # stable whatever the codes
    return rows


def calendar(t: dict, unit: str) -> list:
    close = t["close_time"]
    if unit == "hour":
        keys = ((close // 3600) % 24).astype(np.int64) if len(close) else np.zeros(0, dtype=np.int64)
        size = 24
    else:  # 1970-01-01 was a Thursday: shift so 0 is Monday
        keys = ((close // DAY + 3) % 7).astype(np.int64) if len(close) else np.zeros(0, dtype=np.int64)
        size = 7
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    rows = []
    for k in range(size):
        a, b = np.searchsorted(sk, k, "left"), np.searchsorted(sk, k, "right")
        p = t["profit"][order[a:b]]
        rows.append(
            {
                unit: k,
                "trades": int(len(p)),
                "profit": money(int(p.sum())),
                "win_rate_pct": pct((p > 0).sum() / len(p)) if len(p) else None,
            }
        )
    return rows


def distribution(profit: np.ndarray) -> list:
    if not len(profit):
        return []
    lo, hi = int(profit.min()), int(profit.max())
    if lo == hi:
        return [{"from": money(lo), "to": money(hi), "count": int(len(profit))}]
    edges = np.linspace(lo, hi, DISTRIBUTION_BINS + 1)
    counts, _ = np.histogram(profit, bins=edges)
    return [
        {"from": money(edges[i]), "to": money(edges[i + 1]), "count": int(counts[i])} for i in range(DISTRIBUTION_BINS)
    ]
