"""The EA's three exchanges (heartbeat, command poll, command-ack) as the ASGI edge (``fast``) runs them.

Everything here is the protocol's, stated once for that edge: the DRF views in ``api`` do the same through DRF's
authentication and throttle hooks, and both run the heartbeat through ``pipeline``. Each function answers with
(status, body, headers) or with what the next step needs; the ones named "in a worker thread" touch the database.

A heartbeat whose token this process has seen authenticate is handled on the event loop: the swap (one Redis script,
batched with the loop's other beats) and ``pipeline.plan_beat``; a quiet plan is answered at once, periodic work
(``plan.deferrable``) goes to a batch, and any other plan runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import close_old_connections
from django.http import QueryDict

from config.caches import Memo
from config.errors import UNAVAILABLE_MESSAGE, error_body
from mt5bridge import commands as cq
from mt5bridge.ea import persist, pipeline, services, store, wakeups
from mt5bridge.ea.protocol import ProtocolError, decode_ack, decode_heartbeat, parse_poll
from mt5bridge.ea.state import state_fingerprint

logger = logging.getLogger(__name__)

CHALLENGE = [(b"www-authenticate", b'Bearer realm="ea"')]
THROTTLED_MESSAGE = "Request was throttled. Expected available in 1 second."
THROTTLED = (429, error_body("throttled", THROTTLED_MESSAGE), [(b"retry-after", b"1")])
SERVER_ERROR = (500, error_body("server_error", "Server error."), [])
UNAVAILABLE = (503, error_body("unavailable", UNAVAILABLE_MESSAGE), [(b"retry-after", b"1")])
# Larger bodies (hundreds of positions) are parsed in a worker thread, not on the event loop.
LOOP_MAX_BYTES = 64 * 1024
# While the wake-up subscription is (re)connecting, a waiting poll looks at its queue this often.
UNSUBSCRIBED_RECHECK_SECONDS = 1.0
BATCH_SECONDS = 0.25  # deferred periodic work of a loop's beats is done together this often


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str, headers: list | None = None):
        self.status, self.code, self.message, self.headers = status, code, message, headers or []

    def answer(self) -> tuple[int, dict, list]:
        return self.status, error_body(self.code, self.message), self.headers


def protocol_error(exc: ProtocolError) -> tuple[int, dict, list]:
    return 400, error_body("protocol_error", exc.message, {"field": exc.field}), []


def token_of(headers: dict[bytes, bytes]) -> str | None:
    """``Authorization: Bearer <token>`` or ``X-EA-Token`` (as ``api.extract_token``)."""
    auth = headers.get(b"authorization", b"").decode("latin-1")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return headers.get(b"x-ea-token", b"").decode("latin-1") or None


# --- authentication and the throttle ---

# Token hash → the EA client it authenticated as in this process. Only a hint: the swap writes nothing unless
# Redis's token cache still holds the same account (revoking or rotating a token deletes that entry).
KNOWN: Memo[services.EAClient] = Memo("mt5bridge.ea.known_tokens", size=200_000)


def _hashed(token: str | None) -> str | None:
    canonical = services.canonical_token(token) if token else None
    return services.token_hash(canonical) if canonical else None


def known_client(token: str | None) -> tuple[str, services.EAClient] | None:
    """(token hash, client) when this process has seen the token authenticate."""
    hashed = _hashed(token)
    client = KNOWN.peek(hashed) if hashed else None
    return (hashed, client) if client is not None else None


def authorize(token: str | None, ip: str, *, throttle: bool = True) -> services.EAClient:
    """What ``api.EAView.initial`` does: token auth, the wrong-token limit per IP, the per-account throttle."""
    if not token:
        raise Refused(401, "not_authenticated", "An EA token is required (Authorization: Bearer <token>).", CHALLENGE)
    client = services.ea_authenticate(token)
    if client is None:
        if not services.bad_token_allows(ip):
            raise Refused(429, "throttled", "Too many wrong EA tokens from this address.")
        raise Refused(401, "authentication_failed", "The EA token is wrong or has been revoked.", CHALLENGE)
    if throttle and not services.ea_throttle_allows(client):
        raise Refused(429, "throttled", THROTTLED_MESSAGE, [(b"retry-after", b"1")])
    hashed = _hashed(token)
    if hashed:
        KNOWN.put(hashed, client)
    return client


def in_thread(work):
    """Run ``work`` as a sync Django view runs: stale connections closed before and after, refusals answered."""

    def run(*args):
        close_old_connections()
        try:
            return work(*args)
        except Refused as exc:
            return exc.answer()
        except ProtocolError as exc:
            return protocol_error(exc)
        finally:
            close_old_connections()

    return run


@in_thread
def admit(token: str | None, ip: str) -> services.EAClient:
    """Authenticate and throttle a POST before its body is read (worker thread)."""
    return authorize(token, ip)


async def admit_known(token: str | None) -> bool | None:
    """Count a known token's request against its throttle on the event loop: True/False, or None if unknown."""
    known = known_client(token)
    if known is None:
        return None
    return await store.throttle_hit(
        account_id=known[1].account_id, at=store.now(), limit=settings.EA_THROTTLE_PER_SECOND
    )


