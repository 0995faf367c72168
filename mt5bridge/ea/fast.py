"""The EA's lean ASGI path: heartbeat, command poll and command-ack without Django's middleware stack and DRF.

Thousands of EAs beat every second, and a steady-state beat touches Redis only; running it through
session, CSRF, message, locale and DRF machinery cost more than the beat itself. This ASGI layer sits in
front of Django (``config/asgi.py``), reads the body with the same size cap, and calls the same service
functions as the DRF views in ``mt5bridge.ea.api`` (token auth, wrong-token limit per IP, per-account throttle,
``heartbeat_process``, ``commands_deliver``, ``command_results_apply``) in a small thread pool, answering with
the same JSON bodies and status codes.

Before any of that, the Host header is checked against ``ALLOWED_HOSTS`` as Django does (a dictionary lookup once
a host has been seen), and a request is authenticated and counted against the per-account throttle before its
body is read: a throttled, unauthenticated or misaddressed request costs neither the read nor the parse.

The command poll's long wait (``?wait=N``) holds no thread here: between two deliveries the request only awaits
an ``asyncio.Event``, set by one Redis subscription per process (``store.wake_channel``, published when commands
are cached). The DRF view blocks a thread per waiting EA instead. Every other request, all three when
``EA_FAST_PATH`` is off, and the poll without Redis (the embedded default) go to Django unchanged.
"""

from __future__ import annotations

import asyncio
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import close_old_connections
from django.http import QueryDict
from django.http.request import split_domain_port, validate_host

from config.errors import error_body
from config.net import scope_client_ip
from mt5bridge import commands as cq
from mt5bridge.ea import persist, services, store, wakeups
from mt5bridge.ea.protocol import ProtocolError, decode_ack, decode_heartbeat, parse_poll
from mt5bridge.ea.state import state_fingerprint, state_to_json

logger = logging.getLogger(__name__)

HEARTBEAT_PATHS = frozenset({"/api/ea/heartbeat", "/api/ea/heartbeat/"})
# Exactly the DRF routes (no trailing-slash variants there either).
POLL_PATH = "/api/ea/commands"
ACK_PATH = "/api/ea/command-ack"
# While the wake-up subscription is (re)connecting, a waiting poll looks at its queue this often.
UNSUBSCRIBED_RECHECK_SECONDS = 1.0


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str, headers: list | None = None):
        self.status, self.code, self.message, self.headers = status, code, message, headers or []


def _headers(scope) -> dict[bytes, bytes]:
    return {k.lower(): v for k, v in scope.get("headers", [])}


def _token(headers: dict[bytes, bytes]) -> str | None:
    auth = headers.get(b"authorization", b"").decode("latin-1")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return headers.get(b"x-ea-token", b"").decode("latin-1") or None


# --- the Host header, as Django checks it ---

_BAD_HOST = (400, error_body("bad_request", "Bad request."), [])  # what Django's handler400 answers (config.errors)
HOSTS_SEEN_MAX = 1024
_hosts_seen: dict[bytes, bool] = {}
_hosts_seen_for: tuple = ()  # the (ALLOWED_HOSTS, DEBUG) the answers in _hosts_seen were given under


def host_allowed(scope, headers: dict[bytes, bytes]) -> bool:
    """``HttpRequest.get_host()``'s check (``validate_host`` against ``ALLOWED_HOSTS``; with DEBUG and no hosts, the
    local names), remembered per Host value so that a steady EA costs one dictionary lookup."""
    global _hosts_seen_for
    allowed, debug = settings.ALLOWED_HOSTS, settings.DEBUG
    if not _hosts_seen_for or _hosts_seen_for[0] is not allowed or _hosts_seen_for[1] != debug:
        _hosts_seen.clear()
        _hosts_seen_for = (allowed, debug)
    raw = (settings.USE_X_FORWARDED_HOST and headers.get(b"x-forwarded-host")) or headers.get(b"host")
    if raw is None:  # HTTP/1.0 without Host: Django falls back to the server's name and port
        name, port = scope.get("server") or ("unknown", None)
        default = 443 if scope.get("scheme") == "https" else 80
        raw = (name if port in (None, default) else f"{name}:{port}").encode("latin-1")
    answer = _hosts_seen.get(raw)
    if answer is None:
        domain, _ = split_domain_port(raw.decode("latin-1"))
        answer = bool(domain) and validate_host(
            domain, allowed or ([".localhost", "127.0.0.1", "[::1]"] if debug else [])
        )
        if len(_hosts_seen) < HOSTS_SEEN_MAX:  # a flood of made-up hosts is checked each time, not remembered
            _hosts_seen[raw] = answer
    return answer


