"""A stand-in for the ``MetaTrader5`` package: its documented module API over a small in-memory terminal."""

from __future__ import annotations

import collections
import fnmatch
import functools
import itertools
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

# ---------------------------------------------------------------------------------------------
# Constants, with the numeric values of the real package (docs/mt5-gateways.md, reference 1.3)
# ---------------------------------------------------------------------------------------------

ORDER_TYPE_BUY = 0
ORDER_TYPE_SELL = 1
ORDER_TYPE_BUY_LIMIT = 2
ORDER_TYPE_SELL_LIMIT = 3
ORDER_TYPE_BUY_STOP = 4
ORDER_TYPE_SELL_STOP = 5
ORDER_TYPE_BUY_STOP_LIMIT = 6
ORDER_TYPE_SELL_STOP_LIMIT = 7
ORDER_TYPE_CLOSE_BY = 8

TRADE_ACTION_DEAL = 1
TRADE_ACTION_PENDING = 5
TRADE_ACTION_SLTP = 6
TRADE_ACTION_MODIFY = 7
TRADE_ACTION_REMOVE = 8
TRADE_ACTION_CLOSE_BY = 10

ORDER_FILLING_FOK = 0
ORDER_FILLING_IOC = 1
ORDER_FILLING_RETURN = 2
ORDER_FILLING_BOC = 3

# The symbol's ``filling_mode`` is a bitmask on a different scale from ORDER_FILLING_*.
SYMBOL_FILLING_FOK = 1
SYMBOL_FILLING_IOC = 2

ORDER_TIME_GTC = 0
ORDER_TIME_DAY = 1
ORDER_TIME_SPECIFIED = 2
ORDER_TIME_SPECIFIED_DAY = 3

ORDER_STATE_STARTED = 0
ORDER_STATE_PLACED = 1
ORDER_STATE_CANCELED = 2
ORDER_STATE_PARTIAL = 3
ORDER_STATE_FILLED = 4
ORDER_STATE_REJECTED = 5
ORDER_STATE_EXPIRED = 6
ORDER_STATE_REQUEST_ADD = 7
ORDER_STATE_REQUEST_MODIFY = 8
ORDER_STATE_REQUEST_CANCEL = 9

ORDER_REASON_CLIENT = 0
ORDER_REASON_MOBILE = 1
ORDER_REASON_WEB = 2
ORDER_REASON_EXPERT = 3
ORDER_REASON_SL = 4
ORDER_REASON_TP = 5
ORDER_REASON_SO = 6

POSITION_TYPE_BUY = 0
POSITION_TYPE_SELL = 1

POSITION_REASON_CLIENT = 0
POSITION_REASON_MOBILE = 1
POSITION_REASON_WEB = 2
POSITION_REASON_EXPERT = 3

DEAL_TYPE_BUY = 0
DEAL_TYPE_SELL = 1
DEAL_TYPE_BALANCE = 2
DEAL_TYPE_CREDIT = 3
DEAL_TYPE_CHARGE = 4
DEAL_TYPE_CORRECTION = 5
DEAL_TYPE_BONUS = 6
DEAL_TYPE_COMMISSION = 7
DEAL_TYPE_COMMISSION_DAILY = 8
DEAL_TYPE_COMMISSION_MONTHLY = 9
DEAL_TYPE_COMMISSION_AGENT_DAILY = 10
DEAL_TYPE_COMMISSION_AGENT_MONTHLY = 11
DEAL_TYPE_INTEREST = 12
DEAL_TYPE_BUY_CANCELED = 13
DEAL_TYPE_SELL_CANCELED = 14
# The package spells these three without ``_TYPE_``.
DEAL_DIVIDEND = 15
DEAL_DIVIDEND_FRANKED = 16
DEAL_TAX = 17

DEAL_ENTRY_IN = 0
DEAL_ENTRY_OUT = 1
DEAL_ENTRY_INOUT = 2
DEAL_ENTRY_OUT_BY = 3

DEAL_REASON_CLIENT = 0
DEAL_REASON_MOBILE = 1
DEAL_REASON_WEB = 2
DEAL_REASON_EXPERT = 3
DEAL_REASON_SL = 4
DEAL_REASON_TP = 5
DEAL_REASON_SO = 6
DEAL_REASON_ROLLOVER = 7
DEAL_REASON_VMARGIN = 8
DEAL_REASON_SPLIT = 9

ACCOUNT_TRADE_MODE_DEMO = 0
ACCOUNT_TRADE_MODE_CONTEST = 1
ACCOUNT_TRADE_MODE_REAL = 2
ACCOUNT_MARGIN_MODE_RETAIL_NETTING = 0
ACCOUNT_MARGIN_MODE_EXCHANGE = 1
ACCOUNT_MARGIN_MODE_RETAIL_HEDGING = 2
ACCOUNT_STOPOUT_MODE_PERCENT = 0
ACCOUNT_STOPOUT_MODE_MONEY = 1

TIMEFRAME_M1 = 1
TIMEFRAME_M2 = 2
TIMEFRAME_M3 = 3
TIMEFRAME_M4 = 4
TIMEFRAME_M5 = 5
TIMEFRAME_M6 = 6
TIMEFRAME_M10 = 10
TIMEFRAME_M12 = 12
TIMEFRAME_M15 = 15
TIMEFRAME_M20 = 20
TIMEFRAME_M30 = 30
TIMEFRAME_H1 = 0x4000 | 1
TIMEFRAME_H2 = 0x4000 | 2
TIMEFRAME_H3 = 0x4000 | 3
TIMEFRAME_H4 = 0x4000 | 4
TIMEFRAME_H6 = 0x4000 | 6
TIMEFRAME_H8 = 0x4000 | 8
TIMEFRAME_H12 = 0x4000 | 12
TIMEFRAME_D1 = 0x4000 | 24
TIMEFRAME_W1 = 0x8000 | 1
TIMEFRAME_MN1 = 0xC000 | 1

COPY_TICKS_ALL = -1
COPY_TICKS_INFO = 1
COPY_TICKS_TRADE = 2

TICK_FLAG_BID = 2
TICK_FLAG_ASK = 4
TICK_FLAG_LAST = 8
TICK_FLAG_VOLUME = 16
TICK_FLAG_BUY = 32
TICK_FLAG_SELL = 64

