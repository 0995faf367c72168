"""TerminalGateway against the MetaTrader5 stand-in, and the stand-in against the documented API."""

from __future__ import annotations

import collections
import inspect
import sys
import threading
import time
import types
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from mt5bridge.gateway import (
    AccountInfo,
    AccountTradeMode,
    AuthenticationFailed,
    Credentials,
    Deal,
    DealEntry,
    DealReason,
    DealType,
    GatewayError,
    GatewayUnavailable,
    MarginMode,
    MT5Gateway,
    NotFound,
    OrderRequest,
    OrderResult,
    OrderType,
    PendingOrder,
    Position,
    PositionType,
    Retcode,
    SymbolInfo,
    Tick,
    TradeAction,
    get_gateway,
)
from mt5bridge.gateway import terminal as terminal_module
from mt5bridge.gateway.terminal import TerminalGateway, load_terminal_module
from mt5bridge.gateway.terminal_rows import build_request, filling_for
from tests.mt5bridge import mt5_standin

LOGIN = 51_234_567
OTHER = 51_234_568
PASSWORD = "Xq9-unique-pw!"
SERVER = "StandIn-Demo"
NOW = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)
CREDS = Credentials(login=LOGIN, password=PASSWORD, server=SERVER)
REQUEST_KEYS = [
    "action",
    "magic",
    "order",
    "symbol",
    "volume",
    "price",
    "stoplimit",
    "sl",
    "tp",
    "deviation",
    "type",
    "type_filling",
    "type_time",
    "expiration",
    "comment",
    "position",
    "position_by",
]


@pytest.fixture
def mt5():
    mt5_standin.reset()
    mt5_standin.configure(
        now=NOW,
        accounts=[
            {"login": LOGIN, "password": PASSWORD, "server": SERVER, "balance": 10_000.0, "leverage": 100},
            {"login": OTHER, "password": "other-pw", "server": SERVER, "balance": 500.0},
        ],
        symbols=[
            {"name": "EURUSD", "digits": 5, "filling_mode": 1, "trade_stops_level": 10},
            {"name": "GBPUSD", "digits": 5, "filling_mode": 2},
            {"name": "USDJPY", "digits": 3, "filling_mode": 0, "trade_exemode": 1},
            {"name": "XAUUSD", "digits": 2, "trade_contract_size": 100.0, "filling_mode": 3, "select": False},
        ],
        ticks=[
            {"symbol": "EURUSD", "bid": 1.1, "ask": 1.10012, "time_msc": int(NOW.timestamp() * 1000) + 250},
            {"symbol": "GBPUSD", "bid": 1.27, "ask": 1.27015},
            {"symbol": "USDJPY", "bid": 150.1, "ask": 150.115},
            {"symbol": "XAUUSD", "bid": 2300.5, "ask": 2300.85},
        ],
    )
    yield mt5_standin
    mt5_standin.reset()


@pytest.fixture
def gateway(mt5):
    return TerminalGateway(mt5, timeout_ms=30_000)


@pytest.fixture
def logged_in(gateway):
    gateway.login(CREDS)
    return gateway


def calls_named(mt5, name):
    return [(args, kwargs) for called, args, kwargs in mt5.calls if called == name]


def last_sent(mt5) -> dict:
    return calls_named(mt5, "order_send")[-1][0][0]


# --- the stand-in follows the documented API ----------------------------------------------------------------

DOCUMENTED_FIELDS = {
    "AccountInfo": "login trade_mode leverage limit_orders margin_so_mode trade_allowed trade_expert margin_mode "
    "currency_digits fifo_close balance credit profit equity margin margin_free margin_level margin_so_call "
    "margin_so_so margin_initial margin_maintenance assets liabilities commission_blocked name server currency "
    "company",
    "TerminalInfo": "community_account community_connection connected dlls_allowed trade_allowed tradeapi_disabled "
    "email_enabled ftp_enabled notifications_enabled mqid build maxbars codepage ping_last community_balance "
    "retransmission company name language path data_path commondata_path",
    "Tick": "time bid ask last volume time_msc flags volume_real",
    "TradePosition": "ticket time time_msc time_update time_update_msc type magic identifier reason volume "
    "price_open sl tp price_current swap profit symbol comment external_id",
    "TradeOrder": "ticket time_setup time_setup_msc time_done time_done_msc time_expiration type type_time "
    "type_filling state magic position_id position_by_id reason volume_initial volume_current price_open sl tp "
    "price_current price_stoplimit symbol comment external_id",
    "TradeDeal": "ticket order time time_msc type entry magic position_id reason volume price commission swap profit "
    "fee symbol comment external_id",
    "TradeRequest": " ".join(REQUEST_KEYS),
    "OrderSendResult": "retcode deal order volume price bid ask comment request_id retcode_external request",
    "OrderCheckResult": "retcode balance equity profit margin margin_free margin_level comment request",
    "BookInfo": "type price volume volume_dbl",
}
DOCUMENTED_COUNTS = {
    "AccountInfo": 28,
    "TerminalInfo": 22,
    "Tick": 8,
    "TradePosition": 19,
    "TradeOrder": 24,
    "TradeDeal": 18,
    "TradeRequest": 17,
    "OrderSendResult": 11,
    "OrderCheckResult": 9,
    "BookInfo": 4,
}
SYMBOL_KEY_INDICES = {
    "custom": 0,
    "chart_mode": 1,
    "select": 2,
    "visible": 3,
    "time": 10,
    "digits": 11,
    "spread": 12,
    "trade_mode": 16,
    "trade_stops_level": 19,
    "trade_exemode": 21,
    "filling_mode": 26,
    "bid": 31,
    "ask": 34,
    "last": 37,
    "point": 44,
    "trade_tick_value": 45,
    "trade_tick_size": 48,
    "trade_contract_size": 49,
    "volume_min": 53,
    "volume_max": 54,
    "volume_step": 55,
    "swap_long": 57,
    "swap_short": 58,
    "currency_base": 85,
    "currency_profit": 86,
    "currency_margin": 87,
    "description": 89,
    "name": 93,
    "page": 94,
    "path": 95,
}


@pytest.mark.parametrize("name", sorted(DOCUMENTED_FIELDS))
def test_standin_records_have_the_documented_fields_in_order(name):
    record_type = getattr(mt5_standin, name)
    expected = DOCUMENTED_FIELDS[name].split()
    assert len(expected) == DOCUMENTED_COUNTS[name]
    record = record_type(*range(len(expected)))
    assert list(record._asdict()) == expected
    assert list(record) == list(range(len(expected)))
    # Like the C-extension results: attribute access and _asdict(), but no _fields to lean on.
    assert not hasattr(record, "_fields")


