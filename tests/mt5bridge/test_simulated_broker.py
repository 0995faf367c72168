"""Broker side of the simulated MT5 server: login, users, balance operations, bulk reads, history."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from mt5bridge.gateway import MT5Gateway, get_gateway
from mt5bridge.gateway.simulated import SimulatedGateway
from mt5bridge.gateway.types import (
    AuthenticationFailed,
    Credentials,
    DealEntry,
    DealType,
    GatewayError,
    MarginMode,
    NotFound,
    OrderRequest,
    OrderType,
    Retcode,
    TradeAction,
)
from mt5bridge.simulated import OperationRefused, clock, create_account, deposit, generate_history, prices, withdraw
from mt5bridge.simulated.accounting import Valuation
from mt5bridge.simulated.models import SimAccount, SimDeal, SimPosition
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
def account():
    return create_account(
        login=8001,
        password="Trader#1",
        balance=D("5000"),
        leverage=200,
        name="Ada Lovelace",
        email="ada@example.com",
        country="GB",
        lead_source="google",
        lead_campaign="spring",
    )


def buy(gw, login, symbol="EURUSD", volume="0.10"):
    return gw.order_send(
        login, OrderRequest(action=TradeAction.DEAL, symbol=symbol, volume=D(volume), type=OrderType.BUY)
    )


# --- login ----------------------------------------------------------------------------


def test_the_factory_builds_a_simulated_gateway_that_follows_the_protocol():
    gateway = get_gateway("simulated")
    assert isinstance(gateway, SimulatedGateway) and isinstance(gateway, MT5Gateway)
    assert gateway.kind == "simulated"


def test_login_returns_the_account_with_its_figures(gw, account):
    info = gw.login(Credentials(8001, "Trader#1", "MetaSim-Demo"))
    assert (info.login, info.server, info.name, info.leverage) == (8001, "MetaSim-Demo", "Ada Lovelace", 200)
    assert (info.balance, info.equity, info.margin, info.margin_level) == (D("5000"), D("5000"), 0, None)
    assert (info.margin_mode, info.company, info.margin_so_so) == (MarginMode.RETAIL_HEDGING, "MetaSim Markets Ltd", 50)


@pytest.mark.parametrize(
    ("login", "password", "server"),
    [
        (8001, "wrong", "MetaSim-Demo"),
        (8002, "Trader#1", "MetaSim-Demo"),
        (8001, "Trader#1", "MetaSim-Live"),
        (8001, "Trader#1", "Nowhere-Server"),
    ],
)
def test_refused_credentials_raise_authentication_failed(gw, account, login, password, server):
    with pytest.raises(AuthenticationFailed, match="-6"):
        gw.login(Credentials(login, password, server))


def test_a_remembered_password_is_still_checked(gw, account):
    gw.login(Credentials(8001, "Trader#1", "MetaSim-Demo"))
    with pytest.raises(AuthenticationFailed):
        gw.login(Credentials(8001, "Trader#2", "MetaSim-Demo"))


def test_create_account_is_idempotent_by_login(account):
    again = create_account(login=8001, password="other", balance=D("1"))
    assert again.pk == account.pk and again.balance == D("5000")
    assert SimDeal.objects.filter(account_id=8001).count() == 1


def test_unknown_logins_and_symbols_raise_not_found(gw):
    with pytest.raises(NotFound):
        gw.account_info(424242)
    with pytest.raises(NotFound):
        gw.user(424242)
    with pytest.raises(NotFound):
        gw.tick("NOPE")


def test_symbols_follow_the_account_server(gw, account):
    live = create_account(login=8003, password="pw", server="OtherFX-Server")
    names = {s.name for s in gw.symbols(live.login)}
    assert "GOLD" in names and "EURUSDm" in names and "EURUSD" not in names
    assert "EURUSD" in {s.name for s in gw.symbols(account.login)}
    assert gw.tick("GOLD").symbol == "GOLD"


# --- users and groups -----------------------------------------------------------------


def test_users_are_selected_by_group_masks(gw):
    create_account(login=9001, password="pw", group="demo\\standard")
    create_account(login=9002, password="pw", group="demo\\netting", hedging=False)
    create_account(login=9003, password="pw", server="MetaSim-Live", group="real\\pro", country="DE")
    create_account(login=9004, password="pw", server="MetaSim-Live", group="real\\standard")

    def logins(mask):
        return [u.login for u in gw.users(mask)]

    assert logins("*") == [9001, 9002, 9003, 9004]
    assert logins("demo*") == [9001, 9002]
    assert logins("*,!demo*") == [9003, 9004]
    assert logins("*,!*netting,!real\\standard") == [9001, 9003]
    assert logins("REAL\\PRO") == [9003]
    user = gw.user(9003)
    assert (user.group, user.country, user.balance) == ("real\\pro", "DE", D("10000"))
    assert {"demo\\standard", "real\\pro"} <= {g.name for g in gw.groups()}
    assert {u.login for u in SimulatedGateway(server="MetaSim-Live").users("*")} == {9003, 9004}


def test_accounts_in_real_groups_are_real(account):
    real = create_account(login=9005, password="pw", server="MetaSim-Live")
    assert (account.trade_mode, real.trade_mode, real.group.name) == (0, 2, "real\\standard")


# --- balance operations ---------------------------------------------------------------


def test_balance_operations_post_typed_deals_and_move_balance_or_credit(gw, account):
    tickets = [
        gw.balance_operation(8001, D("1000"), DealType.BALANCE, "Deposit via card"),
        gw.balance_operation(8001, D("-300"), DealType.BALANCE, "Withdrawal"),
        gw.balance_operation(8001, D("500"), DealType.CREDIT, "Bonus 10% credit"),
        gw.balance_operation(8001, D("-200"), DealType.CREDIT, "Bonus removed"),
        gw.balance_operation(8001, D("50"), DealType.BONUS, "Promo"),
        gw.balance_operation(8001, D("-25"), DealType.CHARGE, "Inactivity fee"),
        gw.balance_operation(8001, D("5"), DealType.CORRECTION, "Fix"),
    ]
    assert tickets == sorted(tickets)
    info = gw.account_info(8001)
    assert info.balance == D("5000") + 1000 - 300 - 25 + 5
    assert info.credit == D("500") - 200 + 50
    assert info.equity == info.balance + info.credit
    deals = gw.deals(8001, EPOCH, clock.now())
    assert [d.type for d in deals[1:]] == [
        DealType.BALANCE, DealType.BALANCE, DealType.CREDIT, DealType.CREDIT,
        DealType.BONUS, DealType.CHARGE, DealType.CORRECTION,
    ]  # fmt: skip
    assert deals[-1].ticket == tickets[-1]
    assert [d.ticket for d in gw.deals_by_comment(8001, "Bonus 10% credit")] == [tickets[2]]


def test_a_withdrawal_beyond_the_free_margin_is_refused_with_no_money(gw, account):
    buy(gw, 8001, volume="5.00")  # about 2,680 USD of margin at 1:200
    free = gw.account_info(8001).margin_free
    with pytest.raises(GatewayError, match="no money") as refused:
        gw.balance_operation(8001, -(free + 1), DealType.BALANCE, "too much")
    assert refused.value.retcode == Retcode.NO_MONEY
    assert withdraw(8001, free - 1) > 0


def test_removing_more_credit_than_given_is_refused(gw, account):
    gw.balance_operation(8001, D("100"), DealType.CREDIT, "credit")
    with pytest.raises(OperationRefused):
        gw.balance_operation(8001, D("-100.01"), DealType.CREDIT, "remove")
    with pytest.raises(GatewayError):
        gw.balance_operation(8001, D("10"), DealType.BUY, "not a balance type")
    with pytest.raises(GatewayError):
        gw.balance_operation(8001, D("0"), DealType.BALANCE, "nothing")


def test_removing_credit_beyond_the_free_margin_needs_the_margin_check_off(gw, account):
    gw.balance_operation(8001, D("3000"), DealType.CREDIT, "bonus")
    buy(gw, 8001, volume="10.00")  # about 5,360 USD of margin: equity 8,000 barely covers it
    info = gw.account_info(8001)
    assert D("3000") > info.margin_free
    with pytest.raises(OperationRefused) as refused:
        gw.balance_operation(8001, D("-3000"), DealType.CREDIT, "bonus cancelled")
    assert refused.value.retcode == Retcode.NO_MONEY
    assert gw.account_info(8001).credit == D("3000")

    ticket = gw.balance_operation(8001, D("-3000"), DealType.CREDIT, "bonus cancelled", check_margin=False)
    after = gw.account_info(8001)
    assert after.credit == 0 and after.margin_free < 0
    assert [d.ticket for d in gw.deals_by_comment(8001, "bonus cancelled")] == [ticket]


def test_removing_more_credit_than_the_account_has_is_refused_even_without_the_margin_check(gw, account):
    gw.balance_operation(8001, D("100"), DealType.BONUS, "bonus")
    with pytest.raises(OperationRefused) as refused:
        gw.balance_operation(8001, D("-100.01"), DealType.BONUS, "remove", check_margin=False)
    assert refused.value.retcode == Retcode.NO_MONEY
    assert gw.account_info(8001).credit == D("100")


def test_a_balance_withdrawal_without_the_margin_check_still_stops_at_zero(gw, account):
    buy(gw, 8001, volume="5.00")
    free = gw.account_info(8001).margin_free
    gw.balance_operation(8001, -(free + 1), DealType.BALANCE, "past the margin", check_margin=False)
    with pytest.raises(OperationRefused):
        gw.balance_operation(8001, D("-5000"), DealType.BALANCE, "past zero", check_margin=False)


@pytest.mark.parametrize("check_margin", [True, False])
def test_a_correction_is_never_margin_checked(gw, account, check_margin):
    gw.balance_operation(8001, D("-5100"), DealType.CORRECTION, "fix", check_margin=check_margin)
    assert gw.account_info(8001).balance == D("-100")


def test_deposit_helper_and_long_comments_are_cut_to_31_characters(gw, account):
    ticket = deposit(8001, D("10"), comment="A comment that is clearly longer than thirty-one")
    deal = SimDeal.objects.get(ticket=ticket)
    assert deal.comment == "A comment that is clearly longe" and len(deal.comment) == 31
    assert gw.deals_by_comment(8001, "A comment that is clearly longer than thirty-one")[0].ticket == ticket


def test_leverage_changes_the_margin_and_is_bounded(gw, account):
    buy(gw, 8001)
    # 0.10 x 100,000 x 1.07290 / 200 = 53.645 -> 53.65; at 1:100 it is 107.29.
    assert gw.account_info(8001).margin == D("53.65")
    gw.set_leverage(8001, 100)
    assert gw.account_info(8001).margin == D("107.29")
    assert gw.user(8001).leverage == 100
    for bad in (0, 1001):
        with pytest.raises(GatewayError):
            gw.set_leverage(8001, bad)


# --- speed: query counts --------------------------------------------------------------

postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="query counts of the PostgreSQL paths")


@postgres_only
def test_a_sync_read_costs_four_indexed_queries(gw, account, django_assert_num_queries):
    generate_history(8001, days=40, trades_per_day=3, seed=3)
    buy(gw, 8001)
    assert len(gw.deals(8001, EPOCH, clock.now())) > 100
    reader = SimulatedGateway()
    # login: the account with its group and positions in one query (orders only when some are
    # placed); positions() and orders(): a version check each; deals: one query.
    with django_assert_num_queries(4):
        reader.login(Credentials(8001, "Trader#1", "MetaSim-Demo"))
        reader.positions(8001)
        reader.orders(8001)
        reader.deals(8001, EPOCH, clock.now() + timedelta(days=1))


def test_direct_database_edits_are_seen_by_cached_reads(gw, account):
    assert gw.account_info(8001).balance == D("5000")
    assert gw.accounts_info([8001])[8001].balance == D("5000")
    SimAccount.objects.filter(login=8001).update(balance=D("1234.56"))
    assert gw.account_info(8001).balance == D("1234.56")
    assert gw.accounts_info([8001])[8001].balance == D("1234.56")
    buy(gw, 8001)
    SimPosition.objects.filter(account_id=8001).delete()
    assert gw.positions(8001) == []
    assert gw.accounts_info([8001])[8001].margin == 0


@postgres_only
def test_accounts_info_reads_many_accounts_without_a_query_per_account(gw, django_assert_num_queries):
    logins = []
    for i in range(40):
        login = create_account(login=10_000 + i, password="pw", balance=D("2000"), leverage=100).login
        buy(gw, login, "EURUSD" if i % 2 else "XAUUSD", "0.10")
        logins.append(login)
    expected = {login: gw.account_info(login) for login in logins}
    with django_assert_num_queries(1):  # accounts with their groups and positions
        infos = gw.accounts_info([*logins, 999_999])
    assert set(infos) == set(logins)
    assert infos == expected

    buy(gw, logins[0], "USDJPY", "0.10")
    clock.advance(1)
    with django_assert_num_queries(1):  # the cached versions go along; only the changed account comes back
        infos = gw.accounts_info(logins)
    assert infos == {login: gw.account_info(login) for login in logins}
    with django_assert_num_queries(1):
        assert gw.accounts_info(logins) == infos


# --- history --------------------------------------------------------------------------


def test_generated_history_is_consistent_with_prices_and_balance(gw, account):
    opened = buy(gw, 8001, "XAUUSD", "0.10")
    created = generate_history(8001, days=60, trades_per_day=4, seed=11)
    assert created > 200
    assert generate_history(8001, days=60, trades_per_day=4, seed=11) == 0
    [position] = gw.positions(8001)
    assert position.ticket == opened.order and position.volume == D("0.10")

    deals = gw.deals(8001, EPOCH, clock.now())
    balance_deals = [d for d in deals if d.type not in (DealType.CREDIT, DealType.BONUS)]
    info = gw.account_info(8001)
    assert info.balance == sum(d.profit + d.commission + d.swap + d.fee for d in balance_deals)
    assert info.credit == sum(d.profit for d in deals if d.type in (DealType.CREDIT, DealType.BONUS))
    assert deals[0].type == DealType.BALANCE and deals[0].time < WEDNESDAY_NOON - timedelta(days=60)
    assert any(d.type == DealType.BALANCE and d.profit < 0 for d in deals) or any(
        d.type == DealType.CREDIT for d in deals
    )

    by_position = defaultdict(list)
    for deal in deals:
        if deal.type in (DealType.BUY, DealType.SELL):
            by_position[deal.position_id].append(deal)
    assert len(by_position) > 100
    checked = 0
    for pos_id, legs in by_position.items():
        if pos_id == opened.order:
            continue
        deal_in, deal_out = legs
        assert (deal_in.entry, deal_out.entry) == (DealEntry.IN, DealEntry.OUT)
        assert deal_in.volume == deal_out.volume and deal_in.type != deal_out.type
        assert deal_in.time < deal_out.time < WEDNESDAY_NOON
        spec = symbol_spec("MetaSim-Demo", deal_in.symbol)
        t_in, t_out = prices.epoch_second(deal_in.time), prices.epoch_second(deal_out.time)
        bid_in, ask_in = prices.raw_quote(spec, t_in)
        bid_out, ask_out = prices.raw_quote(spec, t_out)
        side = int(deal_in.type)
        assert deal_in.price == (ask_in if side == 0 else bid_in)
        assert deal_out.price == (bid_out if side == 0 else ask_out)
        expected = Valuation(t_out).profit(spec, side, deal_in.volume, deal_in.price, deal_out.price)
        assert deal_out.profit == expected
        checked += 1
    assert checked == len(by_position) - 1
    tickets = [d.ticket for d in deals]
    assert len(set(tickets)) == len(tickets)


def test_history_of_a_netting_account_keeps_one_position_per_symbol(gw):
    create_account(login=8010, password="pw", group="demo\\netting", hedging=False, balance=D("20000"))
    generate_history(8010, days=30, trades_per_day=5, seed=5)
    open_until: dict[str, datetime] = {}
    for deal in gw.deals(8010, EPOCH, clock.now()):
        if deal.entry == DealEntry.IN and deal.symbol:
            assert open_until.get(deal.symbol, EPOCH) <= deal.time
            open_until[deal.symbol] = datetime.max.replace(tzinfo=UTC)
        elif deal.entry == DealEntry.OUT:
            open_until[deal.symbol] = deal.time
    assert SimAccount.objects.get(login=8010).history_seeded
