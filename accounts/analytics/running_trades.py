"""Closed trades as running aggregates: what the trade statistics, breakdowns and streaks are read from.

Deals of positions still open wait in ``TradeState.open`` (with their cash and the balance before them) until
their position closes; the closed trade is then computed by `accounts.analytics.trades.closed_trades` from
all its deals, exactly as a one-batch computation would. A batch that touches a position already counted
(a late deal of a closed trade), or that shows a symbol's prices with more digits than before (its pip size
changes), cannot be folded: `fold_trades` answers False and the caller rebuilds.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from .tables import BUY, DAY, SELL, DealTable, price_digits
from .trades import closed_trades

# Columns of the open-positions buffer (float64 rows; integers there stay below 2**53 except magic and
# tickets, kept in their own int64 array).
O_TIME, O_TYPE, O_ENTRY, O_SYMBOL, O_VOLUME, O_PRICE, O_CASH, O_BEFORE = range(8)
O_WIDTH = 8
# Columns of the int64 part: ticket, position, magic.
OI_TICKET, OI_POSITION, OI_MAGIC = range(3)
# A group row: trades, long, winners, profit, gross profit, gross loss, pips sum, pips seen, lots.
G_TRADES, G_LONG, G_WINS, G_PROFIT, G_GP, G_GL, G_PIPS, G_PIPS_N, G_LOTS = range(9)


def _group_row() -> list:
    return [0, 0, 0, 0, 0, 0, 0.0, 0, 0]


@dataclass
class TradeState:
    symbols: list = field(default_factory=list)  # names; the buffer's symbol codes index this list
    digits: dict = field(default_factory=dict)  # quote digits seen per symbol
    open_f: np.ndarray = field(default_factory=lambda: np.zeros((0, O_WIDTH)))
    open_i: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), dtype=np.int64))
    max_position: int | None = None  # the largest position id of a closed trade
    profit: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    last: list | None = None  # [close_time, position] of the last trade
    n: int = 0
    longs: int = 0
    long_wins: int = 0
    wins: int = 0
    losses: int = 0
    lots: int = 0
    gross_profit: int = 0
    gross_loss: int = 0
    profit_sq: int = 0  # exact sum of squares (Python int)
    pips_sum: float = 0.0
    pips_n: int = 0
    win_pips_sum: float = 0.0
    win_pips_n: int = 0
    loss_pips_sum: float = 0.0
    loss_pips_n: int = 0
    pips_max: float | None = None
    pips_min: float | None = None
    seconds_sum: float = 0.0
    best: list | None = None  # [position, profit, close_time]
    worst: list | None = None
    run: list | None = None  # the current run: [sign, count, money]
    longest: dict = field(default_factory=dict)  # sign -> [count, |money|, money]
    richest: dict = field(default_factory=dict)
    nz_n: int = 0
    nz_wins: int = 0
    nz_runs: int = 0
    nz_last: int = 0
    r_n: int = 0
    r_sum: float = 0.0
    r_sq: float = 0.0
    r_down: float = 0.0
    r_hpr: float = 0.0
    r_log: float = 0.0
    r_ruined: bool = False
    last_return: list | None = None  # [profit, return] of the last trade with a finite, non-zero return
    groups: dict = field(default_factory=lambda: {"symbol": {}, "magic": {}, "hour": {}, "weekday": {}})

    def dump(self) -> tuple[dict, dict]:
        meta, arrays = {}, {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                arrays[f.name] = value
            else:
                meta[f.name] = value
        if len(self.profit) and np.abs(self.profit).max() < 2**31:  # half the bytes to store (the bulk of it)
            arrays["profit"] = self.profit.astype(np.int32)
        return meta, arrays

    @classmethod
    def load(cls, meta: dict, arrays: dict) -> TradeState:
        arrays["profit"] = arrays["profit"].astype(np.int64)
        return cls(**meta, **arrays)


def _seq_sum(start: float, values: np.ndarray) -> float:
    """``start`` + the values, added left to right (the same float whatever the batches)."""
    return float(np.cumsum(np.r_[start, values])[-1]) if len(values) else start


def fold_trades(ts: TradeState, d: DealTable, cash: np.ndarray, before: np.ndarray, digits, months: dict) -> bool:
    """Fold the trade deals of ``d`` (sorted) into ``ts``; False when the batch cannot be appended."""
    sel = np.flatnonzero((d.deal_type == BUY) | (d.deal_type == SELL))
    if not len(sel):
        return True
    positions = d.position_id[sel]
    if ts.max_position is not None:
        # A position that is neither open here nor newer than every closed one may be a closed trade's: rebuild.
        # (Position ids are ticket numbers: a new position's is larger than those of positions closed before.)
        unknown = positions[~np.isin(positions, ts.open_i[:, OI_POSITION])]
        if (unknown <= ts.max_position).any():
            return False
    # Symbol codes of this batch -> the state's list; quote digits per symbol.
    codes = np.empty(len(d.symbols), dtype=np.int64)
    for i, name in enumerate(d.symbols):
        if name not in ts.symbols:
            ts.symbols.append(name)
        codes[i] = ts.symbols.index(name)
    sym = codes[d.symbol[sel]]
    for code in np.unique(sym).tolist():
        name = ts.symbols[code]
        if name in digits:
            continue
        seen = price_digits(d.price[sel][sym == code])
        if seen > ts.digits.get(name, 0):
            if name in ts.groups["symbol"]:
                return False  # its pip size changes for trades already counted
            ts.digits[name] = seen
    of, oi = ts.open_f, ts.open_i

    def joined(buffered: np.ndarray, fresh: np.ndarray, dtype) -> np.ndarray:
        return np.concatenate([buffered.astype(dtype), fresh]) if len(buffered) else fresh

    i64 = np.int64
    cols = {
        "time": joined(of[:, O_TIME], d.time[sel], np.float64),
        "deal_type": joined(of[:, O_TYPE], d.deal_type[sel], i64),
        "entry": joined(of[:, O_ENTRY], d.entry[sel], i64),
        "symbol": joined(of[:, O_SYMBOL], sym, i64),
        "volume": joined(of[:, O_VOLUME], d.volume[sel], i64),
        "price": joined(of[:, O_PRICE], d.price[sel], np.float64),
        "ticket": joined(oi[:, OI_TICKET], d.ticket[sel], i64),
        "position_id": joined(oi[:, OI_POSITION], positions, i64),
        "magic": joined(oi[:, OI_MAGIC], d.magic[sel], i64),
    }
    cash_col, before_col = joined(of[:, O_CASH], cash[sel], i64), joined(of[:, O_BEFORE], before[sel], i64)
    zeros = np.zeros(len(cols["time"]), dtype=i64)
    names = tuple(ts.symbols)
    table = DealTable(**cols, symbols=names, profit=zeros, commission=zeros, swap=zeros, fee=zeros)
    pips_digits = {name: digits.get(name, ts.digits.get(name, 0)) for name in names}
    t = closed_trades(table, cash_col, before_col, pips_digits)
    still_open = np.ones(len(zeros), dtype=bool)
    if len(t["profit"]):
        first = [float(t["close_time"][0]), int(t["position"][0])]
        if ts.last is not None and first <= ts.last:
            return False  # would sort before a trade already counted
        ts.last = [float(t["close_time"][-1]), int(t["position"][-1])]
        still_open = ~np.isin(cols["position_id"], t["position"])
        _aggregate(ts, t, names, months)
    keep = [cols[c][still_open] for c in ("time", "deal_type", "entry", "symbol", "volume", "price")]
    ts.open_f = np.column_stack([*keep, cash_col[still_open], before_col[still_open]]).astype(np.float64)
    ts.open_i = np.column_stack([cols[c][still_open] for c in ("ticket", "position_id", "magic")]).astype(i64)
    return True


def _aggregate(ts: TradeState, t: dict, names: tuple, months: dict) -> None:
    p, long_, pips, r = t["profit"], t["long"], t["pips"], t["returns"]
    wins, losses = p > 0, p < 0
    top = int(t["position"].max())
    ts.max_position = top if ts.max_position is None else max(ts.max_position, top)
    ts.profit = np.r_[ts.profit, p]
    ts.n += len(p)
    ts.longs += int(long_.sum())
    ts.long_wins += int((long_ & wins).sum())
    ts.wins += int(wins.sum())
    ts.losses += int(losses.sum())
    ts.lots += int(t["lots"].sum())
    ts.gross_profit += int(p[wins].sum())
    ts.gross_loss += int(p[losses].sum())
    top = int(np.abs(p).max())
    if top < 2**31 and len(p) * top * top < 2**62:  # exact in int64
        ts.profit_sq += int(np.dot(p, p))
    else:
        ts.profit_sq += sum(v * v for v in p.tolist())
    fin = np.isfinite(pips)
    ts.pips_sum, ts.pips_n = _seq_sum(ts.pips_sum, pips[fin]), ts.pips_n + int(fin.sum())
    ts.win_pips_sum = _seq_sum(ts.win_pips_sum, pips[fin & wins])
    ts.win_pips_n += int((fin & wins).sum())
    ts.loss_pips_sum = _seq_sum(ts.loss_pips_sum, pips[fin & losses])
    ts.loss_pips_n += int((fin & losses).sum())
    if fin.any():
        hi, lo = float(pips[fin].max()), float(pips[fin].min())
        ts.pips_max = hi if ts.pips_max is None else max(ts.pips_max, hi)
        ts.pips_min = lo if ts.pips_min is None else min(ts.pips_min, lo)
    ts.seconds_sum = _seq_sum(ts.seconds_sum, t["close_time"] - t["open_time"])
    i, j = int(np.argmax(p)), int(np.argmin(p))
    if ts.best is None or int(p[i]) > ts.best[1]:
        ts.best = [int(t["position"][i]), int(p[i]), float(t["close_time"][i])]
    if ts.worst is None or int(p[j]) < ts.worst[1]:
        ts.worst = [int(t["position"][j]), int(p[j]), float(t["close_time"][j])]
    _streaks(ts, p)
    _runs_test(ts, p)
    _returns(ts, p, r)
    _groups(ts, t, names, months)


def _streaks(ts: TradeState, p: np.ndarray) -> None:
    """Runs of wins and losses: the finished ones update the longest and richest, the last one is carried."""
    sign = np.sign(p)
    starts = np.flatnonzero(np.r_[True, sign[1:] != sign[:-1]])
    run_sign = sign[starts]
    run_len = np.diff(np.r_[starts, len(sign)])
    run_sum = np.add.reduceat(p, starts)
    if ts.run is not None:
        if ts.run[0] == run_sign[0]:
            run_len[0] += ts.run[1]
            run_sum[0] += ts.run[2]
        else:
            run_sign, run_len, run_sum = (
                np.r_[c, a] for c, a in zip(ts.run, (run_sign, run_len, run_sum), strict=True)
            )
    for s in (1, -1):
        idx = np.flatnonzero(run_sign[:-1] == s)
        if not len(idx):
            continue
        size = np.abs(run_sum[idx])
        k = idx[np.lexsort((idx, size, run_len[idx]))[-1]]  # most trades, then most money, then the later
        consider_longest(ts.longest, s, int(run_len[k]), int(run_sum[k]))
        k = idx[int(np.argmax(size))]  # most money, the earlier
        consider_richest(ts.richest, s, int(run_len[k]), int(run_sum[k]))
    ts.run = [int(run_sign[-1]), int(run_len[-1]), int(run_sum[-1])]


def consider_longest(longest: dict, sign: int, count: int, money: int) -> None:
    """A later run of ``sign``: the longest so far if no shorter (ties to the larger money, then to the later)."""
    best = longest.get(str(sign))
    if best is None or (count, abs(money)) >= (best[0], best[1]):
        longest[str(sign)] = [count, abs(money), money]


def consider_richest(richest: dict, sign: int, count: int, money: int) -> None:
    """A later run of ``sign``: the richest so far if it has more money (ties to the earlier)."""
    best = richest.get(str(sign))
    if best is None or abs(money) > best[1]:
        richest[str(sign)] = [count, abs(money), money]


def _runs_test(ts: TradeState, p: np.ndarray) -> None:
    s = np.sign(p[p != 0])
    if not len(s):
        return
    changes = int((s[1:] != s[:-1]).sum())
    if ts.nz_n == 0:
        ts.nz_runs = 1 + changes
    else:
        ts.nz_runs += changes + int(int(s[0]) != ts.nz_last)
    ts.nz_n += len(s)
    ts.nz_wins += int((s > 0).sum())
    ts.nz_last = int(s[-1])


def _returns(ts: TradeState, p: np.ndarray, r: np.ndarray) -> None:
    fin = np.isfinite(r)
    rf = r[fin]
    if not len(rf):
        return
    ts.r_n += len(rf)
    ts.r_sum = _seq_sum(ts.r_sum, rf)
    ts.r_sq = _seq_sum(ts.r_sq, rf * rf)
    ts.r_down = _seq_sum(ts.r_down, np.minimum(rf, 0.0) ** 2)
    hpr = 1.0 + rf
    ts.r_hpr = _seq_sum(ts.r_hpr, hpr)
    if (hpr <= 0).any():
        ts.r_ruined = True
    if not ts.r_ruined:
        ts.r_log = _seq_sum(ts.r_log, np.log(hpr))
    nonzero = np.flatnonzero(fin & (r != 0))
    if len(nonzero):
        k = int(nonzero[-1])
        ts.last_return = [int(p[k]), float(r[k])]


def _groups(ts: TradeState, t: dict, names: tuple, months: dict) -> None:
    close = t["close_time"]
    month_keys, month_counts = np.unique(
        close.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64), return_counts=True
    )
    for m, c in zip(month_keys.tolist(), month_counts.tolist(), strict=True):
        months.setdefault(str(m), [1.0, 0, 0])[2] += c
    p, long_, pips, lots_ = t["profit"], t["long"], t["pips"], t["lots"]
    wins, losses = p > 0, p < 0
    columns = {
        "symbol": t["symbol"],
        "magic": t["magic"],
        "hour": ((close // 3600) % 24).astype(np.int64),
        "weekday": ((close // DAY + 3) % 7).astype(np.int64),
    }
    for kind, column in columns.items():
        if kind == "magic":
            keys, inv = np.unique(column, return_inverse=True)
        else:  # small non-negative codes: count straight into them
            inv = column
            keys = np.flatnonzero(np.bincount(column))
        k = int(inv.max()) + 1 if kind != "magic" else len(keys)
        sums = np.zeros((5, k), dtype=np.int64)
        np.add.at(sums[0], inv, p)
        np.add.at(sums[1], inv[wins], p[wins])
        np.add.at(sums[2], inv[losses], p[losses])
        np.add.at(sums[3], inv, lots_)
        counts = np.stack([np.bincount(inv, minlength=k), np.bincount(inv[long_], minlength=k)])
        win_counts = np.bincount(inv[wins], minlength=k)
        table: dict[str, Any] = ts.groups[kind]
        for key in keys.tolist():
            g = key if kind != "magic" else int(np.searchsorted(keys, key))
            label = names[key] if kind == "symbol" else str(key)
            row = table.setdefault(label, _group_row())
            row[G_TRADES] += int(counts[0, g])
            row[G_LONG] += int(counts[1, g])
            row[G_WINS] += int(win_counts[g])
            row[G_PROFIT] += int(sums[0, g])
            row[G_GP] += int(sums[1, g])
            row[G_GL] += int(sums[2, g])
            if kind in ("symbol", "magic"):
                gpips = pips[inv == g]
                gpips = gpips[np.isfinite(gpips)]
                row[G_PIPS] = _seq_sum(row[G_PIPS], gpips)
                row[G_PIPS_N] += len(gpips)
                row[G_LOTS] += int(sums[3, g])
