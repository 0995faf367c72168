"""Pure figures and rule conditions, checked against hand-computed values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from integrations.choices import RuleCondition as C
from integrations.figures import Figures, combine, condition_met, contact_fields, percent

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def figures(**overrides) -> Figures:
    values = dict(
        balance=D("11000"),
        equity=D("10450"),
        profit_month=D("1000"),
        start_balance_month=D("10000"),
        open_trades=3,
        trades_today=4,
        last_activity=NOW - timedelta(days=2),
        last_bonus_at=None,
        created_at=NOW - timedelta(days=90),
    )
    values.update(overrides)
    return Figures(**values)


def test_gain_is_month_profit_over_the_month_starting_balance():
    assert figures().gain_month_percent == D("10.00")  # 1000 / 10000


def test_drawdown_is_equity_below_balance_in_percent_of_balance():
    assert figures().drawdown_percent == D("5.00")  # (11000 - 10450) / 11000 = 5 %
    assert figures(equity=D("12000")).drawdown_percent == D("0.00")


def test_percent_of_nothing_is_zero():
    assert percent(D("5"), D("0")) == D("0.00")
    assert percent(D("1"), D("3")) == D("33.33")


@pytest.mark.parametrize(
    ("condition", "threshold", "overrides", "met"),
    [
        (C.PROFIT_ABOVE, D("999.99"), {}, True),
        (C.PROFIT_ABOVE, D("1000"), {}, False),
        (C.GAIN_ABOVE_PERCENT, D("9.99"), {}, True),
        (C.LOSS_BEYOND_PERCENT, D("10"), {"profit_month": D("-1000")}, True),  # -10 % reaches "beyond 10 %"
        (C.LOSS_BEYOND_PERCENT, D("10"), {"profit_month": D("-999")}, False),
        (C.LOSS_BEYOND_PERCENT, D("10"), {}, False),
        (C.DRAWDOWN_BEYOND_PERCENT, D("5"), {}, True),
        (C.DRAWDOWN_BEYOND_PERCENT, D("5.01"), {}, False),
        (C.TRADES_PER_DAY_ABOVE, D("3"), {}, True),
        (C.TRADES_PER_DAY_ABOVE, D("4"), {}, False),
        (C.INACTIVE_DAYS, D("2"), {}, True),
        (C.INACTIVE_DAYS, D("3"), {}, False),
        (C.INACTIVE_DAYS, D("30"), {"last_activity": None}, True),  # never traded: counted from connection
        (C.BONUS_GRANTED, D("7"), {"last_bonus_at": NOW - timedelta(days=6)}, True),
        (C.BONUS_GRANTED, D("7"), {"last_bonus_at": NOW - timedelta(days=8)}, False),
        (C.BONUS_GRANTED, D("7"), {}, False),
        (C.EQUITY_BELOW, D("10450.01"), {}, True),
        (C.EQUITY_BELOW, D("10450"), {}, False),
    ],
)
def test_condition(condition, threshold, overrides, met):
    assert condition_met(condition, threshold, figures(**overrides), NOW) is met


def test_unknown_condition_is_an_error():
    with pytest.raises(ValueError):
        condition_met("moon_phase", D("1"), figures(), NOW)


def test_contact_figures_sum_money_and_keep_the_newest_activity():
    a = figures()
    b = figures(
        balance=D("1000"),
        equity=D("1000"),
        profit_month=D("-100"),
        start_balance_month=D("1100"),
        open_trades=1,
        trades_today=2,
        last_activity=NOW - timedelta(hours=1),
    )
    both = combine([a, b])
    assert both.balance == D("12000") and both.profit_month == D("900") and both.start_balance_month == D("11100")
    assert both.open_trades == 4 and both.trades_today == 6 and both.last_activity == NOW - timedelta(hours=1)
    assert both.gain_month_percent == D("8.11")  # 900 / 11100
    assert combine([]) is None


def test_contact_fields_use_the_prefix_and_plain_strings():
    assert contact_fields(figures(), "mt5_") == {
        "mt5_balance": "11000.00",
        "mt5_equity": "10450.00",
        "mt5_gain_month": "10.00",
        "mt5_drawdown": "5.00",
        "mt5_open_trades": "3",
        "mt5_last_activity": "2026-11-20",
    }