# --- authentication and the throttle, before the body is read ---


def _authorize(token: str | None, ip: str, *, throttle: bool = True) -> services.EAClient:
    """What ``EAView.initial`` does: EA token auth, the wrong-token limit per IP, then the per-account throttle
    (``throttle=False`` once ``admit`` has counted this request)."""
    if not token:
        raise _Refused(401, "not_authenticated", "An EA token is required (Authorization: Bearer <token>).", _CHALLENGE)
    client = services.ea_authenticate(token)
    if client is None:
        if not services.bad_token_allows(ip):
            raise _Refused(429, "throttled", "Too many wrong EA tokens from this address.")
        raise _Refused(401, "authentication_failed", "The EA token is wrong or has been revoked.", _CHALLENGE)
    if throttle and not services.ea_throttle_allows(client):
        raise _Refused(429, "throttled", THROTTLED_MESSAGE, [(b"retry-after", b"1")])
    return client


def admit(token: str | None, ip: str) -> services.EAClient | tuple[int, dict, list]:
    """Authenticate and throttle a POST before its body is read (worker thread): the client, or the refusal."""
    close_old_connections()
    try:
        return _authorize(token, ip)
    except _Refused as exc:
        return exc.status, error_body(exc.code, exc.message), exc.headers
    finally:
        close_old_connections()


def beat(token: str | None, ip: str, body: bytes, client: services.EAClient | None = None) -> tuple[int, dict, list]:
    """Process one heartbeat whose request was throttled before its body was read (worker thread, like a sync Django
    view). ``client`` is who ``admit`` just authenticated; without it (a token known to this process, whose steady
    path could not answer) the token is authenticated again."""
    close_old_connections()
    try:
        client = client or _authorize(token, ip, throttle=False)
        _remember(token, client)
        try:
            return 200, services.heartbeat_process(client=client, body=body), []
        except ProtocolError as exc:
            return 400, error_body("protocol_error", exc.message, {"field": exc.field}), []
    except _Refused as exc:
        return exc.status, error_body(exc.code, exc.message), exc.headers
    finally:
        close_old_connections()


def ack(token: str | None, ip: str, body: bytes, client: services.EAClient | None = None) -> tuple[int, dict, list]:
    """Apply one ``command-ack`` whose request ``admit`` authenticated and throttled (worker thread)."""
    close_old_connections()
    try:
        client = client or _authorize(token, ip, throttle=False)
        try:
            results = decode_ack(body)
        except ProtocolError as exc:
            return 400, error_body("protocol_error", exc.message, {"field": exc.field}), []
        outcomes = cq.command_results_apply(account_id=client.account_id, results=results)
        return 200, services.ack_reply(outcomes), []
    except _Refused as exc:
        return exc.status, error_body(exc.code, exc.message), exc.headers
    finally:
        close_old_connections()


_CHALLENGE = [(b"www-authenticate", b'Bearer realm="ea"')]
THROTTLED_MESSAGE = "Request was throttled. Expected available in 1 second."
_THROTTLED = (429, error_body("throttled", THROTTLED_MESSAGE), [(b"retry-after", b"1")])


# --- the steady heartbeat, answered on the event loop ---

# Token hash → the EA client it authenticated as in this process. Only a hint: the beat script writes nothing
# unless Redis's token cache still holds the same account (revoking or rotating a token deletes that entry).
_known: dict[str, services.EAClient] = {}
KNOWN_MAX = 200_000
# Larger bodies (hundreds of positions) are parsed in a worker thread, not on the event loop.
STEADY_MAX_BYTES = 64 * 1024


def _hashed(token: str | None) -> str | None:
    canonical = services.canonical_token(token) if token else None
    return services.token_hash(canonical) if canonical else None


