"""The per-person API rate (THROTTLE_USER): counted in windows with one Redis round trip, refused with 429 and a
Retry-After within the window."""

from __future__ import annotations

import pytest

from config.throttling import UserRateThrottle
from tests.personas import api_client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def three_a_minute(monkeypatch):
    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {**UserRateThrottle.THROTTLE_RATES, "user": "3/min"})


def test_a_person_over_the_rate_gets_429_with_retry_after_and_others_are_not_held(owner, outsider, three_a_minute):
    client = api_client_for(owner)
    codes = [client.get("/api/auth/me").status_code for _ in range(4)]

    assert codes == [200, 200, 200, 429]
    refused = client.get("/api/auth/me")
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "throttled"
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert api_client_for(outsider).get("/api/auth/me").status_code == 200


def test_counting_a_call_is_one_redis_round_trip(owner, three_a_minute, settings, monkeypatch):
    if not settings.REDIS_URL:
        pytest.skip("the round trip is Redis's; the embedded default counts in the process's cache")
    from config.redis_clients import redis_client

    client = api_client_for(owner)
    client.get("/api/auth/me")
    pool = redis_client().connection_pool
    calls = []
    original = pool.get_connection
    monkeypatch.setattr(pool, "get_connection", lambda *a, **k: calls.append(a) or original(*a, **k))

    assert client.get("/api/auth/me").status_code == 200
    # The person's rate and the day's API-call count, one round trip each (DRF's own rate took two, the count three;
    # this client is authenticated without a session).
    assert len(calls) == 2, calls
