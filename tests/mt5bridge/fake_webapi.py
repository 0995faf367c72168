"""A fake MT5 Web API access server on 127.0.0.1 for the manager gateway tests, with fault knobs."""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import itertools
import json
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

DONE = "0 Done"
PARAMS = "3 Invalid parameters"
PERMISSIONS = "8 Not enough permissions"
NOT_FOUND = "13 Not found"
INVALID_PASSWORD = "3006 Invalid account password"
NO_MONEY = "10019 Not enough money"
MAX_MONEY = "4005 Reached the limit on the amount of money"
REQUEST_DONE = "10009 Request executed"
POSITION_CLOSED = "10036 Position already closed"

SESSION_COOKIE = "MT5WebAPI"
CONTRACT_SIZE = Decimal(100_000)
BALANCE_TYPES = {2, 4, 5}  # BALANCE, CHARGE, CORRECTION move Balance
CREDIT_TYPES = {3, 6}  # CREDIT and BONUS move Credit


def _pass_hash(password: str) -> bytes:
    return hashlib.md5(hashlib.md5(password.encode("utf-16-le")).digest() + b"WebAPI").digest()


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


def _matches(group: str, masks: str) -> bool:
    """MT5 group masks: comma list, ``*`` wildcards, ``!`` excludes, applied left to right."""
    result = False
    for mask in (m.strip() for m in masks.split(",")):
        if not mask:
            continue
        negate = mask.startswith("!")
        if fnmatch.fnmatchcase(group.lower(), mask.lstrip("!").lower()):
            result = not negate
    return result


@dataclass
class _Fault:
    remaining: int
    path: str | None
    status: int | None = None
    retcode: str | None = None
    raw: bytes | None = None
    delay: float = 0.0
    after_processing: bool = False


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the access server
    wbufsize = 65536  # headers and body leave in one write: no Nagle/delayed-ACK stall per reply
    disable_nagle_algorithm = True

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        self.server.fake._handle(self, "GET")  # type: ignore[attr-defined]

    def do_POST(self) -> None:  # noqa: N802
        self.server.fake._handle(self, "POST")  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # keep test output clean; FakeWebAPI.request_log records what came in


