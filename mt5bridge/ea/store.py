"""Redis side of the EA protocol: token cache, live state, throttle counters and the pending-command cache.

Redis is the fast path only; every command is durable in PostgreSQL first. With no Redis configured
(the embedded default) ``client()`` is None and callers fall back to the database.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from functools import cache

import redis
import redis.asyncio as aredis
from django.conf import settings
from redis.exceptions import NoScriptError


@cache
def client():
    """One connection pool per process (decode_responses for plain str values)."""
    if not settings.REDIS_URL:
        return None
    return redis.Redis.from_url(
        settings.REDIS_URL, decode_responses=True, max_connections=settings.EA_REDIS_MAX_CONNECTIONS
    )


_async_clients: dict = {}


def async_client():
    """The asyncio client of the running event loop, or None without Redis.

    One pool per event loop: an ASGI server process runs one loop, so that is one pool per process; a pool's
    connections belong to the loop that opened them, and a test starts a loop per request.
    """
    if not settings.REDIS_URL:
        return None
    loop = asyncio.get_running_loop()
    for closed in [known for known in _async_clients if known.is_closed()]:
        del _async_clients[closed]
    if loop not in _async_clients:
        _async_clients[loop] = aredis.Redis.from_url(
            settings.REDIS_URL, decode_responses=True, max_connections=settings.EA_REDIS_MAX_CONNECTIONS
        )
    return _async_clients[loop]


def reset_clients() -> None:
    """Forget pooled connections (tests that change REDIS_URL, forked processes)."""
    client.cache_clear()
    _beat_script.cache_clear()
    _async_clients.clear()
    _beat_batches.clear()


def _p() -> str:
    return f"{settings.CACHE_KEY_PREFIX}:ea"


def token_key(token_hash: str) -> str:
    return f"{_p()}:tok:{token_hash}"


def state_key(account_id) -> str:
    return f"{_p()}:st:{account_id}"


def meta_key(account_id) -> str:
    return f"{_p()}:meta:{account_id}"


def queue_key(account_id) -> str:
    return f"{_p()}:q:{account_id}"


def delivered_key(account_id) -> str:
    return f"{_p()}:dl:{account_id}"


def wake_channel() -> str:
    """Pub/sub channel announcing "account X has new commands" (message = the account id) to every waiting long
    poll (``edge.wait_for_commands``, on both edges, through the event loop's one subscription in ``wakeups``)."""
    return f"{_p()}:wake"


def reconcile_key(account_id) -> str:
    return f"{_p()}:qchk:{account_id}"


def throttle_key(account_id, window: int) -> str:
    return f"{_p()}:rl:{account_id}:{window}"


def bad_token_key(ip: str, window: int) -> str:
    return f"{_p()}:badtok:{ip}:{window}"


def gate_epoch_keys(owner_id) -> list[str]:
    """Counters bumped when billing gate answers may have changed: for every account (the plan catalog), and
    for one owner's accounts (their plan, or their accounts' number or state). A cached answer is good only under
    the counters it was computed with."""
    return [f"{_p()}:gate:all", f"{_p()}:gate:owner:{owner_id}"]


def gate_epoch(values) -> str:
    """The epoch text of the two counters' values (as read by GET; missing = 0)."""
    return f"{values[0] or 0}:{values[1] or 0}"


# --- pending-command cache ---


def queue_push(payloads_by_account: dict[str, list[dict]]) -> None:
    """Cache freshly committed commands and wake any long poll waiting on their accounts."""
    r = client()
    if r is None or not payloads_by_account:
        return
    pipe = r.pipeline(transaction=False)
    for account_id, payloads in payloads_by_account.items():
        pipe.hset(queue_key(account_id), mapping={p["id"]: json.dumps(p, separators=(",", ":")) for p in payloads})
        pipe.publish(wake_channel(), account_id)
    pipe.execute()


def queue_remove(account_id, command_ids) -> None:
    r = client()
    ids = [str(c) for c in command_ids]
    if r is None or not ids:
        return
    pipe = r.pipeline(transaction=False)
    pipe.hdel(queue_key(account_id), *ids)
    pipe.hdel(delivered_key(account_id), *ids)
    pipe.execute()


def queue_replace(account_id, payloads: list[dict]) -> None:
    """Make the cache equal to the database's open commands (reconciliation after a crash or a Redis loss)."""
    queues_replace({account_id: payloads})


def queues_replace(payloads_by_account: dict) -> None:
    """``queue_replace`` for several accounts in one transaction; accounts that have commands get a wake-up."""
    r = client()
    if r is None or not payloads_by_account:
        return
    pipe = r.pipeline(transaction=True)
    for account_id, payloads in payloads_by_account.items():
        pipe.delete(queue_key(account_id))
        if payloads:
            mapping = {p["id"]: json.dumps(p, separators=(",", ":")) for p in payloads}
            pipe.hset(queue_key(account_id), mapping=mapping)
    pipe.execute()


# --- the one state writer: a heartbeat's Redis work in one script ---

# KEYS: token cache, throttle counter, state, meta, queue check, queue, live-watch counter, the two gate epochs.
# ARGV: the token cache value the caller expects ("" = the caller has just authenticated: no check), throttle limit
# (0: the caller counted it), state JSON, now, queue check period (s). Nothing is written unless the token still maps
# to the expected account (a revoked or rotated token's key is deleted, so it never matches) and the throttle
# allows the beat.
BEAT_SCRIPT = """
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then return {0} end
if tonumber(ARGV[2]) > 0 then
  local n = redis.call('INCR', KEYS[2])
  if n == 1 then redis.call('EXPIRE', KEYS[2], 2) end
  if n > tonumber(ARGV[2]) then return {1} end
end
local previous = redis.call('SET', KEYS[3], ARGV[3], 'GET', 'EX', 86400)
local meta = redis.call('HGETALL', KEYS[4])
redis.call('HSET', KEYS[4], 'seen', ARGV[4])
local beats = redis.call('HINCRBY', KEYS[4], 'beats', 1)
local check = redis.call('SET', KEYS[5], '1', 'NX', 'EX', ARGV[5])
local queue = redis.call('HGETALL', KEYS[6])
local watched = tonumber(redis.call('GET', KEYS[7]) or '0') > 0
local epoch = (redis.call('GET', KEYS[8]) or '0') .. ':' .. (redis.call('GET', KEYS[9]) or '0')
return {2, previous, meta, beats, check, queue, watched and 1 or 0, epoch}
"""


# Put a beat's state back to the one before it (KEYS: the state) unless a newer beat replaced it since. ARGV: the
# state the beat wrote, the previous one ("" = none: delete).
PUT_BACK_SCRIPT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2], 'EX', 86400) end
return 1
"""


# One request of an account in its one-second window (KEYS: the throttle counter); returns the count so far.
THROTTLE_SCRIPT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], 2) end
return n
"""