def test_standin_symbol_info_has_96_fields_with_the_documented_key_indices():
    fields = list(mt5_standin.SymbolInfo(*range(96))._asdict())
    assert len(fields) == 96 == len(set(fields))
    for name, index in SYMBOL_KEY_INDICES.items():
        assert fields[index] == name, name


DOCUMENTED_CONSTANTS = {
    **{f"ORDER_TYPE_{n}": v for v, n in enumerate("BUY SELL BUY_LIMIT SELL_LIMIT BUY_STOP SELL_STOP".split())},
    "ORDER_TYPE_BUY_STOP_LIMIT": 6,
    "ORDER_TYPE_SELL_STOP_LIMIT": 7,
    "ORDER_TYPE_CLOSE_BY": 8,
    "TRADE_ACTION_DEAL": 1,
    "TRADE_ACTION_PENDING": 5,
    "TRADE_ACTION_SLTP": 6,
    "TRADE_ACTION_MODIFY": 7,
    "TRADE_ACTION_REMOVE": 8,
    "TRADE_ACTION_CLOSE_BY": 10,
    "ORDER_FILLING_FOK": 0,
    "ORDER_FILLING_IOC": 1,
    "ORDER_FILLING_RETURN": 2,
    "ORDER_FILLING_BOC": 3,
    "ORDER_TIME_GTC": 0,
    "ORDER_TIME_DAY": 1,
    "ORDER_TIME_SPECIFIED": 2,
    "ORDER_TIME_SPECIFIED_DAY": 3,
    **{
        f"ORDER_STATE_{n}": v
        for v, n in enumerate(
            "STARTED PLACED CANCELED PARTIAL FILLED REJECTED EXPIRED REQUEST_ADD REQUEST_MODIFY REQUEST_CANCEL".split()
        )
    },
    "POSITION_TYPE_BUY": 0,
    "POSITION_TYPE_SELL": 1,
    **{f"POSITION_REASON_{n}": v for v, n in enumerate("CLIENT MOBILE WEB EXPERT".split())},
    **{f"ORDER_REASON_{n}": v for v, n in enumerate("CLIENT MOBILE WEB EXPERT SL TP SO".split())},
    **{
        f"DEAL_TYPE_{n}": v
        for v, n in enumerate(
            "BUY SELL BALANCE CREDIT CHARGE CORRECTION BONUS COMMISSION COMMISSION_DAILY COMMISSION_MONTHLY "
            "COMMISSION_AGENT_DAILY COMMISSION_AGENT_MONTHLY INTEREST BUY_CANCELED SELL_CANCELED".split()
        )
    },
    "DEAL_DIVIDEND": 15,
    "DEAL_DIVIDEND_FRANKED": 16,
    "DEAL_TAX": 17,
    **{f"DEAL_ENTRY_{n}": v for v, n in enumerate("IN OUT INOUT OUT_BY".split())},
    **{f"DEAL_REASON_{n}": v for v, n in enumerate("CLIENT MOBILE WEB EXPERT SL TP SO ROLLOVER VMARGIN SPLIT".split())},
    "ACCOUNT_TRADE_MODE_DEMO": 0,
    "ACCOUNT_TRADE_MODE_CONTEST": 1,
    "ACCOUNT_TRADE_MODE_REAL": 2,
    "ACCOUNT_MARGIN_MODE_RETAIL_NETTING": 0,
    "ACCOUNT_MARGIN_MODE_EXCHANGE": 1,
    "ACCOUNT_MARGIN_MODE_RETAIL_HEDGING": 2,
    "ACCOUNT_STOPOUT_MODE_PERCENT": 0,
    "ACCOUNT_STOPOUT_MODE_MONEY": 1,
    **{f"TIMEFRAME_M{n}": n for n in (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30)},
    "TIMEFRAME_H1": 16385,
    "TIMEFRAME_H2": 16386,
    "TIMEFRAME_H3": 16387,
    "TIMEFRAME_H4": 16388,
    "TIMEFRAME_H6": 16390,
    "TIMEFRAME_H8": 16392,
    "TIMEFRAME_H12": 16396,
    "TIMEFRAME_D1": 16408,
    "TIMEFRAME_W1": 32769,
    "TIMEFRAME_MN1": 49153,
    "COPY_TICKS_ALL": -1,
    "COPY_TICKS_INFO": 1,
    "COPY_TICKS_TRADE": 2,
    "TICK_FLAG_BID": 2,
    "TICK_FLAG_ASK": 4,
    "TICK_FLAG_LAST": 8,
    "TICK_FLAG_VOLUME": 16,
    "TICK_FLAG_BUY": 32,
    "TICK_FLAG_SELL": 64,
    **{f"TRADE_RETCODE_{member.name}": member.value for member in Retcode},
    "RES_S_OK": 1,
    "RES_E_FAIL": -1,
    "RES_E_INVALID_PARAMS": -2,
    "RES_E_NO_MEMORY": -3,
    "RES_E_NOT_FOUND": -4,
    "RES_E_INVALID_VERSION": -5,
    "RES_E_AUTH_FAILED": -6,
    "RES_E_UNSUPPORTED": -7,
    "RES_E_AUTO_TRADING_DISABLED": -8,
    "RES_E_INTERNAL_FAIL": -10000,
    "RES_E_INTERNAL_FAIL_SEND": -10001,
    "RES_E_INTERNAL_FAIL_RECEIVE": -10002,
    "RES_E_INTERNAL_FAIL_INIT": -10003,
    "RES_E_INTERNAL_FAIL_CONNECT": -10004,
    "RES_E_INTERNAL_FAIL_TIMEOUT": -10005,
}


def test_standin_constants_have_the_documented_values():
    assert len(Retcode) == 40  # 10004, 10006-10036, 10038-10045
    wrong = {name: getattr(mt5_standin, name, None) for name, value in DOCUMENTED_CONSTANTS.items()}
    wrong = {name: got for name, got in wrong.items() if got != DOCUMENTED_CONSTANTS[name]}
    assert wrong == {}


def test_gateway_enums_agree_with_the_package_constants():
    prefixes = {
        OrderType: "ORDER_TYPE_",
        TradeAction: "TRADE_ACTION_",
        PositionType: "POSITION_TYPE_",
        DealEntry: "DEAL_ENTRY_",
        DealReason: "DEAL_REASON_",
        MarginMode: "ACCOUNT_MARGIN_MODE_",
        AccountTradeMode: "ACCOUNT_TRADE_MODE_",
    }
    for enum_type, prefix in prefixes.items():
        for member in enum_type:
            assert getattr(mt5_standin, prefix + member.name) == member.value, (prefix, member)
    for member in DealType:
        name = member.name if member.name in ("DIVIDEND", "DIVIDEND_FRANKED", "TAX") else f"TYPE_{member.name}"
        assert getattr(mt5_standin, f"DEAL_{name}") == member.value


