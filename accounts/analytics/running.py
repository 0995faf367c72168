"""Running statistics: the state every figure of `compute_statistics` is read from, and the fold that feeds it.

`compute_statistics` folds a whole history into a fresh state in one batch; the stored per-account summary
(`accounts.analytics.summary`) folds each later batch of deals and snapshots into the state it saved. Both
give the same result to the last bit because every figure is kept as
- an exact integer (money in cents, counts, lots);
- a maximum, a minimum or a first/last element;
- a float fold in a fixed order: sums and products run left to right and continue from the stored value
  (``np.cumsum(np.r_[stored, batch])`` is ``((stored + a) + b) + ...`` whichever batch ``a`` and ``b`` come in).

A batch must come after what was folded before: deals after the last deal by (time, ticket), snapshots
after the last snapshot; `fold` answers False when it cannot be appended and the caller rebuilds from the
whole history. The chart points (deals and snapshots merged in time order) are committed once final: a
snapshot when a later deal was folded (no deal to come can land before it), a deal when a snapshot after
it was seen (its estimated equity is interpolated between the snapshots around it) or while the account has
no snapshot at all (0 floating P/L before the first one). The others wait in ``pending`` and
``pending_snaps`` and are settled provisionally for each payload (`settled`). The snapshots' equity
drawdown is folded as they are committed. Estimated equity is kept without the credit offset the first
snapshot shows (added when the payload is read), so a first snapshot arriving late changes nothing stored.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from .running_trades import TradeState, fold_trades
from .tables import BALANCE, BONUS, CANCELED_TYPES, COMMISSION_TYPES, CREDIT, MAX_POINTS, DealTable, SnapshotTable

# Columns of a chart point (a float64 row): its number in the timeline, time, equity and balance (cents),
# estimated (0/1), the balance gain index, the equity index and the fall below the equity index's peak.
SEQ, TIME, EQUITY, BALANCE_C, ESTIMATED, GAIN, EQIDX, FALL = range(8)
POINT_WIDTH = 8
# Columns of a pending deal point: time, balance, credit (as the deals show it), cumulative flows, gain index.
P_TIME, P_BALANCE, P_CREDIT, P_FLOWS, P_GAIN = range(5)
# Columns of a pending snapshot: time, balance, equity, credit.
S_TIME, S_BALANCE, S_EQUITY, S_CREDIT = range(4)
#: Snapshots waiting for a later deal beyond this many are committed anyway (a deal landing before a committed
#: snapshot then makes the summary rebuild): an account that stops trading does not grow its state.
MAX_PENDING_SNAPSHOTS = 2000
#: The stored form's version: a state stored by another version is rebuilt, never misread.
STATE_VERSION = 1


def _no_points(width: int = POINT_WIDTH) -> np.ndarray:
    return np.zeros((0, width), dtype=np.float64)


@dataclass
class Running:
    """Everything the statistics need, for the deals and snapshots folded so far (money in cents)."""

    opening: int = 0
    # Deals: count, first/last time, the last (time, ticket), the ledger after the last deal.
    deals: int = 0
    first_time: float | None = None
    last_time: float | None = None
    last_ticket: int | None = None
    balance: int = 0
    credit: int = 0  # credit deals' sum (the curves add the offset the first snapshot shows)
    flows: int = 0  # deposits, withdrawals and bonuses
    index: float = 1.0  # time-weighted growth index
    cum_pl: int = 0
    deposits: int = 0
    withdrawals: int = 0
    bonuses: int = 0
    credit_total: int = 0
    commissions: int = 0
    swaps: int = 0
    fees: int = 0
    # Balance drawdown: relative over [1, index...], money over [0, cum_pl...] with peak and trough times.
    bpct_peak: float = 1.0
    bpct_max: float = 0.0
    babs_peak: float = 0.0
    babs_peak_t: float | None = None
    babs_max: float = 0.0
    babs_from: float | None = None
    babs_to: float | None = None
    # Snapshots committed: count, first/last time, the last one's floating P/L, own equity, flows, equity index.
    seen_snap_time: float | None = None  # the last snapshot folded, committed or pending
    snaps: int = 0
    snap_first_time: float | None = None
    snap_last_time: float | None = None
    snap_floating: float = 0.0
    snap_own: float = 0.0
    snap_flows: float = 0.0
    eidx: float = 1.0
    epct_peak: float = 1.0
    epct_max: float = 0.0
    eabs_peak: float = 0.0
    eabs_peak_t: float | None = None
    eabs_max: float = 0.0
    eabs_from: float | None = None
    eabs_to: float | None = None
    credit_offset: int = 0
    # Chart curves, committed up to the last snapshot.
    points: int = 0
    committed_time: float | None = None  # the last committed point's time
    ledger_at: list = field(default_factory=list)  # [balance, credit, flows, gain] after the last committed deal
    chain: list = field(default_factory=list)  # [own, flows, eq_index, peak] at the last committed point
    first_point: np.ndarray = field(default_factory=lambda: _no_points())
    keep_point: np.ndarray = field(default_factory=lambda: _no_points())
    last_point: np.ndarray = field(default_factory=lambda: _no_points())
    thin_level: int = 0
    thin: np.ndarray = field(default_factory=lambda: _no_points())
    pending: np.ndarray = field(default_factory=lambda: _no_points(5))
    pending_snaps: np.ndarray = field(default_factory=lambda: _no_points(4))
    # Months (months since 1970-01, as a string): [index at the month's last deal, P/L cents, trades closed].
    months: dict = field(default_factory=dict)
    trades: TradeState = field(default_factory=TradeState)

    @classmethod
    def start(cls, opening_balance: int = 0) -> Running:
        return cls(opening=opening_balance, balance=opening_balance, ledger_at=[opening_balance, 0, 0, 1.0])

    # --- Storage: numpy arrays in an .npz, everything else as JSON (floats round-trip exactly) ---------------

    def to_bytes(self) -> bytes:
        meta: dict[str, Any] = {}
        arrays: dict[str, np.ndarray] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "trades":
                tmeta, tarrays = value.dump()
                meta["trades"] = tmeta
                arrays.update({f"t_{k}": v for k, v in tarrays.items()})
            elif isinstance(value, np.ndarray):
                arrays[f.name] = value
            else:
                meta[f.name] = value
        meta["version"] = STATE_VERSION
        buffer = io.BytesIO()
        arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        save: Any = np.savez  # (its stubs type **kwargs as its own keyword arguments)
        save(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Running:
        with np.load(io.BytesIO(raw), allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
        meta = json.loads(arrays.pop("__meta__").tobytes())
        if meta.pop("version", None) != STATE_VERSION:
            raise ValueError("analytics state of another version")
        trades = TradeState.load(meta.pop("trades"), {k[2:]: v for k, v in arrays.items() if k.startswith("t_")})
        own = {k: v for k, v in arrays.items() if not k.startswith("t_")}
        return cls(**meta, **own, trades=trades)


def fold(state: Running, deals: DealTable, snapshots: SnapshotTable, digits=None) -> bool:
    """Fold ``deals`` (sorted by time, ticket) and ``snapshots`` into ``state``; False if they come too early.

    On False the state may be half-updated: the caller drops it and rebuilds.
    """
    s_order = np.argsort(snapshots.time, kind="stable")
    snap_rows = np.column_stack(
        [snapshots.time[s_order], snapshots.balance[s_order], snapshots.equity[s_order], snapshots.credit[s_order]]
    ).astype(np.float64)
    n = len(deals)
    if n and state.last_time is not None:
        first = (float(deals.time[0]), int(deals.ticket[0]))
        if first <= (state.last_time, state.last_ticket):
            return False
    if n and state.snap_last_time is not None and float(deals.time[0]) <= state.snap_last_time:
        return False  # before a committed snapshot
    if len(snap_rows):
        first_snap = float(snap_rows[0, S_TIME])
        if state.seen_snap_time is not None and first_snap <= state.seen_snap_time:
            return False
        if state.committed_time is not None and first_snap <= state.committed_time:
            return False  # at or before a committed point (a deal at a snapshot's very time is inside its span)
    kind = deals.deal_type
    cash = deals.profit + deals.commission + deals.swap + deals.fee
    is_flow = (kind == BALANCE) | (kind == BONUS)
    is_credit = kind == CREDIT
    is_pl = ~is_flow & ~is_credit & ~np.isin(kind, CANCELED_TYPES)
    delta = np.where(is_credit, 0, cash)
    balance_after = state.balance + np.cumsum(delta)
    balance_before = balance_after - delta
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = np.where(
            is_pl & (balance_before > 0), balance_after / np.where(balance_before > 0, balance_before, 1), 1.0
        )
    index = np.cumprod(np.r_[state.index, np.clip(growth, 0.0, None)])[1:]
    pl_cents = np.where(is_pl, cash, 0)
    cum_pl = state.cum_pl + np.cumsum(pl_cents)
    credit_cum = state.credit + np.cumsum(np.where(is_credit, cash, 0))
    flows_cum = state.flows + np.cumsum(np.where(is_flow, cash, 0))
    if n and not fold_trades(state.trades, deals, cash, balance_before, digits or {}, state.months):
        return False
    if n:
        _fold_ledger(state, deals, cash, is_flow, is_credit, pl_cents, balance_after, index, cum_pl)
        state.credit, state.flows = int(credit_cum[-1]), int(flows_cum[-1])
    deal_points = np.column_stack([deals.time, balance_after, credit_cum, flows_cum, index]).astype(np.float64)
    if len(snap_rows):
        state.seen_snap_time = float(snap_rows[-1, S_TIME])
    _fold_curves(state, deal_points, snap_rows)
    return True


def settled(state: Running) -> Running:
    """A copy of ``state`` with every pending point committed as things stand (for reading a payload)."""
    if not len(state.pending) and not len(state.pending_snaps):
        return state
    view = replace(state)
    _fold_curves(view, _no_points(5), _no_points(4), commit_all=True)
    return view


def _fold_ledger(state, d, cash, is_flow, is_credit, pl_cents, balance_after, index, cum_pl) -> None:
    kind, t = d.deal_type, d.time
    if state.first_time is None:
        state.first_time = float(t[0])
        state.babs_peak_t = float(t[0])
    state.deals += len(d)
    state.last_time, state.last_ticket = float(t[-1]), int(d.ticket[-1])
    state.balance, state.index, state.cum_pl = int(balance_after[-1]), float(index[-1]), int(cum_pl[-1])
    balance_flow = is_flow & (kind == BALANCE)
    state.deposits += int(cash[balance_flow & (cash > 0)].sum())
    state.withdrawals += int(-cash[balance_flow & (cash < 0)].sum())
    state.bonuses += int(cash[kind == BONUS].sum())
    state.credit_total += int(cash[is_credit].sum())
    state.commissions += int(d.commission.sum()) + int(cash[np.isin(kind, COMMISSION_TYPES)].sum())
    state.swaps += int(d.swap.sum())
    state.fees += int(d.fee.sum())
    # Balance drawdown.
    state.bpct_peak, state.bpct_max, _ = _relative_fall(index, state.bpct_peak, state.bpct_max)
    dd = _money_fall(cum_pl.astype(np.float64), t, state.babs_peak, state.babs_peak_t, state.babs_max)
    if dd[2] > state.babs_max:
        state.babs_from, state.babs_to = dd[3], dd[4]
    state.babs_peak, state.babs_peak_t, state.babs_max = dd[0], dd[1], dd[2]
    # Months: the index at each month's last deal, the P/L of its deals.
    months = t.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64)
    ends = np.flatnonzero(np.r_[months[1:] != months[:-1], True])
    starts = np.r_[0, ends[:-1] + 1]
    profit = np.add.reduceat(pl_cents, starts)
    for m, end, p in zip(months[ends].tolist(), index[ends].tolist(), profit.tolist(), strict=True):
        row = state.months.setdefault(str(m), [1.0, 0, 0])
        row[0], row[1] = end, row[1] + int(p)


def _relative_fall(values: np.ndarray, peak: float, worst: float) -> tuple[float, float, np.ndarray]:
    """Running peak and largest relative fall after ``values``, continuing from ``peak`` and ``worst``."""
    peaks = np.maximum.accumulate(np.r_[peak, values])[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        fall = np.where(peaks > 0, 1.0 - values / peaks, 0.0)
    return float(peaks[-1]), max(worst, float(fall.max())), fall


def _money_fall(values: np.ndarray, times: np.ndarray, peak: float, peak_t, worst: float) -> tuple:
    """(peak, its first time, largest fall, its peak time, its trough time) after ``values``."""
    prior = np.r_[peak, values]
    peaks = np.maximum.accumulate(prior)
    rises = np.flatnonzero(prior[1:] > peaks[:-1])
    at = np.full(len(values), -1, dtype=np.int64)
    at[rises] = rises
    at = np.maximum.accumulate(at)
    fall = peaks[1:] - values
    k = int(np.argmax(fall))
    peak_times = np.where(at >= 0, times[np.maximum(at, 0)], np.nan)
    new_peak_t = float(peak_times[-1]) if at[-1] >= 0 else peak_t
    if float(fall[k]) > worst:
        from_t = float(peak_times[k]) if at[k] >= 0 else peak_t
        return float(peaks[-1]), new_peak_t, float(fall[k]), from_t, float(times[k])
    return float(peaks[-1]), new_peak_t, worst, None, None


def _fold_curves(state: Running, deal_points: np.ndarray, snap_rows: np.ndarray, commit_all: bool = False) -> None:
    """Merge the pending and new points in time order (deals first at equal times); commit those now final."""
    deal_rows = np.vstack([state.pending, deal_points])
    snaps = np.vstack([state.pending_snaps, snap_rows])
    nd, ns = len(deal_rows), len(snaps)
    if not nd and not ns:
        return
    order = np.argsort(np.r_[deal_rows[:, P_TIME], snaps[:, S_TIME]], kind="stable")
    is_snap = order >= nd
    time = np.r_[deal_rows[:, P_TIME], snaps[:, S_TIME]][order]
    # Ledger values at every point: a deal's own, a snapshot's from the last deal before it.
    last_deal = np.maximum.accumulate(np.where(~is_snap, np.arange(len(time)), -1))
    ledger = np.vstack([np.asarray(state.ledger_at, dtype=np.float64)[None, :], deal_rows[:, 1:5]])
    values = ledger[np.where(last_deal >= 0, order[np.maximum(last_deal, 0)] + 1, 0)]
    commit = len(time) if commit_all or state.seen_snap_time is None else _final_prefix(state, time, is_snap)
    if commit:
        prev_snap = (state.snap_last_time, state.snap_floating) if state.snaps else None
        first_snap = state.snap_first_time if state.snaps else (float(snaps[0, S_TIME]) if ns else None)
        in_commit = is_snap[:commit]
        if in_commit.any():
            _fold_snapshots(state, snaps[order[:commit][in_commit] - nd], values[:commit][in_commit])
        rows = _points(state, time[:commit], values[:commit], in_commit, snaps, prev_snap, first_snap)
        _commit(state, rows)
        last = values[commit - 1]
        state.ledger_at = [int(last[0]), int(last[1]), int(last[2]), float(last[3])]
        state.committed_time = float(time[commit - 1])
    rest, rest_snap = order[commit:], is_snap[commit:]
    state.pending = deal_rows[rest[~rest_snap]] if len(rest) else _no_points(5)
    state.pending_snaps = snaps[rest[rest_snap] - nd] if len(rest) else _no_points(4)


def _final_prefix(state: Running, time: np.ndarray, is_snap: np.ndarray) -> int:
    """How many merged points are final: up to the first snapshot no later than the last deal (a deal to come may
    land before it), and no deal after the last snapshot seen (the next snapshot changes its estimate)."""
    at = np.flatnonzero(is_snap)
    if not len(at):
        return 0  # every point here is a deal after the last snapshot seen
    final = time[at] < state.last_time if state.last_time is not None else np.zeros(len(at), dtype=bool)
    final[: max(len(at) - MAX_PENDING_SNAPSHOTS, 0)] = True
    waiting = np.flatnonzero(~final)
    return int(min(at[waiting[0]] if len(waiting) else len(time), at[-1] + 1))


def _fold_snapshots(state: Running, snaps: np.ndarray, at: np.ndarray) -> None:
    """Fold committed snapshots (``at``: the ledger values at each) into the equity drawdown."""
    st = snaps[:, S_TIME]
    equity, credit, balance = (snaps[:, c].astype(np.int64) for c in (S_EQUITY, S_CREDIT, S_BALANCE))
    if state.snaps == 0:
        state.snap_first_time = float(st[0])
        state.credit_offset = int(credit[0]) - int(at[0, 1])
        state.eabs_peak_t = float(st[0])
    own = (equity - credit).astype(np.float64)
    flows_at = at[:, 2]
    pl_curve = own - flows_at
    if state.snaps == 0:
        steps_own, steps_prev, steps_flow = own[1:], own[:-1], np.diff(flows_at)
        state.eabs_peak = float(pl_curve[0])
    else:
        steps_own, steps_prev = own, np.r_[state.snap_own, own[:-1]]
        steps_flow = np.diff(np.r_[state.snap_flows, flows_at])
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = np.where(steps_prev > 0, (steps_own - steps_flow) / np.where(steps_prev > 0, steps_prev, 1), 1.0)
    chained = np.cumprod(np.r_[1.0 if state.snaps == 0 else state.eidx, np.clip(growth, 0.0, None)])
    eidx = chained if state.snaps == 0 else chained[1:]
    state.epct_peak, state.epct_max, _ = _relative_fall(eidx, state.epct_peak, state.epct_max)
    dd = _money_fall(pl_curve, st, state.eabs_peak, state.eabs_peak_t, state.eabs_max)
    if dd[2] > state.eabs_max:
        state.eabs_from, state.eabs_to = dd[3], dd[4]
    state.eabs_peak, state.eabs_peak_t, state.eabs_max = dd[0], dd[1], dd[2]
    state.eidx = float(eidx[-1])
    state.snaps += len(st)
    state.snap_last_time = float(st[-1])
    state.snap_floating = float(equity[-1] - balance[-1] - credit[-1])
    state.snap_own, state.snap_flows = float(own[-1]), float(flows_at[-1])


def _points(state, time, values, is_snap, snaps, prev_snap, first_snap) -> np.ndarray:
    """Chart rows for committed points: equity measured at snapshots; elsewhere balance + credit + the floating
    P/L interpolated between the snapshots around the point (``snaps``: every snapshot not committed before,
    ``prev_snap``: the last one that was), 0 outside the snapshots' span. Estimated equity is stored without
    the credit offset (`chart_equity` adds it); snapshots' own equity uses it (it is final once one is committed).

    The EQIDX and FALL columns hold own equity and cumulative flows until `_chain` turns them into the index."""
    balance = values[:, 0].astype(np.int64)
    raw_credit = values[:, 1].astype(np.int64)
    floating = np.zeros(len(time), dtype=np.int64)
    if len(snaps) or prev_snap is not None:
        xp = snaps[:, S_TIME]
        fp = (snaps[:, S_EQUITY] - snaps[:, S_BALANCE] - snaps[:, S_CREDIT]).astype(np.float64)
        if prev_snap is not None:
            xp, fp = np.r_[prev_snap[0], xp], np.r_[prev_snap[1], fp]
        inside = (time >= first_snap) & (time <= xp[-1])
        floating = np.where(inside, np.rint(np.interp(time, xp, fp)), 0).astype(np.int64)
    measured = np.zeros(len(time), dtype=np.int64)
    measured[is_snap] = snaps[: int(is_snap.sum()), S_EQUITY].astype(np.int64)  # committed ones come first
    rows = np.zeros((len(time), POINT_WIDTH), dtype=np.float64)
    rows[:, TIME] = time
    rows[:, EQUITY] = np.where(is_snap, measured, balance + raw_credit + floating)
    rows[:, BALANCE_C] = balance
    rows[:, ESTIMATED] = ~is_snap
    rows[:, GAIN] = values[:, 3]
    own = np.where(is_snap, measured - raw_credit - state.credit_offset, balance + floating)
    rows[:, EQIDX] = own.astype(np.float64)
    rows[:, FALL] = values[:, 2]
    return rows


def _chain(state: Running, rows: np.ndarray) -> tuple[np.ndarray, list]:
    """Turn the own-equity and flows columns of ``rows`` into the equity index and its fall; the chain after."""
    own, flows = rows[:, EQIDX].copy(), rows[:, FALL].copy()
    if state.chain:
        prev_own = np.r_[state.chain[0], own[:-1]]
        step = np.diff(np.r_[state.chain[1], flows])
        start, peak0 = state.chain[2], state.chain[3]
        with np.errstate(divide="ignore", invalid="ignore"):
            growth = np.where(prev_own > 0, (own - step) / np.where(prev_own > 0, prev_own, 1), 1.0)
        eq = np.cumprod(np.r_[start, np.clip(growth, 0.0, None)])[1:]
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            prev = own[:-1]
            growth = np.where(prev > 0, (own[1:] - np.diff(flows)) / np.where(prev > 0, prev, 1), 1.0)
        eq = np.r_[1.0, np.cumprod(np.clip(growth, 0.0, None))]
        peak0 = 1.0
    peak = np.maximum.accumulate(np.r_[peak0, eq])[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        fall = np.where(peak > 0, 1.0 - eq / peak, 0.0)
    out = rows.copy()
    out[:, EQIDX], out[:, FALL] = eq, fall
    out[:, SEQ] = state.points + np.arange(len(rows))
    return out, [float(own[-1]), float(flows[-1]), float(eq[-1]), float(peak[-1])]


def _add_points(state: Running, rows: np.ndarray) -> None:
    """Append finished chart rows: first/last/deepest point and the thinned buckets."""
    if not len(rows):
        return
    if not len(state.first_point):
        state.first_point = rows[:1].copy()
    k = int(np.argmax(rows[:, FALL]))
    if not len(state.keep_point) or rows[k, FALL] > state.keep_point[0, FALL]:
        state.keep_point = rows[k : k + 1].copy()
    state.last_point = rows[-1:].copy()
    state.thin_level, state.thin = thin_add(state.thin_level, state.thin, rows)
    state.points += len(rows)


def _commit(state: Running, rows: np.ndarray) -> None:
    rows, state.chain = _chain(state, rows)
    _add_points(state, rows)


def _keys(rows: np.ndarray, level: int) -> np.ndarray:
    if level == 0:
        return rows[:, SEQ]
    return np.floor(rows[:, TIME] / 2.0 ** (level - 1))


def _buckets(rows: np.ndarray, level: int) -> int:
    keys = _keys(rows, level)
    return int(1 + np.count_nonzero(keys[1:] != keys[:-1])) if len(keys) else 0


def _limit(level: int) -> int:
    return MAX_POINTS if level == 0 else MAX_POINTS - 3


def thin_add(level: int, kept: np.ndarray, rows: np.ndarray) -> tuple[int, np.ndarray]:
    """The last point of each time bucket, buckets 2**(level - 1) seconds wide on a grid from the epoch
    (level 0: every point), at the finest level leaving at most MAX_POINTS - 3 buckets (MAX_POINTS at level 0).

    Levels only grow as points arrive and a coarser bucket is a union of finer ones, so the buckets kept for a
    history are the same whether its points came in one batch or many."""
    allp = np.vstack([kept, rows])
    if _buckets(allp, level) > _limit(level):
        lo, hi = level + 1, 64
        while lo < hi:  # the number of buckets never grows with the level
            mid = (lo + hi) // 2
            if _buckets(allp, mid) <= _limit(mid):
                hi = mid
            else:
                lo = mid + 1
        level = lo
    keys = _keys(allp, level)
    last = np.r_[keys[1:] != keys[:-1], True] if len(keys) else np.zeros(0, dtype=bool)
    return level, allp[last]


def chart_equity(rows: np.ndarray, credit_offset: int) -> np.ndarray:
    """The equity shown at chart rows: estimated rows get the credit offset the first snapshot showed."""
    return rows[:, EQUITY] + credit_offset * rows[:, ESTIMATED]