class _BeatBatch:
    """The beat scripts of one event loop's requests that reach Redis in the same loop turn go out as one pipeline:
    one write and one read for all of them. On this machine a loopback round trip costs more CPU (system calls)
    than the script itself, and at thousands of beats a second several are always ready together. One batch per
    client and script (the beat script, the throttle count)."""

    def __init__(self, r, script: str = BEAT_SCRIPT):
        self.r = r
        self.script = script
        self.sha = hashlib.sha1(script.encode()).hexdigest()
        self.waiting: list = []
        self.scheduled = False

    def call(self, keys: list, args: list) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.waiting.append((future, keys, args))
        if not self.scheduled:
            self.scheduled = True
            loop.call_soon(lambda: loop.create_task(self._flush()))
        return future

    async def _send(self, calls: list) -> list:
        pipe = self.r.pipeline(transaction=False)
        for _, keys, args in calls:
            pipe.evalsha(self.sha, len(keys), *keys, *args)
        return await pipe.execute(raise_on_error=False)

    async def _flush(self) -> None:
        calls, self.waiting, self.scheduled = self.waiting, [], False
        try:
            results = await self._send(calls)
            missing = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
            if missing:  # Redis restarted or flushed its scripts; a refused EVALSHA ran nothing, so resend
                await self.r.script_load(self.script)
                for i, result in zip(missing, await self._send([calls[i] for i in missing]), strict=True):
                    results[i] = result
        except BaseException as exc:
            for future, _, _ in calls:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else ConnectionError("cancelled"))
            if not isinstance(exc, Exception):
                raise
            return
        for (future, _, _), result in zip(calls, results, strict=True):
            if not future.done():
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)


