"""The command poll and the command-ack on the lean ASGI path (mt5bridge/ea/fast.py): the long wait holds no
thread, and the answers, errors and delivery bookkeeping are the DRF views'."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.core.asgi import get_asgi_application

from accounts.models import TradingAccount
from mt5bridge import commands as cq
from mt5bridge.ea import store
from mt5bridge.ea.fast import EAFastPath
from mt5bridge.ea.models import Command, CommandStatus
from mt5bridge.ea.protocol import CommandResult
from mt5bridge.ea.services import ea_token_issue, ea_token_revoke
from tests.mt5bridge.ea_helpers import beat_body, ea_hooks, ea_token, in_server_loop  # noqa: F401  (fixtures)
from tests.personas import SIM_SERVER, next_login

# The fast path runs the services in its own threads, so the test's rows must be committed.
pytestmark = pytest.mark.django_db(transaction=True)


def _app():
    from config.asgi import application

    return application


def ack(token: str | None, body: bytes) -> httpx.Response:
    async def call():
        transport = httpx.ASGITransport(app=_app(), client=("127.0.0.9", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
            return await client.post("/api/ea/command-ack", content=body, headers=headers)

    return in_server_loop(call())


async def _get(app, token: str | None, **params) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = httpx.ASGITransport(app=app, client=("127.0.0.9", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=30) as client:
        return await client.get("/api/ea/commands", params=params, headers=headers)


def poll(token: str | None, **params) -> httpx.Response:
    return in_server_loop(_get(_app(), token, **params))


def _enqueue(account_id) -> Command:
    return cq.command_enqueue(account_id=account_id, kind="close_all", params={}, origin="admin")


@pytest.fixture
def other_account(outsider) -> TradingAccount:
    return TradingAccount.objects.create(
        owner=outsider,
        login=next_login(),
        server=SIM_SERVER,
        name="Other",
        password_encrypted=b"",
        gateway_kind="simulated",
    )


def test_a_command_queued_during_the_wait_is_returned_at_once_and_marked_delivered(owned_account, ea_token):  # noqa: F811
    async def scenario():
        waiting = asyncio.create_task(_get(_app(), ea_token, wait=10))
        await asyncio.sleep(0.5)
        assert not waiting.done()
        command = await sync_to_async(_enqueue)(owned_account.pk)
        queued_at = time.perf_counter()
        response = await waiting
        return command, response, time.perf_counter() - queued_at

    command, response, took = in_server_loop(scenario())
    assert response.status_code == 200, response.text
    reply = response.json()
    assert reply["v"] == 1 and reply["status"] == "ok" and reply["next_beat_ms"] > 0
    assert [c["id"] for c in reply["commands"]] == [str(command.id)]
    assert reply["commands"][0]["comment"] == cq.payload_of(command)["comment"]
    assert took < 1.0
    command.refresh_from_db()
    assert command.status == CommandStatus.DELIVERED and command.delivery_count == 1
    assert command.delivered_at is not None
    assert str(command.id) in store.client().hgetall(store.delivered_key(owned_account.pk))
    # Delivered once: not again within the redelivery window.
    assert poll(ea_token).json()["commands"] == []


def test_a_command_already_queued_is_returned_without_waiting(owned_account, ea_token):  # noqa: F811
    command = _enqueue(owned_account.pk)
    started = time.perf_counter()
    response = poll(ea_token, wait=10)
    assert [c["id"] for c in response.json()["commands"]] == [str(command.id)]
    assert time.perf_counter() - started < 2.0


def test_an_unacknowledged_command_is_delivered_again_after_the_window_and_never_after_its_result(
    owned_account,
    ea_token,  # noqa: F811
    settings,
):
    settings.EA_REDELIVER_SECONDS = 1
    command = _enqueue(owned_account.pk)
    assert [c["id"] for c in poll(ea_token).json()["commands"]] == [str(command.id)]
    assert poll(ea_token).json()["commands"] == []
    time.sleep(1.1)
    assert [c["id"] for c in poll(ea_token, wait=5).json()["commands"]] == [str(command.id)]
    command.refresh_from_db()
    assert command.delivery_count == 2
    cq.command_results_apply(
        account_id=owned_account.pk,
        results=[CommandResult(id=command.id, status="executed", retcode=10009, message="", result={})],
    )
    time.sleep(1.1)
    assert poll(ea_token, wait=1).json()["commands"] == []


def test_a_poll_that_times_out_answers_an_empty_list(owned_account, ea_token):  # noqa: F811
    started = time.perf_counter()
    response = poll(ea_token, wait=1)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200
    reply = response.json()
    assert reply["commands"] == [] and reply["status"] == "ok"
    assert set(reply) == {"v", "status", "server_time", "next_beat_ms", "commands"}
    assert 0.9 <= elapsed < 3.0
    assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize("case", ["missing", "wrong", "revoked", "x-ea-token wrong"])
def test_a_missing_wrong_or_revoked_token_is_401_with_a_json_error(owned_account, ea_token, case):  # noqa: F811
    if case == "revoked":
        ea_token_revoke(account=owned_account)
    token = {"missing": None, "wrong": "0b9f0d4e-2a6b-4f8e-9a51-8f5a1c2d3e4f", "revoked": ea_token}.get(case)
    if case == "x-ea-token wrong":
        transport_headers = {"X-EA-Token": "not-a-uuid"}

        async def call():
            transport = httpx.ASGITransport(app=_app(), client=("127.0.0.9", 5000))
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                return await client.get("/api/ea/commands", params={"wait": 5}, headers=transport_headers)

        response = in_server_loop(call())
    else:
        response = poll(token, wait=5)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == ("not_authenticated" if case == "missing" else "authentication_failed")
    assert response.headers["www-authenticate"] == 'Bearer realm="ea"'


def test_another_accounts_commands_are_never_returned(owned_account, ea_token, other_account):  # noqa: F811
    async def scenario():
        waiting = asyncio.create_task(_get(_app(), ea_token, wait=1))
        await asyncio.sleep(0.3)
        theirs = await sync_to_async(_enqueue)(other_account.pk)
        return theirs, await waiting

    theirs, response = in_server_loop(scenario())
    assert response.status_code == 200 and response.json()["commands"] == []
    theirs.refresh_from_db()
    assert theirs.status == CommandStatus.PENDING and theirs.delivery_count == 0
    # The owner of the other account gets it.
    other_token = ea_token_issue(account=other_account)
    assert [c["id"] for c in poll(other_token).json()["commands"]] == [str(theirs.id)]


@pytest.mark.parametrize(
    "params", [{"wait": 999}, {"wait": -1}, {"wait": "soon"}, {"wait": ""}, {"max": 0}, {"max": 201}]
)
def test_wait_or_max_out_of_range_is_400_with_a_json_error(owned_account, ea_token, params):  # noqa: F811
    response = poll(ea_token, **params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "protocol_error" and error["details"]["field"] == "wait/max"


def test_polls_beyond_the_per_account_rate_get_429(owned_account, ea_token, settings):  # noqa: F811
    settings.EA_THROTTLE_PER_SECOND = 2
    responses = [poll(ea_token) for _ in range(6)]
    assert responses[0].status_code == 200
    throttled = [r for r in responses if r.status_code == 429]
    assert throttled and throttled[0].headers["retry-after"] == "1"
    assert throttled[0].json()["error"]["code"] == "throttled"


def test_the_fast_path_and_the_drf_view_answer_alike(owned_account, ea_token, settings):  # noqa: F811
    first, second = _enqueue(owned_account.pk), _enqueue(owned_account.pk)
    fast, fast_error = poll(ea_token, max=1).json(), poll(ea_token, wait=999).json()
    settings.EA_FAST_PATH = False
    drf, drf_error = poll(ea_token, max=1).json(), poll(ea_token, wait=999).json()
    assert set(fast) == set(drf) == {"v", "status", "server_time", "next_beat_ms", "commands"}
    assert [c["id"] for c in fast["commands"] + drf["commands"]] == [str(first.id), str(second.id)]
    assert set(fast["commands"][0]) == set(drf["commands"][0])
    assert fast_error == drf_error
    assert fast_error["error"]["message"] == f"wait must be 0–{settings.EA_LONG_POLL_MAX_SECONDS} and max 1–200"


def test_waiting_polls_hold_no_thread_so_heartbeats_are_answered_meanwhile(owned_account, ea_token, settings):  # noqa: F811
    settings.EA_THROTTLE_PER_SECOND = 1000
    app = EAFastPath(get_asgi_application(), threads=2)

    async def scenario():
        waiting = [asyncio.create_task(_get(app, ea_token, wait=3)) for _ in range(12)]
        await asyncio.sleep(0.5)
        transport = httpx.ASGITransport(app=app, client=("127.0.0.9", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            started = time.perf_counter()
            beat = await client.post(
                "/api/ea/heartbeat",
                json=beat_body(owned_account.login),
                headers={"Authorization": f"Bearer {ea_token}"},
            )
            took = time.perf_counter() - started
        still_waiting = sum(not task.done() for task in waiting)
        command = await sync_to_async(_enqueue)(owned_account.pk)
        replies = [r.json()["commands"] for r in await asyncio.gather(*waiting)]
        return beat, took, still_waiting, command, replies

    beat, took, still_waiting, command, replies = in_server_loop(scenario())
    assert beat.status_code == 200, beat.text
    assert took < 2.0 and still_waiting == 12
    # Exactly one of the waiting polls gets the command.
    assert sorted(len(r) for r in replies) == [0] * 11 + [1]
    assert [c["id"] for r in replies for c in r] == [str(command.id)]


def test_an_ea_that_hangs_up_while_waiting_is_not_handed_the_command(owned_account, ea_token):  # noqa: F811
    app = EAFastPath(get_asgi_application(), threads=2)
    sent: list[dict] = []

    async def scenario():
        messages = asyncio.Queue()
        await messages.put({"type": "http.request", "body": b"", "more_body": False})
        scope = {
            "type": "http",
            "method": "GET",
            "path": "/api/ea/commands",
            "query_string": b"wait=10",
            "headers": [(b"host", b"testserver"), (b"authorization", f"Bearer {ea_token}".encode())],
            "client": ("127.0.0.9", 5000),
        }

        async def send(message):
            sent.append(message)

        serving = asyncio.create_task(app(scope, messages.get, send))
        await asyncio.sleep(0.3)
        await messages.put({"type": "http.disconnect"})
        await asyncio.wait_for(serving, 2)
        return await sync_to_async(_enqueue)(owned_account.pk)

    command = in_server_loop(scenario())
    assert sent == []
    command.refresh_from_db()
    assert command.status == CommandStatus.PENDING and command.delivery_count == 0


def test_without_redis_the_drf_view_serves_the_poll(owned_account, ea_token, settings):  # noqa: F811
    settings.REDIS_URL = ""
    response = poll(ea_token, wait=0)
    assert response.status_code == 200 and response.json()["commands"] == []
    assert "allow" in response.headers  # DRF's answer (the lean path sends no Allow header)


def _executed(*commands) -> bytes:
    import json

    return json.dumps(
        {"results": [{"id": str(c.id), "status": "executed", "retcode": 10009, "message": "done"} for c in commands]}
    ).encode()


def test_an_ack_on_the_fast_path_records_the_result_like_the_drf_view(
    owned_account,
    ea_token,  # noqa: F811
    ea_hooks,  # noqa: F811
    settings,
    other_account,
):
    first, second = _enqueue(owned_account.pk), _enqueue(owned_account.pk)
    assert len(poll(ea_token).json()["commands"]) == 2
    response = ack(ea_token, _executed(first))
    assert response.status_code == 200, response.text
    assert response.json() == {"acks": [{"id": str(first.id), "outcome": "applied"}]}
    first.refresh_from_db()
    assert first.status == CommandStatus.EXECUTED and first.retcode == 10009
    assert [c.id for c in ea_hooks.results] == [first.id]
    fast_repeat = ack(ea_token, _executed(first)).json()
    settings.EA_FAST_PATH = False
    assert (
        ack(ea_token, _executed(first)).json()
        == fast_repeat
        == {"acks": [{"id": str(first.id), "outcome": "duplicate"}]}
    )
    assert ack(ea_token, _executed(second)).json() == {"acks": [{"id": str(second.id), "outcome": "applied"}]}
    settings.EA_FAST_PATH = True
    # Results for another account's command are ignored.
    theirs = _enqueue(other_account.pk)
    assert ack(ea_token, _executed(theirs)).json() == {"acks": [{"id": str(theirs.id), "outcome": "unknown"}]}
    theirs.refresh_from_db()
    assert theirs.status == CommandStatus.PENDING


def test_an_ack_with_a_wrong_token_or_a_broken_body_is_refused_with_a_json_error(owned_account, ea_token):  # noqa: F811
    command = _enqueue(owned_account.pk)
    wrong = ack("0b9f0d4e-2a6b-4f8e-9a51-8f5a1c2d3e4f", _executed(command))
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "authentication_failed"
    for body in (b"not json", b'{"results": [{"id": "x", "status": "executed"}]}', b'{"results": {}}'):
        broken = ack(ea_token, body)
        assert broken.status_code == 400, body
        assert broken.json()["error"]["code"] == "protocol_error"
    command.refresh_from_db()
    assert command.status == CommandStatus.PENDING


@pytest.mark.parametrize("body", [b"{}", b'{"results": null}'])
def test_an_ack_without_results_is_400_on_the_fast_path(owned_account, ea_token, body):  # noqa: F811
    """Guards issue 13 #11: the schema requires "results"; an ack without them was answered 200 (nothing acked)."""
    response = ack(ea_token, body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "protocol_error" and error["details"]["field"] == "results"
