"""MT5 gateway over a broker's Manager REST bridge that speaks the MetaQuotes MT5 Web API wire format."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import random
import ssl
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from .types import (
    AccountInfo,
    AccountTradeMode,
    AuthenticationFailed,
    BrokerGroup,
    BrokerUser,
    Credentials,
    Deal,
    DealEntry,
    DealReason,
    DealType,
    GatewayError,
    GatewayUnavailable,
    MarginMode,
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
)

logger = logging.getLogger(__name__)

# --- Web API constants (MetaQuotes MT5 SDK, EnMTAPIRetcode and IMTRequest::EnTradeActions) ---

WEBAPI_VERSION = 484  # lowest Web API protocol version the access server accepts
COMMENT_MAX = 31  # MT5 cuts deal comments to 31 characters
PAGE_SIZE = 100  # /api/deal/get_page refuses total > 100

RET_OK = 0
RET_OK_NONE = 1
RET_ERR_PARAMS = 3
RET_ERR_NETWORK = 7
RET_ERR_PERMISSIONS = 8
RET_ERR_TIMEOUT = 9
RET_ERR_CONNECTION = 10
RET_ERR_NOSERVICE = 11
RET_ERR_FREQUENT = 12
RET_ERR_NOTFOUND = 13
RET_ERR_SHUTDOWN = 15
RET_AUTH_ACCOUNT_INVALID = 1001
RET_AUTH_ACCOUNT_DISABLED = 1002
RET_AUTH_SERVER_BUSY = 1018
RET_AUTH_ACCOUNT_UNKNOWN = 1020
RET_USR_INVALID_PASSWORD = 3006
RET_REQUEST_DONE_CANCEL = 11001  # dealer: partly filled, remainder cancelled

# A call answered with one of these means "this session is not (or no longer) logged in":
# 8 PERMISSIONS is what an access server gives a connection that has not authenticated,
# and the 1000-1999 band is the authentication group. We log in again once and replay; a
# second refusal is a real permission problem and surfaces as GatewayError.
SESSION_RETCODES = frozenset({RET_ERR_PERMISSIONS, *range(1000, 2000)}) - {RET_AUTH_SERVER_BUSY}
# Transient refusals the server made without executing anything: safe to repeat even for money.
TRANSIENT_UNEXECUTED_RETCODES = frozenset({RET_ERR_FREQUENT, RET_AUTH_SERVER_BUSY})
# Transient failures after which the command may or may not have run on the trade server.
TRANSIENT_UNKNOWN_RETCODES = frozenset(
    {RET_ERR_NETWORK, RET_ERR_TIMEOUT, RET_ERR_CONNECTION, RET_ERR_NOSERVICE, RET_ERR_SHUTDOWN}
)
# Dealer request states that are not final yet (in the way, accepted, processing, prices, returned).
_PENDING_REQUEST_CODES = frozenset({0, 10001, 10002, 10003, 10005, 11000, 11002})
# Answers to send_request that are a verdict on the trade (returned, not raised).
_TRADE_RETCODES = frozenset({RET_ERR_PARAMS, *range(10000, 12000)})

TA_DEALER_POS_EXECUTE = 200
_DEALER_ACTIONS = {
    TradeAction.DEAL: TA_DEALER_POS_EXECUTE,
    TradeAction.PENDING: 201,  # TA_DEALER_ORD_PENDING
    TradeAction.SLTP: 202,  # TA_DEALER_POS_MODIFY
    TradeAction.MODIFY: 203,  # TA_DEALER_ORD_MODIFY
    TradeAction.REMOVE: 204,  # TA_DEALER_ORD_REMOVE
    TradeAction.CLOSE_BY: 208,  # TA_DEALER_CLOSE_BY
}
ORDER_FILL_FOK = 0

# Server EnDealAction 18-20 have no client DEAL_TYPE; these are the nearest client families.
_EXTRA_DEAL_ACTIONS = {
    18: DealType.COMMISSION_AGENT_DAILY,  # DEAL_AGENT: agent commission
    19: DealType.CORRECTION,  # DEAL_SO_COMPENSATION: balance compensation after stop-out
    20: DealType.CREDIT,  # DEAL_SO_COMPENSATION_CREDIT
}
# Server EnDealReason -> client DEAL_REASON; server-only reasons (dealer, gateway, signal, ...)
# have no client counterpart and read as CLIENT, as a terminal shows them.
_DEAL_REASONS = {
    0: DealReason.CLIENT,
    1: DealReason.EXPERT,
    3: DealReason.SL,
    4: DealReason.TP,
    5: DealReason.SO,
    6: DealReason.ROLLOVER,
    8: DealReason.VMARGIN,
    16: DealReason.MOBILE,
    17: DealReason.WEB,
    18: DealReason.SPLIT,
    19: 10,  # CORPORATE_ACTION (MQL5 only)
}
_NOT_BALANCE_TYPES = frozenset({DealType.BUY, DealType.SELL, DealType.BUY_CANCELED, DealType.SELL_CANCELED})

_VOLUME_UNIT = Decimal(10_000)  # Volume fields: 1 unit = 0.0001 lot
_VOLUME_EXT_UNIT = Decimal(100_000_000)  # VolumeExt fields: 1 unit = 1e-8 lot


# --- Authentication hashes (pure, see the Web API "auth" commands) ---


def password_hash(password: str) -> bytes:
    """``MD5(MD5(password as UTF-16LE) + b"WebAPI")``: the only form of the password the handshake uses."""
    return hashlib.md5(hashlib.md5(password.encode("utf-16-le")).digest() + b"WebAPI").digest()


def srv_rand_answer(pass_hash: bytes, srv_rand: str) -> str:
    """Our proof of the password: hex ``MD5(pass_hash + srv_rand bytes)``."""
    return hashlib.md5(pass_hash + bytes.fromhex(srv_rand)).hexdigest()


def cli_rand_answer(pass_hash: bytes, cli_rand: bytes) -> str:
    """The server's proof that it knows the password too: hex ``MD5(pass_hash + cli_rand)``."""
    return hashlib.md5(pass_hash + cli_rand).hexdigest()