_beat_batches: dict = {}


def _batch(r, script: str) -> _BeatBatch:
    batch = _beat_batches.get((id(r), script))
    if batch is None or batch.r is not r:
        batch = _beat_batches[(id(r), script)] = _BeatBatch(r, script)
    return batch


async def throttle_hit(*, account_id: str, at: float, limit: int) -> bool:
    """Count one EA request of the account in its one-second window; False once the window is over ``limit``.

    The EA fast path counts a known token's request here before it reads the body, so a throttled request costs
    neither the read nor the parse; it then runs the beat script with the throttle off (limit 0).
    """
    count = await _batch(async_client(), THROTTLE_SCRIPT).call([throttle_key(account_id, int(at))], [])
    return int(count) <= limit


def _pairs(flat: list) -> dict:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _swap_call(
    *, token_hash: str, expected: str, account_id: str, owner_id: int, state_json: str, at: float, throttle: int
) -> tuple[list, list]:
    from accounts.live import watch_key  # noqa: PLC0415  accounts.live imports channels; only beats need it

    keys = [
        token_key(token_hash),
        throttle_key(account_id, int(at)),
        state_key(account_id),
        meta_key(account_id),
        reconcile_key(account_id),
        queue_key(account_id),
        watch_key(account_id),
        *gate_epoch_keys(owner_id),
    ]
    return keys, [expected, throttle, state_json, at, settings.EA_QUEUE_RECONCILE_SECONDS]


def _swapped(answer: list) -> tuple[str, dict | None]:
    if answer[0] == 0:
        return "stale", None
    if answer[0] == 1:
        return "throttled", None
    _, previous, meta, beats, check, queue, watched, epoch = answer
    return "ok", {
        "previous": previous,
        "meta": _pairs(meta),
        "beats": int(beats),
        "check": bool(check),
        "queued": _pairs(queue),
        "watched": bool(watched),
        "epoch": epoch,
    }


async def beat_swap(**call) -> tuple[str, dict | None]:
    """One heartbeat's Redis work in one round trip on the event loop, batched with the loop's other beats: token
    check, throttle (unless ``throttle`` is 0: counted before the body was read, ``throttle_hit``), state swap, meta
    read and ``seen``/``beats`` update, the queue check flag and the queue, whether a dashboard watches, the gate
    epoch. Keywords: token_hash, expected, account_id, owner_id, state_json, at, throttle.

    Returns ("stale", None) when the token no longer maps to ``expected`` (nothing written), ("throttled", None),
    or ("ok", {"previous", "meta", "beats", "check", "queued", "watched", "epoch"})."""
    keys, args = _swap_call(**call)
    return _swapped(await _batch(async_client(), BEAT_SCRIPT).call(keys, args))


@cache
def _beat_script(r):
    return r.register_script(BEAT_SCRIPT)


def state_put_back(account_id: str, written: str, previous: str | None) -> bool:
    """Undo a beat's swap (its listeners could not finish: the next beat must carry the same change), unless a
    newer beat's state is there already. True when put back."""
    r = client()
    return bool(r.eval(PUT_BACK_SCRIPT, 1, state_key(account_id), written, previous or ""))


def state_forget(account_id: str) -> None:
    """Drop the account's live state after a swap whose answer was lost (a killed connection, a stall): the script
    may have run, so the next beat takes its previous state from PostgreSQL instead and misses no change."""
    client().delete(state_key(account_id))


async def state_forget_async(account_id: str) -> None:
    await async_client().delete(state_key(account_id))


def beat_swap_sync(**call) -> tuple[str, dict | None]:
    """``beat_swap`` from a worker thread (the same script; redis-py's Script reloads it after a Redis restart)."""
    keys, args = _swap_call(**call)
    r = client()
    return _swapped(_beat_script(r)(keys=keys, args=args, client=r))


def now() -> float:
    return time.time()