def _remember(token: str | None, client: services.EAClient) -> None:
    hashed = _hashed(token)
    if hashed is None:
        return
    if len(_known) >= KNOWN_MAX:
        _known.clear()
    _known[hashed] = client


def _finish(client, beat_, fingerprint, swapped) -> tuple[int, dict, list]:
    """The rest of a beat whose Redis work is done (worker thread): what ``heartbeat_finish`` does."""
    close_old_connections()
    try:
        reply = services.heartbeat_finish(
            client,
            beat_,
            fingerprint,
            swapped["previous"],
            swapped["meta"],
            swapped["beats"],
            swapped["queued"],
            swapped["epoch"],
        )
        return 200, reply, []
    finally:
        close_old_connections()


RECONCILE_BATCH_SECONDS = 0.25


class _Later:
    """Periodic work that fell due on this event loop's steady beats, done for all of them together in a worker
    thread every RECONCILE_BATCH_SECONDS while their beats are answered at once: the queue checks (Redis vs
    PostgreSQL, one query per batch) and the state's cadence writes to PostgreSQL."""

    def __init__(self, pool):
        self.pool, self.checks, self.writes, self.scheduled = pool, set(), {}, False

    def check(self, account_id: str) -> None:
        self.checks.add(account_id)
        self._schedule()

    def write(self, account_id: str, item: tuple) -> None:
        self.writes[account_id] = item  # the account's latest beat wins
        self._schedule()

    def _schedule(self) -> None:
        if not self.scheduled:
            self.scheduled = True
            asyncio.get_running_loop().call_later(RECONCILE_BATCH_SECONDS, self._flush)

    def _flush(self) -> None:
        checks, writes = self.checks, list(self.writes.values())
        self.checks, self.writes, self.scheduled = set(), {}, False
        asyncio.get_running_loop().run_in_executor(self.pool, _periodic_work, checks, writes)


def _periodic_work(checks, writes) -> None:
    # After a failure each is due again: a write on the account's next beat, a queue check after
    # EA_QUEUE_RECONCILE_SECONDS.
    close_old_connections()
    try:
        for work, items in ((persist.states_persist, writes), (cq.queues_reconcile, checks)):
            if items:
                try:
                    work(items)
                except Exception:
                    logger.exception("%s of %d accounts failed", work.__name__, len(items))
    finally:
        close_old_connections()


_later: dict = {}


def later(pool) -> _Later:
    loop = asyncio.get_running_loop()
    for closed in [known for known in _later if known.is_closed()]:
        del _later[closed]
    if loop not in _later:
        _later[loop] = _Later(pool)
    return _later[loop]


def known_client(token: str | None) -> tuple[str, services.EAClient] | None:
    """(token hash, client) when this process has seen the token authenticate: a hint only (see ``_known``)."""
    hashed = _hashed(token)
    client = _known.get(hashed) if hashed else None
    return (hashed, client) if client is not None else None


async def steady_beat(pool, token: str | None, body: bytes) -> tuple[int, dict, list] | None:
    """A heartbeat from a known token, already counted against its throttle, validated and stored with one Redis
    round trip on the event loop; the beats that need more (the database, the copy/rules engine, a live push,
    commands) continue in ``pool``.

    None when the full path must answer: an unknown or stale token, a body the parser refuses (the full path
    authenticates first, so a bad token gets its 401 before any 400), command results to apply.
    """
    known = known_client(token)
    if known is None or len(body) > STEADY_MAX_BYTES:
        return None
    hashed, client = known
    received_at = datetime.now(UTC)
    try:
        beat_ = decode_heartbeat(body, account_id=client.account_id, login=client.login, received_at=received_at)
    except ProtocolError:
        return None
    if beat_.results:
        return None
    state = beat_.state
    fingerprint = state_fingerprint(state)
    outcome, swapped = await store.beat_swap(
        token_hash=hashed,
        expected=f"{client.account_id}|{client.login}|{client.owner_id}",
        account_id=client.account_id,
        owner_id=client.owner_id,
        state_json=state_to_json(state),
        at=received_at.timestamp(),
        throttle=0,  # counted before the body was read (EAFastPath.post)
    )
    if outcome == "stale":
        _known.pop(hashed, None)
        return None
    check, queued = swapped["queued"]
    if check and not queued:
        # The periodic queue check of an account with nothing queued: batched, off this beat's path.
        later(pool).check(client.account_id)
        swapped["queued"] = [None, queued]
    gate = services.heartbeat_quiet(
        client,
        beat_,
        fingerprint,
        swapped["previous"],
        swapped["meta"],
        swapped["queued"],
        swapped["watched"],
        swapped["epoch"],
        persist_deferred=True,
    )
    if gate is not None:
        allowed, reason = gate
        if services.persist_due(swapped["meta"], received_at.timestamp()):
            later(pool).write(client.account_id, (client, beat_, fingerprint, swapped["beats"], reason))
        return 200, services.poll_reply(allowed=allowed, reason=reason, commands=[]), []
    return await asyncio.get_running_loop().run_in_executor(pool, _finish, client, beat_, fingerprint, swapped)