def test_standin_functions_have_the_documented_signatures():
    def params(function):
        return [(p.name, p.kind.name, p.default) for p in inspect.signature(function).parameters.values()]

    empty = inspect.Parameter.empty
    assert params(mt5_standin.initialize) == [
        ("path", "POSITIONAL_OR_KEYWORD", None),
        ("login", "KEYWORD_ONLY", None),
        ("password", "KEYWORD_ONLY", None),
        ("server", "KEYWORD_ONLY", None),
        ("timeout", "KEYWORD_ONLY", 60000),
        ("portable", "KEYWORD_ONLY", False),
    ]
    assert params(mt5_standin.login) == [
        ("login", "POSITIONAL_OR_KEYWORD", empty),
        ("password", "KEYWORD_ONLY", None),
        ("server", "KEYWORD_ONLY", None),
        ("timeout", "KEYWORD_ONLY", 60000),
    ]
    assert [p[0] for p in params(mt5_standin.history_deals_get)] == [
        "date_from",
        "date_to",
        "group",
        "ticket",
        "position",
    ]
    assert [p[0] for p in params(mt5_standin.positions_get)] == ["symbol", "group", "ticket"]
    assert [p[0] for p in params(mt5_standin.order_calc_profit)] == [
        "action",
        "symbol",
        "volume",
        "price_open",
        "price_close",
    ]
    for name in (
        "shutdown version last_error account_info terminal_info symbols_total symbols_get symbol_info "
        "symbol_info_tick symbol_select orders_total orders_get positions_total history_orders_total "
        "history_orders_get history_deals_total order_calc_margin order_check order_send"
    ).split():
        assert callable(getattr(mt5_standin, name)), name


def test_standin_fails_like_the_package_before_initialize(mt5):
    assert mt5.account_info() is None
    assert mt5.last_error() == (-10004, "No IPC connection")
    assert mt5.login(LOGIN, password=PASSWORD, server=SERVER) is False
    assert mt5.initialize(login=LOGIN, password="nope", server=SERVER) is False
    assert mt5.last_error() == (-6, "Terminal: Authorization failed")
    assert mt5.initialize(login=LOGIN, password=PASSWORD, server=SERVER) is True
    assert mt5.last_error() == (1, "Success")
    assert mt5.version()[0] == 500


def test_standin_refuses_loose_request_values(mt5):
    mt5.initialize(login=LOGIN, password=PASSWORD, server=SERVER)
    base = {"action": 1, "symbol": "EURUSD", "volume": 0.1, "type": 0, "price": 1.10012, "type_filling": 0}
    assert mt5.order_send({**base, "volume": 1}) is None  # an int where a double is wanted
    assert mt5.last_error() == (-2, 'Invalid "volume" argument')
    assert mt5.order_send({**base, "volume": Decimal("0.1")}) is None
    assert mt5.order_send({**base, "comment": "x" * 32}) is None
    assert mt5.last_error() == (-2, 'Invalid "comment" argument')
    assert mt5.order_send({**base, "client_id": 1}) is None
    assert mt5.order_send(base).retcode == 10009


def test_standin_other_calls(mt5):
    mt5.initialize(login=LOGIN, password=PASSWORD, server=SERVER)
    assert mt5.symbols_total() == 4
    assert [s.name for s in mt5.symbols_get(group="*,!*JPY*")] == ["EURUSD", "GBPUSD", "XAUUSD"]
    assert mt5.symbol_info("EURUSD").ask == 1.10012 and mt5.symbol_info("NOPE") is None
    assert mt5.terminal_info().trade_allowed is True and mt5.terminal_info().connected is True
    assert mt5.order_calc_margin(mt5.ORDER_TYPE_BUY, "EURUSD", 1.0, 1.1) == 1100.0
    assert mt5.order_calc_profit(mt5.ORDER_TYPE_SELL, "EURUSD", 1.0, 1.1, 1.09) == 1000.0
    base = {"action": 1, "symbol": "EURUSD", "volume": 0.5, "type": 0, "price": 1.10012, "type_filling": 0}
    check = mt5.order_check(base)
    assert check.retcode == 0 and check.margin == 550.06 and check.request.volume == 0.5
    assert mt5.positions_total() == 0
    buy = mt5.order_send(base)
    sell = mt5.order_send({**base, "type": 1, "price": 1.1, "volume": 0.2})
    assert mt5.positions_total() == 2
    closed = mt5.order_send({"action": 10, "position": buy.order, "position_by": sell.order})
    assert closed.retcode == 10009
    [left] = mt5.positions_get()
    assert left.ticket == buy.order and left.volume == 0.3
    assert [d.entry for d in mt5.history_deals_get(ticket=closed.order)] == [3, 3]
    assert len(mt5.history_orders_get(NOW - timedelta(minutes=1), NOW + timedelta(minutes=1))) == 2
    assert mt5.history_deals_total(NOW - timedelta(minutes=1), NOW + timedelta(minutes=1)) == 4
    assert len(mt5.history_deals_get(position=buy.order)) == 2
    assert mt5.positions_get(symbol="GBPUSD") == ()
    assert mt5.history_deals_get() is None and mt5.last_error()[0] == -2


# --- loading the module ------------------------------------------------------------------------------------


def test_load_terminal_module_imports_a_module_path():
    assert load_terminal_module("tests.mt5bridge.mt5_standin") is mt5_standin


def test_load_terminal_module_reports_missing_modules():
    with pytest.raises(GatewayError, match="cannot import"):
        load_terminal_module("tests.mt5bridge.no_such_module")
    with pytest.raises(GatewayError, match="MT5_TERMINAL_MODULE is empty"):
        load_terminal_module("  ")


def test_load_terminal_module_explains_the_windows_only_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "MetaTrader5", None)  # makes the import fail even on Windows
    with pytest.raises(GatewayError, match="mt5linux:HOST:PORT"):
        load_terminal_module("MetaTrader5")


def test_load_terminal_module_connects_mt5linux_once_per_address(monkeypatch):
    made = []

    class FakeMetaTrader5:
        def __init__(self, host="localhost", port=18812):
            made.append((host, port))

    monkeypatch.setattr(terminal_module, "_MT5LINUX_CONNECTIONS", {})
    monkeypatch.setitem(sys.modules, "mt5linux", types.SimpleNamespace(MetaTrader5=FakeMetaTrader5))
    first = load_terminal_module("mt5linux:127.0.0.1:18812")
    assert isinstance(first, FakeMetaTrader5)
    assert load_terminal_module("mt5linux:127.0.0.1:18812") is first
    load_terminal_module("mt5linux:[::1]:18813")
    assert made == [("127.0.0.1", 18812), ("::1", 18813)]


