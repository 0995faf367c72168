"""API calls counted per user and day in the cache (shown in the admin and /api/billing/usage)."""

from __future__ import annotations

from django.core.cache import cache
from django.utils import timezone

DAY_SECONDS = 26 * 3600  # a little over a day so the count survives until the day is over everywhere


def _key(user_id, day=None) -> str:
    day = day or timezone.now().date()
    return f"billing:api-calls:{user_id}:{day.isoformat()}"


def api_call_count(user_id) -> int:
    key = _key(user_id)
    # add() then incr() keeps the counter atomic in Redis without a read-modify-write race.
    cache.add(key, 0, DAY_SECONDS)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, DAY_SECONDS)
        return 1


def api_calls_today(user_id) -> int:
    return int(cache.get(_key(user_id)) or 0)
