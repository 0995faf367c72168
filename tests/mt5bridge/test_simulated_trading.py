"""Trading on the simulated MT5 server: fills, deals, retcodes, netting, pendings, SL/TP and stop-out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from mt5bridge.gateway.simulated import SimulatedGateway
from mt5bridge.gateway.types import (
    DealEntry,
    DealReason,
    DealType,
    OrderRequest,
    OrderType,
    PositionType,
    Retcode,
    TradeAction,
)
from mt5bridge.simulated import clock, create_account, prices, process_market
from mt5bridge.simulated.models import SimOrder
from mt5bridge.simulated.symbols_catalog import symbol_spec

pytestmark = pytest.mark.django_db

WEDNESDAY_NOON = datetime(2026, 3, 11, 12, 0, tzinfo=UTC)
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
D = Decimal


@pytest.fixture(autouse=True)
def _market(settings):
    settings.MT5_SIM_SEED = 20261122
    clock.set_now(WEDNESDAY_NOON)
    yield
    clock.set_now(None)


@pytest.fixture
def gw() -> SimulatedGateway:
    return SimulatedGateway()


@pytest.fixture
def hedging():
    return create_account(login=7001, password="secret", balance=D("10000"), leverage=100, name="Hedger").login


@pytest.fixture
def netting():
    return create_account(
        login=7002, password="secret", group="demo\\netting", balance=D("10000"), leverage=100, hedging=False
    ).login


def market(gw, login, symbol, volume, side=OrderType.BUY, **extra):
    return gw.order_send(
        login, OrderRequest(action=TradeAction.DEAL, symbol=symbol, volume=D(volume), type=side, **extra)
    )


def trades(gw, login):
    return [d for d in gw.deals(login, EPOCH, clock.now()) if d.type in (DealType.BUY, DealType.SELL)]


# --- market orders --------------------------------------------------------------------


def test_buying_eurusd_fills_at_the_ask_and_takes_hand_computed_margin(gw, hedging):
    result = market(gw, hedging, "EURUSD", "0.10")
    assert result.retcode == Retcode.DONE
    # At Wednesday noon with seed 20261122 EURUSD is 1.07280 / 1.07290.
    assert (result.bid, result.ask, result.price) == (D("1.07280"), D("1.07290"), D("1.07290"))
    info = gw.account_info(hedging)
    # margin = 0.10 lot x 100,000 x 1.07290 / leverage 100 = 107.29 USD
    assert info.margin == D("107.29")
    # floating = (bid 1.07280 - 1.07290) x 0.10 x 100,000 = -1.00 USD (the spread)
    assert info.profit == D("-1.00")
    assert info.equity == D("9999.00")
    assert info.margin_free == D("9891.71")
    assert info.margin_level == D("9319.60")  # 9999.00 / 107.29 x 100
    [position] = gw.positions(hedging)
    assert (position.type, position.volume, position.price_open) == (PositionType.BUY, D("0.10"), D("1.07290"))
    assert position.identifier == position.ticket == result.order


def test_closing_a_hedged_position_books_an_out_deal_with_the_price_move_as_profit(gw, hedging):
    opened = market(gw, hedging, "EURUSD", "0.10", comment="x" * 40, magic=42)
    clock.advance(600)
    [position] = gw.positions(hedging)
    closed = market(gw, hedging, "EURUSD", "0.10", OrderType.SELL, position=position.ticket)
    assert closed.retcode == Retcode.DONE
    assert closed.price == D("1.07218")  # the bid ten minutes later
    deal_in, deal_out = trades(gw, hedging)
    assert (deal_in.type, deal_in.entry, deal_in.reason) == (DealType.BUY, DealEntry.IN, DealReason.EXPERT)
    assert deal_in.comment == "x" * 31 and deal_in.magic == 42 and deal_in.order == opened.order
    assert (deal_out.type, deal_out.entry, deal_out.reason) == (DealType.SELL, DealEntry.OUT, DealReason.CLIENT)
    assert deal_out.position_id == deal_in.position_id == position.identifier
    # (1.07218 - 1.07290) x 0.10 x 100,000 = -7.20: the price fell, a buy loses.
    assert deal_out.profit == D("-7.20") and deal_in.profit == 0
    assert gw.account_info(hedging).balance == D("9992.80")
    assert gw.positions(hedging) == []
    assert deal_out.ticket > deal_in.ticket


def test_a_jpy_profit_is_converted_to_usd_at_the_usdjpy_bid(gw, hedging):
    opened = market(gw, hedging, "USDJPY", "0.10")
    assert opened.price == D("149.674")
    # margin = 0.10 x 100,000 x 149.674 / 100 = 14,967.4 JPY; / 149.663 (bid) = 100.0073... -> 100.01 USD
    assert gw.account_info(hedging).margin == D("100.01")
    clock.advance(600)
    closed = market(gw, hedging, "USDJPY", "0.10", OrderType.SELL, position=opened.order)
    assert closed.price == D("149.724")
    # (149.724 - 149.674) x 0.10 x 100,000 = 500 JPY; 500 / 149.724 = 3.3394... -> 3.34 USD
    assert trades(gw, hedging)[-1].profit == D("3.34")


def test_a_partial_close_leaves_the_rest_open(gw, hedging):
    opened = market(gw, hedging, "GBPUSD", "0.50", OrderType.SELL)
    clock.advance(30)
    result = market(gw, hedging, "GBPUSD", "0.20", OrderType.BUY, position=opened.order)
    assert result.retcode == Retcode.DONE
    [position] = gw.positions(hedging)
    assert position.volume == D("0.30") and position.ticket == opened.order
    out = trades(gw, hedging)[-1]
    assert (out.entry, out.volume, out.type) == (DealEntry.OUT, D("0.20"), DealType.BUY)


def test_hedging_keeps_opposite_positions_apart(gw, hedging):
    market(gw, hedging, "EURUSD", "0.10")
    market(gw, hedging, "EURUSD", "0.10", OrderType.SELL)
    assert sorted(p.type for p in gw.positions(hedging)) == [PositionType.BUY, PositionType.SELL]


def test_netting_adds_reduces_reverses_and_closes_one_position(gw, netting):
    assert market(gw, netting, "EURUSD", "0.30").retcode == Retcode.DONE
    clock.advance(5)
    assert market(gw, netting, "EURUSD", "0.10", OrderType.SELL).retcode == Retcode.DONE
    [position] = gw.positions(netting)
    assert (position.type, position.volume) == (PositionType.BUY, D("0.20"))
    clock.advance(5)
    market(gw, netting, "EURUSD", "0.50", OrderType.SELL)
    [reversed_] = gw.positions(netting)
    assert (reversed_.type, reversed_.volume, reversed_.identifier) == (
        PositionType.SELL,
        D("0.30"),
        position.identifier,
    )
    clock.advance(5)
    market(gw, netting, "EURUSD", "0.30", OrderType.BUY)
    assert gw.positions(netting) == []
    deals = trades(gw, netting)
    assert [d.entry for d in deals] == [DealEntry.IN, DealEntry.OUT, DealEntry.INOUT, DealEntry.OUT]
    assert [d.type for d in deals] == [DealType.BUY, DealType.SELL, DealType.SELL, DealType.BUY]
    assert {d.position_id for d in deals} == {position.identifier}
    assert deals[0].profit == 0 and deals[1].profit != 0 and deals[2].profit != 0
    info = gw.account_info(netting)
    assert info.balance == D("10000") + sum(d.profit + d.commission + d.swap for d in deals)


def test_netting_averages_the_open_price_when_adding(gw, netting):
    first = market(gw, netting, "EURUSD", "0.10")
    clock.advance(600)
    second = market(gw, netting, "EURUSD", "0.30")
    [position] = gw.positions(netting)
    assert position.volume == D("0.40")
    assert position.price_open == (first.price * D("0.1") + second.price * D("0.3")) / D("0.4")


def test_commission_is_charged_per_lot_per_side_on_the_live_server(gw):
    login = create_account(login=7003, password="pw", server="MetaSim-Live", balance=D("5000")).login
    opened = market(gw, login, "EURUSD.pro", "2.00")
    market(gw, login, "EURUSD.pro", "2.00", OrderType.SELL, position=opened.order)
    deal_in, deal_out = trades(gw, login)
    assert deal_in.commission == deal_out.commission == D("-7.00")
    assert gw.account_info(login).balance == D("5000") - D("14.00") + deal_out.profit


# --- refusals -------------------------------------------------------------------------


@pytest.mark.parametrize("volume", ["0.001", "1000", "0.015", "0"])
def test_volumes_off_the_symbol_grid_are_refused(gw, hedging, volume):
    assert market(gw, hedging, "EURUSD", volume).retcode == Retcode.INVALID_VOLUME


def test_stops_on_the_wrong_side_or_inside_the_stops_level_are_refused(gw, hedging):
    tick = gw.tick("EURUSD")
    assert market(gw, hedging, "EURUSD", "0.1", sl=tick.bid + D("0.001")).retcode == Retcode.INVALID_STOPS
    assert market(gw, hedging, "EURUSD", "0.1", tp=tick.bid - D("0.001")).retcode == Retcode.INVALID_STOPS
    # MetaSim-Demo keeps EURUSD stops 10 points away from the price.
    assert market(gw, hedging, "EURUSD", "0.1", sl=tick.bid - D("0.00005")).retcode == Retcode.INVALID_STOPS
    assert market(gw, hedging, "EURUSD", "0.1", OrderType.SELL, sl=tick.ask - D("0.0001")).retcode == 10016
    ok = market(gw, hedging, "EURUSD", "0.1", sl=tick.bid - D("0.0010"), tp=tick.bid + D("0.0010"))
    assert ok.retcode == Retcode.DONE


def test_a_deal_the_free_margin_cannot_carry_is_refused(gw):
    login = create_account(login=7004, password="pw", balance=D("100"), leverage=100).login
    assert market(gw, login, "EURUSD", "1.00").retcode == Retcode.NO_MONEY  # needs about 1,073 USD
    assert market(gw, login, "EURUSD", "0.05").retcode == Retcode.DONE
    assert gw.positions(login)[0].volume == D("0.05")


def test_a_requested_price_beyond_the_deviation_is_requoted(gw, hedging):
    tick = gw.tick("EURUSD")
    stale = market(gw, hedging, "EURUSD", "0.1", price=tick.ask - D("0.00020"), deviation=10)
    assert stale.retcode == Retcode.REQUOTE and stale.ask == tick.ask
    near = market(gw, hedging, "EURUSD", "0.1", price=tick.ask - D("0.00005"), deviation=10)
    assert near.retcode == Retcode.DONE and near.price == tick.ask


def test_closing_an_unknown_ticket_or_too_much_volume_is_refused(gw, hedging):
    assert market(gw, hedging, "EURUSD", "0.1", OrderType.SELL, position=123).retcode == Retcode.POSITION_CLOSED
    opened = market(gw, hedging, "EURUSD", "0.1")
    too_much = market(gw, hedging, "EURUSD", "0.2", OrderType.SELL, position=opened.order)
    assert too_much.retcode == Retcode.INVALID_CLOSE_VOLUME
    market(gw, hedging, "EURUSD", "0.1", OrderType.SELL, position=opened.order)
    again = market(gw, hedging, "EURUSD", "0.1", OrderType.SELL, position=opened.order)
    assert again.retcode == Retcode.POSITION_CLOSED


def test_bad_requests_are_refused_with_invalid_codes(gw, hedging):
    assert market(gw, hedging, "NOPE", "0.1").retcode == Retcode.INVALID
    assert market(gw, hedging, "EURUSD.pro", "0.1").retcode == Retcode.INVALID  # another broker's name
    assert market(gw, hedging, "EURUSD", "0.1", OrderType.BUY_LIMIT).retcode == Retcode.INVALID_ORDER
    remove = gw.order_send(hedging, OrderRequest(action=TradeAction.REMOVE, order=999))
    assert remove.retcode == Retcode.INVALID_ORDER


def test_trading_is_refused_while_the_market_is_closed(gw, hedging):
    clock.set_now(datetime(2026, 3, 14, 12, 0, tzinfo=UTC))  # Saturday
    assert market(gw, hedging, "EURUSD", "0.1").retcode == Retcode.MARKET_CLOSED
    assert market(gw, hedging, "AAPL", "1").retcode == Retcode.MARKET_CLOSED
    assert market(gw, hedging, "BTCUSD", "0.01").retcode == Retcode.DONE  # crypto never closes


# --- modifications and pendings -------------------------------------------------------


def test_sl_and_tp_can_be_modified_and_an_identical_request_changes_nothing(gw, hedging):
    opened = market(gw, hedging, "EURUSD", "0.1")
    sl = opened.bid - D("0.00500")
    request = OrderRequest(action=TradeAction.SLTP, position=opened.order, symbol="EURUSD", sl=sl)
    assert gw.order_send(hedging, request).retcode == Retcode.DONE
    assert gw.positions(hedging)[0].sl == sl
    assert gw.order_send(hedging, request).retcode == Retcode.NO_CHANGES
    bad = OrderRequest(action=TradeAction.SLTP, position=opened.order, sl=opened.bid + D("0.001"))
    assert gw.order_send(hedging, bad).retcode == Retcode.INVALID_STOPS


def _pending(gw, login, order_type, price, **extra):
    return gw.order_send(
        login,
        OrderRequest(
            action=TradeAction.PENDING, symbol="EURUSD", volume=D("0.10"), type=order_type, price=price, **extra
        ),
    )


def test_a_pending_order_is_placed_modified_and_removed(gw, hedging):
    tick = gw.tick("EURUSD")
    placed = _pending(gw, hedging, OrderType.BUY_LIMIT, tick.ask - D("0.00500"), magic=9)
    assert placed.retcode == Retcode.PLACED
    [order] = gw.orders(hedging)
    assert (order.ticket, order.type, order.price_open) == (placed.order, OrderType.BUY_LIMIT, tick.ask - D("0.005"))
    wrong_side = _pending(gw, hedging, OrderType.BUY_LIMIT, tick.ask + D("0.00500"))
    assert wrong_side.retcode == Retcode.INVALID_PRICE
    modify = OrderRequest(action=TradeAction.MODIFY, order=placed.order, price=tick.ask - D("0.00600"))
    assert gw.order_send(hedging, modify).retcode == Retcode.DONE
    assert gw.orders(hedging)[0].price_open == tick.ask - D("0.006")
    assert gw.order_send(hedging, modify).retcode == Retcode.NO_CHANGES
    remove = gw.order_send(hedging, OrderRequest(action=TradeAction.REMOVE, order=placed.order))
    assert remove.retcode == Retcode.DONE
    assert gw.orders(hedging) == []
    assert SimOrder.objects.get(ticket=placed.order).state == SimOrder.CANCELED


def _path(symbol: str, start: datetime, seconds: int) -> list[tuple[int, Decimal, Decimal]]:
    spec = symbol_spec("MetaSim-Demo", symbol)
    t0 = prices.epoch_second(start)
    return [(t, *prices.raw_quote(spec, t)) for t in range(t0 + 1, t0 + seconds + 1)]


def test_a_buy_limit_fills_when_the_ask_first_reaches_it(gw, hedging):
    path = _path("EURUSD", WEDNESDAY_NOON, 3600)
    level = min(ask for _, _, ask in path)
    first_touch = next(t for t, _, ask in path if ask <= level)
    assert level <= gw.tick("EURUSD").ask - D("0.00010")  # a valid limit now
    placed = _pending(gw, hedging, OrderType.BUY_LIMIT, level, comment="dip buyer")
    clock.advance(3600)
    assert gw.orders(hedging) == []
    [position] = gw.positions(hedging)
    assert (position.ticket, position.price_open, position.comment) == (placed.order, level, "dip buyer")
    assert position.time == prices.from_epoch(first_touch)
    [fill] = trades(gw, hedging)
    assert (fill.order, fill.entry, fill.time) == (placed.order, DealEntry.IN, prices.from_epoch(first_touch))
    order = SimOrder.objects.get(ticket=placed.order)
    assert (order.state, order.position_id) == (SimOrder.FILLED, placed.order)


def test_the_market_loop_fills_pendings_without_anyone_reading_the_account(hedging):
    path = _path("EURUSD", WEDNESDAY_NOON, 3600)
    level = max(bid for _, bid, _ in path)
    gw = SimulatedGateway()
    placed = _pending(gw, hedging, OrderType.SELL_LIMIT, level)
    assert placed.retcode == Retcode.PLACED
    run = process_market(WEDNESDAY_NOON + timedelta(hours=1))
    assert run.accounts_settled == 1
    assert SimOrder.objects.get(ticket=placed.order).state == SimOrder.FILLED


def test_a_pending_order_expires(gw, hedging):
    tick = gw.tick("EURUSD")
    expiry = WEDNESDAY_NOON + timedelta(minutes=30)
    placed = _pending(gw, hedging, OrderType.BUY_LIMIT, tick.ask - D("0.05"), type_time=2, expiration=expiry)
    assert placed.retcode == Retcode.PLACED
    past = _pending(gw, hedging, OrderType.BUY_LIMIT, tick.ask - D("0.05"), type_time=2, expiration=EPOCH)
    assert past.retcode == Retcode.INVALID_EXPIRATION
    clock.advance(3600)
    assert gw.orders(hedging) == []
    order = SimOrder.objects.get(ticket=placed.order)
    assert (order.state, order.time_done) == (SimOrder.EXPIRED, expiry)


def test_a_stop_loss_hit_closes_the_position_with_reason_sl(gw, hedging):
    path = _path("EURUSD", WEDNESDAY_NOON, 3600)
    sl = min(bid for _, bid, _ in path)
    first_touch = next(t for t, bid, _ in path if bid <= sl)
    opened = market(gw, hedging, "EURUSD", "0.10", sl=sl, tp=gw.tick("EURUSD").bid + D("0.01"))
    assert opened.retcode == Retcode.DONE
    clock.advance(3600)
    assert gw.positions(hedging) == []
    out = trades(gw, hedging)[-1]
    assert (out.reason, out.entry, out.price) == (DealReason.SL, DealEntry.OUT, sl)
    assert out.time == prices.from_epoch(first_touch)
    assert out.comment == f"[sl {sl}]"
    assert out.profit == (sl - opened.price) * D("0.1") * 100000


def test_a_take_profit_hit_on_a_sell_closes_at_the_ask(gw, hedging):
    path = _path("EURUSD", WEDNESDAY_NOON, 3600)
    tp = min(ask for _, _, ask in path)
    opened = market(gw, hedging, "EURUSD", "0.10", OrderType.SELL, tp=tp)
    assert opened.retcode == Retcode.DONE
    clock.advance(3600)
    out = trades(gw, hedging)[-1]
    assert (out.reason, out.price, out.type) == (DealReason.TP, tp, DealType.BUY)
    assert out.profit > 0


def test_stop_out_closes_the_most_losing_position_first(gw):
    login = create_account(login=7005, password="pw", balance=D("10000"), leverage=100).login
    market(gw, login, "EURUSD", "1.00")
    market(gw, login, "GBPUSD", "0.50", OrderType.SELL)
    market(gw, login, "XAUUSD", "0.10")
    clock.advance(900)
    before = {p.ticket: p.profit + p.swap for p in gw.positions(login)}
    worst = min(before, key=before.get)
    info = gw.account_info(login)
    # Leave equity at 45 % of the margin: under the group's 50 % stop-out level.
    target = info.margin * D("0.45")
    gw.balance_operation(login, target - info.equity, DealType.CORRECTION, "test")
    after = gw.account_info(login)
    assert after.margin_level is None or after.margin_level > D("50")
    closed = [d for d in trades(gw, login) if d.reason == DealReason.SO]
    assert closed and closed[0].position_id == worst
    assert closed[0].comment.startswith("[so ")
    assert worst not in {p.ticket for p in gw.positions(login)}


def test_close_all_positions_closes_everything_at_market(gw, hedging):
    market(gw, hedging, "EURUSD", "0.1")
    market(gw, hedging, "XAUUSD", "0.1", OrderType.SELL)
    results = gw.close_all_positions(hedging)
    assert [r.retcode for r in results] == [Retcode.DONE, Retcode.DONE]
    assert gw.positions(hedging) == []


def test_tickets_increase_across_accounts_of_a_server(gw, hedging, netting):
    tickets = [market(gw, login, "EURUSD", "0.1").deal for login in (hedging, netting, hedging)]
    assert tickets == sorted(tickets) and len(set(tickets)) == 3


def test_swap_accrues_at_each_rollover_and_triples_on_wednesday(gw, hedging):
    clock.set_now(datetime(2026, 3, 10, 12, 0, tzinfo=UTC))  # Tuesday
    opened = market(gw, hedging, "EURUSD", "1.00")
    clock.set_now(datetime(2026, 3, 12, 12, 0, tzinfo=UTC))  # Thursday: Tuesday's and Wednesday's (x3) rollovers
    [position] = gw.positions(hedging)
    assert position.swap == D("-7.20") * 4  # long swap -7.20 per lot per day
    market(gw, hedging, "EURUSD", "1.00", OrderType.SELL, position=opened.order)
    assert trades(gw, hedging)[-1].swap == D("-28.80")


def test_close_by_settles_two_opposite_positions_at_the_second_ones_price(gw, hedging):
    long = market(gw, hedging, "EURUSD", "0.30")
    clock.advance(600)
    short = market(gw, hedging, "EURUSD", "0.10", OrderType.SELL)
    result = gw.order_send(
        hedging, OrderRequest(action=TradeAction.CLOSE_BY, position=long.order, position_by=short.order)
    )
    assert result.retcode == Retcode.DONE and result.price == short.price
    [left] = gw.positions(hedging)
    assert (left.ticket, left.volume) == (long.order, D("0.20"))
    out_long, out_short = trades(gw, hedging)[-2:]
    assert out_long.entry == out_short.entry == DealEntry.OUT_BY
    assert out_long.profit == (short.price - long.price) * D("0.1") * 100000 and out_short.profit == 0


def test_the_market_loop_stops_out_an_account_nobody_reads(gw):
    login = create_account(login=7006, password="pw", balance=D("10000"), leverage=100).login
    market(gw, login, "EURUSD", "1.00")
    market(gw, login, "XAUUSD", "0.50", OrderType.SELL)
    info = gw.account_info(login)
    gw.balance_operation(login, info.margin * D("0.4") - info.equity, DealType.CORRECTION, "test")
    run = process_market(clock.now())
    assert run.accounts_settled == 1
    reasons = [d.reason for d in trades(gw, login)]
    assert DealReason.SO in reasons


def test_every_gateway_sees_the_same_account(gw, hedging):
    other = SimulatedGateway()
    before = other.positions(hedging)
    market(gw, hedging, "EURUSD", "0.10")
    assert before == [] and len(other.positions(hedging)) == 1
    assert other.account_info(hedging) == gw.account_info(hedging)


def test_a_netting_pending_order_adds_to_the_position_when_it_fills(gw, netting):
    market(gw, netting, "EURUSD", "0.10")
    path = _path("EURUSD", WEDNESDAY_NOON, 3600)
    level = min(ask for _, _, ask in path)
    assert _pending(gw, netting, OrderType.BUY_LIMIT, level).retcode == Retcode.PLACED
    clock.advance(3600)
    [position] = gw.positions(netting)
    assert position.volume == D("0.20")
    assert [d.entry for d in trades(gw, netting)] == [DealEntry.IN, DealEntry.IN]