class FakeWebAPI:
    """In-memory users, accounts, positions, orders, deals, groups, symbols and ticks behind the Web API.

    Knobs: ``expire_sessions``, ``fail_next``, ``delay_next``, ``dealer_pending_polls``,
    ``forge_cli_rand_answer``, ``inactive_accounts``. Observations: ``requests`` (count per
    path), ``request_log`` (method and raw target of every request), ``dealer_requests``.
    """

    def __init__(self, manager_login: int = 1000, manager_password: str = "Manager#Pass1") -> None:
        self.manager_login = manager_login
        self.manager_password = manager_password
        self.lock = threading.RLock()
        self.users: dict[int, dict[str, str]] = {}
        self.passwords: dict[int, str] = {}
        self.positions: dict[int, list[dict[str, str]]] = {}
        self.orders: dict[int, list[dict[str, str]]] = {}
        self.deals: dict[int, list[dict[str, str]]] = {}
        self.groups: dict[str, dict[str, str]] = {}
        self.symbols: dict[str, dict[str, str]] = {}
        self.ticks: dict[str, dict[str, str]] = {}
        self.inactive_accounts: set[int] = set()
        self.requests: Counter[str] = Counter()
        self.request_log: list[tuple[str, str]] = []
        self.dealer_requests: list[dict[str, Any]] = []
        self.dealer_pending_polls = 0
        self.forge_cli_rand_answer = False
        self._pending_auth: dict[str, tuple[bytes, int]] = {}  # cookie -> (srv_rand, manager login)
        self._sessions: set[str] = set()
        self._unauth_http = False
        self._faults: list[_Fault] = []
        self._dealer_results: dict[int, dict[str, str]] = {}
        self._dealer_polls: Counter[int] = Counter()
        self._tickets = itertools.count(50_000)
        self._request_ids = itertools.count(7_000)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---

    def start(self) -> str:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake-webapi", daemon=True
        )
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeWebAPI:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # --- knobs ---

    def expire_sessions(self, *, http_status: bool = False) -> None:
        """Forget every login; the next call answers "8 Not enough permissions" (or HTTP 403)."""
        with self.lock:
            self._sessions.clear()
            self._unauth_http = http_status

    def fail_next(
        self,
        n: int,
        *,
        path: str | None = None,
        status: int | None = None,
        retcode: str | None = None,
        raw: bytes | None = None,
    ) -> None:
        """Answer the next ``n`` calls (to ``path``, or any non-auth path) with HTTP ``status``,
        ``retcode`` or a ``raw`` body, without running the command."""
        with self.lock:
            self._faults.append(_Fault(n, path, status=status, retcode=retcode, raw=raw))

    def delay_next(
        self, n: int = 1, *, seconds: float, path: str | None = None, after_processing: bool = False
    ) -> None:
        """Hold the next ``n`` replies for ``seconds``; ``after_processing`` runs the command first."""
        with self.lock:
            self._faults.append(_Fault(n, path, delay=seconds, after_processing=after_processing))

    def reset_counts(self) -> None:
        with self.lock:
            self.requests.clear()
            self.request_log.clear()

    # --- seeding ---

    def add_group(self, name: str, *, currency: str = "USD", company: str = "Example Broker Ltd", **extra: Any) -> None:
        record = {
            "Group": name,
            "Server": "0",
            "Company": company,
            "Currency": currency,
            "CurrencyDigits": "2",
            "MarginCall": "100",
            "MarginStopOut": "50",
            "MarginMode": "2",
        }
        record.update({k: str(v) for k, v in extra.items()})
        self.groups[name] = record

    def add_symbol(
        self, name: str, *, digits: int = 5, path: str | None = None, bid: str, ask: str, **extra: Any
    ) -> None:
        record = {
            "Symbol": name,
            "Path": path or f"Forex\\Majors\\{name}",
            "Description": f"{name[:3]} vs {name[3:]}",
            "Digits": str(digits),
            "Point": str(Decimal(1).scaleb(-digits)),
            "ContractSize": str(CONTRACT_SIZE),
            "VolumeMin": "100",
            "VolumeMinExt": "1000000",
            "VolumeStep": "100",
            "VolumeStepExt": "1000000",
            "VolumeMax": "1000000",
            "VolumeMaxExt": "10000000000",
            "CurrencyBase": name[:3],
            "CurrencyProfit": name[3:6],
            "CurrencyMargin": name[:3],
            "StopsLevel": "10",
        }
        record.update({k: str(v) for k, v in extra.items()})
        self.symbols[name] = record
        self.set_tick(name, bid=bid, ask=ask)

    def set_tick(self, symbol: str, *, bid: str, ask: str) -> None:
        now_ms = int(time.time() * 1000)
        self.ticks[symbol] = {
            "Symbol": symbol,
            "Digits": self.symbols[symbol]["Digits"],
            "Datetime": str(now_ms // 1000),
            "DatetimeMsc": str(now_ms),
            "Bid": bid,
            "Ask": ask,
            "Last": "0.00000",
            "Volume": "0",
            "VolumeReal": "0.00",
        }

    def add_user(
        self,
        login: int,
        *,
        password: str = "Trader#Pass1",
        group: str = "demo\\forex-usd",
        balance: str = "0",
        credit: str = "0",
        leverage: int = 100,
        **extra: Any,
    ) -> dict[str, str]:
        record = {
            "Login": str(login),
            "Group": group,
            "CertSerialNumber": "0",
            "Rights": "2403",
            "Registration": "1700000000",
            "LastAccess": "1700000000",
            "LastIP": "",
            "Name": f"Trader {login}",
            "FirstName": "",
            "LastName": "",
            "Company": "",
            "Country": "",
            "Language": "0",
            "City": "",
            "Email": "",
            "Comment": "",
            "Leverage": str(leverage),
            "Agent": "0",
            "Balance": balance,
            "Credit": credit,
            "LeadSource": "",
            "LeadCampaign": "",
            "ApiData": [],
        }
        record.update({k: v if isinstance(v, list) else str(v) for k, v in extra.items()})
        self.users[login] = record
        self.passwords[login] = password
        self.positions.setdefault(login, [])
        self.orders.setdefault(login, [])
        self.deals.setdefault(login, [])
        return record

    def add_position(
        self, login: int, symbol: str, *, action: int, lots: str, price_open: str, profit: str = "0", **extra: Any
    ) -> dict[str, str]:
        ticket = next(self._tickets)
        volume = Decimal(lots)
        now = int(time.time())
        record = {
            "Position": str(ticket),
            "Identifier": str(ticket),
            "Login": str(login),
            "Symbol": symbol,
            "Action": str(action),
            "Digits": self.symbols[symbol]["Digits"],
            "PriceOpen": price_open,
            "PriceCurrent": self.ticks[symbol]["Bid" if action == 0 else "Ask"],
            "PriceSL": "0",
            "PriceTP": "0",
            "Volume": str(int(volume * 10_000)),
            "VolumeExt": str(int(volume * 100_000_000)),
            "Profit": profit,
            "Storage": "0",
            "ExpertID": "0",
            "Comment": "",
            "TimeCreate": str(now),
            "TimeCreateMsc": str(now * 1000),
            "TimeUpdate": str(now),
            "TimeUpdateMsc": str(now * 1000),
        }
        record.update({k: str(v) for k, v in extra.items()})
        self.positions.setdefault(login, []).append(record)
        return record

    def add_order(self, login: int, symbol: str, *, order_type: int, lots: str, price: str) -> dict[str, str]:
        ticket = next(self._tickets)
        volume = Decimal(lots)
        now = int(time.time())
        record = {
            "Order": str(ticket),
            "Login": str(login),
            "Symbol": symbol,
            "Type": str(order_type),
            "State": "1",
            "TypeTime": "0",
            "TimeSetup": str(now),
            "TimeSetupMsc": str(now * 1000),
            "TimeExpiration": "0",
            "VolumeInitial": str(int(volume * 10_000)),
            "VolumeInitialExt": str(int(volume * 100_000_000)),
            "VolumeCurrent": str(int(volume * 10_000)),
            "VolumeCurrentExt": str(int(volume * 100_000_000)),
            "PriceOrder": price,
            "PriceCurrent": self.ticks[symbol]["Ask"],
            "PriceTrigger": "0",
            "PriceSL": "0",
            "PriceTP": "0",
            "ExpertID": "0",
            "Comment": "",
        }
        self.orders.setdefault(login, []).append(record)
        return record

    def add_deal(self, login: int, **fields: Any) -> dict[str, str]:
        ticket = next(self._tickets)
        moment = fields.pop("time", None) or time.time()
        record = {
            "Deal": str(ticket),
            "ExternalID": "",
            "Login": str(login),
            "Dealer": "0",
            "Order": "0",
            "Action": "2",
            "Entry": "0",
            "Reason": "2",
            "Time": str(int(moment)),
            "TimeMsc": str(int(moment * 1000)),
            "Symbol": "",
            "Price": "0",
            "PriceSL": "0",
            "PriceTP": "0",
            "Volume": "0",
            "VolumeExt": "0",
            "Profit": "0",
            "Storage": "0",
            "Commission": "0",
            "Fee": "0",
            "ExpertID": "0",
            "PositionID": "0",
            "Comment": "",
            "Gateway": "",
        }
        record.update({k: str(v) for k, v in fields.items()})
        self.deals.setdefault(login, []).append(record)
        return record

    def seed_demo(self) -> None:
        """A small broker: two groups, two symbols, a few traders with positions, orders and deals."""
        self.add_group("demo\\forex-usd", currency="USD", company="Example Broker Ltd")
        self.add_group("real\\pro-eur", currency="EUR", company="Example Broker EU", MarginMode=0)
        self.add_symbol("EURUSD", digits=5, bid="1.10860", ask="1.10870")
        self.add_symbol("XAUUSD", digits=2, path="Metals\\XAUUSD", bid="2350.10", ask="2350.40")
        self.add_user(
            1001,
            password="Trader#Pass1",
            balance="1000.00",
            credit="50.00",
            leverage=100,
            Name="Ana Lopez",
            Email="ana@example.com",
            Country="Spain",
            LeadSource="newsletter",
            LeadCampaign="spring",
            Comment="vip",
            Phone="+34000000",
        )
        self.add_user(1002, password="Other#Pass2", group="real\\pro-eur", balance="250.00", leverage=30)
        self.add_position(1001, "EURUSD", action=0, lots="0.10", price_open="1.10000", profit="86.00")
        self.add_position(1001, "XAUUSD", action=1, lots="0.05", price_open="2360.00", profit="48.00", Storage="-1.5")
        self.add_order(1001, "EURUSD", order_type=2, lots="0.20", price="1.09000")
        self.add_deal(1001, Action="2", Profit="1000.00", Comment="initial deposit", time=time.time() - 86_400)

    # --- derived records ---

    def _account(self, login: int) -> dict[str, str]:
        user = self.users[login]
        balance, credit = Decimal(user["Balance"]), Decimal(user["Credit"])
        leverage = Decimal(user["Leverage"])
        floating = sum((Decimal(p["Profit"]) + Decimal(p["Storage"]) for p in self.positions[login]), Decimal(0))
        margin = sum(
            (
                Decimal(p["Volume"]) / 10_000 * CONTRACT_SIZE * Decimal(p["PriceOpen"]) / leverage
                for p in self.positions[login]
            ),
            Decimal(0),
        )
        equity = balance + credit + floating
        level = equity / margin * 100 if margin else Decimal(0)
        return {
            "Login": str(login),
            "CurrencyDigits": "2",
            "Balance": _money(balance),
            "Credit": _money(credit),
            "Margin": _money(margin),
            "MarginFree": _money(equity - margin),
            "MarginLevel": _money(level),
            "MarginLeverage": user["Leverage"],
            "Profit": _money(sum((Decimal(p["Profit"]) for p in self.positions[login]), Decimal(0))),
            "Storage": _money(sum((Decimal(p["Storage"]) for p in self.positions[login]), Decimal(0))),
            "Floating": _money(floating),
            "Equity": _money(equity),
            "SOActivation": "0",
            "SOTime": "0",
            "Assets": "0.00",
            "Liabilities": "0.00",
        }

    # --- HTTP plumbing ---

    def _take_fault(self, path: str) -> _Fault | None:
        with self.lock:
            for fault in self._faults:
                applies = fault.path == path if fault.path else not path.startswith("/api/auth/")
                if applies and fault.remaining > 0:
                    fault.remaining -= 1
                    return fault
            self._faults = [f for f in self._faults if f.remaining > 0]
        return None

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        target = urlsplit(handler.path)
        path = target.path
        query = {k: v[-1] for k, v in parse_qs(target.query, keep_blank_values=True).items()}
        length = int(handler.headers.get("Content-Length") or 0)
        raw_body = handler.rfile.read(length) if length else b""
        cookie = SimpleCookie(handler.headers.get("Cookie") or "")
        session = cookie[SESSION_COOKIE].value if SESSION_COOKIE in cookie else ""
        with self.lock:
            self.requests[path] += 1
            self.request_log.append((method, handler.path))

        fault = self._take_fault(path)
        status, payload, set_cookie = 200, {}, None
        if fault and fault.delay and not fault.after_processing:
            time.sleep(fault.delay)
        if fault and fault.raw is not None:
            self._reply(handler, fault.status or 200, fault.raw, None)
            return
        if fault and (fault.status or fault.retcode):
            status = fault.status or 200
            payload = {"retcode": fault.retcode or "2 Common error"}
        elif path.startswith("/api/auth/"):
            payload, set_cookie = self._auth(path, query, session)
        elif session not in self._sessions:
            status = 403 if self._unauth_http else 200
            payload = {"retcode": PERMISSIONS}
        else:
            body: Any = None
            if raw_body:
                try:
                    body = json.loads(raw_body)
                except ValueError:
                    body = {k: v[-1] for k, v in parse_qs(raw_body.decode()).items()}
            route = self._routes().get(path)
            if route is None:
                status, payload = 404, {"retcode": PARAMS}
            else:
                with self.lock:
                    payload = route(query, body)
        if fault and fault.delay and fault.after_processing:
            time.sleep(fault.delay)
        self._reply(handler, status, payload, set_cookie)

    @staticmethod
    def _reply(
        handler: BaseHTTPRequestHandler, status: int, payload: dict[str, Any] | bytes, cookie: str | None
    ) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            if cookie:
                handler.send_header("Set-Cookie", f"{SESSION_COOKIE}={cookie}; Path=/; HttpOnly")
            handler.end_headers()
            handler.wfile.write(data)
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True  # the client gave up waiting; that is the point of a delay

    # --- auth ---

    def _auth(self, path: str, query: dict[str, str], session: str) -> tuple[dict[str, Any], str | None]:
        if path == "/api/auth/start":
            if query.get("type") != "manager" or not query.get("agent") or int(query.get("version") or 0) < 484:
                return {"retcode": PARAMS}, None
            token = os.urandom(16).hex()
            srv_rand = os.urandom(16)
            with self.lock:
                self._pending_auth[token] = (srv_rand, int(query.get("login") or 0))
            return {"retcode": DONE, "version_access": "484", "srv_rand": srv_rand.hex()}, token
        if path == "/api/auth/answer":
            with self.lock:
                pending = self._pending_auth.pop(session, None)
            if pending is None:
                return {"retcode": PARAMS}, None
            srv_rand, login = pending
            pass_hash = _pass_hash(self.manager_password)
            expected = hashlib.md5(pass_hash + srv_rand).hexdigest()
            login_ok = login == self.manager_login
            if not login_ok or not hmac.compare_digest(query.get("srv_rand_answer", ""), expected):
                return {"retcode": INVALID_PASSWORD}, None
            try:
                cli_rand = bytes.fromhex(query.get("cli_rand", ""))
            except ValueError:
                return {"retcode": PARAMS}, None
            proof_key = _pass_hash("not the password") if self.forge_cli_rand_answer else pass_hash
            with self.lock:
                self._sessions.add(session)
            return {
                "retcode": DONE,
                "version_access": "484",
                "version_trade": "4000",
                "cli_rand_answer": hashlib.md5(proof_key + cli_rand).hexdigest(),
            }, None
        return {"retcode": PARAMS}, None

    # --- commands ---

    def _routes(self) -> dict[str, Any]:
        return {
            "/api/test/access": lambda q, b: {"retcode": DONE},
            "/api/user/check_password": self._check_password,
            "/api/user/get": self._user_get,
            "/api/user/get_batch": self._user_get_batch,
            "/api/user/logins": self._user_logins,
            "/api/user/update": self._user_update,
            "/api/user/account/get": self._account_get,
            "/api/user/account/get_batch": self._account_get_batch,
            "/api/group/get": self._group_get,
            "/api/group/total": lambda q, b: {"retcode": DONE, "answer": {"Total": str(len(self.groups))}},
            "/api/group/next": lambda q, b: self._next(list(self.groups.values()), q),
            "/api/symbol/total": lambda q, b: {"retcode": DONE, "answer": {"Total": str(len(self.symbols))}},
            "/api/symbol/next": lambda q, b: self._next(list(self.symbols.values()), q),
            "/api/symbol/get": self._symbol_get,
            "/api/symbol/list": lambda q, b: {"retcode": DONE, "answer": list(self.symbols)},
            "/api/tick/last": self._tick_last,
            "/api/position/get_batch": lambda q, b: self._per_login(self.positions, q),
            "/api/order/get_batch": lambda q, b: self._per_login(self.orders, q),
            "/api/deal/get_total": self._deal_total,
            "/api/deal/get_page": self._deal_page,
            "/api/trade/balance": self._trade_balance,
            "/api/dealer/send_request": self._dealer_send,
            "/api/dealer/get_request_result": self._dealer_result,
        }

    @staticmethod
    def _logins(value: str | None) -> list[int]:
        return [int(x) for x in (value or "").split(",") if x.strip()]

    def _check_password(self, query: dict[str, str], body: Any) -> dict[str, Any]:
        fields = {k.lower(): str(v) for k, v in (body or {}).items()} if isinstance(body, dict) else {}
        fields = {**query, **fields}
        login = int(fields.get("login") or 0)
        if fields.get("type", "main") != "main" or "password" not in fields:
            return {"retcode": PARAMS}
        if login not in self.users:
            return {"retcode": NOT_FOUND}
        if not hmac.compare_digest(self.passwords[login], fields["password"]):
            return {"retcode": INVALID_PASSWORD}
        return {"retcode": DONE}

    def _user_get(self, query: dict[str, str], body: Any) -> dict[str, Any]:
        login = int(query.get("login") or 0)
        if login not in self.users:
            return {"retcode": NOT_FOUND}
        return {"retcode": DONE, "answer": dict(self.users[login])}

    def _user_get_batch(self, query: dict[str, str], body: Any) -> dict[str, Any]:
        if "group" in query:
            found = [u for u in self.users.values() if _matches(u["Group"], query["group"])]
        else:
            found = [self.users[x] for x in self._logins(query.get("login")) if x in self.users]
        return {"retcode": DONE, "answer": [dict(u) for u in found]}

    def _user_logins(self, query: dict[str, str], body: Any) -> dict[str, Any]:
        masks = query.get("group") or "*"
        return {"retcode": DONE, "answer": [str(x) for x, u in self.users.items() if _matches(u["Group"], masks)]}

    def _user_update(self, query: dict[str, str], body: Any) -> dict[str, Any]:
        login = int(query.get("login") or (body or {}).get("Login") or 0)
        if login not in self.users:
            return {"retcode": NOT_FOUND}
        if not isinstance(body, dict) or not body.get("Group"):
            return {"retcode": PARAMS}
        leverage = int(body.get("Leverage") or 0)
        if not 1 <= leverage <= 1000:
            return {"retcode": PARAMS}
        # Like the real server: the record becomes what was sent; absent fields are cleared.
        record = {k: "" for k in self.users[login] if k != "ApiData"}
        record.update({k: v if isinstance(v, list) else str(v) for k, v in body.items()})
        record["Login"] = str(login)
        record.setdefault("ApiData", [])
        self.users[login] = record
        return {"retcode": DONE, "answer": dict(record)}

    def _account_get(self, query: dict[str, str], body: Any) -> dict[str, Any]:
        login = int(query.get("login") or 0)
        if login not in self.users or login in self.inactive_accounts:
            return {"retcode": NOT_FOUND}
        return {"retcode": DONE, "answer": self._account(login)}

    def _account_get_batch(self, query: dict[str, str], body: Any) -> dict[str, Any]:
        logins = [x for x in self._logins(query.get("login")) if x in self.users and x not in self.inactive_accounts]
        return {"retcode": DONE, "answer": [self._account(x) for x in logins]}

    def _group_get(self, query: dict[str, str], body: Any) -> dict[str, Any]:
        group = self.groups.get(query.get("group", ""))
        if group is None:
            return {"retcode": NOT_FOUND}
        return {"retcode": DONE, "answer": dict(group)}

    @staticmethod
    def _next(records: list[dict[str, str]], query: dict[str, str]) -> dict[str, Any]:
        index, count = int(query.get("index") or 0), int(query.get("count") or 1)
        if index >= len(records):
            return {"retcode": NOT_FOUND}
        chunk = [dict(r) for r in records[index : index + count]]
        return {"retcode": DONE, "answer": chunk if count > 1 else chunk[0]}

    def _symbol_get(self, query: dict[str, str], body: Any) -> dict[str, Any]:
        symbol = self.symbols.get(query.get("symbol", ""))
        if symbol is None:
            return {"retcode": NOT_FOUND}
        return {"retcode": DONE, "answer": dict(symbol)}

    def _tick_last(self, query: dict[str, str], body: Any) -> dict[str, Any]:
        names = [s for s in (query.get("symbol") or "").split(",") if s]
        return {"retcode": DONE, "trans_id": "1", "answer": [dict(self.ticks[s]) for s in names if s in self.ticks]}

    def _per_login(self, store: dict[int, list[dict[str, str]]], query: dict[str, str]) -> dict[str, Any]:
        found = [dict(r) for x in self._logins(query.get("login")) for r in store.get(x, [])]
        return {"retcode": DONE, "answer": found}

    def _deals_between(self, query: dict[str, str]) -> list[dict[str, str]]:
        login = int(query.get("login") or 0)
        start, end = int(query.get("from") or 0), int(query.get("to") or 0)
        found = [d for d in self.deals.get(login, []) if start <= int(d["Time"]) <= end]
        return sorted(found, key=lambda d: (int(d["TimeMsc"]), int(d["Deal"])))

    def _deal_total(self, query: dict[str, str], body: Any) -> dict[str, Any]:
        return {"retcode": DONE, "answer": {"Total": str(len(self._deals_between(query)))}}

    def _deal_page(self, query: dict[str, str], body: Any) -> dict[str, Any]:
        offset, total = int(query.get("offset") or 0), int(query.get("total") or 0)
        if not 0 < total <= 100:
            return {"retcode": PARAMS}
        return {"retcode": DONE, "answer": [dict(d) for d in self._deals_between(query)[offset : offset + total]]}

    def _trade_balance(self, query: dict[str, str], body: Any) -> dict[str, Any]:
        login = int(query.get("login") or 0)
        deal_type = int(query.get("type") or 0)
        if login not in self.users:
            return {"retcode": NOT_FOUND}
        if deal_type not in BALANCE_TYPES | CREDIT_TYPES:
            return {"retcode": PARAMS}
        try:
            amount = Decimal(query.get("balance") or "")
        except InvalidOperation:
            return {"retcode": PARAMS}
        if abs(amount) > Decimal(1_000_000_000):
            return {"retcode": MAX_MONEY}
        user = self.users[login]
        field = "Credit" if deal_type in CREDIT_TYPES else "Balance"
        new_value = Decimal(user[field]) + amount
        if amount < 0 and new_value < 0 and query.get("check_margin", "1") != "0":
            return {"retcode": NO_MONEY}
        user[field] = _money(new_value)
        deal = self.add_deal(login, Action=deal_type, Profit=_money(amount), Comment=(query.get("comment") or "")[:31])
        return {"retcode": DONE, "answer": {"Ticket": deal["Deal"]}}

    def _dealer_send(self, query: dict[str, str], body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or str(body.get("Action")) != "200":
            return {"retcode": PARAMS}
        login = int(body.get("Login") or 0)
        if login not in self.users:
            return {"retcode": NOT_FOUND}
        request_id = next(self._request_ids)
        self.dealer_requests.append(dict(body))
        self._dealer_results[request_id] = self._execute(login, body)
        return {"retcode": DONE, "answer": {"ID": str(request_id)}}

    def _execute(self, login: int, body: dict[str, Any]) -> dict[str, str]:
        symbol = str(body.get("Symbol") or "")
        tick = self.ticks.get(symbol, {})
        volume = int(body.get("Volume") or 0)
        price = str(body.get("PriceOrder") or "0")
        result = {
            "Login": str(login),
            "Action": "200",
            "ResultRetcode": REQUEST_DONE,
            "ResultVolume": str(volume),
            "ResultVolumeExt": str(int(body.get("VolumeExt") or volume * 10_000)),
            "ResultPrice": price,
            "ResultMarketBid": tick.get("Bid", "0"),
            "ResultMarketAsk": tick.get("Ask", "0"),
            "ResultComment": "",
            "ResultOrder": str(next(self._tickets)),
        }
        position_ticket = str(body.get("Position") or "")
        if position_ticket and position_ticket != "0":
            open_positions = self.positions.get(login, [])
            position = next((p for p in open_positions if p["Position"] == position_ticket), None)
            if position is None:
                return {**result, "ResultRetcode": POSITION_CLOSED, "ResultVolume": "0", "ResultVolumeExt": "0"}
            open_positions.remove(position)
            profit = Decimal(position["Profit"]) + Decimal(position["Storage"])
            user = self.users[login]
            user["Balance"] = _money(Decimal(user["Balance"]) + profit)
            entry, position_id = "1", position["Position"]
        else:
            entry, position_id, profit = "0", "", Decimal(0)
            opened = self.add_position(
                login,
                symbol,
                action=int(body.get("Type") or 0),
                lots=str(Decimal(volume) / 10_000),
                price_open=price,
                ExpertID=body.get("ExpertID") or "0",
                Comment=body.get("Comment") or "",
            )
            position_id = opened["Position"]
        deal = self.add_deal(
            login,
            Action=body.get("Type") or "0",
            Entry=entry,
            Reason="2",
            Symbol=symbol,
            Price=price,
            Volume=str(volume),
            VolumeExt=result["ResultVolumeExt"],
            Profit=_money(profit),
            PositionID=position_id,
            Order=result["ResultOrder"],
        )
        result["ResultDeal"] = deal["Deal"]
        return result

    def _dealer_result(self, query: dict[str, str], body: Any) -> dict[str, Any]:
        reply: dict[str, Any] = {"retcode": DONE}
        for request_id in self._logins(query.get("id")):
            if request_id not in self._dealer_results:
                continue  # subscription gone: the id is simply left out
            self._dealer_polls[request_id] += 1
            if self._dealer_polls[request_id] <= self.dealer_pending_polls:
                reply[str(request_id)] = []
                continue
            answer = self._dealer_results.pop(request_id)  # a final result ends the subscription
            confirm = {
                "ID": str(request_id),
                "Retcode": answer["ResultRetcode"],
                "DealID": answer.get("ResultDeal", ""),
                "OrderID": answer["ResultOrder"],
                "Volume": answer["ResultVolume"],
                "Price": answer["ResultPrice"],
                "TickBid": answer["ResultMarketBid"],
                "TickAsk": answer["ResultMarketAsk"],
                "Comment": "",
            }
            reply[str(request_id)] = [{"result": confirm}, {"answer": {"ID": str(request_id), **answer}}]
        return reply
