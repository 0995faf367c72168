"""The EA's ASGI edge (mt5bridge/ea/fast.py over edge.py and the heartbeat pipeline) answers exactly like the DRF endpoint: same auth, limits,
errors and replies; everything else still goes through Django."""

from __future__ import annotations

import json

import httpx
import pytest

from accounts.models import Position
from config import net
from mt5bridge.ea import edge, pipeline, store
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
    # Copy trading's in-memory answer "nothing to do for this account" holds for VERSION_TTL (0.5 s); on a loaded
    # machine two beats can be further apart, and the second would rightly go to a thread to ask again.
    from copytrading import selectors

    monkeypatch.setattr(selectors, "VERSION_TTL", 3600)
    """Counts the beats that went to a worker thread: the whole pipeline (``beat``) or the running of a plan made on
    the event loop (``_run``)."""
    calls = {"beat": 0, "finish": 0}
    real_beat, real_finish = edge.beat, edge._run

    def counted_beat(*args):
        calls["beat"] += 1
        return real_beat(*args)

    def counted_finish(*args):
        calls["finish"] += 1
        return real_finish(*args)

    monkeypatch.setattr(edge, "beat", counted_beat)
    monkeypatch.setattr(edge, "_run", counted_finish)
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


def test_a_token_of_an_account_deactivated_after_steady_beats_is_refused_and_nothing_is_stored(
    owned_account,
    ea_token,  # noqa: F811
):
    """Guards issue 13 #6 on the ASGI edge: this process knows the token and Redis cached it for 300 s, so a
    deactivated account's steady beats kept being stored and answered 200; deactivation now drops the Redis entry
    the beat script checks, so the next beat is 401 and writes nothing."""
    from accounts.services import trading_account_update

    body = beat_body(owned_account.login)
    assert beat(ea_token, body).status_code == 200
    assert beat(ea_token, body).status_code == 200
    assert edge.known_client(ea_token) is not None  # the steady path would answer the next beat
    trading_account_update(account=owned_account, is_active=False)
    body["account"]["equity"] = "1.00"
    response = beat(ea_token, body)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
    assert str(state_from_json(store.client().get(store.state_key(owned_account.pk))).equity) == "10012.50"
    assert _meta(owned_account)["beats"] == "2"


def test_a_known_token_of_a_deleted_account_is_refused(owned_account, ea_token):  # noqa: F811
    """Guards issue 13 #6: deleting the account (cascading to its token) refuses the token at once."""
    from accounts.services import trading_account_delete

    body = beat_body(owned_account.login)
    assert beat(ea_token, body).status_code == 200
    assert beat(ea_token, body).status_code == 200
    trading_account_delete(account=owned_account)
    assert beat(ea_token, body).status_code == 401


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
    deadline = time.monotonic() + 20  # the batch runs every 0.25 s; a loaded machine may take longer
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


# --- the Host header, and the throttle before the body ---


def raw_asgi(path: str, headers: dict, *, method: str = "POST", body: bytes = b"", client=("127.0.0.9", 5000)):
    """Call the ASGI application with a ``receive`` that records whether the body was asked for.
    Returns (status, JSON body, how many times ``receive`` was awaited)."""
    from config.asgi import application

    reads, sent = [], []

    async def receive():
        reads.append(1)
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
        "client": client,
        "server": ("testserver", 80),
    }
    in_server_loop(application(scope, receive, send))
    return sent[0]["status"], json.loads(sent[1]["body"]), len(reads)


def _throttle_full(account) -> None:
    """The account's per-second budget is used up for the next several seconds (a slow machine cannot slip into a
    fresh window between two requests)."""
    import time

    r, now = store.client(), int(time.time())
    for window in range(now - 1, now + 15):
        r.set(store.throttle_key(account.pk, window), 10_000, ex=30)


@pytest.fixture
def parses(monkeypatch):
    """Counts how often a heartbeat or ack body is parsed, on the steady path and on the full one."""
    calls = []
    for module, name in ((edge, "decode_heartbeat"), (edge, "decode_ack"), (pipeline, "decode_heartbeat")):
        real = getattr(module, name)
        monkeypatch.setattr(
            module, name, lambda raw, *a, _real=real, **kw: calls.append(len(raw)) or _real(raw, *a, **kw)
        )
    return calls


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "testserver.evil.example", "", "[::1"])
def test_a_heartbeat_with_a_host_outside_allowed_hosts_is_400_json(owned_account, ea_token, host):  # noqa: F811
    """Guards the fast path's Host check (it skipped Django's): ALLOWED_HOSTS applies here too."""
    response = beat(ea_token, beat_body(owned_account.login), Host=host)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"
    assert not EAConnection.objects.exists()


