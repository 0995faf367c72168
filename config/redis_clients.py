"""Redis clients built from settings: one per URL and process.

A ``redis.Redis`` is safe to share between threads (each command takes a connection from the client's pool)
and notices a fork, so a process needs one per server, not one per call (building one costs a few hundred
microseconds). The Django cache backend (`config.cache`), the window counters (`window_count`: failed logins,
API calls) and the live-update watcher counts all use these.
"""

from __future__ import annotations

from functools import cache

import redis
from django.conf import settings
from django.core.cache import cache as django_cache


@cache
def redis_for(url: str) -> redis.Redis:
    """The client of ``url`` (values as bytes)."""
    return redis.Redis.from_url(url)


def redis_client() -> redis.Redis | None:
    """The client of ``REDIS_URL``, or None in the embedded default (no Redis configured)."""
    return redis_for(settings.REDIS_URL) if settings.REDIS_URL else None


def window_count(key: str, seconds: int) -> int:
    """Count one event under the cache key ``key``, in a window that starts with its first event; the new count.

    With Redis one round trip: SET NX EX and INCR in one MULTI (the cache's add, then its incr, took three). The
    value is the cache's integer under the cache's own key, so ``cache.get(key)`` reads it. Without Redis (the
    embedded default, one process) the cache's add and incr."""
    client = redis_client()
    if client is not None:
        full_key = django_cache.make_key(key)
        pipe = client.pipeline(transaction=True)
        pipe.set(full_key, 0, ex=seconds, nx=True)
        pipe.incr(full_key)
        return int(pipe.execute()[1])
    django_cache.add(key, 0, seconds)
    try:
        return django_cache.incr(key)
    except ValueError:  # expired between the two calls
        django_cache.set(key, 1, seconds)
        return 1