def test_load_terminal_module_mt5linux_errors(monkeypatch):
    monkeypatch.setattr(terminal_module, "_MT5LINUX_CONNECTIONS", {})
    monkeypatch.setitem(sys.modules, "mt5linux", None)
    with pytest.raises(GatewayError, match="mt5linux is not installed"):
        load_terminal_module("mt5linux:127.0.0.1:18812")
    with pytest.raises(GatewayError, match="form mt5linux:HOST:PORT"):
        load_terminal_module("mt5linux:127.0.0.1")

    def refuse(host, port):
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setitem(sys.modules, "mt5linux", types.SimpleNamespace(MetaTrader5=refuse))
    with pytest.raises(GatewayUnavailable, match="127.0.0.1:18812"):
        load_terminal_module("mt5linux:127.0.0.1:18812")


def test_get_gateway_builds_a_terminal_gateway_from_settings(settings, mt5):
    settings.MT5_TERMINAL_MODULE = "tests.mt5bridge.mt5_standin"
    settings.MT5_TERMINAL_PATH = ""
    settings.MT5_TERMINAL_TIMEOUT_MS = 12_000
    gateway = get_gateway("terminal")
    assert isinstance(gateway, TerminalGateway)
    assert isinstance(gateway, MT5Gateway)
    assert gateway.kind == "terminal"
    gateway.login(CREDS)
    assert calls_named(mt5, "initialize")[0] == (
        (),
        {"login": LOGIN, "password": PASSWORD, "server": SERVER, "timeout": 12_000},
    )


# --- login -------------------------------------------------------------------------------------------------


def test_login_initializes_first_then_logs_in(gateway, mt5):
    info = gateway.login(CREDS)
    assert isinstance(info, AccountInfo) and info.login == LOGIN
    assert calls_named(mt5, "initialize") == [
        ((), {"login": LOGIN, "password": PASSWORD, "server": SERVER, "timeout": 30_000})
    ]
    gateway.login(Credentials(OTHER, "other-pw", SERVER))
    assert calls_named(mt5, "login") == [((OTHER,), {"password": "other-pw", "server": SERVER, "timeout": 30_000})]
    assert len(calls_named(mt5, "initialize")) == 1
    assert mt5.current_login() == OTHER


def test_login_passes_the_terminal_path(mt5):
    mt5.configure(terminal_path=r"D:\mt5\a\terminal64.exe")
    TerminalGateway(mt5, path=r"D:\mt5\a\terminal64.exe").login(CREDS)
    assert calls_named(mt5, "initialize")[0][0] == (r"D:\mt5\a\terminal64.exe",)
    with pytest.raises(GatewayUnavailable, match="not found"):
        mt5.shutdown()
        TerminalGateway(mt5, path=r"D:\wrong\terminal64.exe").login(CREDS)


def test_login_starts_the_terminal_again_after_it_went_away(logged_in, mt5):
    mt5.shutdown()
    assert logged_in.login(CREDS).login == LOGIN
    assert len(calls_named(mt5, "initialize")) == 2

    mt5.fail_next("login", -10004, "No IPC connection")
    assert logged_in.login(CREDS).login == LOGIN
    assert len(calls_named(mt5, "initialize")) == 3


@pytest.mark.parametrize("first_time", [True, False])
def test_wrong_password_is_authentication_failed_without_the_password(gateway, mt5, first_time):
    if not first_time:
        gateway.login(Credentials(OTHER, "other-pw", SERVER))
    with pytest.raises(AuthenticationFailed) as caught:
        gateway.login(Credentials(LOGIN, "Wrong-pw-123", SERVER))
    message = str(caught.value)
    assert "Wrong-pw-123" not in message and PASSWORD not in message
    assert str(LOGIN) in message and "Authorization failed" in message and "-6" in message
    assert "Wrong-pw-123" not in repr(caught.value.args)


def test_wrong_server_is_authentication_failed(gateway):
    with pytest.raises(AuthenticationFailed):
        gateway.login(Credentials(LOGIN, PASSWORD, "Other-Server"))


def test_terminal_not_ready_is_unavailable(gateway, mt5):
    mt5.configure(not_ready=True)
    with pytest.raises(GatewayUnavailable, match="IPC timeout") as caught:
        gateway.login(CREDS)
    assert PASSWORD not in str(caught.value)


@pytest.mark.parametrize("code", [-10000, -10001, -10002, -10003, -10004, -10005])
def test_ipc_codes_are_unavailable(gateway, mt5, code):
    mt5.fail_next("initialize", code, "IPC failure")
    with pytest.raises(GatewayUnavailable):
        gateway.login(CREDS)


def test_other_login_failures_are_gateway_errors(gateway, mt5):
    mt5.fail_next("initialize", -2, "Invalid arguments")
    with pytest.raises(GatewayError) as caught:
        gateway.login(CREDS)
    assert type(caught.value) is GatewayError


def test_transport_errors_never_leak_the_password(mt5):
    class Broken:
        def terminal_info(self):
            return None

        def initialize(self, *args, **kwargs):
            raise ConnectionResetError(f"connection reset while sending {kwargs}")

        def last_error(self):
            return (-10004, "No IPC connection")

    class Crashing(Broken):
        def initialize(self, *args, **kwargs):
            raise TypeError(f"remote traceback: mt5.initialize(**{kwargs})")

    with pytest.raises(GatewayUnavailable) as caught:
        TerminalGateway(Broken()).login(CREDS)
    assert PASSWORD not in str(caught.value) and caught.value.__cause__ is None
    with pytest.raises(GatewayError) as caught:
        TerminalGateway(Crashing()).login(CREDS)
    assert PASSWORD not in str(caught.value) and caught.value.__cause__ is None


# --- the account check -------------------------------------------------------------------------------------


def test_reads_for_another_account_are_refused(logged_in, mt5):
    for read in (
        lambda: logged_in.account_info(OTHER),
        lambda: logged_in.positions(OTHER),
        lambda: logged_in.orders(OTHER),
        lambda: logged_in.deals(OTHER, NOW - timedelta(days=1), NOW),
        lambda: logged_in.symbols(OTHER),
        lambda: logged_in.order_send(OTHER, OrderRequest(action=TradeAction.DEAL, symbol="EURUSD")),
        lambda: logged_in.close_all_positions(OTHER),
        lambda: logged_in.deals_by_comment(OTHER, "x"),
    ):
        with pytest.raises(GatewayError, match="terminal is logged into another account"):
            read()
    assert calls_named(mt5, "order_send") == []


def test_a_switch_by_another_gateway_is_noticed(logged_in, mt5):
    TerminalGateway(mt5).login(Credentials(OTHER, "other-pw", SERVER))
    with pytest.raises(GatewayError, match="another account"):
        logged_in.positions(LOGIN)