def parse_retcode(value: Any) -> tuple[int, str]:
    """Split a Web API ``"13 Not found"`` retcode into ``(13, "Not found")``."""
    if isinstance(value, int):
        return value, ""
    text = str(value or "").strip()
    head, _, tail = text.partition(" ")
    try:
        return int(head), tail.strip()
    except ValueError:
        return -1, text


# --- Value parsing: the Web API sends numbers as strings ---


def _dec(value: Any) -> Decimal:
    if value is None or value == "":
        return Decimal("0")
    if isinstance(value, float):
        return Decimal(repr(value))
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        raise GatewayError(f"MT5 bridge sent {value!r} where a number was expected") from None


def _int(value: Any) -> int:
    if value is None or value == "":
        return 0
    try:
        return int(str(value).strip())
    except ValueError:
        return int(_dec(value))


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def _time(seconds: Any, msc: Any = None) -> datetime:
    millis = _int(msc)
    if millis:
        return datetime.fromtimestamp(millis / 1000, tz=UTC)
    return datetime.fromtimestamp(_int(seconds), tz=UTC)


def _opt_time(seconds: Any, msc: Any = None) -> datetime | None:
    return _time(seconds, msc) if _int(seconds) or _int(msc) else None


def _volume(record: dict[str, Any], key: str) -> Decimal:
    """Lots from ``<key>Ext`` (1e-8 lot) when the server fills it, else ``<key>`` (1e-4 lot)."""
    ext = _int(record.get(f"{key}Ext"))
    if ext:
        return Decimal(ext) / _VOLUME_EXT_UNIT
    return Decimal(_int(record.get(key))) / _VOLUME_UNIT


def _epoch(moment: datetime) -> int:
    if moment.tzinfo is None:  # the apps pass UTC; a naive value is taken as UTC, never as local time
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def _num(value: Decimal | int) -> str:
    """A number the way the Web API writes it: plain decimal text, no exponent."""
    return format(Decimal(value), "f")


def _as_list(answer: Any) -> list[dict[str, Any]]:
    if answer is None or answer == "":
        return []
    if isinstance(answer, dict):
        return [answer]
    return list(answer)


def _as_list_plain(answer: Any) -> list[Any]:
    if answer is None or answer == "":
        return []
    if isinstance(answer, (list, tuple)):
        return list(answer)
    return [answer]


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _AnyRetcode:
    """``accept=`` value meaning: hand every retcode back to the caller."""

    def __contains__(self, item: object) -> bool:
        return True


_ANY = _AnyRetcode()


class _Transient(Exception):
    """A failure worth repeating; ``maybe_executed`` says whether the command may have run."""

    def __init__(self, reason: str, *, maybe_executed: bool) -> None:
        super().__init__(reason)
        self.maybe_executed = maybe_executed


class _SessionLost(Exception):
    """The bridge no longer knows our manager session."""


# --- Keep query strings of our bridge out of httpx's request log ---


class _RedactBridgeQueries(logging.Filter):
    """httpx logs every URL at INFO; ours carry logins, hashes and comments, so drop their query."""

    origins: set[tuple[str, str, int | None]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(arg, httpx.URL) for arg in record.args):
            record.args = tuple(self._redact(arg) for arg in record.args)
        return True

    def _redact(self, arg: Any) -> Any:
        if isinstance(arg, httpx.URL) and arg.query and (arg.scheme, arg.host, arg.port) in self.origins:
            return f"{arg.copy_with(query=None)}?…"
        return arg


_REDACTOR = _RedactBridgeQueries()
_redactor_lock = threading.Lock()


def _register_origin(url: httpx.URL) -> None:
    with _redactor_lock:
        _RedactBridgeQueries.origins.add((url.scheme, url.host, url.port))
        httpx_logger = logging.getLogger("httpx")
        if _REDACTOR not in httpx_logger.filters:
            httpx_logger.addFilter(_REDACTOR)


# --- The gateway ---