TRADE_RETCODE_REQUOTE = 10004
TRADE_RETCODE_REJECT = 10006
TRADE_RETCODE_CANCEL = 10007
TRADE_RETCODE_PLACED = 10008
TRADE_RETCODE_DONE = 10009
TRADE_RETCODE_DONE_PARTIAL = 10010
TRADE_RETCODE_ERROR = 10011
TRADE_RETCODE_TIMEOUT = 10012
TRADE_RETCODE_INVALID = 10013
TRADE_RETCODE_INVALID_VOLUME = 10014
TRADE_RETCODE_INVALID_PRICE = 10015
TRADE_RETCODE_INVALID_STOPS = 10016
TRADE_RETCODE_TRADE_DISABLED = 10017
TRADE_RETCODE_MARKET_CLOSED = 10018
TRADE_RETCODE_NO_MONEY = 10019
TRADE_RETCODE_PRICE_CHANGED = 10020
TRADE_RETCODE_PRICE_OFF = 10021
TRADE_RETCODE_INVALID_EXPIRATION = 10022
TRADE_RETCODE_ORDER_CHANGED = 10023
TRADE_RETCODE_TOO_MANY_REQUESTS = 10024
TRADE_RETCODE_NO_CHANGES = 10025
TRADE_RETCODE_SERVER_DISABLES_AT = 10026
TRADE_RETCODE_CLIENT_DISABLES_AT = 10027
TRADE_RETCODE_LOCKED = 10028
TRADE_RETCODE_FROZEN = 10029
TRADE_RETCODE_INVALID_FILL = 10030
TRADE_RETCODE_CONNECTION = 10031
TRADE_RETCODE_ONLY_REAL = 10032
TRADE_RETCODE_LIMIT_ORDERS = 10033
TRADE_RETCODE_LIMIT_VOLUME = 10034
TRADE_RETCODE_INVALID_ORDER = 10035
TRADE_RETCODE_POSITION_CLOSED = 10036
TRADE_RETCODE_INVALID_CLOSE_VOLUME = 10038
TRADE_RETCODE_CLOSE_ORDER_EXIST = 10039
TRADE_RETCODE_LIMIT_POSITIONS = 10040
TRADE_RETCODE_REJECT_CANCEL = 10041
TRADE_RETCODE_LONG_ONLY = 10042
TRADE_RETCODE_SHORT_ONLY = 10043
TRADE_RETCODE_CLOSE_ONLY = 10044
TRADE_RETCODE_FIFO_CLOSE = 10045

RES_S_OK = 1
RES_E_FAIL = -1
RES_E_INVALID_PARAMS = -2
RES_E_NO_MEMORY = -3
RES_E_NOT_FOUND = -4
RES_E_INVALID_VERSION = -5
RES_E_AUTH_FAILED = -6
RES_E_UNSUPPORTED = -7
RES_E_AUTO_TRADING_DISABLED = -8
RES_E_INTERNAL_FAIL = -10000
RES_E_INTERNAL_FAIL_SEND = -10001
RES_E_INTERNAL_FAIL_RECEIVE = -10002
RES_E_INTERNAL_FAIL_INIT = -10003
RES_E_INTERNAL_FAIL_CONNECT = -10004
RES_E_INTERNAL_FAIL_TIMEOUT = -10005

# Symbol execution modes (MQL5 ENUM_SYMBOL_TRADE_EXECUTION); the package exports no names for them.
_EXEC_REQUEST, _EXEC_INSTANT, _EXEC_MARKET, _EXEC_EXCHANGE = 0, 1, 2, 3
_SYMBOL_TRADE_MODE_DISABLED, _SYMBOL_TRADE_MODE_FULL = 0, 4

_VERSION = (500, 4755, "13 Dec 2024")
_COMMENT_LIMIT = 31

# ---------------------------------------------------------------------------------------------
# Result types: named tuples in the documented field order
# ---------------------------------------------------------------------------------------------


def _record(name: str, fields: str) -> type:
    """A named tuple like the package's C-extension results: ``_asdict()`` and iteration, no ``_fields``."""
    names = tuple(fields.split())
    base = collections.namedtuple(name, names)

    def _asdict(self: Any) -> dict[str, Any]:
        return dict(zip(names, self, strict=True))

    def _no_fields(self: Any) -> Any:
        # The real objects have no ``_fields``; hiding it keeps callers from depending on it.
        raise AttributeError(f"{name!r} object has no attribute '_fields'")

    return type(
        name, (base,), {"__slots__": (), "__module__": __name__, "_asdict": _asdict, "_fields": property(_no_fields)}
    )


AccountInfo = _record(
    "AccountInfo",
    "login trade_mode leverage limit_orders margin_so_mode trade_allowed trade_expert margin_mode currency_digits"
    " fifo_close balance credit profit equity margin margin_free margin_level margin_so_call margin_so_so"
    " margin_initial margin_maintenance assets liabilities commission_blocked name server currency company",
)
TerminalInfo = _record(
    "TerminalInfo",
    "community_account community_connection connected dlls_allowed trade_allowed tradeapi_disabled email_enabled"
    " ftp_enabled notifications_enabled mqid build maxbars codepage ping_last community_balance retransmission"
    " company name language path data_path commondata_path",
)
Tick = _record("Tick", "time bid ask last volume time_msc flags volume_real")
# Field order as printed by real terminals (2021 and 2024); mt5linux 1.x types.py differs and is wrong here.
TradePosition = _record(
    "TradePosition",
    "ticket time time_msc time_update time_update_msc type magic identifier reason volume price_open sl tp"
    " price_current swap profit symbol comment external_id",
)
TradeOrder = _record(
    "TradeOrder",
    "ticket time_setup time_setup_msc time_done time_done_msc time_expiration type type_time type_filling state"
    " magic position_id position_by_id reason volume_initial volume_current price_open sl tp price_current"
    " price_stoplimit symbol comment external_id",
)
TradeDeal = _record(
    "TradeDeal",
    "ticket order time time_msc type entry magic position_id reason volume price commission swap profit fee"
    " symbol comment external_id",
)
TradeRequest = _record(
    "TradeRequest",
    "action magic order symbol volume price stoplimit sl tp deviation type type_filling type_time expiration"
    " comment position position_by",
)
OrderSendResult = _record(
    "OrderSendResult", "retcode deal order volume price bid ask comment request_id retcode_external request"
)
OrderCheckResult = _record(
    "OrderCheckResult", "retcode balance equity profit margin margin_free margin_level comment request"
)
BookInfo = _record("BookInfo", "type price volume volume_dbl")