# --- the command poll ---


@dataclass(frozen=True)
class _Poll:
    client: services.EAClient
    wait: int
    limit: int
    allowed: bool
    reason: str


def poll_open(token: str | None, ip: str, query_string: bytes) -> _Poll | tuple[int, dict, list]:
    """Authenticate and throttle a poll, read ``wait``/``max`` and ask the billing gate, in the DRF view's order
    (worker thread). Returns the poll, or the refusal to send as (status, body, headers)."""
    close_old_connections()
    try:
        client = _authorize(token, ip)
        query = QueryDict(query_string.decode("utf-8", "replace"))
        try:
            wait, limit = parse_poll(query.get("wait"), query.get("max"), max_wait=settings.EA_LONG_POLL_MAX_SECONDS)
        except ProtocolError as exc:
            return 400, error_body("protocol_error", exc.message, {"field": exc.field}), []
        allowed, reason = services.ea_poll_access(client)
        return _Poll(client, wait, limit, allowed, reason)
    except _Refused as exc:
        return exc.status, error_body(exc.code, exc.message), exc.headers
    finally:
        close_old_connections()


def poll_deliver(poll: _Poll) -> list[dict]:
    """The commands due for the poll's account, marked delivered (worker thread; the same call as the DRF view)."""
    close_old_connections()
    try:
        return cq.commands_deliver(account_id=poll.client.account_id, limit=poll.limit)
    finally:
        close_old_connections()