def test_reads_without_any_login(gateway, mt5):
    with pytest.raises(GatewayUnavailable):  # nothing attached to the terminal yet
        gateway.positions(LOGIN)
    mt5.initialize()
    with pytest.raises(GatewayError, match="holds none"):
        gateway.positions(LOGIN)


# --- conversions -------------------------------------------------------------------------------------------


def assert_no_floats(value):
    for name, item in vars(value).items():
        assert not isinstance(item, float), name


def assert_utc(moment):
    assert moment.tzinfo is not None and moment.utcoffset() == timedelta(0)


def test_account_info_conversion(logged_in, mt5):
    info = logged_in.account_info(LOGIN)
    assert info == AccountInfo(
        login=LOGIN,
        server=SERVER,
        name="Stand-in Trader",
        company="Stand-in Broker Ltd",
        currency="USD",
        leverage=100,
        balance=Decimal("10000.0"),
        credit=Decimal("0.0"),
        equity=Decimal("10000.0"),
        margin=Decimal("0.0"),
        margin_free=Decimal("10000.0"),
        margin_level=None,
        profit=Decimal("0.0"),
        margin_mode=MarginMode.RETAIL_HEDGING,
        trade_mode=AccountTradeMode.DEMO,
        margin_so_call=Decimal("50.0"),
        margin_so_so=Decimal("30.0"),
        trade_allowed=True,  # logged in with the trading password
    )
    assert type(info.margin_mode) is MarginMode and type(info.trade_mode) is AccountTradeMode
    assert_no_floats(info)

    mt5.add_position(LOGIN, "EURUSD", mt5.POSITION_TYPE_BUY, 1.0, 1.09)
    info = logged_in.account_info(LOGIN)
    assert info.margin == Decimal("1090.0")
    assert info.profit == Decimal("1000.0")
    assert info.equity == Decimal("11000.0")
    assert info.margin_level == Decimal("1009.17")
    assert_no_floats(info)


def test_position_conversion(logged_in, mt5):
    opened = datetime(2026, 3, 1, 9, 30, 15, 123_000, tzinfo=UTC)
    ticket = mt5.add_position(
        LOGIN,
        "EURUSD",
        mt5.POSITION_TYPE_SELL,
        0.3,
        1.1002,
        sl=1.2,
        tp=1.05,
        swap=-1.25,
        magic=77,
        comment="hello",
        time=opened,
    )
    [position] = logged_in.positions(LOGIN)
    assert position == Position(
        ticket=ticket,
        symbol="EURUSD",
        type=PositionType.SELL,
        volume=Decimal("0.3"),
        price_open=Decimal("1.1002"),
        price_current=Decimal("1.10012"),
        sl=Decimal("1.2"),
        tp=Decimal("1.05"),
        swap=Decimal("-1.25"),
        profit=Decimal("2.4"),
        magic=77,
        comment="hello",
        time=opened,
        time_update=opened,
        identifier=ticket,
    )
    assert type(position.type) is PositionType
    assert_utc(position.time)
    assert_no_floats(position)


def test_pending_order_conversion(logged_in, mt5):
    placed = datetime(2026, 3, 1, 8, 0, 0, 500_000, tzinfo=UTC)
    expires = datetime(2026, 3, 9, tzinfo=UTC)
    ticket = mt5.add_order(
        LOGIN,
        "EURUSD",
        mt5.ORDER_TYPE_BUY_LIMIT,
        0.5,
        1.09,
        time_setup=placed,
        sl=1.08,
        tp=1.12,
        magic=5,
        comment="dip",
        type_time=mt5.ORDER_TIME_SPECIFIED,
        time_expiration=int(expires.timestamp()),
    )
    gtc = mt5.add_order(LOGIN, "EURUSD", mt5.ORDER_TYPE_SELL_STOP_LIMIT, 0.1, 1.08, price_stoplimit=1.085)
    first, second = logged_in.orders(LOGIN)
    assert first == PendingOrder(
        ticket=ticket,
        symbol="EURUSD",
        type=OrderType.BUY_LIMIT,
        volume_initial=Decimal("0.5"),
        volume_current=Decimal("0.5"),
        price_open=Decimal("1.09"),
        price_current=Decimal("1.09"),
        price_stoplimit=Decimal("0.0"),
        sl=Decimal("1.08"),
        tp=Decimal("1.12"),
        magic=5,
        comment="dip",
        time_setup=placed,
        time_expiration=expires,
        type_time=2,
        state=1,
    )
    assert type(first.type) is OrderType
    assert_no_floats(first)
    assert second.ticket == gtc and second.time_expiration is None
    assert second.type is OrderType.SELL_STOP_LIMIT and second.price_stoplimit == Decimal("1.085")


def test_deal_conversion(logged_in, mt5):
    when = datetime(2026, 3, 1, 10, 0, 0, 987_000, tzinfo=UTC)
    ticket = mt5.add_deal(
        LOGIN,
        time=when,
        order=900,
        type=mt5.DEAL_TYPE_SELL,
        entry=mt5.DEAL_ENTRY_OUT,
        magic=12,
        position_id=800,
        reason=mt5.DEAL_REASON_SL,
        volume=0.1,
        price=1.1,
        commission=-0.7,
        swap=-0.1,
        profit=12.3,
        fee=-0.05,
        symbol="EURUSD",
        comment="[sl 1.10000]",
        external_id="ext-1",
    )
    mt5.add_deal(LOGIN, time=when, type=mt5.DEAL_DIVIDEND_FRANKED, profit=3.0)
    mt5.add_deal(LOGIN, time=when, type=99, profit=1.0)  # a type newer than the enum
    deal, dividend, unknown = logged_in.deals(LOGIN, when - timedelta(hours=1), when + timedelta(hours=1))
    assert deal == Deal(
        ticket=ticket,
        order=900,
        time=when,
        type=DealType.SELL,
        entry=DealEntry.OUT,
        magic=12,
        position_id=800,
        reason=int(DealReason.SL),
        volume=Decimal("0.1"),
        price=Decimal("1.1"),
        commission=Decimal("-0.7"),
        swap=Decimal("-0.1"),
        profit=Decimal("12.3"),
        fee=Decimal("-0.05"),
        symbol="EURUSD",
        comment="[sl 1.10000]",
        external_id="ext-1",
    )
    assert deal.time.microsecond == 987_000  # from time_msc, not the whole-second time
    assert type(deal.type) is DealType and type(deal.entry) is DealEntry
    assert_utc(deal.time)
    assert_no_floats(deal)
    assert dividend.type is DealType.DIVIDEND_FRANKED
    assert unknown.type == 99


