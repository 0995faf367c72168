"""The terminal gateway: one MetaTrader 5 terminal driven through the ``MetaTrader5`` Python API or mt5linux."""

from __future__ import annotations

import importlib
import math
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from .terminal_rows import (
    COMMENT_LIMIT,
    account_of,
    aware,
    build_request,
    deal_of,
    field,
    filling_for,
    order_result_of,
    pending_order_of,
    position_of,
    scrub,
    symbol_of,
    tick_of,
    to_decimal,
)
from .types import (
    AccountInfo,
    AuthenticationFailed,
    BrokerGroup,
    BrokerUser,
    Credentials,
    Deal,
    DealType,
    GatewayError,
    GatewayUnavailable,
    NotFound,
    OrderFilling,
    OrderRequest,
    OrderResult,
    OrderType,
    PendingOrder,
    Position,
    SymbolInfo,
    Tick,
    TradeAction,
)

# last_error() codes (RES_*): the package's own constants are not used so that a bare stand-in or an
# mt5linux proxy (where every attribute read is a network round trip) behaves the same.
RES_S_OK = 1
RES_E_FAIL = -1
RES_E_NOT_FOUND = -4
RES_E_AUTH_FAILED = -6
RES_E_INTERNAL_FAIL = -10000
# Send, receive, init, connect and timeout failures of the IPC link to the terminal: worth retrying.
UNAVAILABLE_CODES = frozenset({-10000, -10001, -10002, -10003, -10004, -10005})


HISTORY_START = datetime(2000, 1, 1, tzinfo=UTC)
MT5LINUX_PREFIX = "mt5linux:"
NOT_AVAILABLE = "not available through a terminal; use the manager gateway"
CLOSE_ALL_COMMENT = "close all"

# The package drives one terminal per process and is not thread-safe; one lock for every gateway in the
# process also keeps another thread from switching accounts between a login and the reads that follow it.
_TERMINAL_LOCK = threading.RLock()
_MODULES_LOCK = threading.Lock()
_MT5LINUX_CONNECTIONS: dict[str, Any] = {}


# --- Loading the module ---------------------------------------------------------------------------------


def load_terminal_module(spec: str) -> Any:
    """The object that carries the ``MetaTrader5`` API for ``spec`` (``MT5_TERMINAL_MODULE``).

    ``"MetaTrader5"`` imports the real package (Windows only); ``"mt5linux:HOST:PORT"`` connects to an
    mt5linux (rpyc) server in front of a terminal under Wine, one connection per process and address;
    any other dotted path imports a module with the same API (the test stand-in).
    """
    spec = (spec or "").strip()
    if not spec:
        raise GatewayError("MT5_TERMINAL_MODULE is empty; set it to MetaTrader5 or mt5linux:HOST:PORT")
    if spec.startswith(MT5LINUX_PREFIX):
        with _MODULES_LOCK:
            connection = _MT5LINUX_CONNECTIONS.get(spec)
            if connection is None:
                connection = _connect_mt5linux(spec)
                _MT5LINUX_CONNECTIONS[spec] = connection
            return connection
    try:
        return importlib.import_module(spec)
    except ImportError as exc:
        if spec == "MetaTrader5":
            raise GatewayError(
                "the MetaTrader5 package is not installed (it exists only for Windows); on Linux run the "
                "terminal under Wine and set MT5_TERMINAL_MODULE=mt5linux:HOST:PORT"
            ) from exc
        raise GatewayError(f"cannot import the terminal module {spec!r}: {exc}") from exc


def _connect_mt5linux(spec: str) -> Any:
    address = spec[len(MT5LINUX_PREFIX) :]
    host, _, port_text = address.rpartition(":")
    host = host.strip("[]")  # allow [::1]:18812
    try:
        port = int(port_text)
    except ValueError:
        port = 0
    if not host or not 0 < port < 65536:
        raise GatewayError(f"MT5_TERMINAL_MODULE {spec!r} is not of the form mt5linux:HOST:PORT")
    try:
        mt5linux = importlib.import_module("mt5linux")
    except ImportError as exc:
        raise GatewayError(
            "mt5linux is not installed; pip install mt5linux (its rpyc version must match the server's)"
        ) from exc
    try:
        return mt5linux.MetaTrader5(host=host, port=port)
    except Exception as exc:
        if _is_transport_error(exc):
            raise GatewayUnavailable(f"cannot reach the mt5linux server at {host}:{port}: {exc}") from exc
        raise GatewayError(f"mt5linux could not connect to {host}:{port}: {type(exc).__name__}: {exc}") from exc


