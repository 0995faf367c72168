"""Redis side of the EA protocol: token cache, live state, throttle counters and the pending-command cache.

Redis is the fast path only; every command is durable in PostgreSQL first. With no Redis configured
(the embedded default) ``client()`` is None and callers fall back to the database.
"""

from __future__ import annotations

import asyncio
import json
import time
from functools import cache

from django.conf import settings


@cache
def client():
    """One connection pool per process (decode_responses for plain str values)."""
    if not settings.REDIS_URL:
        return None
    import redis

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
    import redis.asyncio as aredis

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
    _async_clients.clear()


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


def wake_key(account_id) -> str:
    return f"{_p()}:wake:{account_id}"


def wake_channel() -> str:
    """Pub/sub channel announcing "account X has new commands" (message = the account id) to waiting long polls
    on the ASGI fast path; the wake list above serves the DRF view's BLPOP."""
    return f"{_p()}:wake"


def reconcile_key(account_id) -> str:
    return f"{_p()}:qchk:{account_id}"


def throttle_key(account_id, window: int) -> str:
    return f"{_p()}:rl:{account_id}:{window}"


def bad_token_key(ip: str, window: int) -> str:
    return f"{_p()}:badtok:{ip}:{window}"


# --- pending-command cache ---


def queue_push(payloads_by_account: dict[str, list[dict]]) -> None:
    """Cache freshly committed commands and wake any long poll waiting on their accounts."""
    r = client()
    if r is None or not payloads_by_account:
        return
    pipe = r.pipeline(transaction=False)
    for account_id, payloads in payloads_by_account.items():
        pipe.hset(queue_key(account_id), mapping={p["id"]: json.dumps(p, separators=(",", ":")) for p in payloads})
        pipe.rpush(wake_key(account_id), "1")
        pipe.expire(wake_key(account_id), 30)
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
    r = client()
    if r is None:
        return
    pipe = r.pipeline(transaction=True)
    pipe.delete(queue_key(account_id))
    if payloads:
        pipe.hset(queue_key(account_id), mapping={p["id"]: json.dumps(p, separators=(",", ":")) for p in payloads})
    pipe.execute()


def now() -> float:
    return time.time()
