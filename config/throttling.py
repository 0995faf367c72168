"""A per-IP limit on failed logins across usernames, for the API login, the web login and the admin login alike.

django-axes locks a username *from one IP* (``AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]``), so a
stranger cannot lock someone else's account by failing on purpose. That leaves one IP free to guess password after
password across many usernames; this closes it: an IP with ``LOGIN_FAILURES_PER_IP`` failed logins within
``LOGIN_FAILURES_PER_IP_MINUTES`` (counted from its first failure) is refused like an axes lockout (429), whatever
username it tries. Failures are counted with ``config.redis_clients.window_count`` (one atomic Redis transaction).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.core.cache import cache as django_cache
from django.core.exceptions import PermissionDenied
from rest_framework import throttling

from config.net import client_ip
from config.redis_clients import redis_client, window_count


def _key(ip: str) -> str:
    return f"login-fail:{ip}"


def login_failures(ip: str) -> int:
    """Failed logins from ``ip`` in the current window."""
    return int(django_cache.get(_key(ip)) or 0)


def login_failure_count(ip: str) -> int:
    """Count one failed login from ``ip``; the window starts at the first failure. Returns the new count."""
    return window_count(_key(ip), settings.LOGIN_FAILURES_PER_IP_MINUTES * 60)


def _count_failure(sender, credentials=None, request=None, **kwargs) -> None:
    if request is not None and settings.AXES_ENABLED:
        login_failure_count(client_ip(request))


user_login_failed.connect(_count_failure, dispatch_uid="config.throttling.count_login_failure")


class LoginIPGuard:
    """Authentication backend listed before ``ModelBackend``: refuses every login from an IP over the limit.

    It authenticates no one. Refusing raises ``PermissionDenied`` (Django's way to stop the backend chain) and marks
    the request as axes does for a lockout, so the API login and ``axes.middleware.AxesMiddleware`` (admin and web
    login forms) answer with the same 429 as for a locked username. Django imports this module, and so connects the
    failure counter above, the first time it authenticates anyone.
    """

    def authenticate(self, request, **credentials):
        if request is None or not settings.AXES_ENABLED:
            return None
        if login_failures(client_ip(request)) >= settings.LOGIN_FAILURES_PER_IP:
            for flagged in (request, getattr(request, "_request", None)):  # a DRF request wraps Django's
                if flagged is not None:
                    flagged.axes_locked_out = True
            raise PermissionDenied("Too many failed logins from this address.")
        return None

    # No get_user(): it authenticates no one, and Django's test client (force_login) and login() pick the first
    # backend that has one to remember a session by.


class UserRateThrottle(throttling.UserRateThrottle):
    """DRF's per-person rate (``THROTTLE_USER``), counted in windows of the rate's period with one Redis round trip
    (``window_count``).

    DRF's own keeps the time of every request of the period in one pickled list, read and written whole on each
    call: at the default 1,200/min, two round trips and up to 1,200 floats unpickled, shifted and pickled again on
    every API call a person makes. A window starts at its first request; across a window's end a client can get up to
    twice the rate in a short while, which a limit meant to stop runaway clients allows."""

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        return window_count(self.key, self.duration) <= self.num_requests

    def wait(self) -> float | None:
        """Seconds until the window ends (Retry-After)."""
        client = redis_client()
        if client is None:
            return self.duration
        left = client.ttl(self.cache.make_key(self.key))
        return float(left) if left and left > 0 else self.duration
