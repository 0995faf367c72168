"""Trading figures pushed to Systeme.io and the pure rule conditions over them (no database)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from .choices import RuleCondition

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Figures:
    """One account's (or one contact's summed) figures at one moment."""

    balance: Decimal
    equity: Decimal
    profit_month: Decimal  # closed trades this month: profit + commission + swap + fee
    start_balance_month: Decimal  # balance when the month began (balance minus every money movement since)
    open_trades: int
    trades_today: int  # deals that opened a position today
    last_activity: datetime | None  # newest trade deal
    last_bonus_at: datetime | None  # newest credit/bonus deal with a positive amount
    created_at: datetime | None = None  # account connected (counts as activity when nothing was traded)

    @property
    def gain_month_percent(self) -> Decimal:
        return percent(self.profit_month, self.start_balance_month)

    @property
    def drawdown_percent(self) -> Decimal:
        """Floating drawdown: how far equity is below balance, in % of balance (0 when equity is above)."""
        if self.balance <= 0 or self.equity >= self.balance:
            return Decimal("0.00")
        return percent(self.balance - self.equity, self.balance)

    def as_json(self) -> dict[str, str | int | None]:
        data: dict[str, str | int | None] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            data[item.name] = (
                value.isoformat()
                if isinstance(value, datetime)
                else (str(value) if isinstance(value, Decimal) else value)
            )
        data["gain_month_percent"] = str(self.gain_month_percent)
        data["drawdown_percent"] = str(self.drawdown_percent)
        return data


def percent(part: Decimal, whole: Decimal) -> Decimal:
    """``part`` in % of ``whole``, to the cent; 0 when ``whole`` is not positive."""
    if whole <= 0:
        return Decimal("0.00")
    return (part * 100 / whole).quantize(CENT, rounding=ROUND_HALF_UP)


def combine(items: list[Figures]) -> Figures | None:
    """A contact's figures: money summed over its accounts, newest activity, most trades today."""
    if not items:
        return None
    return Figures(
        balance=sum((f.balance for f in items), Decimal("0")),
        equity=sum((f.equity for f in items), Decimal("0")),
        profit_month=sum((f.profit_month for f in items), Decimal("0")),
        start_balance_month=sum((f.start_balance_month for f in items), Decimal("0")),
        open_trades=sum(f.open_trades for f in items),
        trades_today=sum(f.trades_today for f in items),
        last_activity=max((f.last_activity for f in items if f.last_activity), default=None),
        last_bonus_at=max((f.last_bonus_at for f in items if f.last_bonus_at), default=None),
        created_at=min((f.created_at for f in items if f.created_at), default=None),
    )


def condition_met(condition: str, threshold: Decimal, figures: Figures, now: datetime) -> bool:
    """Whether ``figures`` satisfy a rule's condition at ``now``."""
    if condition == RuleCondition.PROFIT_ABOVE:
        return figures.profit_month > threshold
    if condition == RuleCondition.GAIN_ABOVE_PERCENT:
        return figures.gain_month_percent > threshold
    if condition == RuleCondition.LOSS_BEYOND_PERCENT:
        return figures.gain_month_percent <= -abs(threshold) and figures.profit_month < 0
    if condition == RuleCondition.DRAWDOWN_BEYOND_PERCENT:
        return figures.drawdown_percent >= threshold
    if condition == RuleCondition.TRADES_PER_DAY_ABOVE:
        return figures.trades_today > threshold
    if condition == RuleCondition.INACTIVE_DAYS:
        since = figures.last_activity or figures.created_at
        return since is not None and now - since >= timedelta(days=float(threshold))
    if condition == RuleCondition.BONUS_GRANTED:
        return figures.last_bonus_at is not None and now - figures.last_bonus_at <= timedelta(days=float(threshold))
    if condition == RuleCondition.EQUITY_BELOW:
        return figures.equity < threshold
    raise ValueError(f"unknown rule condition {condition!r}")


def contact_fields(figures: Figures, prefix: str) -> dict[str, str]:
    """The custom contact fields the sync sets: balance, equity, gain this month, drawdown, open trades, activity."""
    return {
        f"{prefix}balance": str(figures.balance.quantize(CENT)),
        f"{prefix}equity": str(figures.equity.quantize(CENT)),
        f"{prefix}gain_month": str(figures.gain_month_percent),
        f"{prefix}drawdown": str(figures.drawdown_percent),
        f"{prefix}open_trades": str(figures.open_trades),
        f"{prefix}last_activity": figures.last_activity.date().isoformat() if figures.last_activity else "",
    }
