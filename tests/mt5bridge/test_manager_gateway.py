"""Tests of the MT5 Web API manager gateway against a fake access server on 127.0.0.1."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from mt5bridge.gateway import (
    AccountTradeMode,
    AuthenticationFailed,
    Credentials,
    DealEntry,
    DealType,
    GatewayError,
    GatewayUnavailable,
    MarginMode,
    MT5Gateway,
    NotFound,
    OrderRequest,
    OrderType,
    PositionType,
    Retcode,
    TradeAction,
)
from mt5bridge.gateway.manager import ManagerGateway
from mt5bridge.gateway.webapi import cli_rand_answer, parse_retcode, password_hash, srv_rand_answer

from .fake_webapi import FakeWebAPI

TRADER_PASSWORD = "Trader#Pass1"
TIMEOUT = 0.5
SLOW = 1.1  # longer than TIMEOUT: the client must give up waiting


@pytest.fixture
def fake() -> Iterator[FakeWebAPI]:
    server = FakeWebAPI()
    server.seed_demo()
    server.start()
    yield server
    server.stop()


def make_gateway(fake: FakeWebAPI, **overrides) -> ManagerGateway:
    options = dict(
        base_url=fake.base_url,
        login=fake.manager_login,
        password=fake.manager_password,
        timeout=TIMEOUT,
        retries=2,
        backoff_base=0.001,
        backoff_max=0.01,
        result_wait=1.0,
        poll_interval=0.01,
        server="Example-Demo",
    )
    options.update(overrides)
    return ManagerGateway(**options)


@pytest.fixture
def gateway(fake: FakeWebAPI) -> Iterator[ManagerGateway]:
    gw = make_gateway(fake)
    yield gw
    gw.close()


def deals_with_comment(fake: FakeWebAPI, login: int, comment: str) -> list[dict]:
    return [d for d in fake.deals[login] if d["Comment"] == comment]


# --- handshake ---


def test_password_hash_matches_reference_vector():
    pass_hash = password_hash("Password1")
    assert pass_hash.hex() == "904ba8ecb16273d2f0ae9c3b8a023752"
    assert srv_rand_answer(pass_hash, "73007dc7184747ce0f7c98516ef1c851") == "77fe51827f7fa69dd80fbec9aa33f1bb"


def test_cli_rand_answer_is_md5_of_hash_and_random():
    pass_hash = password_hash("Password1")
    assert cli_rand_answer(pass_hash, bytes(16)) != cli_rand_answer(password_hash("other"), bytes(16))
    assert len(cli_rand_answer(pass_hash, bytes(16))) == 32


def test_parse_retcode():
    assert parse_retcode("0 Done") == (0, "Done")
    assert parse_retcode("10019 Not enough money") == (10019, "Not enough money")
    assert parse_retcode(None) == (-1, "")


def test_handshake_logs_in_once_and_keeps_the_session(fake, gateway):
    assert isinstance(gateway, MT5Gateway)
    assert gateway.kind == "manager"
    gateway.user(1001)
    gateway.user(1002)
    assert fake.requests["/api/auth/start"] == 1
    assert fake.requests["/api/auth/answer"] == 1
    assert fake.requests["/api/user/get"] == 2


def test_get_gateway_builds_it_from_settings(fake, settings):
    from mt5bridge.gateway import get_gateway

    settings.MT5_MANAGER_URL = fake.base_url
    settings.MT5_MANAGER_LOGIN = fake.manager_login
    settings.MT5_MANAGER_PASSWORD = fake.manager_password
    settings.MT5_MANAGER_TIMEOUT = TIMEOUT
    settings.MT5_MANAGER_RETRIES = 1
    gw = get_gateway("manager")
    with gw:
        assert isinstance(gw, ManagerGateway) and gw.retries == 1
        assert gw.user(1002).group == "real\\pro-eur"


def test_wrong_manager_password_is_a_configuration_error(fake):
    with make_gateway(fake, password="wrong") as gw:
        with pytest.raises(GatewayError, match="3006") as info:
            gw.user(1001)
    assert not isinstance(info.value, (AuthenticationFailed, GatewayUnavailable))
    assert "wrong" not in str(info.value)
    assert fake.requests["/api/user/get"] == 0


def test_server_that_cannot_prove_the_password_is_rejected(fake, gateway):
    fake.forge_cli_rand_answer = True
    with pytest.raises(GatewayError, match="prove"):
        gateway.user(1001)
    assert fake.requests["/api/user/get"] == 0


def test_context_manager_closes_the_client(fake):
    with make_gateway(fake) as gw:
        gw.user(1001)
    with pytest.raises(GatewayError, match="closed"):
        gw.user(1001)


# --- re-login, retries, timeouts ---


@pytest.mark.parametrize("http_status", [False, True], ids=["retcode-8", "http-403"])
def test_expired_session_logs_in_again_and_replays_the_call(fake, gateway, http_status):
    assert gateway.user(1001).login == 1001
    fake.expire_sessions(http_status=http_status)
    assert gateway.user(1001).name == "Ana Lopez"
    assert fake.requests["/api/auth/start"] == 2
    assert fake.requests["/api/user/get"] == 3  # first call, refused call, replay


def test_lasting_refusal_after_relogin_is_an_error_not_a_loop(fake, gateway):
    gateway.user(1001)
    fake.fail_next(5, path="/api/user/get", retcode="8 Not enough permissions")
    with pytest.raises(GatewayError, match="after a fresh manager login"):
        gateway.user(1001)
    assert fake.requests["/api/auth/start"] == 2
    assert fake.requests["/api/user/get"] == 3


def test_retries_http_503_then_succeeds(fake, gateway):
    fake.fail_next(2, path="/api/user/get", status=503)
    assert gateway.user(1001).login == 1001
    assert fake.requests["/api/user/get"] == 3


@pytest.mark.parametrize("retcode", ["12 Too frequent requests", "9 Timeout expired", "10 No connection"])
def test_retries_transient_retcodes(fake, gateway, retcode):
    fake.fail_next(1, path="/api/user/get", retcode=retcode)
    assert gateway.user(1001).login == 1001
    assert fake.requests["/api/user/get"] == 2


def test_gives_up_after_the_configured_retries(fake, gateway):
    fake.fail_next(10, path="/api/user/get", status=503)
    with pytest.raises(GatewayUnavailable, match="after 3 attempt"):
        gateway.user(1001)
    assert fake.requests["/api/user/get"] == 3  # retries=2: one try and two retries


def test_backoff_grows_and_is_jittered(fake):
    delays: list[float] = []
    with make_gateway(fake, retries=3, backoff_base=0.1, backoff_max=10, sleep=delays.append) as gw:
        fake.fail_next(3, path="/api/user/get", status=502)
        gw.user(1001)
    assert len(delays) == 3
    for attempt, delay in enumerate(delays, start=1):
        cap = 0.1 * 2 ** (attempt - 1)
        assert cap / 2 <= delay <= cap


def test_slow_reply_is_retried(fake, gateway):
    fake.delay_next(1, seconds=SLOW, path="/api/user/get")
    assert gateway.user(1001).login == 1001
    assert fake.requests["/api/user/get"] == 2


def test_reply_that_never_comes_in_time_is_unavailable(fake):
    with make_gateway(fake, retries=1) as gw:
        gw.user(1001)
        fake.delay_next(2, seconds=SLOW, path="/api/user/get")
        with pytest.raises(GatewayUnavailable, match="no reply within"):
            gw.user(1001)
    assert fake.requests["/api/user/get"] == 3


def test_unreachable_bridge_is_unavailable():
    gw = ManagerGateway(
        base_url="http://127.0.0.1:9", login=1000, password="x", timeout=0.2, retries=1, backoff_base=0.001
    )
    with gw, pytest.raises(GatewayUnavailable, match="cannot connect"):
        gw.groups()


def test_not_found_is_not_retried(fake, gateway):
    with pytest.raises(NotFound):
        gateway.user(424242)
    with pytest.raises(NotFound):
        gateway.account_info(424242)
    assert fake.requests["/api/user/get"] == 2


def test_unreadable_reply_is_retried_for_reads_but_unknown_for_money(fake, gateway):
    fake.fail_next(1, path="/api/user/get", raw=b"<html>Bad gateway</html>")
    assert gateway.user(1001).login == 1001
    fake.fail_next(1, path="/api/trade/balance", raw=b'{"answer": {"Ticket": "1"')
    with pytest.raises(GatewayUnavailable, match="outcome is unknown"):
        gateway.balance_operation(1001, Decimal("5"), DealType.BALANCE, "dep-garbled")
    assert fake.requests["/api/trade/balance"] == 1


def test_invalid_parameters_are_an_error(fake, gateway):
    fake.fail_next(1, path="/api/user/get", retcode="3 Invalid parameters")
    with pytest.raises(GatewayError, match="3 Invalid parameters") as info:
        gateway.user(1001)
    assert not isinstance(info.value, GatewayUnavailable)
    assert fake.requests["/api/user/get"] == 1


# --- trader login ---


def test_trader_login_returns_the_account(fake, gateway):
    info = gateway.login(Credentials(login=1001, password=TRADER_PASSWORD, server="Example-Demo"))
    assert info.login == 1001
    assert info.server == "Example-Demo"
    # the password went in the POST body, never in a URL
    assert all(TRADER_PASSWORD not in target for _, target in fake.request_log)
    assert ("POST", "/api/user/check_password") in fake.request_log


@pytest.mark.parametrize("login", [1001, 5555], ids=["wrong-password", "unknown-login"])
def test_wrong_trader_password_fails_without_leaking_it(fake, gateway, caplog, login):
    secret = "Wr0ng-Secret-Pass"
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "mt5bridge"):
        caplog.set_level(logging.DEBUG, logger=name)
    with pytest.raises(AuthenticationFailed) as info:
        gateway.login(Credentials(login=login, password=secret, server="Example-Demo"))
    assert any(r.name.startswith("httpx") for r in caplog.records), "httpx logging was not captured"
    assert any(r.name.startswith("httpcore") for r in caplog.records), "httpcore logging was not captured"
    assert secret not in caplog.text
    assert secret not in str(info.value) and secret not in repr(info.value)
    assert info.value.__cause__ is None and info.value.__context__ is None
    assert all(secret not in target for _, target in fake.request_log)


def test_httpx_log_lines_for_the_bridge_carry_no_query_string(fake, gateway, caplog):
    caplog.set_level(logging.INFO, logger="httpx")
    gateway.balance_operation(1001, Decimal("1"), DealType.BALANCE, "secret-ref-123")
    lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert lines and all("secret-ref-123" not in line and "srv_rand_answer" not in line for line in lines)


# --- account data ---


def test_account_info_parses_numbers_as_decimals(fake, gateway):
    info = gateway.account_info(1001)
    assert info.balance == Decimal("1000.00")
    assert info.credit == Decimal("50.00")
    assert info.profit == Decimal("132.50")  # 86 + 48 - 1.5 swap
    assert info.equity == Decimal("1182.50")
    assert info.margin > 0 and info.margin_level is not None
    assert info.margin_free == info.equity - info.margin
    for value in (info.balance, info.credit, info.equity, info.margin, info.margin_free, info.margin_level):
        assert isinstance(value, Decimal)
    assert (info.currency, info.company, info.leverage) == ("USD", "Example Broker Ltd", 100)
    assert info.margin_mode == MarginMode.RETAIL_HEDGING
    assert info.trade_mode == AccountTradeMode.DEMO
    assert info.margin_so_call == Decimal("100") and info.margin_so_so == Decimal("50")


def test_account_info_of_real_netting_group(fake, gateway):
    info = gateway.account_info(1002)
    assert (info.currency, info.trade_mode, info.margin_mode) == (
        "EUR",
        AccountTradeMode.REAL,
        MarginMode.RETAIL_NETTING,
    )
    assert info.margin == 0 and info.margin_level is None


def test_account_info_of_idle_account_falls_back_to_the_user_record(fake, gateway):
    fake.inactive_accounts.add(1002)
    info = gateway.account_info(1002)
    assert info.equity == info.balance == Decimal("250.00")
    assert info.margin_free == Decimal("250.00") and info.margin_level is None


def test_accounts_info_batches_one_pair_of_calls_per_chunk(fake, gateway):
    for login in range(20_000, 20_250):
        fake.add_user(login, balance=f"{login}.50")
    fake.inactive_accounts.add(20_007)
    logins = [*range(20_000, 20_250), 1001, 999_999]
    result = gateway.accounts_info(logins)
    assert len(result) == 251  # the unknown login is left out
    assert result[20_123].balance == Decimal("20123.50")
    assert result[20_007].equity == Decimal("20007.50")
    assert result[1001].equity == Decimal("1182.50")
    assert fake.requests["/api/user/get_batch"] == 3
    assert fake.requests["/api/user/account/get_batch"] == 3
    assert fake.requests["/api/group/get"] == 1  # one group, looked up once


def test_positions_and_orders(fake, gateway):
    positions = sorted(gateway.positions(1001), key=lambda p: p.symbol)
    assert [(p.symbol, p.type, p.volume) for p in positions] == [
        ("EURUSD", PositionType.BUY, Decimal("0.1")),
        ("XAUUSD", PositionType.SELL, Decimal("0.05")),
    ]
    gold = positions[1]
    assert gold.swap == Decimal("-1.5") and gold.price_open == Decimal("2360.00")
    assert gold.time.tzinfo is UTC
    assert gateway.positions(1002) == []
    (order,) = gateway.orders(1001)
    assert order.type == OrderType.BUY_LIMIT
    assert order.volume_initial == Decimal("0.2") and order.price_open == Decimal("1.09000")
    assert order.time_expiration is None


def test_deals_page_beyond_one_hundred(fake, gateway):
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for i in range(250):
        fake.add_deal(
            1002,
            time=(start + timedelta(minutes=i)).timestamp(),
            Action=i % 2,
            Entry=0,
            Symbol="EURUSD",
            Price="1.10000",
            Volume="1500",
            VolumeExt="15000000" if i % 3 else "0",
            Profit="-1.25",
            Reason="1",
        )
    deals = gateway.deals(1002, start, start + timedelta(days=1))
    assert len(deals) == 250
    assert len({d.ticket for d in deals}) == 250
    assert fake.requests["/api/deal/get_total"] == 1
    assert fake.requests["/api/deal/get_page"] == 3
    first = deals[0]
    assert first.volume == Decimal("0.15") and deals[1].volume == Decimal("0.15")
    assert first.type == DealType.BUY and deals[1].type == DealType.SELL
    assert first.profit == Decimal("-1.25") and isinstance(first.price, Decimal)
    assert first.time == start and first.time.tzinfo is UTC
    assert first.reason == 3  # server EXPERT (1) is client DEAL_REASON_EXPERT (3)
    assert first.entry == DealEntry.IN


def test_symbols_tick_groups_and_users(fake, gateway):
    symbols = {s.name: s for s in gateway.symbols()}
    assert set(symbols) == {"EURUSD", "XAUUSD"}
    eurusd = symbols["EURUSD"]
    assert (eurusd.digits, eurusd.point, eurusd.contract_size) == (5, Decimal("0.00001"), Decimal("100000"))
    assert (eurusd.volume_min, eurusd.volume_step, eurusd.volume_max) == (
        Decimal("0.01"),
        Decimal("0.01"),
        Decimal("100"),
    )
    tick = gateway.tick("XAUUSD")
    assert (tick.bid, tick.ask) == (Decimal("2350.10"), Decimal("2350.40"))
    assert tick.time.tzinfo is UTC
    with pytest.raises(NotFound):
        gateway.tick("NOPE")
    groups = {g.name: g for g in gateway.groups()}
    assert groups["real\\pro-eur"].currency == "EUR"
    assert [u.login for u in gateway.users("demo\\*")] == [1001]
    assert [u.login for u in gateway.users("*,!demo\\*")] == [1002]
    user = gateway.user(1001)
    assert (user.email, user.country, user.lead_source, user.lead_campaign) == (
        "ana@example.com",
        "Spain",
        "newsletter",
        "spring",
    )
    assert user.balance == Decimal("1000.00") and user.registration == datetime.fromtimestamp(1_700_000_000, UTC)


# --- money ---


@pytest.mark.parametrize(
    ("deal_type", "field"), [(DealType.BALANCE, "Balance"), (DealType.CREDIT, "Credit"), (DealType.BONUS, "Credit")]
)
def test_balance_operation_returns_the_ticket_and_is_found_by_comment(fake, gateway, deal_type, field):
    before = Decimal(fake.users[1001][field])
    ticket = gateway.balance_operation(1001, Decimal("150.25"), deal_type, "op-7f3a")
    assert ticket == int(deals_with_comment(fake, 1001, "op-7f3a")[0]["Deal"])
    assert Decimal(fake.users[1001][field]) == before + Decimal("150.25")
    (deal,) = gateway.deals_by_comment(1001, "op-7f3a")
    assert (deal.ticket, deal.type, deal.profit) == (ticket, deal_type, Decimal("150.25"))


def test_balance_comment_is_cut_to_31_characters(fake, gateway):
    comment = "withdrawal-0123456789-abcdefghijklmnop"
    ticket = gateway.balance_operation(1001, Decimal("-10"), DealType.BALANCE, comment)
    assert deals_with_comment(fake, 1001, comment[:31])
    assert [d.ticket for d in gateway.deals_by_comment(1001, comment)] == [ticket]


def test_balance_operation_refused_for_money(fake, gateway):
    with pytest.raises(GatewayError, match="10019") as info:
        gateway.balance_operation(1001, Decimal("-100"), DealType.CREDIT, "too much credit back")
    assert not isinstance(info.value, GatewayUnavailable)
    assert fake.users[1001]["Credit"] == "50.00"
    with pytest.raises(GatewayError):
        gateway.balance_operation(1001, Decimal("5"), DealType.BUY, "not money")
    with pytest.raises(NotFound):
        gateway.balance_operation(777, Decimal("5"), DealType.BALANCE, "nobody")


def balance_targets(fake) -> list[str]:
    return [target for _method, target in fake.request_log if target.startswith("/api/trade/balance")]


def test_balance_operation_asks_for_the_margin_check_by_default(fake, gateway):
    gateway.balance_operation(1001, Decimal("-20"), DealType.CREDIT, "credit-back")
    (target,) = balance_targets(fake)
    assert "check_margin=1" in target


def test_balance_operation_can_turn_the_margin_check_off(fake, gateway):
    with pytest.raises(GatewayError, match="10019"):
        gateway.balance_operation(1001, Decimal("-60"), DealType.CREDIT, "credit-back-checked")
    ticket = gateway.balance_operation(1001, Decimal("-60"), DealType.CREDIT, "credit-back", check_margin=False)
    assert [d.ticket for d in gateway.deals_by_comment(1001, "credit-back")] == [ticket]
    assert "check_margin=0" in balance_targets(fake)[-1]


def test_balance_operation_whose_reply_timed_out_is_not_posted_twice(fake, gateway):
    gateway.user(1001)
    fake.delay_next(1, seconds=SLOW, path="/api/trade/balance", after_processing=True)
    with pytest.raises(GatewayUnavailable, match="outcome is unknown"):
        gateway.balance_operation(1001, Decimal("99"), DealType.BALANCE, "dep-timeout-1")
    assert fake.requests["/api/trade/balance"] == 1
    assert len(deals_with_comment(fake, 1001, "dep-timeout-1")) == 1
    # the caller's check: it did go through, so it must not post again
    assert len(gateway.deals_by_comment(1001, "dep-timeout-1")) == 1


def test_balance_operation_is_not_retried_after_a_5xx(fake, gateway):
    fake.fail_next(3, path="/api/trade/balance", status=502)
    with pytest.raises(GatewayUnavailable, match="outcome is unknown"):
        gateway.balance_operation(1001, Decimal("5"), DealType.BALANCE, "dep-502")
    assert fake.requests["/api/trade/balance"] == 1


def test_balance_operation_is_retried_when_the_server_surely_did_nothing(fake, gateway):
    fake.fail_next(1, path="/api/trade/balance", retcode="12 Too frequent requests")
    gateway.balance_operation(1001, Decimal("5"), DealType.BALANCE, "dep-frequent")
    fake.expire_sessions()
    gateway.balance_operation(1001, Decimal("6"), DealType.BALANCE, "dep-after-expiry")
    assert len(deals_with_comment(fake, 1001, "dep-frequent")) == 1
    assert len(deals_with_comment(fake, 1001, "dep-after-expiry")) == 1
    assert fake.requests["/api/trade/balance"] == 4


def test_money_call_survives_a_failed_login_handshake(fake, gateway):
    gateway.user(1001)
    fake.expire_sessions()
    fake.fail_next(1, path="/api/auth/start", status=503)
    gateway.balance_operation(1001, Decimal("7"), DealType.BALANCE, "dep-after-bad-login")
    assert fake.requests["/api/auth/start"] == 3
    assert len(deals_with_comment(fake, 1001, "dep-after-bad-login")) == 1


def test_set_leverage_keeps_the_rest_of_the_record(fake, gateway):
    before = dict(fake.users[1001])
    gateway.set_leverage(1001, 200)
    after = fake.users[1001]
    assert after["Leverage"] == "200"
    assert {k: v for k, v in after.items() if k != "Leverage"} == {k: v for k, v in before.items() if k != "Leverage"}
    assert gateway.account_info(1001).leverage == 200
    assert [m for m, t in fake.request_log if t.startswith("/api/user/update")] == ["POST"]
    with pytest.raises(NotFound):
        gateway.set_leverage(31337, 100)


# --- trading ---


def test_close_all_positions(fake, gateway):
    balance_before = Decimal(fake.users[1001]["Balance"])
    results = gateway.close_all_positions(1001)
    assert [r.retcode for r in results] == [Retcode.DONE, Retcode.DONE]
    assert all(r.ok and r.deal and r.request_id for r in results)
    assert fake.positions[1001] == []
    sent = {r["Symbol"]: r for r in fake.dealer_requests}
    assert sent["EURUSD"]["Action"] == "200" and sent["EURUSD"]["Type"] == "1"  # close a buy by selling
    assert sent["EURUSD"]["PriceOrder"] == "1.10860"  # at the bid
    assert sent["XAUUSD"]["Type"] == "0" and sent["XAUUSD"]["PriceOrder"] == "2350.40"  # a sell at the ask
    assert sent["XAUUSD"]["VolumeExt"] == "5000000"
    assert {r.volume for r in results} == {Decimal("0.1"), Decimal("0.05")}
    assert Decimal(fake.users[1001]["Balance"]) == balance_before + Decimal("132.50")
    assert gateway.close_all_positions(1001) == []


def test_close_all_positions_waits_for_pending_results(fake, gateway):
    fake.dealer_pending_polls = 2
    results = gateway.close_all_positions(1001)
    assert all(r.retcode == Retcode.DONE for r in results)
    assert fake.requests["/api/dealer/get_request_result"] == 3


def test_result_that_never_arrives_reports_timeout(fake):
    fake.dealer_pending_polls = 10_000
    with make_gateway(fake, result_wait=0.1) as gw:
        result = gw.order_send(1002, OrderRequest(action=TradeAction.DEAL, symbol="EURUSD", volume=Decimal("0.1")))
    assert result.retcode == Retcode.TIMEOUT and not result.ok
    assert "unknown" in result.comment and result.request_id


def test_order_send_market_buy(fake, gateway):
    result = gateway.order_send(
        1002,
        OrderRequest(action=TradeAction.DEAL, symbol="EURUSD", volume=Decimal("0.25"), type=OrderType.BUY, magic=77),
    )
    assert result.ok and result.price == Decimal("1.10870") and result.volume == Decimal("0.25")
    assert (result.bid, result.ask) == (Decimal("1.10860"), Decimal("1.10870"))
    body = fake.dealer_requests[-1]
    assert (body["Volume"], body["VolumeExt"], body["Digits"], body["ExpertID"]) == ("2500", "25000000", "5", "77")
    (position,) = gateway.positions(1002)
    assert (position.volume, position.magic, position.type) == (Decimal("0.25"), 77, PositionType.BUY)


def test_order_send_is_not_repeated_when_the_reply_is_lost(fake, gateway):
    gateway.user(1002)
    fake.delay_next(1, seconds=SLOW, path="/api/dealer/send_request", after_processing=True)
    with pytest.raises(GatewayUnavailable, match="outcome is unknown"):
        gateway.order_send(1002, OrderRequest(action=TradeAction.DEAL, symbol="EURUSD", volume=Decimal("0.1")))
    assert fake.requests["/api/dealer/send_request"] == 1
    assert len(fake.positions[1002]) == 1