# name:type (b bool, i int, f float, s str), in the order of the documented 96-field SymbolInfo.
_SYMBOL_SPEC = """
custom:b chart_mode:i select:b visible:b session_deals:i session_buy_orders:i session_sell_orders:i volume:i
volumehigh:i volumelow:i time:i digits:i spread:i spread_float:b ticks_bookdepth:i trade_calc_mode:i trade_mode:i
start_time:i expiration_time:i trade_stops_level:i trade_freeze_level:i trade_exemode:i swap_mode:i
swap_rollover3days:i margin_hedged_use_leg:b expiration_mode:i filling_mode:i order_mode:i order_gtc_mode:i
option_mode:i option_right:i bid:f bidhigh:f bidlow:f ask:f askhigh:f asklow:f last:f lasthigh:f lastlow:f
volume_real:f volumehigh_real:f volumelow_real:f option_strike:f point:f trade_tick_value:f
trade_tick_value_profit:f trade_tick_value_loss:f trade_tick_size:f trade_contract_size:f
trade_accrued_interest:f trade_face_value:f trade_liquidity_rate:f volume_min:f volume_max:f volume_step:f
volume_limit:f swap_long:f swap_short:f margin_initial:f margin_maintenance:f session_volume:f
session_turnover:f session_interest:f session_buy_orders_volume:f session_sell_orders_volume:f session_open:f
session_close:f session_aw:f session_price_settlement:f session_price_limit_min:f session_price_limit_max:f
margin_hedged:f price_change:f price_volatility:f price_theoretical:f price_greeks_delta:f price_greeks_theta:f
price_greeks_gamma:f price_greeks_vega:f price_greeks_rho:f price_greeks_omega:f price_sensitivity:f basis:s
category:s currency_base:s currency_profit:s currency_margin:s bank:s description:s exchange:s formula:s isin:s
name:s page:s path:s
"""
_SYMBOL_DEFAULTS: dict[str, Any] = {
    token.split(":")[0]: {"b": False, "i": 0, "f": 0.0, "s": ""}[token.split(":")[1]] for token in _SYMBOL_SPEC.split()
}
SymbolInfo = _record("SymbolInfo", " ".join(_SYMBOL_DEFAULTS))

_REQUEST_TYPES: dict[str, type] = {
    "action": int,
    "magic": int,
    "order": int,
    "symbol": str,
    "volume": float,
    "price": float,
    "stoplimit": float,
    "sl": float,
    "tp": float,
    "deviation": int,
    "type": int,
    "type_filling": int,
    "type_time": int,
    "expiration": int,
    "comment": str,
    "position": int,
    "position_by": int,
}

# ---------------------------------------------------------------------------------------------
# Terminal state
# ---------------------------------------------------------------------------------------------


class _Invalid(Exception):
    """Bad arguments: the call returns its failure value with RES_E_INVALID_PARAMS."""


class _Terminal:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.initialized = False
        self.current_login: int | None = None
        self.saved_logins: set[int] = set()
        self.error: tuple[int, str] = (RES_S_OK, "Success")
        self.accounts: dict[int, dict[str, Any]] = {}
        self.symbols: dict[str, dict[str, Any]] = {}
        self.ticks: dict[str, dict[str, Any]] = {}
        self.positions: dict[int, list[dict[str, Any]]] = collections.defaultdict(list)
        self.orders: dict[int, list[dict[str, Any]]] = collections.defaultdict(list)
        self.history_orders: dict[int, list[dict[str, Any]]] = collections.defaultdict(list)
        self.deals: dict[int, list[dict[str, Any]]] = collections.defaultdict(list)
        self.not_ready = False
        self.trade_allowed = True
        self.empty_as_none = False
        self.terminal_path = r"C:\Program Files\MetaTrader 5\terminal64.exe"
        self.failures: dict[str, tuple[int, str]] = {}
        self.clock: datetime | None = None
        self.tickets = itertools.count(5_000_001)
        self.request_ids = itertools.count(1)


_T = _Terminal()

#: Every API call as ``(name, args, kwargs)``, for tests to inspect what a caller sent.
calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []


# ---------------------------------------------------------------------------------------------
# Set-up helpers for tests (not part of the package API)
# ---------------------------------------------------------------------------------------------


def reset() -> None:
    """Forget everything: a fresh, uninitialised terminal with no accounts or symbols."""
    global _T
    _T = _Terminal()
    calls.clear()


def configure(
    *,
    accounts: Iterable[dict[str, Any]] = (),
    symbols: Iterable[dict[str, Any]] = (),
    ticks: Iterable[dict[str, Any]] = (),
    not_ready: bool | None = None,
    trade_allowed: bool | None = None,
    empty_as_none: bool | None = None,
    terminal_path: str | None = None,
    now: datetime | None = None,
) -> None:
    """Set up terminal state in one call; each item is passed to ``add_account``/``add_symbol``/``set_tick``.

    ``not_ready`` makes ``initialize()`` fail with (-10005, 'IPC timeout'); ``trade_allowed=False`` is the
    Algo Trading button off (order_send answers 10027); ``empty_as_none`` makes list calls answer ``None``
    with (1, 'Success') instead of ``()`` when nothing matches, as some builds do.
    """
    if now is not None:
        _T.clock = now
    for account in accounts:
        add_account(**account)
    for symbol in symbols:
        add_symbol(**symbol)
    for tick in ticks:
        set_tick(**tick)
    if not_ready is not None:
        _T.not_ready = not_ready
    if trade_allowed is not None:
        _T.trade_allowed = trade_allowed
    if empty_as_none is not None:
        _T.empty_as_none = empty_as_none
    if terminal_path is not None:
        _T.terminal_path = terminal_path


def set_now(now: datetime | None) -> None:
    """Freeze the terminal clock (``None`` follows the wall clock again)."""
    _T.clock = now


def add_account(
    login: int,
    password: str,
    server: str = "StandIn-Demo",
    *,
    balance: float = 10_000.0,
    credit: float = 0.0,
    leverage: int = 100,
    currency: str = "USD",
    name: str = "Stand-in Trader",
    company: str = "Stand-in Broker Ltd",
    trade_mode: int = ACCOUNT_TRADE_MODE_DEMO,
    margin_mode: int = ACCOUNT_MARGIN_MODE_RETAIL_HEDGING,
    margin_so_call: float = 50.0,
    margin_so_so: float = 30.0,
) -> None:
    _T.accounts[int(login)] = {
        "login": int(login),
        "password": password,
        "server": server,
        "balance": float(balance),
        "credit": float(credit),
        "leverage": int(leverage),
        "currency": currency,
        "name": name,
        "company": company,
        "trade_mode": int(trade_mode),
        "margin_mode": int(margin_mode),
        "margin_so_call": float(margin_so_call),
        "margin_so_so": float(margin_so_so),
    }


