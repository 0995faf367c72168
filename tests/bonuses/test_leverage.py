"""Type A leverage: one rule (the actual credit/balance ratio, bounded by the campaign) for the grant and every change."""

from __future__ import annotations

import math
from decimal import Decimal as D
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bonuses import formulas
from bonuses.choices import BonusType
from bonuses.monitor import Monitor
from mt5bridge import gateway as gw
from mt5bridge.simulated import deposit, withdraw

from .conftest import account, make_account, make_campaign


def _exact(original: int, credit: D, balance: D, percent: D) -> int:
    """The rule in exact rational arithmetic: floor(original / (min(credit/balance, percent/100) + 1))."""
    if credit <= 0:
        return original
    ratio = min(Fraction(credit) / Fraction(balance), Fraction(percent) / 100)
    return max(1, min(original, math.floor(Fraction(original) / (ratio + 1))))


def _grant(deposit_amount: D, percent: D, cap: D | None) -> D:
    return formulas.bonus_amount(deposit_amount, percent, cap)


money = st.decimals(min_value=D("100"), max_value=D("1000000"), places=2)
percents = st.sampled_from([D("10"), D("25"), D("50"), D("100"), D("200")])
caps = st.one_of(st.none(), st.decimals(min_value=D("1"), max_value=D("100000"), places=2))
originals = st.sampled_from([50, 100, 200, 400, 500, 1000])


@settings(max_examples=300, deadline=None)
@given(original=originals, deposit_amount=money, percent=percents, cap=caps, share=st.integers(1, 99))
def test_a_withdrawal_never_raises_leverage_above_what_the_new_ratio_gives(
    original, deposit_amount, percent, cap, share
):
    credit = _grant(deposit_amount, percent, cap)
    withdrawn = formulas.cents(deposit_amount * share / 100)
    removal = formulas.proportional_credit_removal(credit, formulas.withdrawal_fraction(withdrawn, deposit_amount))
    new_credit, new_balance = credit - removal, deposit_amount - withdrawn
    after = formulas.type_a_leverage_for(original, new_credit, new_balance, max_percent=percent)
    assert after <= _exact(original, new_credit, new_balance, percent)
    assert 1 <= after <= original


@settings(max_examples=300, deadline=None)
@given(original=originals, deposit_amount=money, percent=percents, cap=caps)
def test_a_one_percent_withdrawal_moves_leverage_no_more_than_the_ratio_implies(original, deposit_amount, percent, cap):
    credit = _grant(deposit_amount, percent, cap)
    before = formulas.type_a_leverage_for(original, credit, deposit_amount, max_percent=percent)
    withdrawn = formulas.cents(deposit_amount / 100)
    removal = formulas.proportional_credit_removal(credit, formulas.withdrawal_fraction(withdrawn, deposit_amount))
    after = formulas.type_a_leverage_for(original, credit - removal, deposit_amount - withdrawn, max_percent=percent)
    implied = _exact(original, credit - removal, deposit_amount - withdrawn, percent) - _exact(
        original, credit, deposit_amount, percent
    )
    # The ratio is the same but for the cent the removal rounds to: the leverage moves by what that implies.
    assert abs(after - before) <= abs(implied)
    assert abs(after - before) <= 1


def test_worked_examples_of_the_rule():
    assert formulas.type_a_leverage_for(500, D("100"), D("1000"), max_percent=D("100")) == 454
    assert formulas.type_a_leverage_for(500, D("99"), D("990"), max_percent=D("100")) == 454
    assert formulas.type_a_leverage_for(500, D("1000"), D("1000"), max_percent=D("100")) == 250
    assert formulas.type_a_leverage_for(500, D("1000"), D("500"), max_percent=D("100")) == 250  # losses: the bound
    assert formulas.type_a_leverage_for(500, D("0"), D("500"), max_percent=D("100")) == 500


@pytest.mark.django_db
def test_a_capped_grant_and_a_one_percent_withdrawal_give_the_same_leverage():
    """100 % capped at 100 on a 1,000 deposit at 1:500: 1:454 (not 1:250), and still 1:454 after withdrawing 10."""
    login = make_account(balance="0", leverage=500)
    make_campaign(bonus_type=BonusType.DYNAMIC_LEVERAGE, bonus_percent=D("100"), max_bonus_amount=D("100"))
    monitor = Monitor(gateway=gw.get_gateway("simulated"), worker="test-worker")
    monitor.cycle()
    deposit(login, D("1000"))
    monitor.cycle()
    info = account(login)
    assert info.credit == D("100.00") and info.leverage == 454
    withdraw(login, D("10"))
    monitor.cycle()
    info = account(login)
    assert info.credit == D("99.00") and info.balance == D("990.00") and info.leverage == 454
