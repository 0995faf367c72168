"""The account's curves over its whole history: balance, equity, growth (time-weighted) and drawdown.

The balance is rebuilt from the deals since the first deposit; snapshots are few and recent (they start when
the account is first synced), so they cannot carry the curves alone. Equity is measured at each snapshot and
estimated at every other point: balance + credit + the floating P/L interpolated between the neighbouring
snapshots (0 outside the snapshots' span). Every row says whether its equity was estimated.

Money stays int64 cents (exact) and leaves as a Decimal string; percentages leave as floats.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .running import POINT_WIDTH, SEQ, TIME, thin_add
from .tables import BALANCE, BONUS, CANCELED_TYPES, CREDIT, DealTable, SnapshotTable, iso, money, pct


@dataclass(frozen=True, slots=True)
class Ledger:
    """Per deal (in time order): its cash, what kind of movement it is, the balance after it, the growth index."""

    cash: np.ndarray
    is_flow: np.ndarray  # deposits, withdrawals and bonuses: money in or out, not performance
    is_credit: np.ndarray  # credit lives outside the balance
    is_pl: np.ndarray
    balance_after: np.ndarray
    balance_before: np.ndarray
    index: np.ndarray  # time-weighted growth index after each deal (1.0 = no gain)


def ledger(d: DealTable, opening_balance: int = 0) -> Ledger:
    """The balance after every deal and the time-weighted return index (``d`` sorted by time, ticket)."""
    kind = d.deal_type
    cash = d.profit + d.commission + d.swap + d.fee
    is_flow = (kind == BALANCE) | (kind == BONUS)
    is_credit = kind == CREDIT
    is_pl = ~is_flow & ~is_credit & ~np.isin(kind, CANCELED_TYPES)
    delta = np.where(is_credit, 0, cash)
    balance_after = opening_balance + np.cumsum(delta)
    balance_before = balance_after - delta
    # Time-weighted return: chain balance growth over P/L deals only, so cash flows do not count
    # (each deposit or withdrawal starts a new sub-period; the gain is the product of the sub-periods' growth).
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = np.where(
            is_pl & (balance_before > 0), balance_after / np.where(balance_before > 0, balance_before, 1), 1.0
        )
    index = np.cumprod(np.clip(growth, 0.0, None)) if len(d) else np.ones(0)
    return Ledger(cash, is_flow, is_credit, is_pl, balance_after, balance_before, index)


@dataclass(frozen=True, slots=True)
class Curves:
    """Every deal and snapshot time, merged in time order, with the account's state at each."""

    time: np.ndarray  # epoch seconds
    balance: np.ndarray  # cents
    equity: np.ndarray  # cents (credit included, as MT5 reports it)
    credit: np.ndarray  # cents
    estimated: np.ndarray  # bool: equity interpolated, no snapshot at this point
    flows: np.ndarray  # cumulative deposits - withdrawals + bonuses, cents
    gain_index: np.ndarray  # balance time-weighted index (Myfxbook's "gain")

    def __len__(self) -> int:
        return len(self.time)


def account_curves(d: DealTable, led: Ledger, snaps: SnapshotTable, opening_balance: int = 0) -> Curves:
    """Merge deals (sorted, with their ``led``\\ ger) and snapshots into one timeline."""
    n = len(d)
    s_order = np.argsort(snaps.time, kind="stable")
    st = snaps.time[s_order]
    # Deals first at equal times: a snapshot taken at a deal's second already shows it.
    time = np.r_[d.time, st].astype(np.float64)
    is_snap = np.r_[np.zeros(n, dtype=bool), np.ones(len(st), dtype=bool)]
    after = np.r_[np.arange(1, n + 1), np.searchsorted(d.time, st, side="right")].astype(np.int64)
    order = np.argsort(time, kind="stable")
    time, is_snap, after = time[order], is_snap[order], after[order]

    balance = np.r_[opening_balance, led.balance_after][after]
    credit = np.r_[0, np.cumsum(np.where(led.is_credit, led.cash, 0))][after]
    flows = np.r_[0, np.cumsum(np.where(led.is_flow, led.cash, 0))][after]
    gain_index = np.r_[1.0, led.index][after]
    equity = balance + credit
    if len(st):
        s_equity = snaps.equity[s_order]
        s_credit = snaps.credit[s_order]
        floating = (s_equity - snaps.balance[s_order] - s_credit).astype(np.float64)
        # Credit given before the period (or never seen as a deal) is known from the first snapshot.
        credit = credit + (int(s_credit[0]) - int(credit[np.flatnonzero(is_snap)[0]]))
        inside = (time >= st[0]) & (time <= st[-1])
        estimate = balance + credit + np.where(inside, np.rint(np.interp(time, st, floating)), 0).astype(np.int64)
        measured = np.empty(len(time), dtype=np.int64)
        measured[is_snap] = s_equity
        equity = np.where(is_snap, measured, estimate)
    return Curves(time, balance, equity, credit, ~is_snap, flows, gain_index)