def test_a_bad_host_gets_the_same_answer_as_from_django(owned_account, ea_token, settings):  # noqa: F811
    fast_answer = beat(ea_token, beat_body(owned_account.login), Host="evil.example")
    settings.EA_FAST_PATH = False
    django_answer = beat(ea_token, beat_body(owned_account.login), Host="evil.example")
    assert (fast_answer.status_code, fast_answer.json()) == (django_answer.status_code, django_answer.json())


def test_a_known_token_with_a_bad_host_is_refused_too(owned_account, ea_token):  # noqa: F811
    body = beat_body(owned_account.login)
    assert beat(ea_token, body).status_code == 200  # the token is now known to the steady path
    assert beat(ea_token, body, Host="evil.example").status_code == 400
    assert _meta(owned_account)["beats"] == "1"


@pytest.mark.parametrize("path, method", [("/api/ea/commands", "GET"), ("/api/ea/command-ack", "POST")])
def test_the_poll_and_the_ack_check_the_host(owned_account, ea_token, path, method):  # noqa: F811
    status, payload, reads = raw_asgi(
        path, {"host": "evil.example", "authorization": f"Bearer {ea_token}"}, method=method, body=b'{"results": []}'
    )
    assert status == 400 and payload["error"]["code"] == "bad_request" and reads == 0


def test_allowed_hosts_with_a_port_and_wildcards_are_served(owned_account, ea_token, settings):  # noqa: F811
    settings.ALLOWED_HOSTS = [".example.com"]
    body = beat_body(owned_account.login)
    assert beat(ea_token, body, Host="ea.example.com:8443").status_code == 200
    assert beat(ea_token, body, Host="example.com").status_code == 200
    assert beat(ea_token, body, Host="testserver").status_code == 400  # the list changed: answers are not stale


def test_a_host_once_checked_is_remembered(owned_account, ea_token, monkeypatch):  # noqa: F811
    """The Host check costs a dictionary lookup per beat, not a pattern match."""
    checked = []
    real = net.validate_host
    monkeypatch.setattr(net, "validate_host", lambda host, allowed: checked.append(host) or real(host, allowed))
    net.HOSTS_SEEN.clear()
    body = beat_body(owned_account.login)
    for _ in range(3):
        assert beat(ea_token, body).status_code == 200
    assert checked == ["testserver"]


def test_a_throttled_beat_from_a_known_token_is_refused_before_its_body_is_read(
    owned_account,
    ea_token,  # noqa: F811
    parses,
):
    """Guards the order on the steady path (it parsed the body, then counted the throttle): the refusal comes
    without reading, let alone parsing, the body."""
    assert beat(ea_token, beat_body(owned_account.login)).status_code == 200  # known from now on
    _throttle_full(owned_account)
    parses.clear()
    status, payload, reads = raw_asgi(
        "/api/ea/heartbeat",
        {"host": "testserver", "authorization": f"Bearer {ea_token}", "content-type": "application/json"},
        body=b"[" * 500_000,  # deeply nested: costly, and invalid
    )
    assert status == 429 and payload["error"]["code"] == "throttled"
    assert reads == 0 and parses == []
    assert _meta(owned_account)["beats"] == "1"


def test_a_throttled_first_beat_is_refused_before_its_body_is_read(owned_account, ea_token, parses):  # noqa: F811
    """The same on the full path, for a token this process has not seen yet."""
    _throttle_full(owned_account)
    status, payload, reads = raw_asgi(
        "/api/ea/heartbeat",
        {"host": "testserver", "authorization": f"Bearer {ea_token}", "content-type": "application/json"},
        body=b"not json at all",
    )
    assert (status, payload["error"]["code"], reads, parses) == (429, "throttled", 0, [])
    assert not EAConnection.objects.exists()


