"""One authenticated keep-alive session with an MT5 Web API access server: login, retries, redaction."""

from __future__ import annotations

import hmac
import json
import logging
import os
import random
import ssl
import threading
import time
from collections.abc import Callable, Container
from typing import Any, Self

import httpx

from .types import GatewayError, GatewayUnavailable, NotFound
from .webapi import (
    ANY_RETCODE,
    RET_ERR_NOTFOUND,
    RET_OK,
    RET_OK_NONE,
    SESSION_RETCODES,
    TRANSIENT_UNEXECUTED_RETCODES,
    TRANSIENT_UNKNOWN_RETCODES,
    WEBAPI_VERSION,
    SessionLost,
    Transient,
    as_list,
    cli_rand_answer,
    parse_retcode,
    password_hash,
    srv_rand_answer,
    to_str,
)

logger = logging.getLogger(__name__)

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


class WebAPIClient:
    """The transport of ``ManagerGateway``: every call serialised on one connection, logged in on demand.

    The access server ties the login (and the dealer-request subscriptions) to the connection.
    Idempotent calls are retried with exponential backoff and jitter; the others only when the
    server cannot have run them.
    """

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
        self.agent = agent.replace(" ", "_")  # the access server refuses agents with spaces
        self._pass_hash = password_hash(password or "")  # the plain password is not kept
        self._sleep = sleep
        self._lock = threading.RLock()
        self._authenticated = False
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
        return f"{type(self).__name__}(base_url={self.base_url!r}, login={self.manager_login})"

    # --- lifecycle ---

    def close(self) -> None:
        with self._lock:
            self._authenticated = False
            self._client.close()

    def __enter__(self) -> Self:
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
        accept: Container[int],
    ) -> dict[str, Any]:
        content = headers = None
        if body is not None:
            content = json.dumps(body, separators=(",", ":")).encode()
            headers = {"Content-Type": self.body_content_type}
        try:
            response = self._client.request(method, path, params=params, content=content, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise Transient(f"cannot connect ({type(exc).__name__})", maybe_executed=False) from None
        except httpx.TimeoutException as exc:
            raise Transient(f"no reply within {self.timeout:g}s ({type(exc).__name__})", maybe_executed=True) from None
        except httpx.TransportError as exc:
            raise Transient(f"connection broke ({type(exc).__name__})", maybe_executed=True) from None

        status = response.status_code
        if status in (401, 403):
            raise SessionLost(f"HTTP {status}")
        if status >= 500:
            raise Transient(f"HTTP {status}", maybe_executed=True)
        if status >= 400:
            raise GatewayError(f"MT5 bridge answered HTTP {status} to {path}")
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict) or "retcode" not in data:
            # A mangled reply (a proxy's error page, a cut-off body) says nothing about whether
            # the command ran: treat it like a lost reply.
            raise Transient("unreadable reply", maybe_executed=True)

        code, text = parse_retcode(data.get("retcode"))
        logger.debug("MT5 %s %s -> %s", method, path, data.get("retcode"))
        if code in (RET_OK, RET_OK_NONE) or code in accept:
            return data
        described = f"{code} {text}".strip()
        if code in SESSION_RETCODES:
            raise SessionLost(described)
        if code in TRANSIENT_UNEXECUTED_RETCODES:
            raise Transient(described, maybe_executed=False)
        if code in TRANSIENT_UNKNOWN_RETCODES:
            raise Transient(described, maybe_executed=True)
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
                ANY_RETCODE,
            )
            code, text = parse_retcode(start.get("retcode"))
            if code != RET_OK:
                raise GatewayError(f"MT5 bridge refused manager {self.manager_login}: {code} {text}".strip())
            srv_rand = to_str(start.get("srv_rand"))
            try:
                proof = srv_rand_answer(self._pass_hash, srv_rand)
            except ValueError:
                raise GatewayError("MT5 bridge sent a malformed srv_rand") from None
            cli_rand = os.urandom(16)
            answer = self._send(
                "GET", "/api/auth/answer", {"srv_rand_answer": proof, "cli_rand": cli_rand.hex()}, None, ANY_RETCODE
            )
        except SessionLost as exc:
            raise GatewayError(f"MT5 bridge refused manager {self.manager_login} ({exc})") from None
        except Transient as exc:
            # Nothing but the handshake was sent: whatever comes next is safe to repeat.
            raise Transient(f"login: {exc}", maybe_executed=False) from None
        code, text = parse_retcode(answer.get("retcode"))
        if code != RET_OK:
            # Manager credentials are configuration, not a trader's password: GatewayError, so
            # callers never tell a trader "wrong password" because the bridge account is wrong.
            raise GatewayError(f"MT5 bridge refused manager {self.manager_login}: {code} {text}".strip())
        expected = cli_rand_answer(self._pass_hash, cli_rand)
        if not hmac.compare_digest(to_str(answer.get("cli_rand_answer")).lower(), expected):
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
        accept: Container[int] = (),
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
                except SessionLost as exc:
                    # The command was refused before it ran, so replaying it is safe even for money.
                    self._authenticated = False
                    if relogged:
                        raise GatewayError(f"MT5 refused {path} after a fresh manager login ({exc})") from None
                    relogged = True
                    logger.info("MT5 manager session lost on %s (%s); logging in again", path, exc)
                except Transient as exc:
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
            return as_list(self._answer("GET", path, params))
        except NotFound:
            return []