# --- the heartbeat ---


@in_thread
def beat(token: str | None, ip: str, body: bytes, client: services.EAClient | None = None) -> tuple[int, dict, list]:
    """A heartbeat through the whole pipeline in this worker thread (``client``: who ``admit`` just authenticated)."""
    client = client or authorize(token, ip, throttle=False)
    return 200, pipeline.heartbeat_process(client=client, body=body), []


@in_thread
def _run(client, beat_, fingerprint, ctx, plan) -> tuple[int, dict, list]:
    return 200, pipeline.run_plan(client, beat_, fingerprint, ctx, plan), []


async def beat_on_loop(pool, token: str | None, body: bytes) -> tuple[int, dict, list] | None:
    """A known token's heartbeat (throttle already counted): decode, swap and plan on the event loop. None when the
    thread path must answer: an unknown or moved token, a large body, or one the parser refuses (the thread path
    authenticates first, so a bad token gets its 401 before any 400)."""
    known = known_client(token)
    if known is None or len(body) > LOOP_MAX_BYTES:
        return None
    hashed, client = known
    try:
        beat_ = decode_heartbeat(body, account_id=client.account_id, login=client.login, received_at=datetime.now(UTC))
    except ProtocolError:
        return None
    fingerprint = state_fingerprint(beat_.state)
    expected = f"{client.account_id}|{client.login}|{client.owner_id}"
    try:
        outcome, swapped = await store.beat_swap(**pipeline.swap_call(client, beat_, hashed, expected))
    except Exception:
        with contextlib.suppress(Exception):  # the script may have run: see store.state_forget
            await asyncio.wait_for(store.state_forget_async(client.account_id), 10)
        raise
    if swapped is None:
        KNOWN.discard(hashed)
        return None
    ctx = pipeline.context_of(client.account_id, swapped)
    plan = pipeline.plan_beat(beat_, fingerprint, ctx, pipeline.Timing.from_settings())
    if not plan.deferrable:
        return await asyncio.get_running_loop().run_in_executor(pool, _run, client, beat_, fingerprint, ctx, plan)
    if plan.persist:
        batch(pool).write(persist.StateWrite(client, beat_, fingerprint, ctx.beats, plan.reason))
    if plan.check_queue:
        batch(pool).check(client.account_id)
    if plan.refresh_gate:
        batch(pool).refresh(client)
    return 200, pipeline.poll_reply(allowed=plan.allowed, reason=plan.reason, commands=[]), []


class _Batch:
    """Deferred periodic work of one event loop's beats, done together in a worker thread every BATCH_SECONDS: the
    cadence writes (``persist.states_write``, the account's latest beat wins), the queue checks (one query) and the
    gate's refreshes (``pipeline.gates_refresh``)."""

    def __init__(self, pool):
        self.pool, self.checks, self.writes, self.refreshes, self.scheduled = pool, set(), {}, {}, False

    def refresh(self, client: services.EAClient) -> None:
        self.refreshes[client.account_id] = client
        self._schedule()

    def write(self, item: persist.StateWrite) -> None:
        self.writes[item.client.account_id] = item
        self._schedule()

    def check(self, account_id: str) -> None:
        self.checks.add(account_id)
        self._schedule()

    def _schedule(self) -> None:
        if not self.scheduled:
            self.scheduled = True
            asyncio.get_running_loop().call_later(BATCH_SECONDS, self._flush)

    def _flush(self) -> None:
        work = [
            (persist.states_write, list(self.writes.values())),
            (cq.queues_reconcile, self.checks),
            (pipeline.gates_refresh, list(self.refreshes.values())),
        ]
        self.writes, self.checks, self.refreshes, self.scheduled = {}, set(), {}, False
        asyncio.get_running_loop().run_in_executor(self.pool, _batch_work, work)