def add_symbol(name: str, **fields: Any) -> None:
    """Add a symbol; ``fields`` override SymbolInfo fields by name (an unknown name is an error)."""
    unknown = set(fields) - set(_SYMBOL_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown SymbolInfo fields: {sorted(unknown)}")
    digits = int(fields.get("digits", 5))
    point = round(10.0**-digits, digits)
    record = dict(_SYMBOL_DEFAULTS)
    record.update(
        name=name,
        path=f"Forex\\{name}",
        description=f"{name} (stand-in)",
        select=True,
        visible=True,
        digits=digits,
        point=point,
        trade_tick_size=point,
        trade_tick_value=1.0,
        trade_contract_size=100_000.0,
        trade_mode=_SYMBOL_TRADE_MODE_FULL,
        trade_exemode=_EXEC_MARKET,
        trade_calc_mode=0,
        filling_mode=SYMBOL_FILLING_FOK,
        expiration_mode=15,
        order_mode=127,
        volume_min=0.01,
        volume_max=100.0,
        volume_step=0.01,
        currency_base=name[:3],
        currency_profit=name[3:6],
        currency_margin=name[:3],
        spread_float=True,
    )
    record.update(fields)
    _T.symbols[name] = record


def set_tick(symbol: str, bid: float, ask: float, last: float = 0.0, time_msc: int | None = None) -> None:
    if time_msc is None:
        time_msc = int(_now().timestamp() * 1000)
    _T.ticks[symbol] = {"bid": float(bid), "ask": float(ask), "last": float(last), "time_msc": int(time_msc)}


def add_position(login: int, symbol: str, type: int, volume: float, price_open: float, **fields: Any) -> int:
    """Open a position directly (no deal); returns its ticket."""
    ticket = int(fields.pop("ticket", next(_T.tickets)))
    opened = fields.pop("time", None) or _now()
    msc = _msc(opened)
    position = {
        "ticket": ticket,
        "time": msc // 1000,
        "time_msc": msc,
        "time_update": msc // 1000,
        "time_update_msc": msc,
        "type": int(type),
        "magic": 0,
        "identifier": ticket,
        "reason": POSITION_REASON_CLIENT,
        "volume": float(volume),
        "price_open": float(price_open),
        "sl": 0.0,
        "tp": 0.0,
        "price_current": float(price_open),
        "swap": 0.0,
        "profit": 0.0,
        "symbol": symbol,
        "comment": "",
        "external_id": "",
    }
    _update(position, fields, TradePosition)
    _T.positions[int(login)].append(position)
    return ticket


def add_order(login: int, symbol: str, type: int, volume: float, price_open: float, **fields: Any) -> int:
    """Place a pending order directly; returns its ticket."""
    ticket = int(fields.pop("ticket", next(_T.tickets)))
    placed = fields.pop("time_setup", None) or _now()
    order = _order_record(ticket, symbol, type, volume, price_open, _msc(placed), ORDER_STATE_PLACED)
    _update(order, fields, TradeOrder)
    _T.orders[int(login)].append(order)
    return ticket


def add_deal(login: int, *, time: datetime | int | None = None, **fields: Any) -> int:
    """Add a history deal (``time`` as a datetime or epoch milliseconds); returns its ticket."""
    ticket = int(fields.pop("ticket", next(_T.tickets)))
    msc = _msc(time if time is not None else _now())
    deal = {
        "ticket": ticket,
        "order": 0,
        "time": msc // 1000,
        "time_msc": msc,
        "type": DEAL_TYPE_BALANCE,
        "entry": DEAL_ENTRY_IN,
        "magic": 0,
        "position_id": 0,
        "reason": DEAL_REASON_CLIENT,
        "volume": 0.0,
        "price": 0.0,
        "commission": 0.0,
        "swap": 0.0,
        "profit": 0.0,
        "fee": 0.0,
        "symbol": "",
        "comment": "",
        "external_id": "",
    }
    _update(deal, fields, TradeDeal)
    _T.deals[int(login)].append(deal)
    return ticket


def fail_next(function: str, code: int, text: str) -> None:
    """Make the next call of ``function`` return its failure value with ``last_error() == (code, text)``."""
    _T.failures[function] = (int(code), text)


def current_login() -> int | None:
    return _T.current_login


def account_state(login: int) -> dict[str, Any]:
    """The stored account record (balance after trades, ...)."""
    return _T.accounts[int(login)]


# ---------------------------------------------------------------------------------------------
# Internals
# ---------------------------------------------------------------------------------------------


def _now() -> datetime:
    return _T.clock or datetime.now(UTC)


def _msc(value: datetime | int) -> int:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return int(value.timestamp() * 1000)
    return int(value)


def _seconds(value: Any, argument: str) -> int:
    """A date argument: a datetime (naive = UTC, as the docs build them) or epoch seconds."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return int(value.timestamp())
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    raise _Invalid(f'Invalid "{argument}" argument')


def _update(record: dict[str, Any], fields: dict[str, Any], kind: type) -> None:
    unknown = set(fields) - set(record)
    if unknown:
        raise TypeError(f"unknown {kind.__name__} fields: {sorted(unknown)}")
    record.update(fields)


def _group_match(name: str, group: str | None) -> bool:
    """MT5 group filter: comma list of masks, ``!`` excludes, applied left to right."""
    if group is None:
        return True
    matched = False
    for raw in group.split(","):
        mask = raw.strip()
        if not mask:
            continue
        if mask.startswith("!"):
            if fnmatch.fnmatchcase(name, mask[1:]):
                matched = False
        elif fnmatch.fnmatchcase(name, mask):
            matched = True
    return matched


def _api(failure: Any = None, *, needs_init: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Wrap an API function: log it, apply injected failures and the not-initialised rule, set last_error."""

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with _T.lock:
                calls.append((function.__name__, args, dict(kwargs)))
                injected = _T.failures.pop(function.__name__, None)
                if injected is not None:
                    _T.error = injected
                    return failure
                if needs_init and not _T.initialized:
                    _T.error = (RES_E_INTERNAL_FAIL_CONNECT, "No IPC connection")
                    return failure
                _T.error = (RES_S_OK, "Success")
                try:
                    return function(*args, **kwargs)
                except _Invalid as exc:
                    _T.error = (RES_E_INVALID_PARAMS, str(exc))
                    return failure

        return wrapper

    return decorate


def _rows(records: list[Any]) -> tuple[Any, ...] | None:
    if not records and _T.empty_as_none:
        return None
    return tuple(records)


def _account() -> dict[str, Any] | None:
    if _T.current_login is None:
        return None
    return _T.accounts.get(_T.current_login)


def _quote(symbol: str) -> dict[str, Any] | None:
    return _T.ticks.get(symbol)


def _contract_size(symbol: str) -> float:
    return float(_T.symbols.get(symbol, {}).get("trade_contract_size", 100_000.0))


def _profit(symbol: str, type_: int, volume: float, price_open: float, price_close: float) -> float:
    direction = 1.0 if type_ in (ORDER_TYPE_BUY, POSITION_TYPE_BUY) else -1.0
    return round(direction * (price_close - price_open) * volume * _contract_size(symbol), 2)


def _margin(symbol: str, volume: float, price: float, leverage: int) -> float:
    return round(volume * _contract_size(symbol) * price / max(leverage, 1), 2)


def _refresh(position: dict[str, Any]) -> dict[str, Any]:
    quote = _quote(position["symbol"])
    if quote is None:
        return position
    close = quote["bid"] if position["type"] == POSITION_TYPE_BUY else quote["ask"]
    position["price_current"] = close
    position["profit"] = _profit(
        position["symbol"], position["type"], position["volume"], position["price_open"], close
    )
    return position


def _totals(account: dict[str, Any]) -> dict[str, float]:
    positions = [_refresh(p) for p in _T.positions[account["login"]]]
    profit = round(sum(p["profit"] + p["swap"] for p in positions), 2)
    margin = round(sum(_margin(p["symbol"], p["volume"], p["price_open"], account["leverage"]) for p in positions), 2)
    equity = round(account["balance"] + account["credit"] + profit, 2)
    return {
        "profit": profit,
        "equity": equity,
        "margin": margin,
        "margin_free": round(equity - margin, 2),
        "margin_level": round(equity / margin * 100.0, 2) if margin else 0.0,
    }


def _account_tuple(account: dict[str, Any]) -> Any:
    totals = _totals(account)
    return AccountInfo(
        login=account["login"],
        trade_mode=account["trade_mode"],
        leverage=account["leverage"],
        limit_orders=200,
        margin_so_mode=ACCOUNT_STOPOUT_MODE_PERCENT,
        trade_allowed=True,
        trade_expert=True,
        margin_mode=account["margin_mode"],
        currency_digits=2,
        fifo_close=False,
        balance=account["balance"],
        credit=account["credit"],
        profit=totals["profit"],
        equity=totals["equity"],
        margin=totals["margin"],
        margin_free=totals["margin_free"],
        margin_level=totals["margin_level"],
        margin_so_call=account["margin_so_call"],
        margin_so_so=account["margin_so_so"],
        margin_initial=0.0,
        margin_maintenance=0.0,
        assets=0.0,
        liabilities=0.0,
        commission_blocked=0.0,
        name=account["name"],
        server=account["server"],
        currency=account["currency"],
        company=account["company"],
    )


def _symbol_tuple(record: dict[str, Any]) -> Any:
    values = dict(record)
    quote = _quote(record["name"])
    if quote is not None:
        values.update(
            bid=quote["bid"],
            ask=quote["ask"],
            last=quote["last"],
            time=quote["time_msc"] // 1000,
            spread=int(round((quote["ask"] - quote["bid"]) / record["point"])) if record["point"] else 0,
        )
    return SymbolInfo(**values)


def _order_record(
    ticket: int, symbol: str, type_: int, volume: float, price: float, msc: int, state: int
) -> dict[str, Any]:
    return {
        "ticket": ticket,
        "time_setup": msc // 1000,
        "time_setup_msc": msc,
        "time_done": 0,
        "time_done_msc": 0,
        "time_expiration": 0,
        "type": int(type_),
        "type_time": ORDER_TIME_GTC,
        "type_filling": ORDER_FILLING_RETURN,
        "state": state,
        "magic": 0,
        "position_id": 0,
        "position_by_id": 0,
        "reason": ORDER_REASON_EXPERT,
        "volume_initial": float(volume),
        "volume_current": float(volume),
        "price_open": float(price),
        "sl": 0.0,
        "tp": 0.0,
        "price_current": float(price),
        "price_stoplimit": 0.0,
        "symbol": symbol,
        "comment": "",
        "external_id": "",
    }


def _check_credentials(login: Any, password: Any, server: Any) -> bool:
    account = _T.accounts.get(login) if isinstance(login, int) else None
    if account is None:
        return False
    if password is None:
        # Without a password the terminal falls back to one it saved at an earlier login.
        if login not in _T.saved_logins:
            return False
    elif password != account["password"]:
        return False
    return server is None or server == account["server"]


# ---------------------------------------------------------------------------------------------
# The package API
# ---------------------------------------------------------------------------------------------


@_api(False, needs_init=False)
def initialize(
    path: str | None = None,
    *,
    login: int | None = None,
    password: str | None = None,
    server: str | None = None,
    timeout: int = 60000,
    portable: bool = False,
) -> bool:
    if path is not None and not isinstance(path, str):
        raise _Invalid('Invalid "path" argument')
    if not isinstance(timeout, int):
        raise _Invalid('Invalid "timeout" argument')
    if _T.not_ready:
        _T.error = (RES_E_INTERNAL_FAIL_TIMEOUT, "IPC timeout")
        return False
    if path is not None and path != _T.terminal_path:
        _T.error = (RES_E_INTERNAL_FAIL_INIT, "IPC initialize failed, MetaTrader 5 x64 not found")
        return False
    if login is not None:
        if not _check_credentials(login, password, server):
            _T.initialized = False
            _T.current_login = None
            _T.error = (RES_E_AUTH_FAILED, "Terminal: Authorization failed")
            return False
        _T.current_login = login
        _T.saved_logins.add(login)
    _T.initialized = True
    return True


@_api(False)
def login(login: int, *, password: str | None = None, server: str | None = None, timeout: int = 60000) -> bool:
    if not isinstance(login, int) or isinstance(login, bool):
        raise _Invalid('Invalid "login" argument')
    if not _check_credentials(login, password, server):
        # A refused login leaves the terminal disconnected from any account.
        _T.current_login = None
        _T.error = (RES_E_AUTH_FAILED, "Terminal: Authorization failed")
        return False
    _T.current_login = login
    _T.saved_logins.add(login)
    return True


def shutdown() -> None:
    with _T.lock:
        calls.append(("shutdown", (), {}))
        _T.initialized = False
        _T.error = (RES_S_OK, "Success")


def last_error() -> tuple[int, str]:
    return _T.error


@_api()
def version() -> tuple[int, int, str]:
    return _VERSION


@_api()
def account_info() -> Any:
    account = _account()
    if account is None:
        _T.error = (RES_E_FAIL, "Terminal: Call failed")
        return None
    return _account_tuple(account)


@_api()
def terminal_info() -> Any:
    return TerminalInfo(
        community_account=False,
        community_connection=False,
        connected=_T.current_login is not None,
        dlls_allowed=False,
        trade_allowed=_T.trade_allowed,
        tradeapi_disabled=False,
        email_enabled=False,
        ftp_enabled=False,
        notifications_enabled=False,
        mqid=False,
        build=_VERSION[1],
        maxbars=100_000,
        codepage=0,
        ping_last=25_000,
        community_balance=0.0,
        retransmission=0.0,
        company="MetaQuotes Ltd.",
        name="MetaTrader 5",
        language="English",
        path=_T.terminal_path.rsplit("\\", 1)[0],
        data_path=r"C:\Users\trader\AppData\Roaming\MetaQuotes\Terminal\D0E8209F77C8CF37AD8BF550E51FF075",
        commondata_path=r"C:\Users\trader\AppData\Roaming\MetaQuotes\Terminal\Common",
    )


@_api()
def symbols_total() -> int:
    return len(_T.symbols)


@_api()
def symbols_get(group: str | None = None) -> tuple[Any, ...] | None:
    return _rows([_symbol_tuple(s) for name, s in _T.symbols.items() if _group_match(name, group)])


@_api()
def symbol_info(symbol: str) -> Any:
    record = _T.symbols.get(symbol)
    if record is None:
        _T.error = (RES_E_NOT_FOUND, "Terminal: Not found")
        return None
    return _symbol_tuple(record)


@_api()
def symbol_info_tick(symbol: str) -> Any:
    record = _T.symbols.get(symbol)
    quote = _quote(symbol)
    # Like the terminal: no tick for symbols outside Market Watch.
    if record is None or not record["select"] or quote is None:
        _T.error = (RES_E_NOT_FOUND, "Terminal: Not found")
        return None
    return Tick(
        time=quote["time_msc"] // 1000,
        bid=quote["bid"],
        ask=quote["ask"],
        last=quote["last"],
        volume=0,
        time_msc=quote["time_msc"],
        flags=TICK_FLAG_BID | TICK_FLAG_ASK,
        volume_real=0.0,
    )


@_api(False)
def symbol_select(symbol: str, enable: bool = True) -> bool:
    record = _T.symbols.get(symbol)
    if record is None:
        _T.error = (RES_E_NOT_FOUND, "Terminal: Not found")
        return False
    record["select"] = bool(enable)
    record["visible"] = bool(enable)
    return True


def _filtered(records: list[dict[str, Any]], symbol: Any, group: Any, ticket: Any) -> list[dict[str, Any]]:
    if symbol is not None:  # symbol beats ticket, as documented
        return [r for r in records if r["symbol"] == symbol]
    if group is not None:
        return [r for r in records if _group_match(r["symbol"], group)]
    if ticket is not None:
        return [r for r in records if r["ticket"] == ticket]
    return list(records)


def _login_records(store: dict[int, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return store[_T.current_login] if _T.current_login is not None else []


@_api()
def orders_total() -> int:
    return len(_login_records(_T.orders))


@_api()
def orders_get(*, symbol: str | None = None, group: str | None = None, ticket: int | None = None) -> Any:
    return _rows([TradeOrder(**o) for o in _filtered(_login_records(_T.orders), symbol, group, ticket)])


@_api()
def positions_total() -> int:
    return len(_login_records(_T.positions))


@_api()
def positions_get(*, symbol: str | None = None, group: str | None = None, ticket: int | None = None) -> Any:
    records = [_refresh(p) for p in _filtered(_login_records(_T.positions), symbol, group, ticket)]
    return _rows([TradePosition(**p) for p in records])


def _history(
    records: list[dict[str, Any]],
    time_field: str,
    date_from: Any,
    date_to: Any,
    group: str | None,
    ticket: int | None,
    position: int | None,
    ticket_field: str,
) -> list[dict[str, Any]]:
    if ticket is not None:
        return [r for r in records if r[ticket_field] == ticket]
    if position is not None:
        return [r for r in records if r["position_id"] == position]
    if date_from is None or date_to is None:
        raise _Invalid("Invalid arguments")
    start, end = _seconds(date_from, "date_from"), _seconds(date_to, "date_to")
    return [r for r in records if start <= r[time_field] <= end and _group_match(r["symbol"], group)]


@_api()
def history_orders_total(date_from: Any, date_to: Any) -> int:
    return len(
        _history(_login_records(_T.history_orders), "time_setup", date_from, date_to, None, None, None, "ticket")
    )


@_api()
def history_orders_get(
    date_from: Any = None,
    date_to: Any = None,
    *,
    group: str | None = None,
    ticket: int | None = None,
    position: int | None = None,
) -> Any:
    found = _history(
        _login_records(_T.history_orders), "time_setup", date_from, date_to, group, ticket, position, "ticket"
    )
    return _rows([TradeOrder(**o) for o in found])


@_api()
def history_deals_total(date_from: Any, date_to: Any) -> int:
    return len(_history(_login_records(_T.deals), "time", date_from, date_to, None, None, None, "order"))


@_api()
def history_deals_get(
    date_from: Any = None,
    date_to: Any = None,
    *,
    group: str | None = None,
    ticket: int | None = None,
    position: int | None = None,
) -> Any:
    # ``ticket`` is an ORDER ticket here: it matches the deal's ``order`` field.
    found = _history(_login_records(_T.deals), "time", date_from, date_to, group, ticket, position, "order")
    return _rows([TradeDeal(**d) for d in found])


@_api()
def order_calc_margin(action: int, symbol: str, volume: float, price: float) -> float | None:
    account = _account()
    if account is None or symbol not in _T.symbols or action not in (ORDER_TYPE_BUY, ORDER_TYPE_SELL):
        raise _Invalid("Invalid arguments")
    return _margin(symbol, float(volume), float(price), account["leverage"])


@_api()
def order_calc_profit(action: int, symbol: str, volume: float, price_open: float, price_close: float) -> float | None:
    if symbol not in _T.symbols or action not in (ORDER_TYPE_BUY, ORDER_TYPE_SELL):
        raise _Invalid("Invalid arguments")
    return _profit(symbol, action, float(volume), float(price_open), float(price_close))


def _request(request: Any) -> Any:
    if not isinstance(request, dict):
        raise _Invalid("Invalid arguments")
    for key, value in request.items():
        expected = _REQUEST_TYPES.get(key)
        # The package is strict: ints where it wants doubles (and bools or Decimals anywhere) are refused.
        if expected is None or type(value) is not expected:
            raise _Invalid(f'Invalid "{key}" argument')
    if "action" not in request:
        raise _Invalid('Invalid "action" argument')
    if len(request.get("comment", "")) > _COMMENT_LIMIT:
        raise _Invalid('Invalid "comment" argument')
    values = {key: kind() for key, kind in _REQUEST_TYPES.items()}
    values.update(request)
    return TradeRequest(**values)


class _Outcome:
    def __init__(
        self, retcode: int, comment: str, *, deal: int = 0, order: int = 0, volume: float = 0.0, price: float = 0.0
    ) -> None:
        self.retcode, self.comment = retcode, comment
        self.deal, self.order, self.volume, self.price = deal, order, volume, price


def _volume_ok(symbol: dict[str, Any], volume: float) -> bool:
    step = symbol["volume_step"] or 0.01
    if volume <= 0 or volume < symbol["volume_min"] - 1e-9 or volume > symbol["volume_max"] + 1e-9:
        return False
    return abs(round(volume / step) * step - volume) < 1e-8


def _filling_ok(symbol: dict[str, Any], filling: int, action: int) -> bool:
    mask = symbol["filling_mode"]
    if filling == ORDER_FILLING_FOK:
        return bool(mask & SYMBOL_FILLING_FOK)
    if filling == ORDER_FILLING_IOC:
        return bool(mask & SYMBOL_FILLING_IOC)
    if filling == ORDER_FILLING_RETURN:
        return action == TRADE_ACTION_PENDING or symbol["trade_exemode"] != _EXEC_MARKET
    return False


def _trade(req: Any, account: dict[str, Any], execute: bool) -> _Outcome:
    login_ = account["login"]
    if req.action == TRADE_ACTION_DEAL:
        return _deal(req, account, execute)
    if req.action == TRADE_ACTION_PENDING:
        return _pending(req, account, execute)
    if req.action == TRADE_ACTION_SLTP:
        position = next((p for p in _T.positions[login_] if p["ticket"] == req.position), None)
        if position is None:
            return _Outcome(TRADE_RETCODE_POSITION_CLOSED, "Position doesn't exist")
        if position["sl"] == req.sl and position["tp"] == req.tp:
            return _Outcome(TRADE_RETCODE_NO_CHANGES, "No changes")
        if execute:
            position.update(sl=req.sl, tp=req.tp)
        return _Outcome(TRADE_RETCODE_DONE, "Request executed")
    if req.action in (TRADE_ACTION_MODIFY, TRADE_ACTION_REMOVE):
        order = next((o for o in _T.orders[login_] if o["ticket"] == req.order), None)
        if order is None:
            return _Outcome(TRADE_RETCODE_INVALID_ORDER, "Invalid order")
        if execute and req.action == TRADE_ACTION_MODIFY:
            order.update(
                price_open=req.price,
                sl=req.sl,
                tp=req.tp,
                type_time=req.type_time,
                time_expiration=req.expiration,
                price_stoplimit=req.stoplimit,
            )
        elif execute:
            _T.orders[login_].remove(order)
            done = _msc(_now())
            order.update(state=ORDER_STATE_CANCELED, time_done=done // 1000, time_done_msc=done, volume_current=0.0)
            _T.history_orders[login_].append(order)
        return _Outcome(TRADE_RETCODE_DONE, "Request executed", order=order["ticket"])
    if req.action == TRADE_ACTION_CLOSE_BY:
        return _close_by(req, account, execute)
    return _Outcome(TRADE_RETCODE_INVALID, "Invalid request")


def _deal(req: Any, account: dict[str, Any], execute: bool) -> _Outcome:
    login_ = account["login"]
    symbol = _T.symbols.get(req.symbol)
    quote = _quote(req.symbol)
    if symbol is None or quote is None or req.type not in (ORDER_TYPE_BUY, ORDER_TYPE_SELL):
        return _Outcome(TRADE_RETCODE_INVALID, "Invalid request")
    if symbol["trade_mode"] == _SYMBOL_TRADE_MODE_DISABLED:
        return _Outcome(TRADE_RETCODE_TRADE_DISABLED, "Trade disabled")
    if not _volume_ok(symbol, req.volume):
        return _Outcome(TRADE_RETCODE_INVALID_VOLUME, "Invalid volume")
    if not _filling_ok(symbol, req.type_filling, req.action):
        return _Outcome(TRADE_RETCODE_INVALID_FILL, "Unsupported filling mode")
    market = quote["ask"] if req.type == ORDER_TYPE_BUY else quote["bid"]
    if symbol["trade_exemode"] in (_EXEC_REQUEST, _EXEC_INSTANT):
        # Instant and request execution trade at the price asked for, within ``deviation`` points.
        if req.price <= 0:
            return _Outcome(TRADE_RETCODE_INVALID_PRICE, "Invalid price")
        if abs(req.price - market) > req.deviation * symbol["point"] + 1e-12:
            return _Outcome(TRADE_RETCODE_REQUOTE, "Requote")
    position = None
    if req.position:
        position = next((p for p in _T.positions[login_] if p["ticket"] == req.position), None)
        if position is None:
            return _Outcome(TRADE_RETCODE_POSITION_CLOSED, "Position doesn't exist")
        if position["symbol"] != req.symbol or position["type"] == req.type:
            return _Outcome(TRADE_RETCODE_INVALID, "Invalid request")
        if req.volume > position["volume"] + 1e-9:
            return _Outcome(TRADE_RETCODE_INVALID_CLOSE_VOLUME, "Invalid close volume")
    else:
        needed = _margin(req.symbol, req.volume, market, account["leverage"])
        if needed > _totals(account)["margin_free"]:
            return _Outcome(TRADE_RETCODE_NO_MONEY, "No money")
    if not execute:
        return _Outcome(TRADE_RETCODE_DONE, "Done", volume=req.volume, price=market)

    msc = _msc(_now())
    order_ticket, deal_ticket = next(_T.tickets), next(_T.tickets)
    order = _order_record(order_ticket, req.symbol, req.type, req.volume, market, msc, ORDER_STATE_FILLED)
    order.update(
        time_done=msc // 1000,
        time_done_msc=msc,
        volume_current=0.0,
        magic=req.magic,
        comment=req.comment,
        type_filling=req.type_filling,
    )
    deal = {
        "ticket": deal_ticket,
        "order": order_ticket,
        "time": msc // 1000,
        "time_msc": msc,
        "type": req.type,
        "entry": DEAL_ENTRY_IN,
        "magic": req.magic,
        "position_id": order_ticket,
        "reason": DEAL_REASON_EXPERT,
        "volume": req.volume,
        "price": market,
        "commission": 0.0,
        "swap": 0.0,
        "profit": 0.0,
        "fee": 0.0,
        "symbol": req.symbol,
        "comment": req.comment,
        "external_id": "",
    }
    if position is None:
        add_position(
            login_,
            req.symbol,
            req.type,
            req.volume,
            market,
            ticket=order_ticket,
            magic=req.magic,
            comment=req.comment,
            reason=POSITION_REASON_EXPERT,
            time=msc,
        )
    else:
        profit = _profit(req.symbol, position["type"], req.volume, position["price_open"], market)
        deal.update(entry=DEAL_ENTRY_OUT, position_id=position["identifier"], profit=profit)
        order.update(position_id=position["identifier"])
        account["balance"] = round(account["balance"] + profit, 2)
        position["volume"] = round(position["volume"] - req.volume, 8)
        position.update(time_update=msc // 1000, time_update_msc=msc)
        if position["volume"] <= 1e-9:
            _T.positions[login_].remove(position)
    _T.history_orders[login_].append(order)
    _T.deals[login_].append(deal)
    return _Outcome(
        TRADE_RETCODE_DONE, "Request executed", deal=deal_ticket, order=order_ticket, volume=req.volume, price=market
    )


def _pending(req: Any, account: dict[str, Any], execute: bool) -> _Outcome:
    login_ = account["login"]
    symbol = _T.symbols.get(req.symbol)
    quote = _quote(req.symbol)
    if symbol is None or quote is None or not ORDER_TYPE_BUY_LIMIT <= req.type <= ORDER_TYPE_SELL_STOP_LIMIT:
        return _Outcome(TRADE_RETCODE_INVALID, "Invalid request")
    if not _volume_ok(symbol, req.volume):
        return _Outcome(TRADE_RETCODE_INVALID_VOLUME, "Invalid volume")
    if not _filling_ok(symbol, req.type_filling, req.action):
        return _Outcome(TRADE_RETCODE_INVALID_FILL, "Unsupported filling mode")
    bid, ask = quote["bid"], quote["ask"]
    valid = {
        ORDER_TYPE_BUY_LIMIT: 0 < req.price < ask,
        ORDER_TYPE_SELL_LIMIT: req.price > bid,
        ORDER_TYPE_BUY_STOP: req.price > ask,
        ORDER_TYPE_SELL_STOP: 0 < req.price < bid,
        ORDER_TYPE_BUY_STOP_LIMIT: req.price > ask and 0 < req.stoplimit < req.price,
        ORDER_TYPE_SELL_STOP_LIMIT: 0 < req.price < bid and req.stoplimit > req.price,
    }[req.type]
    if not valid:
        return _Outcome(TRADE_RETCODE_INVALID_PRICE, "Invalid price")
    if req.type_time == ORDER_TIME_SPECIFIED and req.expiration <= int(_now().timestamp()):
        return _Outcome(TRADE_RETCODE_INVALID_EXPIRATION, "Invalid expiration")
    if not execute:
        return _Outcome(TRADE_RETCODE_DONE, "Done", volume=req.volume, price=req.price)
    ticket = next(_T.tickets)
    add_order(
        login_,
        req.symbol,
        req.type,
        req.volume,
        req.price,
        ticket=ticket,
        magic=req.magic,
        comment=req.comment,
        sl=req.sl,
        tp=req.tp,
        price_stoplimit=req.stoplimit,
        type_time=req.type_time,
        time_expiration=req.expiration,
        type_filling=req.type_filling,
        time_setup=_msc(_now()),
    )
    return _Outcome(TRADE_RETCODE_PLACED, "Request executed", order=ticket, volume=req.volume, price=req.price)


def _close_by(req: Any, account: dict[str, Any], execute: bool) -> _Outcome:
    login_ = account["login"]
    positions = {p["ticket"]: p for p in _T.positions[login_]}
    first, second = positions.get(req.position), positions.get(req.position_by)
    if first is None or second is None:
        return _Outcome(TRADE_RETCODE_POSITION_CLOSED, "Position doesn't exist")
    if first["symbol"] != second["symbol"] or first["type"] == second["type"]:
        return _Outcome(TRADE_RETCODE_INVALID, "Invalid request")
    volume = min(first["volume"], second["volume"])
    if not execute:
        return _Outcome(TRADE_RETCODE_DONE, "Done", volume=volume, price=second["price_open"])
    msc = _msc(_now())
    order_ticket = next(_T.tickets)
    for position, counter in ((first, second), (second, first)):
        profit = _profit(position["symbol"], position["type"], volume, position["price_open"], counter["price_open"])
        _T.deals[login_].append(
            {
                "ticket": next(_T.tickets),
                "order": order_ticket,
                "time": msc // 1000,
                "time_msc": msc,
                "type": 1 - position["type"],
                "entry": DEAL_ENTRY_OUT_BY,
                "magic": req.magic,
                "position_id": position["identifier"],
                "reason": DEAL_REASON_EXPERT,
                "volume": volume,
                "price": counter["price_open"],
                "commission": 0.0,
                "swap": 0.0,
                "profit": profit,
                "fee": 0.0,
                "symbol": position["symbol"],
                "comment": req.comment,
                "external_id": "",
            }
        )
        account["balance"] = round(account["balance"] + profit, 2)
        position["volume"] = round(position["volume"] - volume, 8)
    _T.positions[login_][:] = [p for p in _T.positions[login_] if p["volume"] > 1e-9]
    return _Outcome(
        TRADE_RETCODE_DONE, "Request executed", order=order_ticket, volume=volume, price=second["price_open"]
    )


@_api()
def order_check(request: dict[str, Any]) -> Any:
    req = _request(request)
    account = _account()
    if account is None:
        _T.error = (RES_E_FAIL, "Terminal: Call failed")
        return None
    outcome = _trade(req, account, execute=False)
    totals = _totals(account)
    ok = outcome.retcode in (TRADE_RETCODE_DONE, TRADE_RETCODE_PLACED)
    needed = _margin(req.symbol, req.volume, outcome.price, account["leverage"]) if ok and req.symbol else 0.0
    margin = round(totals["margin"] + needed, 2)
    return OrderCheckResult(
        retcode=0 if ok else outcome.retcode,
        balance=account["balance"],
        equity=totals["equity"],
        profit=totals["profit"],
        margin=margin,
        margin_free=round(totals["equity"] - margin, 2),
        margin_level=round(totals["equity"] / margin * 100.0, 2) if margin else 0.0,
        comment="Done" if ok else outcome.comment,
        request=req,
    )


@_api()
def order_send(request: dict[str, Any]) -> Any:
    req = _request(request)
    account = _account()
    if account is None:
        _T.error = (RES_E_FAIL, "Terminal: Call failed")
        return None
    if not _T.trade_allowed:
        outcome = _Outcome(TRADE_RETCODE_CLIENT_DISABLES_AT, "AutoTrading disabled by client")
    else:
        outcome = _trade(req, account, execute=True)
    quote = _quote(req.symbol) or {"bid": 0.0, "ask": 0.0}
    return OrderSendResult(
        retcode=outcome.retcode,
        deal=outcome.deal,
        order=outcome.order,
        volume=outcome.volume,
        price=outcome.price,
        bid=quote["bid"],
        ask=quote["ask"],
        comment=outcome.comment,
        request_id=next(_T.request_ids),
        retcode_external=0,
        request=req,
    )
