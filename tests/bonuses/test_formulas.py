"""Worked examples of the bonus maths (no database)."""

from __future__ import annotations

from decimal import Decimal as D

from bonuses import formulas


def test_type_a_with_a_100_percent_bonus_halves_1_to_500_to_1_to_250():
    assert formulas.type_a_leverage(500, D("100")) == 250


def test_type_a_with_a_50_percent_bonus_turns_1_to_500_into_1_to_333():
    # 500 / 1.5 = 333.33 -> floor
    assert formulas.type_a_leverage(500, D("50")) == 333


def test_type_a_with_a_30_percent_bonus_on_1_to_100_gives_1_to_76():
    # 100 / 1.3 = 76.92 -> 76
    assert formulas.type_a_leverage(100, D("30")) == 76


def test_type_a_never_goes_below_one():
    assert formulas.type_a_leverage(1, D("100")) == 1


def test_type_a_for_ratio_follows_credit_over_balance():
    # credit 900 on balance 900 is a 100 % ratio again after a 10 % withdrawal of 1000/1000
    assert formulas.type_a_leverage_for(500, D("900"), D("900")) == 250
    assert formulas.type_a_leverage_for(500, D("0"), D("900")) == 500
    assert formulas.type_a_leverage_for(500, D("450"), D("900")) == 333


def test_bonus_amount_is_the_percent_of_the_deposit_capped():
    assert formulas.bonus_amount(D("1000"), D("50"), None) == D("500.00")
    assert formulas.bonus_amount(D("1000"), D("50"), D("200")) == D("200")
    assert formulas.bonus_amount(D("33.33"), D("10"), None) == D("3.33")  # 3.333 rounds down


def test_withdrawing_ten_percent_of_the_balance_removes_ten_percent_of_the_credit():
    fraction = formulas.withdrawal_fraction(D("100"), D("1000"))
    assert fraction == D("0.1")
    assert formulas.proportional_credit_removal(D("500"), fraction) == D("50.00")
    assert formulas.proportional_credit_removal(D("333.33"), fraction) == D("33.33")


def test_withdrawing_everything_removes_all_credit():
    fraction = formulas.withdrawal_fraction(D("1000"), D("1000"))
    assert fraction == 1
    assert formulas.proportional_credit_removal(D("123.45"), fraction) == D("123.45")
    assert formulas.withdrawal_fraction(D("1500"), D("1000")) == 1


def test_type_c_needs_lots_per_unit_of_credit():
    # 100 USD bonus, 0.1 lot per 1 USD -> 10 lots; 0.5 lot per 10 USD -> 5 lots
    assert formulas.type_c_lots_required(D("100"), D("0.1"), D("1")) == D("10.0000")
    assert formulas.type_c_lots_required(D("100"), D("0.5"), D("10")) == D("5.0000")


def test_type_c_converts_linearly_in_steps_capped_at_the_bonus():
    amount, required = D("100.00"), D("10")
    # 2.5 lots -> 25 %, then 4 more lots -> 65 %, then 10 more -> capped at 100
    first = formulas.type_c_step(amount, D("0"), D("2.5"), required)
    assert first == D("25.00")
    second = formulas.type_c_step(amount, first, D("6.5"), required)
    assert second == D("40.00")
    third = formulas.type_c_step(amount, first + second, D("16.5"), required)
    assert third == D("35.00")
    assert formulas.type_c_step(amount, D("100.00"), D("20"), required) == D("0.00")


def test_type_c_rounds_each_step_down_to_the_cent():
    assert formulas.type_c_converted(D("10.00"), D("1"), D("3")) == D("3.33")
    assert formulas.type_c_converted(D("10.00"), D("3"), D("3")) == D("10.00")