def test_symbol_conversion(logged_in):
    symbols = {symbol.name: symbol for symbol in logged_in.symbols()}
    assert set(symbols) == {"EURUSD", "GBPUSD", "USDJPY", "XAUUSD"}
    assert symbols["EURUSD"] == SymbolInfo(
        name="EURUSD",
        path="Forex\\EURUSD",
        description="EURUSD (stand-in)",
        digits=5,
        point=Decimal("0.00001"),
        contract_size=Decimal("100000.0"),
        volume_min=Decimal("0.01"),
        volume_step=Decimal("0.01"),
        volume_max=Decimal("100.0"),
        currency_base="EUR",
        currency_profit="USD",
        currency_margin="EUR",
        trade_stops_level=10,
    )
    assert symbols["XAUUSD"].contract_size == Decimal("100.0") and symbols["XAUUSD"].point == Decimal("0.01")
    assert_no_floats(symbols["EURUSD"])
    assert logged_in.symbols(LOGIN) == list(symbols.values())


def test_symbol_conversion_tolerates_field_drift():
    # A build with fewer fields (no page/path) and one the gateway does not know.
    names = [n for n in mt5_standin.SymbolInfo(*range(96))._asdict() if n not in ("page", "path")] + ["new_field"]
    Drifted = collections.namedtuple("SymbolInfo", names)
    row = Drifted(**{n: 0 for n in names})._replace(name="BTCUSD", digits=2, point=0.01, volume_min=0.001)

    class Terminal:
        def symbols_get(self, group=None):
            return (row,)

    [symbol] = TerminalGateway(Terminal()).symbols()
    assert symbol.name == "BTCUSD" and symbol.point == Decimal("0.01") and symbol.volume_min == Decimal("0.001")
    assert symbol.path == ""


def test_tick_conversion(gateway, mt5):
    mt5.initialize()
    tick = gateway.tick("EURUSD")
    assert tick == Tick(
        symbol="EURUSD",
        time=NOW + timedelta(milliseconds=250),
        bid=Decimal("1.1"),
        ask=Decimal("1.10012"),
        last=Decimal("0.0"),
    )
    assert_utc(tick.time)
    assert_no_floats(tick)


def test_tick_selects_a_symbol_outside_market_watch(gateway, mt5):
    mt5.initialize()
    assert gateway.tick("XAUUSD").ask == Decimal("2300.85")
    assert calls_named(mt5, "symbol_select") == [(("XAUUSD", True), {})]


def test_tick_for_an_unknown_symbol_is_not_found(gateway, mt5):
    mt5.initialize()
    with pytest.raises(NotFound):
        gateway.tick("NOPE")


def test_tick_when_the_terminal_is_gone_is_unavailable(gateway):
    with pytest.raises(GatewayUnavailable):
        gateway.tick("EURUSD")


# --- history, None vs () ------------------------------------------------------------------------------------


def test_deals_time_range(logged_in, mt5):
    start = datetime(2026, 2, 1, tzinfo=UTC)
    end = datetime(2026, 2, 28, 23, 59, 59, tzinfo=UTC)
    before = mt5.add_deal(LOGIN, time=start - timedelta(milliseconds=1), profit=1.0)
    at_start = mt5.add_deal(LOGIN, time=start, profit=2.0)
    inside = mt5.add_deal(LOGIN, time=datetime(2026, 2, 14, tzinfo=UTC), profit=3.0)
    at_end = mt5.add_deal(LOGIN, time=end, profit=4.0)
    same_second_after = mt5.add_deal(LOGIN, time=end + timedelta(milliseconds=400), profit=5.0)
    after = mt5.add_deal(LOGIN, time=end + timedelta(seconds=2), profit=6.0)
    mt5.add_deal(OTHER, time=datetime(2026, 2, 14, tzinfo=UTC), profit=7.0)

    tickets = [deal.ticket for deal in logged_in.deals(LOGIN, start, end)]
    assert tickets == [at_start, inside, at_end]
    assert before not in tickets and same_second_after not in tickets and after not in tickets
    # Epoch seconds reach the terminal (mt5linux cannot send datetimes), widened to whole seconds.
    assert calls_named(mt5, "history_deals_get")[-1] == ((int(start.timestamp()), int(end.timestamp())), {})
    naive = [d.ticket for d in logged_in.deals(LOGIN, start.replace(tzinfo=None), end.replace(tzinfo=None))]
    assert naive == tickets
    assert logged_in.deals(LOGIN, end, start) == []


@pytest.mark.parametrize("empty_as_none", [False, True])
def test_nothing_is_an_empty_list_whether_none_or_empty_tuple(logged_in, mt5, empty_as_none):
    mt5.configure(empty_as_none=empty_as_none)
    assert mt5.positions_get() == (None if empty_as_none else ())
    assert logged_in.positions(LOGIN) == []
    assert logged_in.orders(LOGIN) == []
    assert logged_in.deals(LOGIN, NOW - timedelta(days=30), NOW) == []
    assert logged_in.close_all_positions(LOGIN) == []


def test_none_with_an_error_raises(logged_in, mt5):
    mt5.fail_next("history_deals_get", -1, "Terminal: Call failed")
    with pytest.raises(GatewayError, match="Call failed") as caught:
        logged_in.deals(LOGIN, NOW - timedelta(days=1), NOW)
    assert type(caught.value) is GatewayError
    mt5.fail_next("positions_get", -10002, "IPC receive failed")
    with pytest.raises(GatewayUnavailable):
        logged_in.positions(LOGIN)
    mt5.fail_next("orders_get", -10005, "IPC timeout")
    with pytest.raises(GatewayUnavailable):
        logged_in.orders(LOGIN)


# --- order_send --------------------------------------------------------------------------------------------


def test_market_buy_builds_the_documented_request(logged_in, mt5):
    result = logged_in.order_send(
        LOGIN,
        OrderRequest(
            action=TradeAction.DEAL,
            symbol="EURUSD",
            volume=Decimal("0.1"),
            type=OrderType.BUY,
            magic=42,
            comment="copy #1",
            sl=Decimal("1.09"),
            deviation=20,
        ),
    )
    sent = last_sent(mt5)
    assert list(sent) == REQUEST_KEYS
    assert sent == {
        "action": 1,
        "magic": 42,
        "order": 0,
        "symbol": "EURUSD",
        "volume": 0.1,
        "price": 1.10012,  # the ask, since price 0 means "at market"
        "stoplimit": 0.0,
        "sl": 1.09,
        "tp": 0.0,
        "deviation": 20,
        "type": 0,
        "type_filling": 0,  # SYMBOL_FILLING_FOK -> ORDER_FILLING_FOK
        "type_time": 0,
        "expiration": 0,
        "comment": "copy #1",
        "position": 0,
        "position_by": 0,
    }
    for key, value in sent.items():
        assert type(value) is (str if key in ("symbol", "comment") else float if isinstance(value, float) else int)
    assert isinstance(result, OrderResult) and result.ok
    assert result.retcode == Retcode.DONE and result.comment == "Request executed"
    assert result.deal > 0 and result.order > 0 and result.request_id > 0
    assert (result.volume, result.price, result.bid, result.ask) == (
        Decimal("0.1"),
        Decimal("1.10012"),
        Decimal("1.1"),
        Decimal("1.10012"),
    )
    assert_no_floats(result)
    [position] = logged_in.positions(LOGIN)
    assert position.ticket == result.order and position.magic == 42 and position.comment == "copy #1"


