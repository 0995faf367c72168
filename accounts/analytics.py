"""Trading statistics over deals and snapshots: pure, vectorised functions (one DB entry point at the end).

Money is carried as int64 cents end to end so sums are exact; it leaves as a Decimal string.
Ratios and percentages leave as floats. Every formula is described in docs/analytics.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import numpy as np

# MT5 DEAL_TYPE_* / DEAL_ENTRY_* values (mt5bridge.gateway.types mirrors them).
BUY, SELL, BALANCE, CREDIT, BONUS = 0, 1, 2, 3, 6
COMMISSION_TYPES = (7, 8, 9, 10, 11)
CANCELED_TYPES = (13, 14)
ENTRY_IN, ENTRY_OUT, ENTRY_INOUT, ENTRY_OUT_BY = 0, 1, 2, 3

MIN_TRADES = 30  # below this the dispersion statistics are noise
GUARDED = (
    "sharpe",
    "sortino",
    "std_dev_returns_pct",
    "std_dev_profit",
    "z_score",
    "ahpr_pct",
    "ghpr_pct",
    "risk_of_ruin_pct",
)
MAX_POINTS = 1000  # chart series are thinned to at most this many points
DISTRIBUTION_BINS = 20
DAY = 86400.0
MIN_CAGR_DAYS = 30
DAYS_PER_MONTH = 365.2425 / 12
VOLUME_SCALE = 10_000  # volumes are int64 in 1/10,000 lot


# --- Inputs -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DealTable:
    """Deals as columns. Money in cents, volume in 1/10,000 lot, time in epoch seconds (UTC)."""

    time: np.ndarray  # float64
    ticket: np.ndarray  # int64
    deal_type: np.ndarray  # int64
    entry: np.ndarray  # int64
    position_id: np.ndarray  # int64
    magic: np.ndarray  # int64
    symbol: np.ndarray  # int64 codes into ``symbols``
    symbols: tuple[str, ...]
    volume: np.ndarray  # int64
    price: np.ndarray  # float64
    profit: np.ndarray  # int64 cents
    commission: np.ndarray
    swap: np.ndarray
    fee: np.ndarray

    def __len__(self) -> int:
        return len(self.time)

    @classmethod
    def from_columns(
        cls, *, time, ticket, deal_type, entry, position_id, magic, symbol, volume, price, profit, commission, swap, fee
    ) -> DealTable:
        """Build from sequences; ``symbol`` holds strings, money ints in cents, volume ints in 1/10,000 lot."""
        codes, symbols = _encode(symbol)
        i64 = np.int64
        return cls(
            time=np.asarray(time, dtype=np.float64),
            ticket=np.asarray(ticket, dtype=i64),
            deal_type=np.asarray(deal_type, dtype=i64),
            entry=np.asarray(entry, dtype=i64),
            position_id=np.asarray(position_id, dtype=i64),
            magic=np.asarray(magic, dtype=i64),
            symbol=codes,
            symbols=symbols,
            volume=np.asarray(volume, dtype=i64),
            price=np.asarray(price, dtype=np.float64),
            profit=np.asarray(profit, dtype=i64),
            commission=np.asarray(commission, dtype=i64),
            swap=np.asarray(swap, dtype=i64),
            fee=np.asarray(fee, dtype=i64),
        )

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any] | Any]) -> DealTable:
        """Build from dicts or objects with Deal's field names (money and volume as Decimal, time aware)."""
        rows = [r if isinstance(r, Mapping) else vars(r) for r in records]

        def get(row, key, default=0):
            value = row.get(key, default)
            return default if value is None else value

        return cls.from_columns(
            time=[_epoch(get(r, "time")) for r in rows],
            ticket=[get(r, "ticket") for r in rows],
            deal_type=[get(r, "deal_type") for r in rows],
            entry=[get(r, "entry") for r in rows],
            position_id=[get(r, "position_id") for r in rows],
            magic=[get(r, "magic") for r in rows],
            symbol=[get(r, "symbol", "") for r in rows],
            volume=[_units(get(r, "volume"), VOLUME_SCALE) for r in rows],
            price=[float(get(r, "price")) for r in rows],
            profit=[_units(get(r, "profit"), 100) for r in rows],
            commission=[_units(get(r, "commission"), 100) for r in rows],
            swap=[_units(get(r, "swap"), 100) for r in rows],
            fee=[_units(get(r, "fee"), 100) for r in rows],
        )


