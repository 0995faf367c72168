"""The heartbeat's lean ASGI path (mt5bridge/ea/fast.py) answers exactly like the DRF endpoint: same auth, limits,
errors and replies; everything else still goes through Django."""

from __future__ import annotations

import json

import httpx
import pytest

from accounts.models import Position
from mt5bridge.ea import fast, store
from mt5bridge.ea.models import EAConnection
from mt5bridge.ea.services import ea_token_issue, ea_token_revoke
from mt5bridge.ea.state import state_from_json
from tests.mt5bridge.ea_helpers import beat_body, ea_token, in_server_loop  # noqa: F401  (fixture)

# The fast path runs the service in its own threads, so the test's rows must be committed.
pytestmark = pytest.mark.django_db(transaction=True)


def asgi(method: str, path: str, *, body: bytes = b"", headers: dict | None = None) -> httpx.Response:
    from config.asgi import application

    async def call():
        transport = httpx.ASGITransport(app=application, client=("127.0.0.9", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.request(method, path, content=body, headers=headers or {})

    return in_server_loop(call())


def beat(token: str | None, body, **headers) -> httpx.Response:
    if token:
        headers["Authorization"] = f"Bearer {token}"
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return asgi("POST", "/api/ea/heartbeat", body=raw, headers={"Content-Type": "application/json", **headers})


def test_a_heartbeat_is_stored_and_answered_with_the_protocol_reply(owned_account, ea_token):  # noqa: F811
    response = beat(ea_token, beat_body(owned_account.login))
    assert response.status_code == 200, response.text
    reply = response.json()
    assert reply["v"] == 1 and reply["status"] == "ok" and reply["commands"] == []
    assert response.headers["content-type"] == "application/json"
    owned_account.refresh_from_db()
    assert str(owned_account.equity) == "10012.50"
    assert Position.objects.filter(account=owned_account, ticket=501).exists()
    assert EAConnection.objects.get(account=owned_account).beats == 1


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer 0b9f0d4e-2a6b-4f8e-9a51-8f5a1c2d3e4f"}])
def test_a_missing_or_wrong_token_is_401_with_a_json_error(owned_account, ea_token, headers):  # noqa: F811
    response = beat(None, beat_body(owned_account.login), **headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] in ("not_authenticated", "authentication_failed")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert not EAConnection.objects.exists()


def test_a_revoked_token_is_refused(owned_account, ea_token):  # noqa: F811
    ea_token_revoke(account=owned_account)
    assert beat(ea_token, beat_body(owned_account.login)).status_code == 401


def test_a_hostile_body_is_400_and_nothing_is_stored(owned_account, ea_token):  # noqa: F811
    body = beat_body(owned_account.login)
    body["positions"][0]["volume"] = "-1"
    for raw in (json.dumps(body).encode(), b'{"login": NaN}', b"not json", b"[]"):
        response = beat(ea_token, raw)
        assert response.status_code == 400, raw
        assert response.json()["error"]["code"] == "protocol_error"
    assert not EAConnection.objects.exists()
    assert store.client().get(store.state_key(owned_account.pk)) is None


def test_an_oversized_body_is_413_and_nothing_is_stored(owned_account, ea_token, settings):  # noqa: F811
    settings.EA_MAX_BODY_BYTES = 4096
    body = beat_body(owned_account.login, terminal={"x": "a" * 10_000})
    response = beat(ea_token, body)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert not EAConnection.objects.exists()


def test_beats_beyond_the_per_account_rate_get_429(owned_account, ea_token, settings):  # noqa: F811
    settings.EA_THROTTLE_PER_SECOND = 2
    codes = [beat(ea_token, beat_body(owned_account.login)).status_code for _ in range(8)]
    assert 429 in codes and codes[0] == 200


def test_a_heartbeat_for_another_login_is_refused(owned_account, ea_token):  # noqa: F811
    response = beat(ea_token, beat_body(owned_account.login + 1))
    assert response.status_code == 400
    assert response.json()["error"]["details"]["field"] == "login"
    assert not EAConnection.objects.exists()


def test_other_methods_and_paths_are_left_to_django(owned_account, ea_token):  # noqa: F811
    assert asgi("GET", "/api/ea/heartbeat").status_code == 405
    commands = asgi("GET", "/api/ea/commands", headers={"Authorization": f"Bearer {ea_token}"})
    assert commands.status_code == 200 and commands.json()["commands"] == []


def test_with_the_fast_path_off_django_serves_the_heartbeat(owned_account, ea_token, settings):  # noqa: F811
    settings.EA_FAST_PATH = False
    response = beat(ea_token, beat_body(owned_account.login))
    assert response.status_code == 200 and response.json()["status"] == "ok"


# --- the steady beat: a known token's beat answered on the event loop with one Redis round trip ---


@pytest.fixture
def full_path_calls(monkeypatch):
    """Counts the beats that went to a worker thread: the full path (``beat``) or the finishing part (``_finish``)."""
    calls = {"beat": 0, "finish": 0}
    real_beat, real_finish = fast.beat, fast._finish

    def counted_beat(*args):
        calls["beat"] += 1
        return real_beat(*args)

    def counted_finish(*args):
        calls["finish"] += 1
        return real_finish(*args)

    monkeypatch.setattr(fast, "beat", counted_beat)
    monkeypatch.setattr(fast, "_finish", counted_finish)
    return calls


def _meta(account) -> dict:
    return store.client().hgetall(store.meta_key(account.pk))


def test_an_unchanged_beat_is_answered_without_a_thread_and_counted(owned_account, ea_token, full_path_calls):  # noqa: F811
    body = beat_body(owned_account.login)
    first = beat(ea_token, body)
    assert first.status_code == 200 and full_path_calls == {"beat": 1, "finish": 0}
    seen_before = float(_meta(owned_account)["seen"])
    body["account"]["equity"] = "10013.75"  # floating figures move every beat; nothing else changed
    second = beat(ea_token, body)
    assert second.status_code == 200, second.text
    assert full_path_calls == {"beat": 1, "finish": 0}
    reply = second.json()
    assert set(reply) == set(first.json()) and reply["status"] == "ok" and reply["commands"] == []
    meta = _meta(owned_account)
    assert meta["beats"] == "2" and float(meta["seen"]) >= seen_before
    assert str(state_from_json(store.client().get(store.state_key(owned_account.pk))).equity) == "10013.75"
    # PostgreSQL is written on change and on its cadence, not on every beat.
    assert EAConnection.objects.get(account=owned_account).beats == 1


def test_a_changed_beat_from_a_known_token_is_written_to_postgres(owned_account, ea_token, full_path_calls):  # noqa: F811
    body = beat_body(owned_account.login)
    beat(ea_token, body)
    body["positions"].append({**body["positions"][0], "ticket": 502, "identifier": 502, "volume": "0.30"})
    response = beat(ea_token, body)
    assert response.status_code == 200
    assert full_path_calls == {"beat": 1, "finish": 1}
    assert set(Position.objects.filter(account=owned_account).values_list("ticket", flat=True)) == {501, 502}
    assert EAConnection.objects.get(account=owned_account).beats == 2


def test_a_token_revoked_after_steady_beats_is_refused_and_nothing_is_stored(owned_account, ea_token):  # noqa: F811
    body = beat_body(owned_account.login)
    beat(ea_token, body)
    beat(ea_token, body)
    ea_token_revoke(account=owned_account)
    body["account"]["equity"] = "1.00"
    assert beat(ea_token, body).status_code == 401
    assert str(state_from_json(store.client().get(store.state_key(owned_account.pk))).equity) == "10012.50"
    assert _meta(owned_account)["beats"] == "2"


def test_a_rotated_token_is_refused_and_the_new_one_takes_the_steady_path(owned_account, ea_token, full_path_calls):  # noqa: F811
    body = beat_body(owned_account.login)
    beat(ea_token, body)
    new_token = ea_token_issue(account=owned_account)
    assert beat(ea_token, body).status_code == 401
    assert beat(new_token, body).status_code == 200
    assert beat(new_token, body).status_code == 200
    assert full_path_calls["beat"] == 3  # the first beat, the refused one, the new token's first


def test_a_hostile_body_from_a_known_token_is_400_and_the_state_is_kept(owned_account, ea_token):  # noqa: F811
    body = beat_body(owned_account.login)
    beat(ea_token, body)
    body["positions"][0]["volume"] = "NaN"
    for raw in (json.dumps(body).encode(), b'{"login": NaN}', b"[]"):
        response = beat(ea_token, raw)
        assert response.status_code == 400, raw
        assert response.json()["error"]["code"] == "protocol_error"
    assert str(state_from_json(store.client().get(store.state_key(owned_account.pk))).positions[0].volume) == "0.10"
    assert _meta(owned_account)["beats"] == "1"


def test_steady_beats_beyond_the_per_account_rate_get_429_with_retry_after(owned_account, ea_token, settings):  # noqa: F811
    settings.EA_THROTTLE_PER_SECOND = 3
    responses = [beat(ea_token, beat_body(owned_account.login)) for _ in range(8)]
    refused = [r for r in responses if r.status_code == 429]
    assert refused and responses[0].status_code == 200
    assert refused[0].headers["retry-after"] == "1" and refused[0].json()["error"]["code"] == "throttled"
    assert int(_meta(owned_account)["beats"]) < 8  # a refused beat stores nothing


def test_a_queued_command_goes_out_in_the_reply_of_a_steady_beat(owned_account, ea_token):  # noqa: F811
    from mt5bridge import commands as cq

    body = beat_body(owned_account.login)
    beat(ea_token, body)
    beat(ea_token, body)
    command = cq.command_enqueue(account_id=owned_account.pk, kind="close_all", params={}, origin="admin")
    reply = beat(ea_token, body).json()
    assert [c["id"] for c in reply["commands"]] == [str(command.id)]
    assert beat(ea_token, body).json()["commands"] == []  # delivered once, not again within the redelivery window


def test_a_command_whose_redis_push_was_lost_is_found_by_the_periodic_queue_check(owned_account, ea_token):  # noqa: F811
    import time

    from mt5bridge import commands as cq

    body = beat_body(owned_account.login)
    beat(ea_token, body)
    beat(ea_token, body)
    command = cq.command_enqueue(account_id=owned_account.pk, kind="close_all", params={}, origin="admin")
    r = store.client()
    r.delete(store.queue_key(owned_account.pk))  # committed, but the push to Redis never happened
    assert beat(ea_token, body).json()["commands"] == []  # the queue check is not due: Redis is trusted
    r.delete(store.reconcile_key(owned_account.pk))  # now it is due
    deadline, delivered = time.monotonic() + 5, []
    while not delivered and time.monotonic() < deadline:
        delivered = beat(ea_token, body).json()["commands"]
        time.sleep(0.1)
    assert [c["id"] for c in delivered] == [str(command.id)]


def test_the_cadence_write_of_an_unchanged_state_is_made_beside_the_steady_beat(
    owned_account,
    ea_token,  # noqa: F811
    full_path_calls,
):
    import time

    body = beat_body(owned_account.login)
    beat(ea_token, body)
    store.client().hset(store.meta_key(owned_account.pk), "persisted", 0)  # the cadence write is due
    body["account"]["equity"] = "10020.00"
    assert beat(ea_token, body).status_code == 200
    assert full_path_calls == {"beat": 1, "finish": 0}  # answered on the event loop; the write comes after
    deadline = time.monotonic() + 5
    while EAConnection.objects.get(account=owned_account).beats != 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    owned_account.refresh_from_db()
    assert str(owned_account.equity) == "10020.00"
    assert EAConnection.objects.get(account=owned_account).beats == 2
    assert float(_meta(owned_account)["persisted"]) > 0


def test_a_changed_state_leaves_a_snapshot_and_an_unchanged_one_does_not(owned_account, ea_token):  # noqa: F811
    from accounts.models import AccountSnapshot

    body = beat_body(owned_account.login)
    beat(ea_token, body)
    body["account"]["equity"] = "10030.00"
    beat(ea_token, body)  # floating figures only
    assert AccountSnapshot.objects.filter(account=owned_account).count() == 1
    body["account"]["balance"] = "10100.00"  # a closed trade moved the balance
    beat(ea_token, body)
    latest = AccountSnapshot.objects.filter(account=owned_account).latest("taken_at")
    assert AccountSnapshot.objects.filter(account=owned_account).count() == 2
    assert (str(latest.balance), str(latest.equity), str(latest.floating_profit)) == ("10100.00", "10030.00", "-70.00")
    owned_account.refresh_from_db()
    assert str(owned_account.balance) == "10100.00"
