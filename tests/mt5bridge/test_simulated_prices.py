"""The simulated price feed, market hours, symbol catalogue, group masks and swap arithmetic."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from config.caches import clear_all_memos
from mt5bridge.groups import filter_groups
from mt5bridge.simulated import prices
from mt5bridge.simulated.accounting import rollover_days
from mt5bridge.simulated.symbols_catalog import INSTRUMENTS, SERVERS, canonical, find_symbol, symbol_spec

SEED = 20261122
WEDNESDAY_NOON = datetime(2026, 3, 11, 12, 0, tzinfo=UTC)
SATURDAY_NOON = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)
FRIDAY_CLOSE = datetime(2026, 3, 13, 21, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _seed(settings):
    settings.MT5_SIM_SEED = SEED


def test_the_same_instant_gives_the_same_tick_twice_and_after_the_caches_are_dropped():
    spec = canonical("EURUSD")
    first = prices.tick(spec, WEDNESDAY_NOON)
    clear_all_memos()
    assert prices.tick(spec, WEDNESDAY_NOON) == first
    assert prices.tick(spec, WEDNESDAY_NOON + timedelta(milliseconds=999)) == first


def test_another_process_sees_the_same_prices():
    code = (
        "from datetime import datetime, UTC\n"
        "from mt5bridge.simulated import prices\n"
        "from mt5bridge.simulated.symbols_catalog import canonical\n"
        "t = prices.tick(canonical('XAUUSD'), datetime(2026, 3, 11, 12, 0, tzinfo=UTC))\n"
        "print(t.bid, t.ask)\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "MT5_SIM_SEED": str(SEED)}
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, check=True)
    tick = prices.tick(canonical("XAUUSD"), WEDNESDAY_NOON)
    assert out.stdout.split() == [str(tick.bid), str(tick.ask)]


def test_another_seed_gives_another_walk(settings):
    spec = canonical("EURUSD")
    before = prices.tick(spec, WEDNESDAY_NOON).bid
    settings.MT5_SIM_SEED = SEED + 1
    assert prices.tick(spec, WEDNESDAY_NOON).bid != before


def test_prices_move_every_few_seconds_and_wander_over_days():
    spec = canonical("EURUSD")
    t0 = prices.epoch_second(WEDNESDAY_NOON)
    bids = [prices.quote(spec, t0 + s)[0] for s in range(60)]
    changes = sum(1 for a, b in zip(bids, bids[1:], strict=False) if a != b)
    assert changes >= 30
    daily = {prices.quote(spec, t0 + d * 86400)[0] for d in range(0, 60, 3)}
    assert len(daily) == 20
    assert max(daily) - min(daily) > Decimal("0.005")


@pytest.mark.parametrize("server", list(SERVERS))
def test_every_symbol_has_a_positive_spread_in_points_and_its_digits(server):
    for spec in SERVERS[server].symbols:
        tick = prices.tick(spec, WEDNESDAY_NOON)
        assert tick.ask - tick.bid == spec.spread * spec.point > 0
        assert tick.bid.as_tuple().exponent == -spec.digits
        assert tick.bid > 0


def test_forex_is_frozen_at_the_friday_close_over_the_weekend():
    spec = canonical("EURUSD")
    saturday = prices.tick(spec, SATURDAY_NOON)
    last_open = FRIDAY_CLOSE - timedelta(seconds=1)
    assert saturday.time == last_open
    assert (saturday.bid, saturday.ask) == prices.raw_quote(spec, prices.epoch_second(last_open))
    assert prices.tick(spec, SATURDAY_NOON + timedelta(hours=20)) == saturday
    assert not prices.is_open("forex", prices.epoch_second(SATURDAY_NOON))
    sunday_open = datetime(2026, 3, 15, 21, 0, tzinfo=UTC)
    assert prices.is_open("forex", prices.epoch_second(sunday_open))
    assert prices.tick(spec, sunday_open).time == sunday_open


def test_crypto_trades_on_saturday():
    spec = canonical("BTCUSD")
    assert prices.tick(spec, SATURDAY_NOON).time == SATURDAY_NOON
    assert prices.tick(spec, SATURDAY_NOON) != prices.tick(spec, SATURDAY_NOON + timedelta(minutes=5))


def test_stocks_trade_in_the_us_session_and_indices_pause_daily():
    t = prices.epoch_second
    assert not prices.is_open("stock", t(WEDNESDAY_NOON))
    assert prices.is_open("stock", t(WEDNESDAY_NOON.replace(hour=14)))
    assert not prices.is_open("stock", t(WEDNESDAY_NOON.replace(hour=20)))
    assert prices.last_open_second("stock", t(WEDNESDAY_NOON)) == t(datetime(2026, 3, 10, 20, 0, tzinfo=UTC)) - 1
    assert not prices.is_open("index", t(WEDNESDAY_NOON.replace(hour=21, minute=30)))
    assert prices.is_open("index", t(WEDNESDAY_NOON.replace(hour=22, minute=0)))
    assert prices.next_open_second("stock", t(SATURDAY_NOON)) == t(datetime(2026, 3, 16, 13, 30, tzinfo=UTC))


def test_open_segments_cover_exactly_the_open_seconds():
    a = prices.epoch_second(datetime(2026, 3, 12, 18, 0, tzinfo=UTC))  # Thursday, across the weekend
    b = a + 4 * 86400
    segments = list(prices.open_segments("index", a, b))
    assert sum(e - s + 1 for s, e in segments) == sum(1 for x in range(a, b + 1) if prices.is_open("index", x))
    for s, e in segments:
        assert prices.is_open("index", s) and prices.is_open("index", e)
        assert s == a or not prices.is_open("index", s - 1)
        assert e == b or not prices.is_open("index", e + 1)


def test_first_crossing_agrees_with_a_second_by_second_scan():
    spec = canonical("EURUSD")
    a = prices.epoch_second(WEDNESDAY_NOON)
    b = a + 3 * 3600
    bids = [prices.raw_quote(spec, x)[0] for x in range(a, b + 1)]
    level = min(bids[: len(bids) // 2]) + spec.point  # touched somewhere in the first half
    expected = next(a + i for i, bid in enumerate(bids) if bid <= level)
    found = prices.first_crossing(spec, a, b, bid_at_or_below=level, bid_at_or_above=None)
    assert found is not None and found[0] == expected
    assert prices.first_crossing(spec, a, b, bid_at_or_below=min(bids) - spec.point, bid_at_or_above=None) is None


def test_usd_conversion_uses_the_bid_of_the_usd_pair():
    t = prices.epoch_second(WEDNESDAY_NOON)
    assert prices.usd_rate("USD", t) == 1
    assert prices.usd_rate("EUR", t) == prices.quote(canonical("EURUSD"), t)[0]
    assert prices.usd_rate("JPY", t) == 1 / prices.quote(canonical("USDJPY"), t)[0]


def test_brokers_name_and_size_the_same_markets_differently():
    assert {"EURUSD", "XAUUSD", "US30", "BTCUSD", "AAPL"} <= set(SERVERS["MetaSim-Demo"].by_name)
    assert {"EURUSD.pro", "XAUUSD.pro", "US30.cash", "AAPL.NAS"} <= set(SERVERS["MetaSim-Live"].by_name)
    assert {"EURUSDm", "GOLD", "#US30", "BTCUSDm", "WTI"} <= set(SERVERS["OtherFX-Server"].by_name)
    gold = symbol_spec("OtherFX-Server", "GOLD")
    assert gold.key == "XAUUSD" and gold.contract_size == 100
    assert symbol_spec("MetaSim-Demo", "US30").contract_size == 1
    assert symbol_spec("OtherFX-Server", "#US30").contract_size == 10
    assert symbol_spec("MetaSim-Live", "EURUSD.pro").path == "Forex\\Majors\\EURUSD.pro"
    assert symbol_spec("MetaSim-Live", "EURUSD.pro").commission_per_lot == Decimal("-3.50")
    assert symbol_spec("MetaSim-Demo", "XAGUSD").contract_size == 5000
    assert symbol_spec("MetaSim-Demo", "USOIL").contract_size == 1000
    assert find_symbol("GOLD").server == "OtherFX-Server"
    info = symbol_spec("MetaSim-Demo", "USDJPY").to_info()
    assert (info.digits, info.point, info.currency_profit) == (3, Decimal("0.001"), "JPY")
    assert len(INSTRUMENTS) >= 20


def test_the_same_market_quotes_alike_on_every_broker_apart_from_spread():
    demo = prices.tick(symbol_spec("MetaSim-Demo", "EURUSD"), WEDNESDAY_NOON)
    other = prices.tick(symbol_spec("OtherFX-Server", "EURUSDm"), WEDNESDAY_NOON)
    assert abs(demo.bid - other.bid) <= Decimal("0.00005")


def test_rollovers_charge_three_days_on_wednesday_and_none_at_the_weekend():
    t = prices.epoch_second
    monday = t(datetime(2026, 3, 9, 20, 0, tzinfo=UTC))
    thursday = t(datetime(2026, 3, 12, 22, 0, tzinfo=UTC))
    assert rollover_days("forex", monday, thursday) == 1 + 1 + 3 + 1
    saturday, sunday = t(datetime(2026, 3, 14, 1, 0, tzinfo=UTC)), t(datetime(2026, 3, 15, 23, 0, tzinfo=UTC))
    assert rollover_days("forex", saturday, sunday) == 0
    assert rollover_days("crypto", saturday, sunday) == 2
    assert rollover_days("forex", monday, monday + 7 * 86400) == 7


@pytest.mark.parametrize(
    ("mask", "expected"),
    [
        ("*", ["demo\\standard", "demo\\netting", "real\\pro", "real\\vip"]),
        ("demo*", ["demo\\standard", "demo\\netting"]),
        ("*,!demo*", ["real\\pro", "real\\vip"]),
        ("*,!*netting,!real\\vip", ["demo\\standard", "real\\pro"]),
        ("!real*,real\\vip", ["real\\vip"]),
        ("REAL\\*", ["real\\pro", "real\\vip"]),
        ("", []),
    ],
)
def test_group_masks_apply_inclusions_and_exclusions_left_to_right(mask, expected):
    groups = ["demo\\standard", "demo\\netting", "real\\pro", "real\\vip"]
    assert filter_groups(groups, mask) == expected
