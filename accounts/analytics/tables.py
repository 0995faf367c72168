"""The inputs of the statistics (deals and snapshots as columns), the MT5 codes they use, and output formats.

Money is carried as int64 cents end to end so sums are exact; it leaves as a Decimal string.
Ratios and percentages leave as floats.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

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


_Table = TypeVar("_Table", DealTable, SnapshotTable)


def empty_snapshots() -> SnapshotTable:
    return SnapshotTable.from_columns(time=[], balance=[], equity=[], credit=[])


def concat_tables(parts: list[_Table]) -> _Table:
    """Consecutive parts of one history's deals (sharing one symbol list) or snapshots, as one table."""
    first = parts[0]
    columns: dict[str, Any] = {f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(first)
                               if f.name != "symbols"}  # fmt: skip
    if isinstance(first, DealTable):
        columns["symbols"] = first.symbols
    return type(first)(**columns)


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
    """Cents (int or float) as a Decimal string with two places (``str(Decimal(cents).scaleb(-2))``)."""
    if cents is None or (isinstance(cents, float) and not math.isfinite(cents)):
        return None
    units = int(round(cents))
    whole, part = divmod(-units if units < 0 else units, 100)
    return f"{'-' if units < 0 else ''}{whole}.{part:02d}"


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


def pip_count(value) -> float | None:
    return ratio(value, 1)


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
