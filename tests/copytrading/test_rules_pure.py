"""Pure rule checks with hand-computed values."""

from __future__ import annotations

from datetime import UTC, datetime, time
from decimal import Decimal as D

from copytrading.rules import (
    daily_loss_exceeded,
    equity_stop_triggered,
    max_open_trades_exceeded,
    outside_trading_hours,
    symbols_violating,
)


def test_equity_stop_at_the_threshold_triggers():
    assert equity_stop_triggered(D("9000"), D("9000"))
    assert not equity_stop_triggered(D("9000.01"), D("9000"))


def test_daily_loss_in_percent():
    # 10,000 -> 9,400 is a 6 % loss: above 5 %, not above 6 %
    assert daily_loss_exceeded(D("10000"), D("9400"), D("5"), percent=True)
    assert not daily_loss_exceeded(D("10000"), D("9400"), D("6"), percent=True)


def test_daily_loss_in_money():
    assert daily_loss_exceeded(D("10000"), D("9400"), D("500"), percent=False)
    assert not daily_loss_exceeded(D("10000"), D("10400"), D("500"), percent=False)


def test_max_open_trades():
    assert max_open_trades_exceeded(4, 3)
    assert not max_open_trades_exceeded(3, 3)


def test_symbol_allow_and_deny_lists():
    assert symbols_violating(["EURUSD", "BTCUSD"], ["EURUSD"], []) == ["BTCUSD"]
    assert symbols_violating(["EURUSD", "BTCUSD"], [], ["btcusd"]) == ["BTCUSD"]
    assert symbols_violating(["EURUSD"], [], []) == []


def test_trading_hours_in_a_time_zone():
    # 12:00 UTC is 13:00 in Berlin in November (CET).
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    assert not outside_trading_hours(now, time(9), time(17), "Europe/Berlin")
    assert outside_trading_hours(now, time(13, 30), time(17), "Europe/Berlin")


def test_trading_hours_window_wrapping_midnight():
    late = datetime(2026, 11, 22, 23, 0, tzinfo=UTC)
    noon = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    assert not outside_trading_hours(late, time(22), time(6), "UTC")
    assert outside_trading_hours(noon, time(22), time(6), "UTC")