def test_market_sell_uses_the_bid(logged_in, mt5):
    result = logged_in.order_send(
        LOGIN, OrderRequest(action=TradeAction.DEAL, symbol="EURUSD", volume=Decimal("0.2"), type=OrderType.SELL)
    )
    assert result.ok and last_sent(mt5)["price"] == 1.1 and result.price == Decimal("1.1")


def test_an_explicit_price_is_kept(logged_in, mt5):
    logged_in.order_send(
        LOGIN,
        OrderRequest(action=TradeAction.DEAL, symbol="USDJPY", volume=Decimal("0.1"), price=Decimal("150.11")),
    )
    assert last_sent(mt5)["price"] == 150.11


@pytest.mark.parametrize(("mask", "filling"), [(1, 0), (2, 1), (3, 0), (0, 2), (4, 2), (6, 1)])
def test_filling_for_the_symbol_bitmask(mask, filling):
    assert filling_for(mask) == filling


@pytest.mark.parametrize(("symbol", "filling"), [("EURUSD", 0), ("GBPUSD", 1), ("XAUUSD", 0), ("USDJPY", 2)])
def test_order_send_picks_the_filling_the_symbol_allows(logged_in, mt5, symbol, filling):
    result = logged_in.order_send(
        LOGIN, OrderRequest(action=TradeAction.DEAL, symbol=symbol, volume=Decimal("0.01"), type=OrderType.BUY)
    )
    assert last_sent(mt5)["type_filling"] == filling
    assert result.retcode == Retcode.DONE, result


def test_close_a_position_with_an_opposite_deal(logged_in, mt5):
    opened = logged_in.order_send(
        LOGIN, OrderRequest(action=TradeAction.DEAL, symbol="EURUSD", volume=Decimal("1"), type=OrderType.BUY)
    )
    mt5.set_tick("EURUSD", bid=1.1012, ask=1.10132)
    closed = logged_in.order_send(
        LOGIN,
        OrderRequest(action=TradeAction.DEAL, volume=Decimal("1"), type=OrderType.SELL, position=opened.order),
    )
    sent = last_sent(mt5)
    assert (sent["symbol"], sent["position"], sent["price"], sent["type"]) == ("EURUSD", opened.order, 1.1012, 1)
    assert closed.retcode == Retcode.DONE
    assert logged_in.positions(LOGIN) == []
    deals = logged_in.deals(LOGIN, NOW - timedelta(minutes=1), NOW + timedelta(minutes=1))
    assert [(d.entry, d.type, d.position_id) for d in deals] == [
        (DealEntry.IN, DealType.BUY, opened.order),
        (DealEntry.OUT, DealType.SELL, opened.order),
    ]
    assert deals[1].profit == Decimal("108.0")  # (1.1012 - 1.10012) * 100000
    assert logged_in.account_info(LOGIN).balance == Decimal("10108.0")


def test_closing_an_unknown_position_without_symbol_is_not_found(logged_in):
    with pytest.raises(NotFound):
        logged_in.order_send(LOGIN, OrderRequest(action=TradeAction.DEAL, volume=Decimal("1"), position=123))


def test_comment_is_cut_to_31_characters(logged_in, mt5):
    comment = "CP#123456789012345678901234567890-extra"
    result = logged_in.order_send(
        LOGIN,
        OrderRequest(action=TradeAction.DEAL, symbol="EURUSD", volume=Decimal("0.01"), comment=comment),
    )
    assert last_sent(mt5)["comment"] == comment[:31] and len(comment[:31]) == 31
    assert result.ok
    assert logged_in.positions(LOGIN)[0].comment == comment[:31]


def test_build_request_converts_every_field():
    expiration = datetime(2026, 3, 3, 17, 0, tzinfo=UTC)
    request = OrderRequest(
        action=TradeAction.PENDING,
        symbol="EURUSD",
        volume=Decimal("0.25"),
        type=OrderType.BUY_STOP_LIMIT,
        price=Decimal("1.2"),
        stoplimit=Decimal("1.19"),
        sl=Decimal("1.18"),
        tp=Decimal("1.25"),
        deviation=5,
        magic=9,
        comment="é" * 40,
        position=3,
        position_by=4,
        order=7,
        type_time=2,
        expiration=expiration,
    )
    built = build_request(request, symbol="EURUSD", price=request.price, type_filling=2)
    assert built == {
        "action": 5,
        "magic": 9,
        "order": 7,
        "symbol": "EURUSD",
        "volume": 0.25,
        "price": 1.2,
        "stoplimit": 1.19,
        "sl": 1.18,
        "tp": 1.25,
        "deviation": 5,
        "type": 6,
        "type_filling": 2,
        "type_time": 2,
        "expiration": int(expiration.timestamp()),
        "comment": "é" * 31,
        "position": 3,
        "position_by": 4,
    }


def test_a_refused_trade_is_a_result_not_an_exception(logged_in, mt5):
    result = logged_in.order_send(
        LOGIN, OrderRequest(action=TradeAction.DEAL, symbol="EURUSD", volume=Decimal("0.015"), type=OrderType.BUY)
    )
    assert result.retcode == Retcode.INVALID_VOLUME and not result.ok
    result = logged_in.order_send(
        LOGIN, OrderRequest(action=TradeAction.DEAL, symbol="EURUSD", volume=Decimal("90"), type=OrderType.BUY)
    )
    assert result.retcode == Retcode.NO_MONEY
    mt5.configure(trade_allowed=False)
    result = logged_in.order_send(
        LOGIN, OrderRequest(action=TradeAction.DEAL, symbol="EURUSD", volume=Decimal("0.1"), type=OrderType.BUY)
    )
    assert result.retcode == Retcode.CLIENT_DISABLES_AT and "AutoTrading" in result.comment
    assert logged_in.positions(LOGIN) == []