@dataclass(frozen=True, slots=True)
class SnapshotTable:
    """Account snapshots as columns: epoch seconds and money in cents."""

    time: np.ndarray
    balance: np.ndarray
    equity: np.ndarray
    credit: np.ndarray

    def __len__(self) -> int:
        return len(self.time)

    @classmethod
    def from_columns(cls, *, time, balance, equity, credit) -> SnapshotTable:
        return cls(
            time=np.asarray(time, dtype=np.float64),
            balance=np.asarray(balance, dtype=np.int64),
            equity=np.asarray(equity, dtype=np.int64),
            credit=np.asarray(credit, dtype=np.int64),
        )

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any] | Any]) -> SnapshotTable:
        rows = [r if isinstance(r, Mapping) else vars(r) for r in records]
        return cls.from_columns(
            time=[_epoch(r.get("taken_at") or r.get("time")) for r in rows],
            balance=[_units(r.get("balance", 0), 100) for r in rows],
            equity=[_units(r.get("equity", 0), 100) for r in rows],
            credit=[_units(r.get("credit", 0) or 0, 100) for r in rows],
        )


def empty_snapshots() -> SnapshotTable:
    return SnapshotTable.from_columns(time=[], balance=[], equity=[], credit=[])


def _encode(values) -> tuple[np.ndarray, tuple[str, ...]]:
    if isinstance(values, np.ndarray) and values.dtype.kind in "iu":
        raise TypeError("symbol must hold strings")
    index: dict[str, int] = {}
    codes = np.fromiter((index.setdefault(v or "", len(index)) for v in values), dtype=np.int64)
    return codes, tuple(index)


def _units(value, scale: int) -> int:
    return int((Decimal(str(value)) * scale).to_integral_value())


