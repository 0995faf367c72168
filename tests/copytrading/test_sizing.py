"""Lot sizing: every mode with hand-computed values, rounding to the step, clamping, proportional closes."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from copytrading.sizing import (
    AccountFigures,
    SizingSkip,
    VolumeRules,
    clamp,
    copy_volume,
    partial_close_volume,
    round_to_step,
)

STD = VolumeRules(D("0.01"), D("0.01"), D("100"))


def test_multiplier_doubles_half_a_lot_to_one_lot():
    assert copy_volume("multiplier", rules=STD, master_volume=D("0.50"), multiplier=D("2")) == D("1.00")


def test_multiplier_keeps_notional_when_contract_sizes_differ():
    # Master XAUUSD 100 oz per lot, slave 10 oz per lot: ratio 10, so 0.30 lots become 3.00.
    assert copy_volume("multiplier", rules=STD, master_volume=D("0.30"), contract_ratio=D("10")) == D("3.00")


def test_fixed_lot_ignores_master_volume():
    assert copy_volume("fixed", rules=STD, master_volume=D("5"), fixed_volume=D("0.30")) == D("0.30")


def test_balance_ratio_scales_by_slave_over_master_balance():
    # 2.00 lots x 5,000 / 100,000 = 0.10
    master, slave = AccountFigures(D("100000"), D("1"), D("1")), AccountFigures(D("5000"), D("1"), D("1"))
    assert copy_volume("balance_ratio", rules=STD, master_volume=D("2.00"), master=master, slave=slave) == D("0.10")


def test_equity_ratio_scales_by_equity():
    # 1.00 x 12,500 / 50,000 = 0.25
    master, slave = AccountFigures(D("1"), D("50000"), D("1")), AccountFigures(D("1"), D("12500"), D("1"))
    assert copy_volume("equity_ratio", rules=STD, master_volume=D("1.00"), master=master, slave=slave) == D("0.25")


def test_free_margin_ratio_rounds_down_to_the_step():
    # 0.50 x 3,000 / 20,000 = 0.075 -> 0.07 (down: never more risk than asked)
    master, slave = AccountFigures(D("1"), D("1"), D("20000")), AccountFigures(D("1"), D("1"), D("3000"))
    assert copy_volume("free_margin_ratio", rules=STD, master_volume=D("0.50"), master=master, slave=slave) == D("0.07")


def test_risk_percent_sizes_from_the_stop_distance():
    # 1 % of 10,000 = 100; EURUSD SL 50 pips = 0.0050 x 100,000 = 500 per lot -> 0.20 lots
    slave = AccountFigures(D("10000"), D("10000"), D("10000"))
    volume = copy_volume(
        "risk_percent",
        rules=STD,
        master_volume=D("3"),
        slave=slave,
        risk_percent=D("1"),
        sl_distance=D("0.0050"),
        slave_contract_size=D("100000"),
    )
    assert volume == D("0.20")


def test_risk_percent_without_stop_loss_is_skipped_with_a_reason():
    slave = AccountFigures(D("10000"), D("10000"), D("10000"))
    with pytest.raises(SizingSkip) as caught:
        copy_volume(
            "risk_percent",
            rules=STD,
            master_volume=D("1"),
            slave=slave,
            risk_percent=D("1"),
            sl_distance=None,
            slave_contract_size=D("100000"),
        )
    assert caught.value.code == "no_stop_loss"


def test_tiny_volume_is_clamped_up_to_the_symbol_minimum():
    assert copy_volume("multiplier", rules=STD, master_volume=D("0.01"), multiplier=D("0.1")) == D("0.01")


def test_link_maximum_caps_the_volume():
    assert copy_volume("multiplier", rules=STD, master_volume=D("2"), link_max=D("0.5")) == D("0.5")


def test_link_minimum_raises_the_volume():
    assert copy_volume("multiplier", rules=STD, master_volume=D("0.02"), link_min=D("0.10")) == D("0.10")


def test_symbol_maximum_caps_after_the_link():
    rules = VolumeRules(D("0.1"), D("0.1"), D("5"))
    assert clamp(D("7.77"), rules) == D("5")


def test_rounding_to_a_coarse_step():
    assert round_to_step(D("0.37"), D("0.1")) == D("0.3")


def test_partial_close_is_proportional():
    # master closed 0.6 of 1.0 lots; the slave's 0.30 loses 60 % = 0.18
    assert partial_close_volume(D("0.30"), D("0.6"), D("1.0"), STD) == D("0.18")


def test_partial_close_leaving_less_than_the_minimum_closes_everything():
    assert partial_close_volume(D("0.01"), D("0.5"), D("1.0"), STD) == D("0.01")


def test_balance_ratio_with_a_master_without_balance_is_skipped():
    master, slave = AccountFigures(D("0"), D("0"), D("0")), AccountFigures(D("100"), D("100"), D("100"))
    with pytest.raises(SizingSkip):
        copy_volume("balance_ratio", rules=STD, master_volume=D("1"), master=master, slave=slave)