def test_no_result_from_order_send(logged_in, mt5):
    request = OrderRequest(action=TradeAction.DEAL, symbol="EURUSD", volume=Decimal("0.1"))
    mt5.fail_next("order_send", -8, "Auto trading disabled")
    result = logged_in.order_send(LOGIN, request)
    assert result == OrderResult(retcode=-8, comment="Auto trading disabled")
    assert not result.ok
    mt5.fail_next("order_send", -10005, "IPC timeout")
    with pytest.raises(GatewayUnavailable):
        logged_in.order_send(LOGIN, request)


def test_order_send_for_an_unknown_symbol_is_not_found(logged_in, mt5):
    with pytest.raises(NotFound):
        logged_in.order_send(LOGIN, OrderRequest(action=TradeAction.DEAL, symbol="NOPE", volume=Decimal("1")))
    assert calls_named(mt5, "order_send") == []


def test_pending_order_place_and_remove(logged_in, mt5):
    placed = logged_in.order_send(
        LOGIN,
        OrderRequest(
            action=TradeAction.PENDING,
            symbol="GBPUSD",
            volume=Decimal("0.1"),
            type=OrderType.BUY_LIMIT,
            price=Decimal("1.25"),
        ),
    )
    assert placed.retcode == Retcode.PLACED and placed.ok
    assert last_sent(mt5)["type_filling"] == 1 and last_sent(mt5)["price"] == 1.25
    [order] = logged_in.orders(LOGIN)
    assert order.ticket == placed.order and order.price_open == Decimal("1.25")
    removed = logged_in.order_send(LOGIN, OrderRequest(action=TradeAction.REMOVE, order=placed.order))
    assert removed.retcode == Retcode.DONE
    assert logged_in.orders(LOGIN) == []


def test_sltp_on_a_position(logged_in):
    opened = logged_in.order_send(
        LOGIN, OrderRequest(action=TradeAction.DEAL, symbol="EURUSD", volume=Decimal("0.1"), type=OrderType.BUY)
    )
    changed = logged_in.order_send(
        LOGIN,
        OrderRequest(
            action=TradeAction.SLTP, symbol="EURUSD", position=opened.order, sl=Decimal("1.05"), tp=Decimal("1.2")
        ),
    )
    assert changed.retcode == Retcode.DONE
    [position] = logged_in.positions(LOGIN)
    assert (position.sl, position.tp) == (Decimal("1.05"), Decimal("1.2"))


# --- broker side -------------------------------------------------------------------------------------------


def test_close_all_positions(logged_in, mt5):
    mt5.add_position(LOGIN, "EURUSD", mt5.POSITION_TYPE_BUY, 0.5, 1.09, magic=3)
    mt5.add_position(LOGIN, "GBPUSD", mt5.POSITION_TYPE_SELL, 0.2, 1.28)
    mt5.add_position(OTHER, "EURUSD", mt5.POSITION_TYPE_BUY, 1.0, 1.0)
    results = logged_in.close_all_positions(LOGIN)
    assert [r.retcode for r in results] == [Retcode.DONE, Retcode.DONE]
    sent = [args[0] for args, _ in calls_named(mt5, "order_send")]
    assert [(s["symbol"], s["type"], s["volume"], s["price"], s["type_filling"]) for s in sent] == [
        ("EURUSD", 1, 0.5, 1.1, 0),
        ("GBPUSD", 0, 0.2, 1.27015, 1),
    ]
    assert all(s["position"] for s in sent) and sent[0]["magic"] == 3
    assert logged_in.positions(LOGIN) == []
    assert mt5.login(OTHER, password="other-pw") and mt5.positions_total() == 1


def test_accounts_info_only_for_the_current_account(logged_in):
    assert logged_in.accounts_info([]) == {}
    accounts = logged_in.accounts_info([LOGIN])
    assert list(accounts) == [LOGIN] and accounts[LOGIN].balance == Decimal("10000.0")
    for logins in ([OTHER], [LOGIN, OTHER]):
        with pytest.raises(GatewayError, match="not available through a terminal; use the manager gateway"):
            logged_in.accounts_info(logins)


def test_deals_by_comment_searches_the_whole_history(logged_in, mt5):
    old = mt5.add_deal(LOGIN, time=datetime(2003, 5, 1, tzinfo=UTC), comment="BONUS#17", profit=50.0)
    recent = mt5.add_deal(LOGIN, time=NOW - timedelta(days=2), comment="BONUS#17", profit=25.0)
    mt5.add_deal(LOGIN, time=NOW, comment="BONUS#170", profit=1.0)
    mt5.add_deal(OTHER, time=NOW, comment="BONUS#17", profit=1.0)
    assert [d.ticket for d in logged_in.deals_by_comment(LOGIN, "BONUS#17")] == [old, recent]
    long_comment = "W" * 40
    cut = mt5.add_deal(LOGIN, time=NOW, comment=long_comment[:31])
    assert [d.ticket for d in logged_in.deals_by_comment(LOGIN, long_comment)] == [cut]


@pytest.mark.parametrize(
    "call",
    [
        lambda g: g.users(),
        lambda g: g.user(LOGIN),
        lambda g: g.groups(),
        lambda g: g.balance_operation(LOGIN, Decimal("10"), DealType.BALANCE, "deposit"),
        lambda g: g.set_leverage(LOGIN, 200),
    ],
)
def test_manager_only_calls_are_refused(logged_in, mt5, call):
    before = len(mt5.calls)
    with pytest.raises(GatewayError, match="not available through a terminal; use the manager gateway"):
        call(logged_in)
    assert len(mt5.calls) == before


# --- robustness --------------------------------------------------------------------------------------------


def test_calls_into_the_package_are_serialised(mt5):
    mt5.initialize(login=LOGIN, password=PASSWORD, server=SERVER)
    inside = 0
    most = 0
    guard = threading.Lock()

    class Watched:
        def __getattr__(self, name):
            target = getattr(mt5, name)

            def call(*args, **kwargs):
                nonlocal inside, most
                with guard:
                    inside += 1
                    most = max(most, inside)
                time.sleep(0.002)
                try:
                    return target(*args, **kwargs)
                finally:
                    with guard:
                        inside -= 1

            return call

    gateways = [TerminalGateway(Watched()) for _ in range(4)]
    errors = []

    def work(gateway):
        try:
            for _ in range(5):
                gateway.positions(LOGIN)
                gateway.tick("EURUSD")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(g,)) for g in gateways]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and most == 1


def test_a_dropped_mt5linux_link_is_unavailable_and_forgotten(monkeypatch):
    class Dropped:
        def account_info(self):
            raise EOFError("stream has been closed")

    dropped = Dropped()
    connections = {"mt5linux:127.0.0.1:18812": dropped}
    monkeypatch.setattr(terminal_module, "_MT5LINUX_CONNECTIONS", connections)
    with pytest.raises(GatewayUnavailable, match="stream has been closed"):
        TerminalGateway(dropped).positions(LOGIN)
    assert connections == {}