def _epoch(value) -> float:
    if isinstance(value, int | float):
        return float(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


# --- Output helpers ---------------------------------------------------------------------


def money(cents) -> str | None:
    """Cents (int or float) as a Decimal string with two places."""
    if cents is None or (isinstance(cents, float) and not math.isfinite(cents)):
        return None
    return str(Decimal(int(round(cents))).scaleb(-2))


def lots(units) -> str:
    """1/10,000-lot units as a lot string with at least two places (``1.50``, ``0.015``)."""
    value = Decimal(int(units)).scaleb(-4)
    cents = value.quantize(Decimal("0.01"))
    return str(cents if cents == value else value.normalize())


def ratio(value, digits: int = 4) -> float | None:
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        return None
    return round(value, digits)


def pct(value, digits: int = 4) -> float | None:
    return None if value is None else ratio(value * 100, digits)


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(float(epoch), tz=UTC).isoformat().replace("+00:00", "Z")


# --- Pip size -----------------------------------------------------------------------------


def price_digits(prices: np.ndarray, max_digits: int = 8) -> int:
    """The most decimal places among ``prices`` (the symbol's quote digits, as far as trades show)."""
    prices = np.abs(prices[np.isfinite(prices) & (prices > 0)])
    if not len(prices):
        return 0
    remaining = prices
    for digits in range(max_digits + 1):
        scaled = remaining * 10.0**digits
        # 1e-6 of a point absorbs binary float noise; a real extra digit is a whole unit off.
        off = np.abs(scaled - np.round(scaled)) > 1e-6 * np.maximum(1.0, scaled * 1e-9)
        remaining = remaining[off]
        if not len(remaining):
            return digits
    return max_digits


def pip_size(digits: int) -> float:
    """A pip is ten points on 3- and 5-digit quotes (fractional pips), otherwise one point."""
    point = 10.0**-digits
    return point * 10 if digits in (3, 5) else point


# --- The computation --------------------------------------------------------------------


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
    order = np.lexsort((deals.ticket, deals.time))
    d = _take(deals, order)
    n = len(d)
    kind = d.deal_type
    cash = d.profit + d.commission + d.swap + d.fee
    is_flow = (kind == BALANCE) | (kind == BONUS)
    is_credit = kind == CREDIT
    is_pl = ~is_flow & ~is_credit & ~np.isin(kind, CANCELED_TYPES)

    # Balance after every deal; credit lives outside the balance.
    delta = np.where(is_credit, 0, cash)
    balance_after = opening_balance + np.cumsum(delta)
    balance_before = balance_after - delta

    # Time-weighted return: chain balance growth over P/L deals only, so cash flows do not count.
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = np.where(
            is_pl & (balance_before > 0), balance_after / np.where(balance_before > 0, balance_before, 1), 1.0
        )
    growth = np.clip(growth, 0.0, None)
    index = np.cumprod(growth) if n else np.ones(0)
    gain = float(index[-1] - 1.0) if n else 0.0

    pl_cents = np.where(is_pl, cash, 0)
    cum_pl = np.cumsum(pl_cents)
    net_profit = int(cum_pl[-1]) if n else 0
    deposits = int(cash[is_flow & (kind == BALANCE) & (cash > 0)].sum())
    withdrawals = int(-cash[is_flow & (kind == BALANCE) & (cash < 0)].sum())
    bonuses = int(cash[kind == BONUS].sum())
    credit_total = int(cash[is_credit].sum())

    trades = _trades(d, cash, balance_before, digits or {})
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
    days = max((last_time - first_time) / DAY, 1.0) if first_time is not None else None

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
    summary.update(_balance_drawdown(d.time, index, cum_pl))
    summary.update(_equity_drawdown(snapshots, d.time, np.where(is_flow, cash, 0)))
    summary.update(_trade_summary(t))
    insufficient: list[str] = []
    if tn < min_trades:
        insufficient = list(GUARDED)
        for name in GUARDED:
            summary[name] = None

    series = {
        "equity": _equity_series(snapshots, d.time, balance_after),
        "drawdown": _drawdown_series(snapshots, d.time, index, np.where(is_flow, cash, 0)),
        "monthly_returns": _monthly(d.time, index, pl_cents, t),
        "by_symbol": _breakdown(t, t["symbol"], [d.symbols[i] for i in range(len(d.symbols))], "symbol"),
        "by_magic": _breakdown(t, t["magic"], None, "magic"),
        "by_hour": _calendar(t, "hour"),
        "by_weekday": _calendar(t, "weekday"),
        "profit_distribution": _distribution(t["profit"]),
    }
    return {
        "summary": summary,
        "insufficient": insufficient,
        "series": series,
        "min_trades": min_trades,
        "trades_count": tn,
    }


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


# --- Trades -------------------------------------------------------------------------------


def _trades(d: DealTable, cash: np.ndarray, balance_before: np.ndarray, digits: Mapping[str, int]) -> dict:
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
        dg = digits.get(name) if name in digits else price_digits(trade_price[sym_order[a:b]])
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


def _streaks(profit: np.ndarray) -> dict:
    """Longest runs of wins and losses (by count, ties to the larger money) and the richest runs."""
    out = {
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


def _trade_summary(t: dict) -> dict:
    p = t["profit"]
    n = len(p)
    wins, losses = p > 0, p < 0
    gross_profit = int(p[wins].sum())
    gross_loss = int(p[losses].sum())
    longs, shorts = t["long"], ~t["long"]
    out: dict[str, Any] = {
        "trades": n,
        "long_trades": int(longs.sum()),
        "short_trades": int(shorts.sum()),
        "winning_trades": int(wins.sum()),
        "losing_trades": int(losses.sum()),
        "breakeven_trades": int((p == 0).sum()),
        "lots": lots(int(t["lots"].sum())),
        "gross_profit": money(gross_profit),
        "gross_loss": money(gross_loss),
        "trades_profit": money(int(p.sum())),
        "profit_factor": ratio(gross_profit / -gross_loss) if gross_loss else None,
        "expectancy": money(p.mean()) if n else None,
        "expectancy_pips": _pips(np.nanmean(t["pips"])) if n and np.isfinite(t["pips"]).any() else None,
        "average_win": money(p[wins].mean()) if wins.any() else None,
        "average_loss": money(p[losses].mean()) if losses.any() else None,
        "average_win_pips": _pips(np.nanmean(t["pips"][wins])) if np.isfinite(t["pips"][wins]).any() else None,
        "average_loss_pips": _pips(np.nanmean(t["pips"][losses])) if np.isfinite(t["pips"][losses]).any() else None,
        "win_rate_pct": pct(wins.sum() / n) if n else None,
        "long_win_rate_pct": pct((wins & longs).sum() / longs.sum()) if longs.any() else None,
        "short_win_rate_pct": pct((wins & shorts).sum() / shorts.sum()) if shorts.any() else None,
        "best_trade": _trade_ref(t, int(np.argmax(p))) if n else None,
        "worst_trade": _trade_ref(t, int(np.argmin(p))) if n else None,
        "best_trade_pips": _pips(np.nanmax(t["pips"])) if np.isfinite(t["pips"]).any() else None,
        "worst_trade_pips": _pips(np.nanmin(t["pips"])) if np.isfinite(t["pips"]).any() else None,
        "average_trade_seconds": ratio((t["close_time"] - t["open_time"]).mean(), 1) if n else None,
    }
    out.update(_streaks(p))
    out.update(_dispersion(t))
    return out


def _pips(value) -> float | None:
    return ratio(value, 1)


def _trade_ref(t: dict, i: int) -> dict:
    return {"position": int(t["position"][i]), "profit": money(t["profit"][i]), "closed_at": iso(t["close_time"][i])}


def _dispersion(t: dict) -> dict:
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
    out["z_score"] = ratio(_z_score(t["profit"]))
    out["risk_of_ruin_pct"] = _risk_of_ruin(t)
    return out


def _z_score(profit: np.ndarray) -> float | None:
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


def _risk_of_ruin(t: dict) -> float | None:
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


# --- Drawdowns ----------------------------------------------------------------------------


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


def _balance_drawdown(times: np.ndarray, index: np.ndarray, cum_pl: np.ndarray) -> dict:
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


def _equity_drawdown(snaps: SnapshotTable, deal_times: np.ndarray, flows: np.ndarray) -> dict:
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


def _thin(n: int) -> np.ndarray:
    """Indices of at most MAX_POINTS evenly spread points, always keeping the last."""
    if n <= MAX_POINTS:
        return np.arange(n)
    return np.unique(np.r_[np.linspace(0, n - 1, MAX_POINTS - 1).astype(np.int64), n - 1])


def _equity_series(snaps: SnapshotTable, deal_times: np.ndarray, balance_after: np.ndarray) -> list:
    # Python scalars (tolist) format several times faster than numpy ones, with the same result.
    if len(snaps):
        order = np.argsort(snaps.time, kind="stable")
        idx = order[_thin(len(order))]
        points = zip(snaps.time[idx].tolist(), snaps.equity[idx].tolist(), snaps.balance[idx].tolist(), strict=True)
        return [[iso(t), money(equity), money(balance)] for t, equity, balance in points]
    # No snapshots: the balance curve from deals stands in for equity.
    idx = _thin(len(deal_times))
    points = zip(deal_times[idx].tolist(), map(money, balance_after[idx].tolist()), strict=True)
    return [[iso(t), balance, balance] for t, balance in points]


def _drawdown_series(snaps: SnapshotTable, deal_times: np.ndarray, index: np.ndarray, flows: np.ndarray) -> list:
    if len(snaps) >= 2:
        st, _, _, idx = _equity_curves(snaps, deal_times, flows)
        _, _, _, fall = _dd(idx, relative=True)
        times = st
    elif len(deal_times):
        _, _, _, fall = _dd(np.r_[1.0, index], relative=True)
        fall = fall[1:]
        times = deal_times
    else:
        return []
    idx = _thin(len(times))
    return [[iso(t), pct(f)] for t, f in zip(times[idx].tolist(), fall[idx].tolist(), strict=True)]


def _month_keys(times: np.ndarray) -> np.ndarray:
    return times.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64)  # months since 1970-01


def _monthly(times: np.ndarray, index: np.ndarray, pl_cents: np.ndarray, t: dict) -> list:
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
        "pips": _pips(np.nansum(pips)) if np.isfinite(pips).any() else None,
        "lots": lots(int(t["lots"][idx].sum())),
    }


def _breakdown(t: dict, keys: np.ndarray, names: list[str] | None, label: str) -> list:
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


def _calendar(t: dict, unit: str) -> list:
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


def _distribution(profit: np.ndarray) -> list:
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


# --- The DB entry point -------------------------------------------------------------------


def period_bounds(date_from: date | None, date_to: date | None) -> tuple[datetime | None, datetime | None]:
    """Whole UTC days: [date_from 00:00, date_to + 1 day 00:00)."""
    start = datetime.combine(date_from, time.min, tzinfo=UTC) if date_from else None
    end = datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=UTC) if date_to else None
    return start, end
