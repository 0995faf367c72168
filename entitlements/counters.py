"""API calls counted per user and day in the cache (shown in the admin and /api/billing/usage)."""

from __future__ import annotations

from django.core.cache import cache
from django.utils import timezone

from config.redis_clients import window_count

DAY_SECONDS = 26 * 3600  # a little over a day so the count survives until the day is over everywhere


def _key(user_id, day=None) -> str:
    day = day or timezone.now().date()
    return f"billing:api-calls:{user_id}:{day.isoformat()}"


def api_call_count(user_id) -> int:
    """Count one API call of ``user_id`` today (one Redis round trip); the day's count."""
    return window_count(_key(user_id), DAY_SECONDS)


def api_calls_today(user_id) -> int:
    return int(cache.get(_key(user_id)) or 0)
