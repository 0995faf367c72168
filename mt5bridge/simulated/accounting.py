"""Pure money maths of the simulator: profit, margin, swap, and an account's equity and margin level."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from mt5bridge.gateway.types import PositionType

from . import prices
from .symbols_catalog import CRYPTO, SymbolSpec

ZERO = Decimal(0)
CENT = Decimal("0.01")
HUNDRED = Decimal(100)
BUY = int(PositionType.BUY)
SELL = int(PositionType.SELL)

# Rollover at 21:00 UTC; Wednesday's carries the weekend (triple swap), Saturday and Sunday none.
_ROLLOVER_ANCHOR = prices._MONDAY + 21 * 3600
_WEEK_PREFIX = (0, 1, 2, 5, 6, 7, 7, 7)


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def rollover_count(kind: str, t: int) -> int:
    """Days of swap charged by the rollovers from the epoch up to second ``t`` (a running total)."""
    n = (t - _ROLLOVER_ANCHOR) // prices.DAY + 1  # rollover instants at or before t
    if n <= 0:
        return 0
    if kind == CRYPTO:
        return n
    weeks, rest = divmod(n, 7)
    return weeks * 7 + _WEEK_PREFIX[rest]


def rollover_days(kind: str, since: int, until: int) -> int:
    """Days of swap charged for holding a position over the seconds (since, until]."""
    if until <= since:
        return 0
    return rollover_count(kind, until) - rollover_count(kind, since)


def swap_rate(spec: SymbolSpec, side: int) -> Decimal:
    return spec.swap_long if side == BUY else spec.swap_short


def position_swap(spec: SymbolSpec, side: int, volume: Decimal, accrued: Decimal, since: int, t: int) -> Decimal:
    days = rollover_days(spec.kind, since, t)
    if not days:
        return accrued
    return accrued + money(swap_rate(spec, side) * volume * days)


class Valuation:
    """Prices and conversion factors at one second, computed once per symbol and shared by accounts."""

    __slots__ = ("t", "_symbols")

    def __init__(self, t: int):
        self.t = t
        self._symbols: dict[tuple[str, str], tuple] = {}

    def symbol(self, spec: SymbolSpec) -> tuple[Decimal, Decimal, Decimal, bool]:
        """(bid, ask, contract size × USD per profit-currency unit, market open) for ``spec``."""
        key = (spec.server, spec.name)
        found = self._symbols.get(key)
        if found is None:
            bid, ask, _ = prices.quote(spec, self.t)
            factor = spec.contract_size * prices.usd_rate(spec.currency_profit, self.t)
            found = self._symbols[key] = (bid, ask, factor, prices.is_open(spec.kind, self.t))
        return found

    def close_price(self, spec: SymbolSpec, side: int) -> Decimal:
        bid, ask, _, _ = self.symbol(spec)
        return bid if side == BUY else ask

    def open_price(self, spec: SymbolSpec, side: int) -> Decimal:
        bid, ask, _, _ = self.symbol(spec)
        return ask if side == BUY else bid

    def profit(
        self, spec: SymbolSpec, side: int, volume: Decimal, price_open: Decimal, price_close: Decimal
    ) -> Decimal:
        """Profit in USD of ``volume`` lots opened at ``price_open`` and closed at ``price_close``."""
        factor = self.symbol(spec)[2]
        diff = price_close - price_open if side == BUY else price_open - price_close
        return money(diff * volume * factor)

    def margin(self, spec: SymbolSpec, volume: Decimal, price: Decimal, leverage: int) -> Decimal:
        """Margin in USD (unrounded): volume × contract size × price / leverage, converted to USD."""
        return volume * price * self.symbol(spec)[2] / leverage


@dataclass(frozen=True)
class Figures:
    balance: Decimal
    credit: Decimal
    profit: Decimal  # floating, swap included
    equity: Decimal
    margin: Decimal
    margin_free: Decimal
    margin_level: Decimal | None


def figures(
    balance: Decimal,
    credit: Decimal,
    leverage: int,
    positions: Iterable[tuple[SymbolSpec, int, Decimal, Decimal, Decimal, int]],
    valuation: Valuation,
) -> Figures:
    """Equity and margin of an account; ``positions`` are (spec, side, volume, price_open, swap_accrued, swap_since)."""
    floating = notional = Decimal("0.00")
    t = valuation.t
    for spec, side, volume, price_open, accrued, since in positions:
        bid, ask, factor, _ = valuation.symbol(spec)
        if side == BUY:
            floating += money((bid - price_open) * volume * factor)
        else:
            floating += money((price_open - ask) * volume * factor)
        floating += position_swap(spec, side, volume, accrued, since, t)
        notional += volume * price_open * factor
    return figures_from_totals(balance, credit, leverage, floating, notional)


def figures_from_totals(
    balance: Decimal, credit: Decimal, leverage: int, floating: Decimal, notional: Decimal
) -> Figures:
    """Figures from the floating profit and the USD notional (volume × contract × open price) of all positions."""
    margin = money(notional / leverage) if notional else Decimal("0.00")
    equity = balance + credit + floating
    level = money(equity / margin * HUNDRED) if margin else None
    return Figures(balance, credit, floating, equity, margin, equity - margin, level)