def _batch_work(batches) -> None:
    # After a failure each is due again: a write on the account's next beat, a check after EA_QUEUE_RECONCILE_SECONDS,
    # a gate refresh on the next beat (its answer is still old).
    close_old_connections()
    try:
        for work, items in batches:
            if items:
                try:
                    work(items)
                except Exception:
                    logger.exception("%s of %d accounts failed", work.__name__, len(items))
    finally:
        close_old_connections()


_batches: dict = {}


def batch(pool) -> _Batch:
    loop = asyncio.get_running_loop()
    for closed in [known for known in _batches if known.is_closed()]:
        del _batches[closed]
    if loop not in _batches:
        _batches[loop] = _Batch(pool)
    return _batches[loop]


@in_thread
def ack(token: str | None, ip: str, body: bytes, client: services.EAClient | None = None) -> tuple[int, dict, list]:
    """Apply one ``command-ack`` whose request ``admit`` authenticated and throttled (worker thread)."""
    client = client or authorize(token, ip, throttle=False)
    outcomes = cq.command_results_apply(account_id=client.account_id, results=decode_ack(body))
    return 200, services.ack_reply(outcomes), []


# --- the command poll ---


@dataclass(frozen=True)
class Poll:
    client: services.EAClient
    wait: int
    limit: int
    allowed: bool
    reason: str


@in_thread
def poll_open(token: str | None, ip: str, query_string: bytes) -> Poll:
    """Authenticate and throttle a poll, read ``wait``/``max`` and ask the gate, in the DRF view's order."""
    client = authorize(token, ip)
    query = QueryDict(query_string.decode("utf-8", "replace"))
    wait, limit = parse_poll(query.get("wait"), query.get("max"), max_wait=settings.EA_LONG_POLL_MAX_SECONDS)
    allowed, reason = services.ea_poll_access(client)
    return Poll(client, wait, limit, allowed, reason)


@in_thread
def deliver(account_id: str, limit: int) -> list[dict]:
    """The commands due for the account, marked delivered (worker thread; the same call as the DRF view's)."""
    return cq.commands_deliver(account_id=account_id, limit=limit)


async def wait_for_commands(account_id: str, seconds: float, deliver, hung_up: asyncio.Future | None = None):
    """The one long poll (both edges): the commands ``deliver()`` hands out, waiting up to ``seconds`` for one to be
    queued; None if ``hung_up`` completes first. A wake-up comes from the event loop's one Redis subscription
    (``wakeups``); polls of one account look at the queue one at a time, so a wake-up hands a command to one of them.
    Without Redis the queue is read every 0.25 s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    if store.async_client() is None:
        while not (commands := await deliver()) and (left := deadline - loop.time()) > 0:
            await asyncio.sleep(min(left, 0.25))
        return commands
    hub = wakeups.wake_ups()
    woken = hub.register(account_id)
    try:
        async with hub.turn(account_id):
            commands = await deliver()
        while not commands:
            left = deadline - loop.time()
            if left <= 0:
                return []
            if not hub.listening.is_set():
                left = min(left, UNSUBSCRIBED_RECHECK_SECONDS)
            woke = loop.create_task(woken.wait())
            waiting = {woke} if hung_up is None else {woke, hung_up}
            done, _ = await asyncio.wait(waiting, timeout=left, return_when=asyncio.FIRST_COMPLETED)
            woke.cancel()
            if hung_up is not None and hung_up in done:
                return None
            if woke not in done and hub.listening.is_set():
                continue  # the wait is over (checked above); nothing came
            woken.clear()
            async with hub.turn(account_id):
                commands = await deliver()
        return commands
    finally:
        hub.unregister(account_id, woken)