def _forget_connection(module: Any) -> None:
    """Drop a broken mt5linux connection so the next ``load_terminal_module`` reconnects."""
    with _MODULES_LOCK:
        for spec, connection in list(_MT5LINUX_CONNECTIONS.items()):
            if connection is module:
                del _MT5LINUX_CONNECTIONS[spec]


def _is_transport_error(exc: BaseException) -> bool:
    # rpyc raises EOFError on a closed stream and AsyncResultTimeout ("result expired") on a slow reply.
    return isinstance(exc, OSError | EOFError) or type(exc).__name__ == "AsyncResultTimeout"


# --- The gateway ----------------------------------------------------------------------------------------


class TerminalGateway:
    """``MT5Gateway`` over one terminal, which holds one trading account at a time.

    Trader-side calls first check that the terminal is logged into ``login`` (another worker may have
    switched it) and raise ``GatewayError`` otherwise. Broker-side calls need manager rights that a
    terminal does not have; only those that can be answered for the logged-in account work.
    """

    kind = "terminal"

    def __init__(self, mt5_module: Any, path: str | None = None, timeout_ms: int = 60000) -> None:
        self._mt5 = mt5_module
        self._path = path or None
        self._timeout_ms = int(timeout_ms)
        self._lock = _TERMINAL_LOCK

    # --- trader side ---

    def login(self, credentials: Credentials) -> AccountInfo:
        """Log the terminal into ``credentials``: ``initialize()`` the first time, ``login()`` afterwards."""
        secret = credentials.password
        options = {"password": credentials.password, "server": credentials.server, "timeout": self._timeout_ms}
        with self._lock:
            if self._terminal_running():
                ok = self._call("login", int(credentials.login), secret=secret, **options)
                if not ok and self._last_error()[0] in UNAVAILABLE_CODES:
                    # The link to the terminal was lost (terminal restarted): start it again.
                    ok = self._initialize(credentials, options)
            else:
                ok = self._initialize(credentials, options)
            if not ok:
                raise self._failure(f"login {credentials} failed", secret=secret)
            return account_of(self._current_account(credentials.login))

    def account_info(self, login: int) -> AccountInfo:
        with self._lock:
            return account_of(self._current_account(login))

    def positions(self, login: int) -> list[Position]:
        with self._lock:
            self._current_account(login)
            return [position_of(row) for row in self._rows("positions_get")]

    def orders(self, login: int) -> list[PendingOrder]:
        with self._lock:
            self._current_account(login)
            return [pending_order_of(row) for row in self._rows("orders_get")]

    def deals(self, login: int, date_from: datetime, date_to: datetime) -> list[Deal]:
        """Deals with ``date_from <= time <= date_to`` (naive datetimes are taken as UTC)."""
        start, end = aware(date_from), aware(date_to)
        if end < start:
            return []
        with self._lock:
            self._current_account(login)
            rows = self._history_deals(start, end)
        # The terminal filters by whole seconds; trim to the exact bounds on the millisecond times.
        return [deal for deal in map(deal_of, rows) if start <= deal.time <= end]

    def symbols(self, login: int | None = None) -> list[SymbolInfo]:
        with self._lock:
            if login is not None:
                self._current_account(login)
            return [symbol_of(row) for row in self._rows("symbols_get")]

    def tick(self, symbol: str) -> Tick:
        with self._lock:
            return tick_of(symbol, self._raw_tick(symbol))

    def order_send(self, login: int, request: OrderRequest) -> OrderResult:
        """Send one trade request; a refusal is the result's ``retcode``, never an exception.

        ``None`` from ``order_send`` means the request never reached the server: a lost link to the
        terminal raises ``GatewayUnavailable`` (the outcome is unknown, so check positions/history
        before retrying), and any other ``last_error()`` comes back as an ``OrderResult`` whose
        ``retcode`` is that negative code (e.g. -2 invalid arguments, -8 Algo Trading disabled) and
        whose ``comment`` is its text, so ``ok`` is False.
        """
        with self._lock:
            self._current_account(login)
            return self._send(request)

    # --- broker side ---

    def users(self, group_mask: str = "*") -> list[BrokerUser]:
        raise GatewayError(f"users: {NOT_AVAILABLE}")

    def user(self, login: int) -> BrokerUser:
        raise GatewayError(f"user: {NOT_AVAILABLE}")

    def groups(self) -> list[BrokerGroup]:
        raise GatewayError(f"groups: {NOT_AVAILABLE}")

    def accounts_info(self, logins: Sequence[int]) -> dict[int, AccountInfo]:
        """Only the account the terminal is logged into can be read."""
        wanted = {int(login) for login in logins}
        if not wanted:
            return {}
        with self._lock:
            info = self._call("account_info")
            if info is None:
                raise self._failure("account_info failed")
            current = int(field(info, "login", 0))
            if wanted != {current}:
                raise GatewayError(f"accounts_info for accounts other than the terminal's current one: {NOT_AVAILABLE}")
            return {current: account_of(info)}

    def balance_operation(
        self, login: int, amount: Decimal, deal_type: DealType, comment: str, *, check_margin: bool = True
    ) -> int:
        raise GatewayError(f"balance_operation: {NOT_AVAILABLE}")

    def deals_by_comment(self, login: int, comment: str) -> list[Deal]:
        """Deals of the logged-in account whose comment is ``comment`` (as MT5 stores it, cut to 31)."""
        wanted = comment[:COMMENT_LIMIT]
        with self._lock:
            self._current_account(login)
            rows = self._history_deals(HISTORY_START, datetime.now(UTC) + timedelta(days=1))
        return [deal for deal in map(deal_of, rows) if deal.comment == wanted]

    def set_leverage(self, login: int, leverage: int) -> None:
        raise GatewayError(f"set_leverage: {NOT_AVAILABLE}")

    def close_all_positions(self, login: int) -> list[OrderResult]:
        """Close every open position of the logged-in account with an opposite market deal."""
        with self._lock:
            self._current_account(login)
            results = []
            for row in self._rows("positions_get"):
                position = position_of(row)
                request = OrderRequest.closing(position, magic=position.magic, comment=CLOSE_ALL_COMMENT)
                results.append(self._send(request))
            return results

    # --- housekeeping ---

    def shutdown(self) -> None:
        """Close the link to the terminal (the terminal itself keeps running)."""
        with self._lock:
            self._call("shutdown")

    # --- internals ---

    def _call(self, name: str, *args: Any, secret: str = "", **kwargs: Any) -> Any:
        try:
            return getattr(self._mt5, name)(*args, **kwargs)
        except Exception as exc:
            transport = _is_transport_error(exc)
            if transport:
                _forget_connection(self._mt5)
            if secret:
                # The error text (a remote mt5linux traceback quotes the call's source) may hold the
                # password, escaped beyond what a search could find: keep only the error's type.
                error = GatewayUnavailable if transport else GatewayError
                raise error(f"terminal call {name} failed: {type(exc).__name__}") from None
            if transport:
                raise GatewayUnavailable(f"terminal call {name} failed: {type(exc).__name__}: {exc}") from exc
            raise

    def _last_error(self) -> tuple[int, str]:
        try:
            code, text = self._call("last_error")[:2]
            return int(code), str(text)
        except GatewayError:
            raise
        except Exception:
            return RES_E_FAIL, "unknown error (last_error() gave no code)"

    def _failure(self, what: str, *, secret: str = "") -> GatewayError:
        """The exception for a failed call, chosen by ``last_error()``."""
        code, text = self._last_error()
        message = scrub(f"{what}: {text} (MT5 error {code})", secret)
        if code == RES_E_AUTH_FAILED:
            return AuthenticationFailed(message)
        if code in UNAVAILABLE_CODES:
            return GatewayUnavailable(message)
        if code == RES_E_NOT_FOUND:
            return NotFound(message)
        return GatewayError(message)

    def _terminal_running(self) -> bool:
        # terminal_info() answers None until initialize() has attached to a terminal.
        return self._call("terminal_info") is not None

    def _initialize(self, credentials: Credentials, options: dict[str, Any]) -> bool:
        # ``path`` is the only positional parameter; leave it out to attach to the default terminal.
        args = (self._path,) if self._path else ()
        return bool(
            self._call("initialize", *args, login=int(credentials.login), secret=credentials.password, **options)
        )

    def _current_account(self, login: int) -> Any:
        """The terminal's ``account_info()``, provided it is logged into ``login``."""
        info = self._call("account_info")
        if info is None:
            self._check_link()
            raise GatewayError(f"terminal is not logged into account {login} (it holds none); call login() first")
        current = int(field(info, "login", 0))
        if current != int(login):
            raise GatewayError(f"terminal is logged into another account ({current}), not {login}; call login() first")
        return info

    def _rows(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """A list call's rows; ``None`` with last_error() OK and ``()`` both mean "nothing"."""
        rows = self._call(name, *args, **kwargs)
        if rows is None:
            code, _ = self._last_error()
            if code == RES_S_OK:
                return ()
            raise self._failure(f"{name} failed")
        return tuple(rows)

    def _history_deals(self, start: datetime, end: datetime) -> tuple[Any, ...]:
        # Epoch seconds rather than datetimes: mt5linux 0.1.x rebuilds calls as source text on the server,
        # where ``datetime`` is not imported; the real package takes both.
        return self._rows("history_deals_get", math.floor(start.timestamp()), math.ceil(end.timestamp()))

    def _raw_tick(self, symbol: str) -> Any:
        tick = self._call("symbol_info_tick", symbol)
        if tick is None:
            # Symbols outside Market Watch have no tick until selected.
            self._check_link()
            if self._call("symbol_select", symbol, True):
                tick = self._call("symbol_info_tick", symbol)
        if tick is None:
            self._check_link()
            raise NotFound(f"no tick for symbol {symbol!r}")
        return tick

    def _raw_symbol(self, symbol: str) -> Any:
        info = self._call("symbol_info", symbol)
        if info is None:
            self._check_link()
            raise NotFound(f"symbol {symbol!r} not found")
        return info

    def _check_link(self) -> None:
        """Raise ``GatewayUnavailable`` if the last failure was the link, not the request."""
        code, text = self._last_error()
        if code in UNAVAILABLE_CODES:
            raise GatewayUnavailable(f"terminal unreachable: {text} (MT5 error {code})")

    def _send(self, request: OrderRequest) -> OrderResult:
        action = int(request.action)
        symbol = request.symbol
        if action == TradeAction.DEAL and request.position and not symbol:
            symbol = self._position_symbol(request.position)
        price = request.price
        filling = int(OrderFilling.RETURN)
        if action in (TradeAction.DEAL, TradeAction.PENDING):
            self._call("symbol_select", symbol, True)  # a symbol outside Market Watch has no prices
            filling = filling_for(field(self._raw_symbol(symbol), "filling_mode", 0))
            if action == TradeAction.DEAL and not price and request.type in (OrderType.BUY, OrderType.SELL):
                tick = self._raw_tick(symbol)
                price = to_decimal(field(tick, "ask" if request.type == OrderType.BUY else "bid", 0))
        payload = build_request(request, symbol=symbol, price=price, type_filling=filling)
        result = self._call("order_send", payload)
        if result is None:
            code, text = self._last_error()
            if code in UNAVAILABLE_CODES:
                raise GatewayUnavailable(f"order_send: terminal unreachable: {text} (MT5 error {code})")
            return OrderResult(retcode=code if code < 0 else RES_E_FAIL, comment=text or "order_send gave no result")
        return order_result_of(result)

    def _position_symbol(self, ticket: int) -> str:
        rows = self._rows("positions_get", ticket=int(ticket))
        if not rows:
            raise NotFound(f"position {ticket} not found")
        return str(field(rows[0], "symbol", ""))