async def _disconnected(receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class EAFastPath:
    """ASGI middleware: serve the heartbeat, the command poll and the ack itself, pass everything else to ``app``."""

    def __init__(self, app, *, threads: int | None = None):
        self.app = app
        self.pool = ThreadPoolExecutor(max_workers=threads or settings.EA_FAST_PATH_THREADS, thread_name_prefix="ea")

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and settings.EA_FAST_PATH:
            path, method = scope["path"], scope["method"]
            if path in HEARTBEAT_PATHS or path == POLL_PATH or path == ACK_PATH:
                headers = _headers(scope)
                if not host_allowed(scope, headers):
                    return await _respond(send, *_BAD_HOST)
                if path in HEARTBEAT_PATHS:
                    if method != "POST":
                        return await _respond(
                            send, 405, error_body("method_not_allowed", f'Method "{method}" not allowed.')
                        )
                    steady = bool(settings.REDIS_URL)
                    return await self.post(beat, "heartbeat", scope, headers, receive, send, steady=steady)
                # Other methods get DRF's answer (405 after authentication); without Redis the DRF view polls the
                # database.
                if path == POLL_PATH and method == "GET" and settings.REDIS_URL:
                    return await self.poll(scope, headers, receive, send)
                if path == ACK_PATH and method == "POST":
                    return await self.post(ack, "command-ack", scope, headers, receive, send)
        return await self.app(scope, receive, send)

    async def post(self, handler, name: str, scope, headers, receive, send, *, steady: bool = False):
        """Authenticate and count the throttle, then read the body (``EA_MAX_BODY_BYTES`` cap, checked from
        Content-Length first) and run ``handler`` (with ``steady``, a heartbeat first tries ``steady_beat``).

        A refused request is answered before its body is read: a token this process knows is counted on the event
        loop (one Redis call, batched with its neighbours), any other goes through ``admit`` in a worker thread.
        """
        token, ip = _token(headers), scope_client_ip(scope)
        loop = asyncio.get_running_loop()
        client = None
        try:
            known = known_client(token) if steady else None
            if known is not None:
                if not await store.throttle_hit(
                    account_id=known[1].account_id, at=store.now(), limit=settings.EA_THROTTLE_PER_SECOND
                ):
                    return await _respond(send, *_THROTTLED)
            else:
                admitted = await loop.run_in_executor(self.pool, admit, token, ip)
                if isinstance(admitted, tuple):
                    return await _respond(send, *admitted)
                client = admitted
        except Exception:
            logger.exception("%s failed", name)
            return await _respond(send, 500, error_body("server_error", "Server error."))
        limit = settings.EA_MAX_BODY_BYTES
        try:
            declared = int(headers.get(b"content-length", b"0") or 0)
        except ValueError:
            declared = 0
        if declared > limit:
            return await _respond(send, 413, _too_large())
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return await _respond(send, 413, _too_large())
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        try:
            answer = await steady_beat(self.pool, token, body) if steady and client is None else None
            if answer is None:
                answer = await loop.run_in_executor(self.pool, handler, token, ip, body, client)
            status, payload, extra = answer
        except Exception:
            logger.exception("%s failed", name)
            status, payload, extra = 500, error_body("server_error", "Server error."), []
        await _respond(send, status, payload, extra)

    async def poll(self, scope, headers, receive, send):
        while True:  # a GET body is ignored, as Django does; read it so that receive() then reports a disconnect
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            if not message.get("more_body"):
                break
        ip = scope_client_ip(scope)
        loop = asyncio.get_running_loop()
        try:
            opened = await loop.run_in_executor(
                self.pool, poll_open, _token(headers), ip, scope.get("query_string", b"")
            )
            if isinstance(opened, tuple):
                return await _respond(send, *opened)
            commands = await self._commands(opened, receive) if opened.allowed else []
            if commands is None:  # the EA hung up while waiting
                return
            status, payload = 200, services.poll_reply(allowed=opened.allowed, reason=opened.reason, commands=commands)
        except Exception:
            logger.exception("command poll failed")
            status, payload = 500, error_body("server_error", "Server error.")
        await _respond(send, status, payload)

    async def _commands(self, poll: _Poll, receive) -> list[dict] | None:
        """Deliver what is due; with ``wait``, wait for a wake-up (or the EA hanging up → None) and look again."""
        loop = asyncio.get_running_loop()
        if not poll.wait:
            return await loop.run_in_executor(self.pool, poll_deliver, poll)
        hub = wakeups.wake_ups()
        account_id = poll.client.account_id
        woken = hub.register(account_id)
        hung_up = loop.create_task(_disconnected(receive))
        try:
            async with hub.turn(account_id):
                commands = await loop.run_in_executor(self.pool, poll_deliver, poll)
            deadline = loop.time() + poll.wait
            while not commands:
                left = deadline - loop.time()
                if left <= 0:
                    return []
                if not hub.listening.is_set():
                    left = min(left, UNSUBSCRIBED_RECHECK_SECONDS)
                woke = loop.create_task(woken.wait())
                done, _ = await asyncio.wait({woke, hung_up}, timeout=left, return_when=asyncio.FIRST_COMPLETED)
                woke.cancel()
                if hung_up in done:
                    return None
                if woke not in done and hub.listening.is_set():
                    continue  # the wait is over (checked above); nothing came
                woken.clear()
                async with hub.turn(account_id):
                    commands = await loop.run_in_executor(self.pool, poll_deliver, poll)
            return commands
        finally:
            hub.unregister(account_id, woken)
            hung_up.cancel()


def _too_large() -> dict:
    return error_body("too_large", "The body is larger than the protocol allows.")


async def _respond(send, status: int, payload: dict, extra: list | None = None) -> None:
    body = json.dumps(payload, separators=(",", ":"), default=str).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"cache-control", b"no-store"),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