class ManagerGateway:
    """``MT5Gateway`` over the MT5 Web API (manager rights), one keep-alive HTTP session.

    Every call is serialised on one connection because the access server ties the login and
    the dealer-request subscriptions to the session. Idempotent calls are retried with
    exponential backoff and jitter; money and trade requests (``balance_operation``,
    ``order_send``, ``close_all_positions``) are only repeated when the bridge cannot have
    executed them (connection refused, "12 Frequent requests", session lost before the command
    ran). Any other failure after sending raises ``GatewayUnavailable`` saying the outcome is
    unknown: the caller checks ``deals_by_comment`` / ``positions`` before trying again.
    """

    kind = "manager"
    body_content_type = "application/x-www-form-urlencoded"  # what the Web API documents for JSON bodies

    def __init__(
        self,
        *,
        base_url: str,
        login: int,
        password: str,
        timeout: float = 5.0,
        retries: int = 3,
        backoff_base: float = 0.25,
        backoff_max: float = 5.0,
        result_wait: float = 5.0,
        poll_interval: float = 0.05,
        batch_size: int = 100,
        comment_lookback: timedelta = timedelta(days=366),
        group_cache_ttl: float = 300.0,
        server: str = "",
        agent: str = "mt5backoffice",
        verify: bool | str | ssl.SSLContext = True,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not base_url:
            raise GatewayError("MT5 manager gateway needs a bridge URL (MT5_MANAGER_URL)")
        self.base_url = base_url.rstrip("/")
        self.manager_login = int(login)
        self.timeout = float(timeout)
        self.retries = max(0, int(retries))
        self.backoff_base = float(backoff_base)
        self.backoff_max = float(backoff_max)
        self.result_wait = float(result_wait)
        self.poll_interval = float(poll_interval)
        self.batch_size = max(1, int(batch_size))
        self.comment_lookback = comment_lookback
        self.group_cache_ttl = float(group_cache_ttl)
        self.server = server
        self.agent = agent.replace(" ", "_")  # the access server refuses agents with spaces
        self._pass_hash = password_hash(password or "")  # the plain password is not kept
        self._sleep = sleep
        self._lock = threading.RLock()
        self._authenticated = False
        self._groups: dict[str, tuple[float, dict[str, Any]]] = {}
        self._digits: dict[str, int] = {}
        self._trader_servers: dict[int, str] = {}
        if isinstance(verify, str):  # a CA bundle for an access server with its own certificate
            verify = ssl.create_default_context(cafile=verify)
        self._client = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(self.timeout),
            # One connection: the access server binds the login to it.
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            headers={"Accept": "application/json", "User-Agent": self.agent},
            verify=verify,
            transport=transport,
            follow_redirects=False,
        )
        _register_origin(self._client.base_url)

    def __repr__(self) -> str:
        return f"ManagerGateway(base_url={self.base_url!r}, login={self.manager_login})"

    # --- lifecycle ---

    def close(self) -> None:
        with self._lock:
            self._authenticated = False
            self._client.close()

    def __enter__(self) -> ManagerGateway:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- transport ---

    def _backoff_delay(self, attempt: int) -> float:
        cap = min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1)))
        return cap / 2 + random.uniform(0, cap / 2)  # "equal jitter": never zero, never in lockstep

    def _send(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None,
        body: dict[str, Any] | None,
        accept: Collection[int],
    ) -> dict[str, Any]:
        content = headers = None
        if body is not None:
            content = json.dumps(body, separators=(",", ":")).encode()
            headers = {"Content-Type": self.body_content_type}
        try:
            response = self._client.request(method, path, params=params, content=content, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise _Transient(f"cannot connect ({type(exc).__name__})", maybe_executed=False) from None
        except httpx.TimeoutException as exc:
            raise _Transient(f"no reply within {self.timeout:g}s ({type(exc).__name__})", maybe_executed=True) from None
        except httpx.TransportError as exc:
            raise _Transient(f"connection broke ({type(exc).__name__})", maybe_executed=True) from None

        status = response.status_code
        if status in (401, 403):
            raise _SessionLost(f"HTTP {status}")
        if status >= 500:
            raise _Transient(f"HTTP {status}", maybe_executed=True)
        if status >= 400:
            raise GatewayError(f"MT5 bridge answered HTTP {status} to {path}")
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict) or "retcode" not in data:
            # A mangled reply (a proxy's error page, a cut-off body) says nothing about whether
            # the command ran: treat it like a lost reply.
            raise _Transient("unreadable reply", maybe_executed=True)

        code, text = parse_retcode(data.get("retcode"))
        logger.debug("MT5 %s %s -> %s", method, path, data.get("retcode"))
        if code in (RET_OK, RET_OK_NONE) or code in accept:
            return data
        described = f"{code} {text}".strip()
        if code in SESSION_RETCODES:
            raise _SessionLost(described)
        if code in TRANSIENT_UNEXECUTED_RETCODES:
            raise _Transient(described, maybe_executed=False)
        if code in TRANSIENT_UNKNOWN_RETCODES:
            raise _Transient(described, maybe_executed=True)
        if code == RET_ERR_NOTFOUND:
            raise NotFound(f"MT5: not found ({path})")
        raise GatewayError(f"MT5 refused {path}: {described}")

    def _authenticate(self) -> None:
        """The two-step MD5 handshake; proves both sides know the manager password."""
        try:
            start = self._send(
                "GET",
                "/api/auth/start",
                {"version": WEBAPI_VERSION, "agent": self.agent, "login": self.manager_login, "type": "manager"},
                None,
                _ANY,
            )
            code, text = parse_retcode(start.get("retcode"))
            if code != RET_OK:
                raise GatewayError(f"MT5 bridge refused manager {self.manager_login}: {code} {text}".strip())
            srv_rand = _str(start.get("srv_rand"))
            try:
                proof = srv_rand_answer(self._pass_hash, srv_rand)
            except ValueError:
                raise GatewayError("MT5 bridge sent a malformed srv_rand") from None
            cli_rand = os.urandom(16)
            answer = self._send(
                "GET", "/api/auth/answer", {"srv_rand_answer": proof, "cli_rand": cli_rand.hex()}, None, _ANY
            )
        except _SessionLost as exc:
            raise GatewayError(f"MT5 bridge refused manager {self.manager_login} ({exc})") from None
        except _Transient as exc:
            # Nothing but the handshake was sent: whatever comes next is safe to repeat.
            raise _Transient(f"login: {exc}", maybe_executed=False) from None
        code, text = parse_retcode(answer.get("retcode"))
        if code != RET_OK:
            # Manager credentials are configuration, not a trader's password: GatewayError, so
            # callers never tell a trader "wrong password" because the bridge account is wrong.
            raise GatewayError(f"MT5 bridge refused manager {self.manager_login}: {code} {text}".strip())
        expected = cli_rand_answer(self._pass_hash, cli_rand)
        if not hmac.compare_digest(_str(answer.get("cli_rand_answer")).lower(), expected):
            raise GatewayError("MT5 bridge failed to prove it knows the manager password (cli_rand_answer mismatch)")
        self._authenticated = True
        logger.info("MT5 manager %s logged in to %s", self.manager_login, self.base_url)

    def _call(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        *,
        idempotent: bool = True,
        accept: Collection[int] = (),
    ) -> dict[str, Any]:
        """One Web API command with login, one re-login on session loss, and retries."""
        with self._lock:
            if self._client.is_closed:
                raise GatewayError("MT5 manager gateway is closed")
            attempt = 0
            relogged = False
            while True:
                try:
                    if not self._authenticated:
                        self._authenticate()
                    return self._send(method, path, params, body, accept)
                except _SessionLost as exc:
                    # The command was refused before it ran, so replaying it is safe even for money.
                    self._authenticated = False
                    if relogged:
                        raise GatewayError(f"MT5 refused {path} after a fresh manager login ({exc})") from None
                    relogged = True
                    logger.info("MT5 manager session lost on %s (%s); logging in again", path, exc)
                except _Transient as exc:
                    if not idempotent and exc.maybe_executed:
                        raise GatewayUnavailable(
                            f"MT5 bridge failed during {path} ({exc}); the outcome is unknown, "
                            "check whether it went through before repeating it"
                        ) from None
                    if attempt >= self.retries:
                        raise GatewayUnavailable(
                            f"MT5 bridge unavailable for {path} after {attempt + 1} attempt(s): {exc}"
                        ) from None
                    attempt += 1
                    delay = self._backoff_delay(attempt)
                    logger.warning("MT5 %s failed (%s); retry %d/%d in %.3fs", path, exc, attempt, self.retries, delay)
                    self._sleep(delay)

    def _answer(self, method: str, path: str, params: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        return self._call(method, path, params, **kwargs).get("answer")

    def _records(self, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """A list command; "13 Not found" there means an empty list, not an error."""
        try:
            return _as_list(self._answer("GET", path, params))
        except NotFound:
            return []

    # --- configuration lookups (cached) ---

    def _group(self, name: str) -> dict[str, Any]:
        now = time.monotonic()
        cached = self._groups.get(name)
        if cached and cached[0] > now:
            return cached[1]
        try:
            record = _as_list(self._answer("GET", "/api/group/get", {"group": name}))
        except NotFound:
            record = []
        group = record[0] if record else {}
        self._groups[name] = (now + self.group_cache_ttl, group)
        return group

    def _symbol_digits(self, symbol: str) -> int:
        if symbol not in self._digits:
            records = _as_list(self._answer("GET", "/api/symbol/get", {"symbol": symbol}))
            if not records:
                raise NotFound(f"MT5: unknown symbol {symbol}")
            self._digits[symbol] = _int(records[0].get("Digits"))
        return self._digits[symbol]

    # --- record -> value mapping ---

    def _account_info(self, user: dict[str, Any], account: dict[str, Any] | None, group: dict[str, Any]) -> AccountInfo:
        login = _int(user.get("Login"))
        balance = _dec(user.get("Balance"))
        credit = _dec(user.get("Credit"))
        if account:
            balance = _dec(account.get("Balance", balance))
            credit = _dec(account.get("Credit", credit))
            floating = _dec(account.get("Floating", account.get("Profit")))
            equity = _dec(account.get("Equity"))
            margin = _dec(account.get("Margin"))
            margin_free = _dec(account.get("MarginFree"))
            margin_level: Decimal | None = _dec(account.get("MarginLevel"))
        else:
            # /api/user/account/get only knows accounts active since the server started;
            # an idle account has no positions, so its equity is its balance plus credit.
            floating = Decimal("0")
            equity = balance + credit
            margin = Decimal("0")
            margin_free = equity
            margin_level = None
        if margin == 0:
            margin_level = None
        group_name = _str(user.get("Group"))
        try:
            margin_mode = MarginMode(_int(group.get("MarginMode", MarginMode.RETAIL_HEDGING)))
        except ValueError:
            margin_mode = MarginMode.RETAIL_HEDGING
        name = _str(user.get("Name")) or " ".join(
            part for part in (_str(user.get("FirstName")), _str(user.get("LastName"))) if part
        )
        return AccountInfo(
            login=login,
            server=self._trader_servers.get(login, self.server),
            name=name,
            company=_str(group.get("Company")),
            currency=_str(group.get("Currency")),
            leverage=_int(user.get("Leverage")),
            balance=balance,
            credit=credit,
            equity=equity,
            margin=margin,
            margin_free=margin_free,
            margin_level=margin_level,
            profit=floating,
            margin_mode=margin_mode,
            trade_mode=_trade_mode(group_name),
            margin_so_call=_dec(group.get("MarginCall", "100")),
            margin_so_so=_dec(group.get("MarginStopOut", "50")),
        )

    # --- trader side ---

    def login(self, credentials: Credentials) -> AccountInfo:
        """Check a trader's main password with manager rights, then read the account.

        The password travels only in the JSON body of ``POST /api/user/check_password`` (the
        documented POST form), never in a URL, so no access log or httpx log line carries it.
        A wrong password, an unknown or disabled login all raise ``AuthenticationFailed`` so a
        login form cannot be used to find out which logins exist.
        """
        data = self._call(
            "POST",
            "/api/user/check_password",
            body={"Login": str(credentials.login), "Type": "main", "Password": credentials.password},
            accept={
                RET_USR_INVALID_PASSWORD,
                RET_ERR_NOTFOUND,
                RET_AUTH_ACCOUNT_INVALID,
                RET_AUTH_ACCOUNT_DISABLED,
                RET_AUTH_ACCOUNT_UNKNOWN,
                RET_ERR_PARAMS,
            },
        )
        code, _ = parse_retcode(data.get("retcode"))
        if code not in (RET_OK, RET_OK_NONE):
            raise AuthenticationFailed(f"MT5 refused the password for {credentials}")
        if credentials.server:
            self._trader_servers[credentials.login] = credentials.server
        return self.account_info(credentials.login)

    def account_info(self, login: int) -> AccountInfo:
        users = _as_list(self._answer("GET", "/api/user/get", {"login": login}))
        if not users:
            raise NotFound(f"MT5: unknown login {login}")
        try:
            accounts = _as_list(self._answer("GET", "/api/user/account/get", {"login": login}))
        except NotFound:
            accounts = []
        user = users[0]
        return self._account_info(user, accounts[0] if accounts else None, self._group(_str(user.get("Group"))))

    def positions(self, login: int) -> list[Position]:
        return [_position(r) for r in self._records("/api/position/get_batch", {"login": login})]

    def orders(self, login: int) -> list[PendingOrder]:
        return [_pending_order(r) for r in self._records("/api/order/get_batch", {"login": login})]

    def _deal_records(self, login: int, date_from: datetime, date_to: datetime) -> list[dict[str, Any]]:
        params = {"login": login, "from": _epoch(date_from), "to": _epoch(date_to)}
        try:
            total = _int((self._answer("GET", "/api/deal/get_total", params) or {}).get("Total"))
        except NotFound:
            return []
        records: list[dict[str, Any]] = []
        while len(records) < total:
            page = self._records("/api/deal/get_page", {**params, "offset": len(records), "total": PAGE_SIZE})
            if not page:
                break
            records.extend(page)
        return records

    def deals(self, login: int, date_from: datetime, date_to: datetime) -> list[Deal]:
        return [_deal(r) for r in self._deal_records(login, date_from, date_to)]

    def symbols(self, login: int | None = None) -> list[SymbolInfo]:
        """Every symbol configured on the server (the manager view ignores ``login``'s group filter)."""
        total = _int((self._answer("GET", "/api/symbol/total") or {}).get("Total"))
        records: list[dict[str, Any]] = []
        while len(records) < total:
            page = _as_list(self._answer("GET", "/api/symbol/next", {"index": len(records), "count": self.batch_size}))
            if not page:
                break
            records.extend(page)
        result = [_symbol(r) for r in records]
        self._digits.update({s.name: s.digits for s in result})
        return result

    def tick(self, symbol: str) -> Tick:
        try:
            ticks = _as_list(self._answer("GET", "/api/tick/last", {"symbol": symbol, "trans_id": 0}))
        except NotFound:
            ticks = []
        for record in ticks:
            if _str(record.get("Symbol")) == symbol:
                if record.get("Digits") not in (None, ""):
                    self._digits[symbol] = _int(record.get("Digits"))
                return Tick(
                    symbol=symbol,
                    time=_time(record.get("Datetime"), record.get("DatetimeMsc")),
                    bid=_dec(record.get("Bid")),
                    ask=_dec(record.get("Ask")),
                    last=_dec(record.get("Last")),
                )
        raise NotFound(f"MT5: no quotes for {symbol}")

    def order_send(self, login: int, request: OrderRequest) -> OrderResult:
        """A dealer request on behalf of ``login`` (``/api/dealer/send_request``), then its result.

        The request is never repeated after it may have reached the server; when the result
        does not arrive within ``result_wait`` seconds the returned retcode is TIMEOUT and the
        comment says the outcome is unknown.
        """
        action = _DEALER_ACTIONS.get(TradeAction(request.action))
        if action is None:
            return OrderResult(retcode=Retcode.INVALID, comment=f"unsupported trade action {request.action}")
        body: dict[str, Any] = {
            "Action": str(action),
            "Login": str(login),
            "Type": str(int(request.type)),
            "TypeFill": str(ORDER_FILL_FOK),
            "TypeTime": str(request.type_time),
            "ExpertID": str(request.magic),
            "Comment": request.comment[:COMMENT_MAX],
            "PriceSL": _num(request.sl),
            "PriceTP": _num(request.tp),
            "PriceDeviation": str(request.deviation),
        }
        if request.symbol:
            price = request.price
            if price == 0 and request.action == TradeAction.DEAL:
                quote = self.tick(request.symbol)
                price = quote.ask if request.type == OrderType.BUY else quote.bid
            body.update(
                Symbol=request.symbol,
                Digits=str(self._symbol_digits(request.symbol)),
                PriceOrder=_num(price),
                PriceTrigger=_num(request.stoplimit),
            )
        if request.volume:
            body["Volume"] = str(int(request.volume * _VOLUME_UNIT))
            body["VolumeExt"] = str(int(request.volume * _VOLUME_EXT_UNIT))
        for key, value in (("Position", request.position), ("PositionBy", request.position_by)):
            if value:
                body[key] = str(value)
        if request.order:
            body["Order"] = str(request.order)
        if request.expiration is not None:
            body["TimeExpiration"] = str(_epoch(request.expiration))
        sent = self._dealer_send(body)
        if isinstance(sent, OrderResult):
            return sent
        return self._await_results([sent])[sent]

    def _dealer_send(self, body: dict[str, Any]) -> int | OrderResult:
        """Queue one dealer request: its id, or the OrderResult of a refusal at the door."""
        data = self._call(
            "POST",
            "/api/dealer/send_request",
            body=body,
            idempotent=False,
            accept=_TRADE_RETCODES,
        )
        code, text = parse_retcode(data.get("retcode"))
        if code == RET_ERR_PARAMS:
            return OrderResult(retcode=Retcode.INVALID, comment=f"{code} {text}".strip())
        if code not in (RET_OK, RET_OK_NONE):
            return OrderResult(retcode=code, comment=text)
        request_id = _int((data.get("answer") or {}).get("ID"))
        if not request_id:
            raise GatewayError("MT5 bridge accepted a dealer request without giving its id")
        return request_id

    def _await_results(self, request_ids: Sequence[int]) -> dict[int, OrderResult]:
        """Poll ``/api/dealer/get_request_result`` until each request is final or time is up."""
        results: dict[int, OrderResult] = {}
        pending = [rid for rid in request_ids]
        deadline = time.monotonic() + self.result_wait
        delay = self.poll_interval
        problem = f"no result within {self.result_wait:g}s"
        while pending:
            try:
                data = self._call("GET", "/api/dealer/get_request_result", {"id": ",".join(map(str, pending))})
            except GatewayError as exc:
                # The subscription lives in the session; once that is gone nobody can tell us.
                problem = str(exc)
                break
            for rid in list(pending):
                final = _final_event(data.get(str(rid)))
                if final is not None:
                    results[rid] = _order_result(final, rid)
                    pending.remove(rid)
            remaining = deadline - time.monotonic()
            if not pending or remaining <= 0:
                break
            self._sleep(min(delay, remaining))
            delay = min(delay * 2, 0.5)
        for rid in pending:
            results[rid] = OrderResult(
                retcode=Retcode.TIMEOUT,
                comment=f"{problem}; the outcome is unknown, check positions before repeating",
                request_id=rid,
            )
        return results

    # --- broker side ---

    def users(self, group_mask: str = "*") -> list[BrokerUser]:
        logins = sorted(
            {_int(x) for x in _as_list_plain(self._answer("GET", "/api/user/logins", {"group": group_mask}))}
        )
        users: list[BrokerUser] = []
        for chunk in _chunks(logins, self.batch_size):
            records = self._records("/api/user/get_batch", {"login": ",".join(map(str, chunk))})
            users.extend(_broker_user(r) for r in records)
        return sorted(users, key=lambda u: u.login)

    def user(self, login: int) -> BrokerUser:
        records = _as_list(self._answer("GET", "/api/user/get", {"login": login}))
        if not records:
            raise NotFound(f"MT5: unknown login {login}")
        return _broker_user(records[0])

    def groups(self) -> list[BrokerGroup]:
        total = _int((self._answer("GET", "/api/group/total") or {}).get("Total"))
        records: list[dict[str, Any]] = []
        while len(records) < total:
            page = _as_list(self._answer("GET", "/api/group/next", {"index": len(records), "count": self.batch_size}))
            if not page:
                break
            records.extend(page)
        now = time.monotonic()
        for record in records:
            self._groups[_str(record.get("Group"))] = (now + self.group_cache_ttl, record)
        return [
            BrokerGroup(
                name=_str(r.get("Group")),
                currency=_str(r.get("Currency")) or "USD",
                company=_str(r.get("Company")),
                margin_call=_dec(r.get("MarginCall", "100")),
                stop_out=_dec(r.get("MarginStopOut", "50")),
            )
            for r in records
        ]

    def accounts_info(self, logins: Sequence[int]) -> dict[int, AccountInfo]:
        """Many accounts with one ``user/get_batch`` + ``user/account/get_batch`` pair per chunk.

        Logins the server does not know are left out of the result.
        """
        wanted = list(dict.fromkeys(int(x) for x in logins))
        result: dict[int, AccountInfo] = {}
        for chunk in _chunks(wanted, self.batch_size):
            joined = ",".join(map(str, chunk))
            users = self._records("/api/user/get_batch", {"login": joined})
            accounts = {
                _int(a.get("Login")): a for a in self._records("/api/user/account/get_batch", {"login": joined})
            }
            for user in users:
                login = _int(user.get("Login"))
                group = self._group(_str(user.get("Group")))
                result[login] = self._account_info(user, accounts.get(login), group)
        return result

    def balance_operation(
        self, login: int, amount: Decimal, deal_type: DealType, comment: str, *, check_margin: bool = True
    ) -> int:
        """Post a balance/credit/bonus/... deal (``/api/trade/balance``) and return its ticket.

        ``check_margin`` is sent as ``check_margin=1|0``: off, the server takes the amount even
        when the free margin does not cover it (a correction is never margin-checked).

        Not idempotent, so never repeated blindly: when the reply is lost after the request may
        have reached the server this raises ``GatewayUnavailable`` whose message says the outcome
        is unknown. The caller then looks the deal up with ``deals_by_comment`` (give every
        operation a unique comment) before deciding to post again.
        """
        deal_type = DealType(deal_type)
        if deal_type in _NOT_BALANCE_TYPES:
            raise GatewayError(f"{deal_type.name} is a trade deal, not a balance operation")
        amount = Decimal(amount)
        if not amount.is_finite() or amount == 0:
            raise GatewayError("a balance operation needs a non-zero amount")
        data = self._call(
            "GET",
            "/api/trade/balance",
            {
                "login": login,
                "type": int(deal_type),
                "balance": _num(amount),
                "comment": comment[:COMMENT_MAX],
                "check_margin": int(bool(check_margin)),
            },
            idempotent=False,
        )
        ticket = _int((data.get("answer") or {}).get("Ticket"))
        if not ticket:
            raise GatewayError("MT5 posted the balance operation but returned no deal ticket")
        logger.info("MT5 %s %s on %s: deal %s", deal_type.name, _num(amount), login, ticket)
        return ticket

    def deals_by_comment(self, login: int, comment: str) -> list[Deal]:
        """Deals of ``login`` whose comment is ``comment`` (cut to 31 characters, as MT5 stores it)."""
        wanted = comment[:COMMENT_MAX]
        now = datetime.now(tz=UTC)
        # A day ahead: trade servers stamp deals in their own zone, often hours ahead of UTC.
        records = self._deal_records(login, now - self.comment_lookback, now + timedelta(days=1))
        return [_deal(r) for r in records if _str(r.get("Comment")) == wanted]

    def set_leverage(self, login: int, leverage: int) -> None:
        """Read-modify-write: ``/api/user/update`` replaces the whole record with what it is sent."""
        if int(leverage) < 1:
            raise GatewayError("leverage must be at least 1")
        records = _as_list(self._answer("GET", "/api/user/get", {"login": login}))
        if not records:
            raise NotFound(f"MT5: unknown login {login}")
        record = dict(records[0])
        record["Leverage"] = str(int(leverage))
        self._call("POST", "/api/user/update", {"login": login}, record)

    def close_all_positions(self, login: int) -> list[OrderResult]:
        """Close every open position of ``login`` at market, one dealer request each.

        Requests that fail to go out are reported as CONNECTION results rather than raised, so
        the caller always learns what happened to each position that was attempted.
        """
        records = self._records("/api/position/get_batch", {"login": login})
        quotes: dict[str, Tick | None] = {}
        sent: list[int | OrderResult] = []
        for record in records:
            symbol = _str(record.get("Symbol"))
            if symbol not in quotes:
                try:
                    quotes[symbol] = self.tick(symbol)
                except NotFound:
                    quotes[symbol] = None
            quote = quotes[symbol]
            is_buy = _int(record.get("Action")) == PositionType.BUY
            if quote is not None:
                price = quote.bid if is_buy else quote.ask
            else:
                price = _dec(record.get("PriceCurrent"))
            body = {
                "Action": str(TA_DEALER_POS_EXECUTE),
                "Login": str(login),
                "Symbol": symbol,
                "Type": str(int(OrderType.SELL if is_buy else OrderType.BUY)),
                "TypeFill": str(ORDER_FILL_FOK),
                "Position": _str(record.get("Position")),
                "PriceOrder": _num(price),
                "Digits": _str(record.get("Digits")) or str(self._digits.get(symbol, 5)),
                "Comment": "close all",
            }
            # Send the raw server volume back untouched: converting through lots could round.
            for key in ("Volume", "VolumeExt"):
                if _int(record.get(key)):
                    body[key] = _str(record.get(key))
            try:
                sent.append(self._dealer_send(body))
            except GatewayUnavailable as exc:
                sent.append(OrderResult(retcode=Retcode.CONNECTION, comment=str(exc)))
        finals = self._await_results([s for s in sent if isinstance(s, int)])
        return [finals[s] if isinstance(s, int) else s for s in sent]


# --- record mappers ---


def _trade_mode(group: str) -> AccountTradeMode:
    """MT5 tells real from demo by the group path: ``real\\...``, ``contest\\...``, else demo."""
    head = group.replace("/", "\\").split("\\", 1)[0].lower()
    if head.startswith("real"):
        return AccountTradeMode.REAL
    if head.startswith("contest"):
        return AccountTradeMode.CONTEST
    return AccountTradeMode.DEMO


def _deal_type(action: int) -> DealType:
    if action in _EXTRA_DEAL_ACTIONS:
        return _EXTRA_DEAL_ACTIONS[action]
    try:
        return DealType(action)
    except ValueError:
        logger.warning("MT5 deal action %s has no client deal type; reading it as CORRECTION", action)
        return DealType.CORRECTION


def _deal(r: dict[str, Any]) -> Deal:
    try:
        entry = DealEntry(_int(r.get("Entry")))
    except ValueError:
        entry = DealEntry.IN
    return Deal(
        ticket=_int(r.get("Deal")),
        order=_int(r.get("Order")),
        time=_time(r.get("Time"), r.get("TimeMsc")),
        type=_deal_type(_int(r.get("Action"))),
        entry=entry,
        magic=_int(r.get("ExpertID")),
        position_id=_int(r.get("PositionID")),
        reason=int(_DEAL_REASONS.get(_int(r.get("Reason")), DealReason.CLIENT)),
        volume=_volume(r, "Volume"),
        price=_dec(r.get("Price")),
        commission=_dec(r.get("Commission")),
        swap=_dec(r.get("Storage")),
        profit=_dec(r.get("Profit")),
        fee=_dec(r.get("Fee")),
        symbol=_str(r.get("Symbol")),
        comment=_str(r.get("Comment")),
        external_id=_str(r.get("ExternalID")),
    )


def _position(r: dict[str, Any]) -> Position:
    ticket = _int(r.get("Position"))
    return Position(
        ticket=ticket,
        symbol=_str(r.get("Symbol")),
        type=PositionType(_int(r.get("Action"))),
        volume=_volume(r, "Volume"),
        price_open=_dec(r.get("PriceOpen")),
        price_current=_dec(r.get("PriceCurrent")),
        sl=_dec(r.get("PriceSL")),
        tp=_dec(r.get("PriceTP")),
        swap=_dec(r.get("Storage")),
        profit=_dec(r.get("Profit")),
        magic=_int(r.get("ExpertID")),
        comment=_str(r.get("Comment")),
        time=_time(r.get("TimeCreate"), r.get("TimeCreateMsc")),
        time_update=_time(r.get("TimeUpdate"), r.get("TimeUpdateMsc")),
        identifier=_int(r.get("Identifier")) or ticket,
    )


def _pending_order(r: dict[str, Any]) -> PendingOrder:
    return PendingOrder(
        ticket=_int(r.get("Order")),
        symbol=_str(r.get("Symbol")),
        type=OrderType(_int(r.get("Type"))),
        volume_initial=_volume(r, "VolumeInitial"),
        volume_current=_volume(r, "VolumeCurrent"),
        price_open=_dec(r.get("PriceOrder")),
        price_current=_dec(r.get("PriceCurrent")),
        price_stoplimit=_dec(r.get("PriceTrigger")),
        sl=_dec(r.get("PriceSL")),
        tp=_dec(r.get("PriceTP")),
        magic=_int(r.get("ExpertID")),
        comment=_str(r.get("Comment")),
        time_setup=_time(r.get("TimeSetup"), r.get("TimeSetupMsc")),
        time_expiration=_opt_time(r.get("TimeExpiration")),
        type_time=_int(r.get("TypeTime")),
        state=_int(r.get("State")) if r.get("State") not in (None, "") else 1,
    )


def _symbol(r: dict[str, Any]) -> SymbolInfo:
    digits = _int(r.get("Digits"))
    point = _dec(r.get("Point")) if r.get("Point") not in (None, "") else Decimal(1).scaleb(-digits)
    return SymbolInfo(
        name=_str(r.get("Symbol")),
        path=_str(r.get("Path")),
        description=_str(r.get("Description")),
        digits=digits,
        point=point,
        contract_size=_dec(r.get("ContractSize")),
        volume_min=_volume(r, "VolumeMin"),
        volume_step=_volume(r, "VolumeStep"),
        volume_max=_volume(r, "VolumeMax"),
        currency_base=_str(r.get("CurrencyBase")),
        currency_profit=_str(r.get("CurrencyProfit")),
        currency_margin=_str(r.get("CurrencyMargin")),
        trade_stops_level=_int(r.get("StopsLevel")),
    )


def _broker_user(r: dict[str, Any]) -> BrokerUser:
    name = _str(r.get("Name")) or " ".join(p for p in (_str(r.get("FirstName")), _str(r.get("LastName"))) if p)
    return BrokerUser(
        login=_int(r.get("Login")),
        group=_str(r.get("Group")),
        name=name,
        email=_str(r.get("Email")),
        country=_str(r.get("Country")),
        lead_source=_str(r.get("LeadSource")),
        lead_campaign=_str(r.get("LeadCampaign")),
        agent=_int(r.get("Agent")),
        leverage=_int(r.get("Leverage")) or 100,
        balance=_dec(r.get("Balance")),
        credit=_dec(r.get("Credit")),
        registration=_opt_time(r.get("Registration")),
        comment=_str(r.get("Comment")),
    )


def _final_event(events: Any) -> dict[str, Any] | None:
    """The final state of one dealer request among its events, or None while it is in progress."""
    final: dict[str, Any] | None = None
    for event in _as_list_plain(events):
        if not isinstance(event, dict):
            continue
        answer = event.get("answer")
        if isinstance(answer, dict) and parse_retcode(answer.get("ResultRetcode"))[0] not in _PENDING_REQUEST_CODES:
            final = answer
        confirm = event.get("result")
        if final is None and isinstance(confirm, dict):
            if parse_retcode(confirm.get("Retcode"))[0] not in _PENDING_REQUEST_CODES:
                final = confirm
    return final


def _order_result(event: dict[str, Any], request_id: int) -> OrderResult:
    if "ResultRetcode" in event:  # IMTRequest form
        code, text = parse_retcode(event.get("ResultRetcode"))
        fields = ("ResultDeal", "ResultOrder", "ResultVolume", "ResultPrice", "ResultMarketBid", "ResultMarketAsk")
        comment = _str(event.get("ResultComment")) or text
    else:  # obsolete IMTConfirm form
        code, text = parse_retcode(event.get("Retcode"))
        fields = ("DealID", "OrderID", "Volume", "Price", "TickBid", "TickAsk")
        comment = _str(event.get("Comment")) or text
    deal_key, order_key, volume_key, price_key, bid_key, ask_key = fields
    if code == RET_REQUEST_DONE_CANCEL:
        code = Retcode.DONE_PARTIAL  # filled in part, remainder cancelled: what a terminal calls partial
    return OrderResult(
        retcode=code,
        comment=comment,
        deal=_int(event.get(deal_key)),
        order=_int(event.get(order_key)),
        volume=_volume(event, volume_key),
        price=_dec(event.get(price_key)),
        bid=_dec(event.get(bid_key)),
        ask=_dec(event.get(ask_key)),
        request_id=request_id,
    )
