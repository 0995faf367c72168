"""The command queue: enqueue, delivery in the heartbeat reply, results, expiry, cancel/retry, long poll,
and exactly-once execution by the reference EA against the simulated MT5."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from config.errors import Conflict, ServiceError
from mt5bridge import commands as cq
from mt5bridge.ea import store
from mt5bridge.ea.models import Command
from mt5bridge.ea.protocol import command_id_from_tag, command_tag, order_comment
from tests.mt5bridge import ea_helpers
from tests.mt5bridge.ea_helpers import beat_body, ea_client, wsgi_http

ea_hooks = ea_helpers.ea_hooks  # fixtures
ea_token = ea_helpers.ea_token

pytestmark = pytest.mark.django_db

BUY = {"symbol": "BTCUSD", "side": "buy", "volume": "0.10", "comment": "copy of 123"}


def beat(client, login, **overrides):
    response = client.post(
        "/api/ea/heartbeat", data=json.dumps(beat_body(login, **overrides)), content_type="application/json"
    )
    assert response.status_code == 200, response.content
    return response.json()


def enqueue(capture, account, kind="open_market", params=None, **kwargs):
    with capture(execute=True):
        return cq.command_enqueue(
            account_id=account.pk,
            kind=kind,
            params=BUY if params is None else params,
            origin=kwargs.pop("origin", "web_terminal"),
            **kwargs,
        )


def test_command_tag_fits_an_mt5_comment_and_round_trips():
    command = Command(kind="close_all")
    tag = command_tag(command.id)
    assert len(tag) == 23 and command_id_from_tag(tag) == command.id
    assert len(order_comment(command.id, "a very long user comment indeed")) == 31
    assert command_id_from_tag(order_comment(command.id, "xyz")) == command.id
    assert command_id_from_tag("[sl 65000.00]") is None


def test_params_are_validated_and_normalised(owned_account):
    command = cq.command_enqueue(
        account_id=owned_account.pk,
        kind="open_market",
        params={"symbol": "BTCUSD", "side": "sell", "volume": Decimal("0.5"), "sl": "70000"},
        origin="template",
    )
    assert command.params == {"symbol": "BTCUSD", "side": "sell", "volume": "0.5", "sl": "70000"}
    for kind, params in [
        ("open_market", {"symbol": "BTCUSD", "side": "up", "volume": "1"}),
        ("open_market", {"symbol": "BTCUSD", "side": "buy", "volume": "-1"}),
        ("close", {}),
        ("close", {"ticket": "abc"}),
        ("warp", {}),
        ("close_all", {"unknown": 1}),
        ("open_market", {"symbol": "X", "side": "buy", "volume": "NaN"}),
        ("open_market", {"symbol": "X", "side": "buy", "volume": 0.1}),
    ]:  # floats are refused
        with pytest.raises(ServiceError):
            cq.command_enqueue(account_id=owned_account.pk, kind=kind, params=params, origin="admin")
    with pytest.raises(ServiceError):
        cq.command_enqueue(account_id=owned_account.pk, kind="close_all", params={}, origin="Not an origin!")


def test_command_is_delivered_in_the_heartbeat_reply_and_result_reported_next_beat(
    owned_account, ea_token, ea_hooks, django_capture_on_commit_callbacks
):
    command = enqueue(django_capture_on_commit_callbacks, owned_account)
    client = ea_client(ea_token)
    reply = beat(client, owned_account.login)
    assert [c["id"] for c in reply["commands"]] == [str(command.id)]
    delivered = reply["commands"][0]
    assert delivered["comment"].startswith(command_tag(command.id)) and len(delivered["comment"]) <= 31
    command.refresh_from_db()
    assert command.status == "delivered" and command.delivery_count == 1
    assert beat(client, owned_account.login)["commands"] == []  # not resent inside the redelivery window
    result = {
        "id": str(command.id),
        "status": "executed",
        "retcode": 10009,
        "message": "done",
        "result": {"order": 9001, "deal": 9002, "position": 9001, "price": "65000.5", "volume": "0.10"},
    }
    reply = beat(client, owned_account.login, results=[result])
    assert reply["acks"] == [{"id": str(command.id), "outcome": "applied"}]
    command.refresh_from_db()
    assert command.status == "executed" and command.retcode == 10009 and command.result["position"] == 9001
    assert [c.id for c in ea_hooks.results] == [command.id]
    reply = beat(client, owned_account.login, results=[result])  # the EA resends: no second hook call
    assert reply["acks"][0]["outcome"] == "duplicate" and len(ea_hooks.results) == 1


def test_unacknowledged_command_is_redelivered_after_the_window(
    owned_account, ea_token, settings, django_capture_on_commit_callbacks
):
    settings.EA_REDELIVER_SECONDS = 1
    command = enqueue(django_capture_on_commit_callbacks, owned_account)
    client = ea_client(ea_token)
    assert len(beat(client, owned_account.login)["commands"]) == 1
    time.sleep(1.05)
    assert [c["id"] for c in beat(client, owned_account.login)["commands"]] == [str(command.id)]
    command.refresh_from_db()
    assert command.delivery_count == 2


def test_expired_command_is_not_delivered_and_is_marked_expired(
    owned_account, ea_token, django_capture_on_commit_callbacks
):
    command = enqueue(
        django_capture_on_commit_callbacks,
        owned_account,
        origin="copy",
        expires_at=timezone.now() + timedelta(milliseconds=200),
    )
    time.sleep(0.3)
    assert beat(ea_client(ea_token), owned_account.login)["commands"] == []
    command.refresh_from_db()
    assert command.status == "expired"


def test_the_periodic_sweep_expires_commands_of_an_ea_that_stopped_beating(
    owned_account, django_capture_on_commit_callbacks
):
    """A command whose EA never polls again is marked expired by the scheduled sweep, not left queued."""
    from django.core.management import call_command
    from django_celery_beat.models import PeriodicTask

    from mt5bridge.tasks import commands_expire_sweep

    late = enqueue(django_capture_on_commit_callbacks, owned_account, origin="copy",
                   expires_at=timezone.now() - timedelta(seconds=1))  # fmt: skip
    fresh = enqueue(
        django_capture_on_commit_callbacks,
        owned_account,
        origin="copy",
        expires_at=timezone.now() + timedelta(minutes=5),
    )
    assert commands_expire_sweep() == 1
    late.refresh_from_db()
    fresh.refresh_from_db()
    assert late.status == "expired" and fresh.status != "expired"
    call_command("setup_periodic_tasks", verbosity=0)
    assert PeriodicTask.objects.filter(task="mt5bridge.tasks.commands_expire_sweep", enabled=True).exists()


def test_command_missing_from_redis_is_found_by_reconciliation(owned_account, ea_token, settings):
    settings.EA_QUEUE_RECONCILE_SECONDS = 1
    command = cq.command_enqueue(account_id=owned_account.pk, kind="close_all", params={}, origin="rule")
    # on_commit never ran (as if the process died between the commit and the Redis write)
    assert not store.client().hlen(store.queue_key(owned_account.pk))
    client = ea_client(ea_token)
    assert [c["id"] for c in beat(client, owned_account.login)["commands"]] == [str(command.id)]


def test_idempotency_key_returns_the_first_command(owned_account):
    first = cq.command_enqueue(
        account_id=owned_account.pk,
        kind="close_all",
        params={},
        origin="rule",
        idempotency_key="equity-stop-2026-11-22",
    )
    again = cq.command_enqueue(
        account_id=owned_account.pk,
        kind="close_all",
        params={},
        origin="rule",
        idempotency_key="equity-stop-2026-11-22",
    )
    assert again.id == first.id and Command.objects.count() == 1


def test_bulk_enqueue_inserts_once_and_skips_duplicates(owned_account, django_capture_on_commit_callbacks):
    specs = [
        cq.CommandSpec(
            str(owned_account.pk), "open_market", BUY, "copy", idempotency_key=f"m1:{i}", origin_ref=f"l:{i}"
        )
        for i in range(100)
    ]
    with django_capture_on_commit_callbacks(execute=True):
        first = cq.commands_enqueue_bulk(specs)
    assert len(first) == 100 and Command.objects.count() == 100
    assert store.client().hlen(store.queue_key(owned_account.pk)) == 100
    specs.append(cq.CommandSpec(str(owned_account.pk), "close_all", {}, "copy"))
    again = cq.commands_enqueue_bulk(specs)
    assert [c.id for c in again[:100]] == [c.id for c in first] and Command.objects.count() == 101


def test_bulk_enqueue_of_100_commands_is_fast(owned_account):
    specs = [
        cq.CommandSpec(str(owned_account.pk), "open_market", BUY, "copy", idempotency_key=f"k{i}") for i in range(100)
    ]
    started = time.perf_counter()
    cq.commands_enqueue_bulk(specs)
    assert time.perf_counter() - started < 0.5


def test_cancel_removes_an_open_command_and_retry_queues_a_new_one(
    owned_account, ea_token, django_capture_on_commit_callbacks
):
    command = enqueue(django_capture_on_commit_callbacks, owned_account)
    with django_capture_on_commit_callbacks(execute=True):
        cq.command_cancel(command_id=command.id)
    assert beat(ea_client(ea_token), owned_account.login)["commands"] == []
    with pytest.raises(Conflict):
        cq.command_cancel(command_id=command.id)
    retry = enqueue_retry = None
    with django_capture_on_commit_callbacks(execute=True):
        retry = cq.command_retry(command_id=command.id)
    assert retry.id != command.id and retry.retry_of_id == command.id and retry.params == command.params
    assert [c["id"] for c in beat(ea_client(ea_token), owned_account.login)["commands"]] == [str(retry.id)]
    with pytest.raises(Conflict):
        cq.command_retry(command_id=retry.id)
    assert enqueue_retry is None


def test_long_poll_returns_as_soon_as_a_command_is_queued(owned_account, ea_token, django_capture_on_commit_callbacks):
    def later():
        time.sleep(0.3)
        store.queue_push({str(owned_account.pk): [cq.payload_of(command)]})

    command = cq.command_enqueue(account_id=owned_account.pk, kind="close_all", params={}, origin="admin")
    store.client().set(store.reconcile_key(owned_account.pk), "1", ex=60)  # only the wake-up can find it
    threading.Thread(target=later).start()
    started = time.perf_counter()
    response = ea_client(ea_token).get("/api/ea/commands", {"wait": 5})
    elapsed = time.perf_counter() - started
    assert [c["id"] for c in response.json()["commands"]] == [str(command.id)]
    assert 0.25 < elapsed < 4.5  # woken by the command, well before the 5 s wait ends (a loaded machine is slow)


def test_long_poll_with_nothing_queued_returns_empty_after_the_wait(owned_account, ea_token):
    started = time.perf_counter()
    response = ea_client(ea_token).get("/api/ea/commands", {"wait": 1})
    assert response.status_code == 200 and response.json()["commands"] == []
    assert time.perf_counter() - started >= 0.9
    assert ea_client(ea_token).get("/api/ea/commands", {"wait": 999}).status_code == 400


# --- the reference EA against the simulated MT5 ---


def _sim_deals_with(login, comment):
    from mt5bridge.simulated.models import SimDeal

    return SimDeal.objects.filter(account_id=login, comment=comment).count()


def test_reference_ea_executes_a_market_order_once_even_if_redelivered_or_restarted(
    owned_account, ea_token, settings, django_capture_on_commit_callbacks
):
    from mt5bridge.ea_client import ReferenceEA

    settings.EA_REDELIVER_SECONDS = 1
    command = enqueue(django_capture_on_commit_callbacks, owned_account)
    http = wsgi_http()
    ea = ReferenceEA(base_url="http://testserver", token=ea_token, login=owned_account.login, http=http)
    ea.beat()  # receives and executes
    comment = order_comment(command.id, BUY["comment"])
    assert _sim_deals_with(owned_account.login, comment) == 1
    # The EA restarts before reporting (its memory is gone) and the server redelivers.
    restarted = ReferenceEA(base_url="http://testserver", token=ea_token, login=owned_account.login, http=http)
    time.sleep(1.05)
    reply = restarted.beat()
    assert [c["id"] for c in reply["commands"]] == [str(command.id)]
    assert _sim_deals_with(owned_account.login, comment) == 1
    restarted.beat()  # reports the (deduplicated) result
    command.refresh_from_db()
    assert command.status == "executed" and command.result["position"] > 0
    assert command.result.get("duplicate") is True  # the restarted EA found its own deal by the comment


def test_reference_ea_closes_partially_and_reports_failures(
    owned_account, ea_token, django_capture_on_commit_callbacks
):
    from mt5bridge.ea_client import ReferenceEA

    ea = ReferenceEA(base_url="http://testserver", token=ea_token, login=owned_account.login, http=wsgi_http())
    opened = enqueue(
        django_capture_on_commit_callbacks, owned_account, params={"symbol": "BTCUSD", "side": "buy", "volume": "0.30"}
    )
    ea.beat()
    ea.beat()
    opened.refresh_from_db()
    ticket = opened.result["position"]
    partial = enqueue(
        django_capture_on_commit_callbacks,
        owned_account,
        kind="close_partial",
        params={"ticket": ticket, "volume": "0.10"},
    )
    bad = enqueue(django_capture_on_commit_callbacks, owned_account, kind="close", params={"ticket": 999999999})
    ea.beat()
    ea.beat()
    partial.refresh_from_db()
    bad.refresh_from_db()
    assert partial.status == "executed"
    assert bad.status == "failed" and bad.retcode is not None
    volumes = [p.volume for p in ea.gateway.positions(owned_account.login) if p.ticket == ticket]
    assert volumes == [Decimal("0.20")]
