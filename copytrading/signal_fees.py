"""The fee of one follower for one period: a monthly fee and a performance fee over a high-water mark. Pure.

The performance fee is taken only on copied profit above the highest cumulative P&L a fee was already taken
at (the high-water mark), so a loss must be made good before the provider earns again. Every figure is a
``Decimal`` rounded to cents (half up), as the follower and the provider see it on their pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
HUNDRED = Decimal("100")
ZERO = Decimal("0")


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class FeeLine:
    """Every step of one period's fee, in the order the pages show it."""

    pnl: Decimal  # copied P&L in the period
    cumulative_before: Decimal
    cumulative_after: Decimal  # cumulative_before + pnl
    hwm_before: Decimal
    hwm_after: Decimal  # max(hwm_before, cumulative_after)
    chargeable_gain: Decimal  # max(cumulative_after - hwm_before, 0)
    performance_fee_pct: Decimal
    performance_fee: Decimal  # chargeable_gain x pct / 100
    monthly_fee: Decimal
    total: Decimal


def period_fee(
    *, pnl: Decimal, cumulative: Decimal, hwm: Decimal, performance_fee_pct: Decimal, monthly_fee: Decimal
) -> FeeLine:
    """The fee of one period given the P&L copied in it, the cumulative P&L and the high-water mark before it."""
    pnl, cumulative, hwm = cents(pnl), cents(cumulative), cents(hwm)
    after = cumulative + pnl
    gain = max(after - hwm, ZERO)
    performance = cents(gain * performance_fee_pct / HUNDRED)
    monthly = cents(monthly_fee)
    return FeeLine(
        pnl=pnl,
        cumulative_before=cumulative,
        cumulative_after=after,
        hwm_before=hwm,
        hwm_after=max(hwm, after),
        chargeable_gain=gain,
        performance_fee_pct=performance_fee_pct,
        performance_fee=performance,
        monthly_fee=monthly,
        total=performance + monthly,
    )


def month_of(moment: datetime) -> date:
    """The first day of the UTC month ``moment`` falls in."""
    moment = moment.astimezone(UTC)
    return date(moment.year, moment.month, 1)


def next_month(period: date) -> date:
    return date(period.year + period.month // 12, period.month % 12 + 1, 1)


def month_bounds(period: date) -> tuple[datetime, datetime]:
    """[first instant, first instant of the next month) in UTC."""
    start = datetime(period.year, period.month, 1, tzinfo=UTC)
    end_day = next_month(period)
    return start, datetime(end_day.year, end_day.month, 1, tzinfo=UTC)


def months_between(first: date, last: date) -> list[date]:
    """Every month from ``first`` to ``last``, both included (months' first days)."""
    months, current = [], date(first.year, first.month, 1)
    while current <= last:
        months.append(current)
        current = next_month(current)
    return months
