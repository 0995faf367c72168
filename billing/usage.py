"""API call counting per user and day (shown in the admin and /api/billing/usage against the plan)."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.cache import cache
from django.utils import timezone
from rest_framework.throttling import BaseThrottle

from accounts.authentication import is_bearer_auth

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


class ApiCallCounter(BaseThrottle):
    """A DRF throttle that counts authenticated API calls, and gates programmatic access.

    Calls authenticated with a bearer token (``Authorization: Bearer <access>`` from
    ``POST /api/auth/login``) need the plan's ``api_access`` feature (403 naming the plan
    otherwise); the browser's session and the EA's own tokens are not "API access".
    """

    def allow_request(self, request, view) -> bool:
        user = getattr(request, "user", None)
        # Only people: the EA protocol authenticates as its own client object.
        if not isinstance(user, AbstractBaseUser) or not user.is_authenticated:
            return True
        api_call_count(user.pk)
        if is_bearer_auth(request.auth):
            from .gates import require_feature

            require_feature(user, "api_access")
        return True
