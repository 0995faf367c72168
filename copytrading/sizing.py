"""Pure lot sizing for copies: every sizing mode, rounding to the volume step, clamping (no database)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any

from .choices import SizingMode

ZERO = Decimal("0")
ONE = Decimal("1")


class SizingSkip(Exception):
    """The trade cannot be sized; the message is the reason the trader sees."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class AccountFigures:
    """The three figures ratio and risk sizing divide by: a subset of the account's figures (accounts.figures),
    under the same names."""

    balance: Decimal
    equity: Decimal
    margin_free: Decimal

    @classmethod
    def of(cls, row: Any) -> AccountFigures:
        """The sizing figures of a `TradingAccount`, or of a heartbeat carrying the account's figure names."""
        return cls(row.balance, row.equity, row.margin_free)


@dataclass(frozen=True)
class VolumeRules:
    """The slave symbol's volume limits (SYMBOL_VOLUME_MIN/STEP/MAX)."""

    minimum: Decimal = Decimal("0.01")
    step: Decimal = Decimal("0.01")
    maximum: Decimal = Decimal("100")


def round_to_step(volume: Decimal, step: Decimal, *, rounding: str = ROUND_DOWN) -> Decimal:
    """Volume rounded to a multiple of ``step`` (down by default, so a copy never risks more than asked)."""
    if step <= 0:
        return volume
    return ((volume / step).quantize(ONE, rounding=rounding) * step).normalize() + ZERO


# Not a config.caches memo: a pure function of its arguments (no settings, no database), so an answer it keeps
# is never stale and nothing needs to drop it.
@functools.lru_cache(maxsize=1024)
def _largest_volume(maximum: Decimal, step: Decimal) -> Decimal:
    # The same few symbols are sized for every slave of every master: round their maximum once.
    return round_to_step(maximum, step)


def clamp(
    volume: Decimal,
    rules: VolumeRules,
    *,
    link_min: Decimal | None = None,
    link_max: Decimal | None = None,
    skip_below_minimum: bool = False,
) -> Decimal:
    """Clamp to the link's bounds, round to the step, then clamp to the symbol's bounds.

    Below the symbol's minimum the volume is raised to it, or, with ``skip_below_minimum`` (the link's risk guard:
    raising can multiply the risk), the copy is skipped."""
    if link_max is not None and link_max > 0:
        volume = min(volume, link_max)
    if link_min is not None and link_min > 0:
        volume = max(volume, link_min)
    volume = round_to_step(volume, rules.step)
    if skip_below_minimum and volume < rules.minimum:
        raise SizingSkip(
            "below_min_volume",
            f"the sized volume {volume} is below the symbol's minimum {rules.minimum}; the link skips such copies",
        )
    volume = max(volume, rules.minimum)
    return min(volume, _largest_volume(rules.maximum, rules.step))


def raw_volume(
    mode: str,
    *,
    master_volume: Decimal,
    multiplier: Decimal = Decimal("1"),
    fixed_volume: Decimal = ZERO,
    master: AccountFigures | None = None,
    slave: AccountFigures | None = None,
    contract_ratio: Decimal | None = None,
    risk_percent: Decimal = ZERO,
    sl_distance: Decimal | None = None,
    slave_contract_size: Decimal | None = None,
    profit_to_account_rate: Decimal = Decimal("1"),
) -> Decimal:
    """The unrounded slave volume for one master trade.

    Volume modes scale the master's lots (times ``contract_ratio`` = master / slave contract size, so the
    notional stays equal across brokers). Risk mode sizes so that a stop at ``sl_distance`` (price units)
    loses ``risk_percent`` of the slave's equity: volume = equity x risk / (distance x contract size x rate).
    """
    ratio = contract_ratio if contract_ratio is not None and contract_ratio > 0 else Decimal("1")
    if mode == SizingMode.FIXED:
        return fixed_volume
    if mode == SizingMode.MULTIPLIER:
        return master_volume * multiplier * ratio
    if mode in (SizingMode.BALANCE_RATIO, SizingMode.EQUITY_RATIO, SizingMode.FREE_MARGIN_RATIO):
        if master is None or slave is None:
            raise SizingSkip("no_account_figures", "the master or slave has not reported its balance yet")
        field: str = {
            SizingMode.BALANCE_RATIO: "balance",
            SizingMode.EQUITY_RATIO: "equity",
            SizingMode.FREE_MARGIN_RATIO: "margin_free",
        }[SizingMode(mode)]
        master_value, slave_value = getattr(master, field), getattr(slave, field)
        if master_value <= 0:
            raise SizingSkip("master_figure_not_positive", f"the master's {field.replace('_', ' ')} is not positive")
        if slave_value <= 0:
            return ZERO
        return master_volume * (slave_value / master_value) * multiplier * ratio
    if mode == SizingMode.RISK_PERCENT:
        if slave is None:
            raise SizingSkip("no_account_figures", "the slave has not reported its equity yet")
        if sl_distance is None or sl_distance <= 0:
            raise SizingSkip("no_stop_loss", "risk sizing needs a stop loss and the master trade has none")
        if not slave_contract_size or slave_contract_size <= 0:
            raise SizingSkip("no_contract_size", "the slave symbol's contract size is unknown")
        risk_money = slave.equity * risk_percent / Decimal("100")
        return risk_money / (sl_distance * slave_contract_size * profit_to_account_rate)
    raise SizingSkip("unknown_mode", f"unknown sizing mode {mode!r}")


def copy_volume(
    mode: str,
    *,
    rules: VolumeRules,
    link_min: Decimal | None = None,
    link_max: Decimal | None = None,
    skip_below_minimum: bool = False,
    **inputs,
) -> Decimal:
    """The slave volume for one master trade, rounded to the slave step and clamped to the min/max."""
    volume = raw_volume(mode, **inputs)
    if volume <= 0:
        raise SizingSkip("zero_volume", "the sized volume is zero")
    return clamp(volume, rules, link_min=link_min, link_max=link_max, skip_below_minimum=skip_below_minimum)


def partial_close_volume(slave_volume: Decimal, closed: Decimal, previous: Decimal, rules: VolumeRules) -> Decimal:
    """Slave volume to close when the master closed ``closed`` of ``previous`` lots (same proportion).

    Rounded to the nearest step; when what would remain is below the minimum the whole slave volume closes.
    """
    if previous <= 0 or closed <= 0:
        return ZERO
    if closed >= previous:
        return slave_volume
    volume = round_to_step(slave_volume * closed / previous, rules.step, rounding=ROUND_HALF_UP)
    if volume >= slave_volume or slave_volume - volume < rules.minimum:
        return slave_volume
    return volume
