"""Pure maths of bonuses: type A leverage, proportional withdrawal, type C conversion. No database."""

from __future__ import annotations

import math
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
HUNDRED = Decimal("100")


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, ROUND_HALF_UP)


def cents_down(value: Decimal) -> Decimal:
    # Amounts given away round down, so the broker never posts a cent more than the rule allows.
    return value.quantize(CENT, ROUND_DOWN)


def bonus_amount(deposit: Decimal, percent: Decimal, cap: Decimal | None) -> Decimal:
    """The credit a deposit earns: ``percent`` of it, at most ``cap`` (None or 0: no cap)."""
    amount = cents_down(deposit * percent / HUNDRED)
    if cap:
        amount = min(amount, cap)
    return max(amount, ZERO)


def manual_amount_cap(
    *, deposit: Decimal | None, percent: Decimal, max_bonus_amount: Decimal | None, fixed_amount: Decimal | None
) -> tuple[Decimal, str]:
    """The most a manual grant may give under the campaign's own amount rules, and the rule in words.

    With a deposit: ``percent`` of it, at most ``max_bonus_amount``. Without one: the campaign's
    ``fixed_amount``, at most ``max_bonus_amount``. A campaign with neither gives nothing without
    a deposit, so its cap is zero. Staff may grant less than the cap, never more.
    """
    top = f", at most {max_bonus_amount}" if max_bonus_amount else ""
    if deposit is not None and deposit > 0:
        return bonus_amount(deposit, percent, max_bonus_amount), f"{percent}% of the deposit {deposit}{top}"
    if fixed_amount:
        cap = min(fixed_amount, max_bonus_amount) if max_bonus_amount else fixed_amount
        return max(cents_down(cap), ZERO), f"the fixed amount {fixed_amount}{top}"
    return ZERO, "no fixed amount and no deposit given"


def type_a_leverage(original: int, percent: Decimal) -> int:
    """``floor(original / (percent/100 + 1))``, at least 1: 1:500 with 100 % gives 1:250, with 50 % 1:333."""
    divisor = Decimal(percent) / HUNDRED + 1
    if divisor <= 0:
        return original
    return max(1, math.floor(Decimal(original) / divisor))


def type_a_leverage_for(original: int, credit: Decimal, balance: Decimal, max_percent: Decimal | None = None) -> int:
    """The one type A rule, for the grant and every later change: leverage from the actual credit/balance ratio.

    ``floor(original / (credit/balance + 1))``, at least 1 and at most ``original``. The ratio is
    bounded by the campaign's percent (``max_percent``, the largest of the account's open type A
    campaigns): losses that shrink the balance never push the leverage below what the campaign
    promises. 1:500, credit 100 on a balance of 1,000 (a 100 % bonus capped at 100) gives 1:454;
    credit 99 on 990 after a 1 % withdrawal still 1:454; credit 1,000 on 1,000 gives 1:250.
    """
    if credit <= 0:
        return original
    bound = Decimal(max_percent) if max_percent is not None and max_percent > 0 else None
    if balance <= 0:
        if bound is None:
            return 1
        percent = bound
    else:
        percent = credit / balance * HUNDRED
        if bound is not None:
            percent = min(percent, bound)
    return min(original, type_a_leverage(original, percent))


def retry_delay(attempts: int, base: float, cap: float) -> float:
    """Seconds before retrying a posting that failed ``attempts`` times: base, 2 × base, 4 × base ..., at most ``cap``."""
    if attempts <= 0 or base <= 0:
        return 0.0
    return min(cap, base * 2 ** min(attempts - 1, 62))


def withdrawal_fraction(withdrawn: Decimal, balance_before: Decimal) -> Decimal:
    """The share of the balance a withdrawal took, between 0 and 1 (1 = everything)."""
    if withdrawn <= 0:
        return Decimal(0)
    if balance_before <= 0 or withdrawn >= balance_before:
        return Decimal(1)
    return withdrawn / balance_before


def proportional_credit_removal(credit: Decimal, fraction: Decimal) -> Decimal:
    """Credit to remove from one bonus when a withdrawal took ``fraction`` of the balance."""
    if fraction >= 1:
        return credit
    return min(credit, cents(credit * fraction))


def type_c_lots_required(amount: Decimal, lots_per_unit: Decimal, unit_amount: Decimal) -> Decimal:
    """Lots to trade to convert a whole bonus: ``lots_per_unit`` for every ``unit_amount`` of credit."""
    if unit_amount <= 0:
        return Decimal(0)
    return (amount / unit_amount * lots_per_unit).quantize(Decimal("0.0001"), ROUND_HALF_UP)


def type_c_converted(amount: Decimal, lots_traded: Decimal, lots_required: Decimal) -> Decimal:
    """How much of the bonus has converted after ``lots_traded``: linear in the lots, capped at the bonus."""
    if lots_required <= 0:
        return amount
    if lots_traded >= lots_required:
        return amount
    return min(amount, cents_down(amount * lots_traded / lots_required))


def type_c_step(amount: Decimal, already_converted: Decimal, lots_traded: Decimal, lots_required: Decimal) -> Decimal:
    """The conversion still to post (a balance deal) after ``lots_traded``; never negative."""
    return max(ZERO, type_c_converted(amount, lots_traded, lots_required) - already_converted)