def test_a_throttled_beat_declaring_an_oversized_body_is_429_not_413(owned_account, ea_token, settings):  # noqa: F811
    """The throttle answers before the body (or its declared length) is looked at."""
    beat(ea_token, beat_body(owned_account.login))
    _throttle_full(owned_account)
    status, payload, reads = raw_asgi(
        "/api/ea/heartbeat",
        {
            "host": "testserver",
            "authorization": f"Bearer {ea_token}",
            "content-length": str(settings.EA_MAX_BODY_BYTES * 10),
        },
        body=b"x",
    )
    assert (status, reads) == (429, 0)


def test_a_throttled_ack_is_refused_before_its_body_is_read(owned_account, ea_token, parses):  # noqa: F811
    _throttle_full(owned_account)
    status, _, reads = raw_asgi(
        "/api/ea/command-ack",
        {"host": "testserver", "authorization": f"Bearer {ea_token}"},
        body=b'{"results": [' + b"{}," * 10_000 + b"{}]}",
    )
    assert (status, reads, parses) == (429, 0, [])


def test_a_missing_token_is_refused_before_the_body_is_read(owned_account):
    status, payload, reads = raw_asgi("/api/ea/heartbeat", {"host": "testserver"}, body=b"{}")
    assert (status, payload["error"]["code"], reads) == (401, "not_authenticated", 0)


def test_behind_a_proxy_each_client_has_its_own_wrong_token_budget(owned_account, settings):
    """With NUM_PROXIES=1 the wrong-token limit counts the address the proxy appended, not the proxy's own."""
    settings.NUM_PROXIES = 1
    settings.EA_BAD_TOKEN_PER_MINUTE = 2
    wrong = {"host": "testserver", "authorization": "Bearer 0b9f0d4e-2a6b-4f8e-9a51-8f5a1c2d3e4f"}
    proxy = ("10.0.0.2", 443)
    first = [
        raw_asgi("/api/ea/heartbeat", {**wrong, "x-forwarded-for": f"6.6.6.{n}, 203.0.113.1"}, client=proxy)[0]
        for n in range(3)
    ]
    assert first == [401, 401, 429]  # a made-up left part of the header does not reset the budget
    other = raw_asgi("/api/ea/heartbeat", {**wrong, "x-forwarded-for": "203.0.113.2"}, client=proxy)[0]
    assert other == 401


def test_an_old_gate_answer_is_refreshed_beside_the_beat_not_in_its_way(owned_account, ea_token, full_path_calls):  # noqa: F811
    """The gate's time limit is a safety net behind its epoch: a steady beat whose cached answer is merely old is
    answered on the event loop with it, and the answer is looked up again in the batch."""
    import time

    body = beat_body(owned_account.login)
    beat(ea_token, body)
    store.client().hset(store.meta_key(owned_account.pk), "gate_at", 0)  # the cached answer is old
    assert beat(ea_token, body).json()["status"] == "ok"
    assert full_path_calls == {"beat": 1, "finish": 0}
    deadline = time.monotonic() + 20  # the batch runs every 0.25 s; a loaded machine may take longer
    while float(_meta(owned_account)["gate_at"]) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert float(_meta(owned_account)["gate_at"]) > 0


def test_a_billing_change_is_looked_up_before_the_beat_is_answered(owned_account, ea_token, monkeypatch):  # noqa: F811
    from entitlements import gates
    from mt5bridge.ea.services import ea_gates_forget

    body = beat_body(owned_account.login)
    assert beat(ea_token, body).json()["status"] == "ok"
    monkeypatch.setattr(gates, "ea_access", lambda account: (False, "plan_required: no copy trading"))
    ea_gates_forget(owned_account.owner_id)  # what a plan change does
    reply = beat(ea_token, body).json()
    assert reply["status"] == "denied" and reply["reason"].startswith("plan_required")


def test_a_database_outage_is_503_with_retry_after_not_a_500(owned_account, ea_token, monkeypatch, settings):  # noqa: F811
    """A dependency out of reach tells the EA to retry (both edges), instead of a 500 and a traceback per beat."""
    from django.db import OperationalError

    def down(*_args, **_kwargs):
        raise OperationalError("the database system is shutting down")

    monkeypatch.setattr(pipeline, "run_plan", down)
    response = beat(ea_token, beat_body(owned_account.login))
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert response.json()["error"]["code"] == "unavailable"
    settings.EA_FAST_PATH = False
    response = beat(ea_token, beat_body(owned_account.login))
    assert response.status_code == 503 and response.json()["error"]["code"] == "unavailable"
