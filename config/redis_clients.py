"""Redis clients built from settings: one per URL and process.

A ``redis.Redis`` is safe to share between threads (each command takes a connection from the client's pool)
and notices a fork, so a process needs one per server, not one per call (building one costs a few hundred
microseconds). The Django cache backend (`config.cache`), the login-failure counter and the live-update
watcher counts all use these.
"""

from __future__ import annotations

from functools import cache

import redis
from django.conf import settings


@cache
def redis_for(url: str) -> redis.Redis:
    """The client of ``url`` (values as bytes)."""
    return redis.Redis.from_url(url)


def redis_client() -> redis.Redis | None:
    """The client of ``REDIS_URL``, or None in the embedded default (no Redis configured)."""
    return redis_for(settings.REDIS_URL) if settings.REDIS_URL else None
