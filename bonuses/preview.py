"""What a withdrawal would do to an account's bonuses: the monitor's rules (formulas.py) applied ahead of time. Pure.

The monitor (``services.detection.account_withdrawal_detected``) ends every type C bonus and, for a full
withdrawal, every bonus; takes the withdrawal's share of the balance from each other active bonus's
credit (``formulas.proportional_credit_removal``); and sets type A leverage from the credit left over the
balance left (``formulas.type_a_leverage_for`` through ``services.leverage.leverage_plan``). This module
calls the same functions in the same order; ``tests/bonuses/test_trader_view.py`` holds the preview
equal to what the monitor then does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from . import formulas
from .choices import BonusType
from .formulas import ZERO


@dataclass(frozen=True)
class Holding:
    """One open bonus as the monitor sees it."""

    bonus_id: int
    bonus_type: str
    credit_outstanding: Decimal
    movable: Decimal  # credit not yet promised to a removal or conversion in flight
    percent: Decimal  # its campaign's bonus_percent (the bound of the type A rule)
    active: bool = True  # a pending bonus (credit in flight) is not trimmed, but counts for leverage


@dataclass(frozen=True)
class BonusAfter:
    bonus_id: int
    credit_before: Decimal
    credit_removed: Decimal
    credit_after: Decimal
    ends: bool


@dataclass
class WithdrawalPreview:
    amount: Decimal
    balance_before: Decimal
    balance_after: Decimal
    fraction: Decimal
    leverage_before: int | None
    leverage_after: int | None
    bonuses: list[BonusAfter] = field(default_factory=list)

    @property
    def credit_removed(self) -> Decimal:
        return sum((b.credit_removed for b in self.bonuses), ZERO)


def withdrawal_preview(
    *,
    amount: Decimal,
    balance: Decimal,
    holdings: list[Holding],
    original_leverage: int | None,
    leverage_now: int | None,
) -> WithdrawalPreview:
    """The credit each bonus would lose and the leverage the account would have after withdrawing ``amount``."""
    amount = formulas.cents(Decimal(amount))
    balance_after = balance - amount
    fraction = formulas.withdrawal_fraction(amount, balance)
    after: list[BonusAfter] = []
    credit_after: dict[int, Decimal] = {}
    ended: set[int] = set()
    for h in holdings:
        if not h.active:
            continue
        if fraction >= 1 or h.bonus_type == BonusType.CONVERTIBLE:
            ended.add(h.bonus_id)
            after.append(
                BonusAfter(h.bonus_id, h.credit_outstanding, h.movable, h.credit_outstanding - h.movable, True)
            )
            continue
        removal = formulas.proportional_credit_removal(h.movable, fraction)
        credit_after[h.bonus_id] = h.credit_outstanding - removal
        after.append(BonusAfter(h.bonus_id, h.credit_outstanding, removal, credit_after[h.bonus_id], False))
    leverage_after = leverage_now
    type_a = [h for h in holdings if h.bonus_type == BonusType.DYNAMIC_LEVERAGE]
    if type_a and original_leverage is not None:
        left = [h for h in type_a if h.bonus_id not in ended]
        if not left:
            leverage_after = original_leverage
        elif any(h.active for h in left):
            credit = sum((credit_after.get(h.bonus_id, h.credit_outstanding) for h in left), ZERO)
            percent = max(h.percent for h in left)
            leverage_after = formulas.type_a_leverage_for(original_leverage, credit, balance_after, max_percent=percent)
    return WithdrawalPreview(
        amount=amount,
        balance_before=balance,
        balance_after=balance_after,
        fraction=fraction,
        leverage_before=leverage_now,
        leverage_after=leverage_after,
        bonuses=after,
    )