def equity_index(c: Curves) -> np.ndarray:
    """Time-weighted index of own equity (equity less credit) at every point, cash flows neutral."""
    own = (c.equity - c.credit).astype(np.float64)
    if not len(own):
        return np.ones(0)
    step_flow = np.diff(c.flows).astype(np.float64)
    prev = own[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = np.where(prev > 0, (own[1:] - step_flow) / np.where(prev > 0, prev, 1), 1.0)
    return np.r_[1.0, np.cumprod(np.clip(growth, 0.0, None))]


def window(c: Curves, start: float | None = None, end: float | None = None) -> Curves:
    """The points in [start, end], with the state carried to both edges so the curve spans the whole range."""
    if not len(c):
        return c
    lo = 0 if start is None else int(np.searchsorted(c.time, start, side="left"))
    hi = len(c) if end is None else int(np.searchsorted(c.time, end, side="right"))
    picks = list(range(lo, hi))
    times = list(c.time[lo:hi])
    estimated = list(c.estimated[lo:hi])
    if start is not None and lo > 0 and (not times or times[0] > start):
        picks.insert(0, lo - 1)
        times.insert(0, start)
        estimated.insert(0, True)
    if end is not None and end > c.time[-1] and picks:
        picks.append(picks[-1])
        times.append(end)
        estimated.append(True)
    if not picks:
        return Curves(*(a[:0] for a in (c.time, c.balance, c.equity, c.credit, c.estimated, c.flows, c.gain_index)))
    take = np.asarray(picks, dtype=np.int64)
    return Curves(
        time=np.asarray(times, dtype=np.float64),
        balance=c.balance[take],
        equity=c.equity[take],
        credit=c.credit[take],
        estimated=np.asarray(estimated, dtype=bool),
        flows=c.flows[take],
        gain_index=c.gain_index[take],
    )


def _thin(times: np.ndarray, keep: int | None = None) -> np.ndarray:
    """At most MAX_POINTS indices spread over time (`accounts.analytics.running.thin_add`: the last point of each
    time bucket on a power-of-two grid), the first, the last and ``keep`` kept: as the statistics' chart."""
    n = len(times)
    rows = np.zeros((n, POINT_WIDTH))
    rows[:, SEQ], rows[:, TIME] = np.arange(n), times
    _, kept = thin_add(0, rows[:0], rows)
    extra = [0, n - 1] + ([keep] if keep is not None else [])
    return np.unique(np.r_[kept[:, SEQ].astype(np.int64), extra])


def chart_series(c: Curves) -> dict:
    """The chart rows of ``c``: equity & balance, growth and drawdown, over the same thinned times.

    - ``equity``: ``[time, equity, balance, estimated]`` (money as strings; ``estimated`` is true where no
      snapshot measured the equity);
    - ``growth``: ``[time, gain %, equity gain %]``, both time-weighted from the first point (deposits and
      withdrawals neutral); the gain is the balance's, as Myfxbook's "gain";
    - ``drawdown``: ``[time, % below the running peak]`` of the equity index.
    """
    if not len(c):
        return {"equity": [], "growth": [], "drawdown": []}
    eq_index = equity_index(c)
    base = c.gain_index[0] if c.gain_index[0] > 0 else 1.0
    gain = c.gain_index / base - 1.0
    eq_gain = eq_index - 1.0
    peak = np.maximum.accumulate(eq_index)
    with np.errstate(divide="ignore", invalid="ignore"):
        fall = np.where(peak > 0, 1.0 - eq_index / peak, 0.0)
    idx = _thin(c.time, keep=int(np.argmax(fall)))
    stamps = [iso(t) for t in c.time[idx].tolist()]
    equity = [
        [t, money(e), money(b), bool(x)]
        for t, e, b, x in zip(
            stamps, c.equity[idx].tolist(), c.balance[idx].tolist(), c.estimated[idx].tolist(), strict=True
        )
    ]
    growth = [[t, pct(g), pct(q)] for t, g, q in zip(stamps, gain[idx].tolist(), eq_gain[idx].tolist(), strict=True)]
    drawdown = [[t, pct(f)] for t, f in zip(stamps, fall[idx].tolist(), strict=True)]
    return {"equity": equity, "growth": growth, "drawdown": drawdown}
