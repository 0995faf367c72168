"""Shared fixtures: personas (owner, outsider, staff roles), API clients and a clean cache."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings


def _clear_cache() -> None:
    from django.core.cache import cache

    backend = django_settings.CACHES["default"]["BACKEND"]
    if backend.endswith("RedisCache"):
        # Only this worker's keys: other test workers share the Redis database.
        from config.redis_clients import redis_for

        # The cache's own server: a test may have blanked REDIS_URL after the cache was built.
        client = redis_for(django_settings.CACHES["default"]["LOCATION"])
        keys = list(client.scan_iter(f"{django_settings.CACHE_KEY_PREFIX}:*", count=1000))
        if keys:
            client.delete(*keys)
    else:
        cache.clear()


@pytest.fixture(autouse=True)
def _isolated_cache():
    """Throttle counters, lockouts and per-process snapshots of cached data must not leak between tests."""
    from copytrading.selectors import forget_local_config
    from integrations.selectors import forget_webhook_events

    _clear_cache()
    forget_local_config()
    forget_webhook_events()
    yield
    _clear_cache()
    forget_local_config()
    forget_webhook_events()


@pytest.fixture(autouse=True)
def _eager_celery(settings):
    """Celery tasks run in-process during tests (the broker is not part of what they check)."""
    from config.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture(autouse=True)
def _fast_test_settings(settings):
    """A fast password hasher: hashing is not what the tests check, and PBKDF2 costs ~0.3 s a login."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def keep_db_connection():
    """In-process WSGI calls (not through Django's test client) must not close the test's connection."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


pytest_plugins = ["tests.personas"]
