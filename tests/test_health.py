"""Liveness, readiness and the admin's "System health" page (config/health.py, bonuses/health.py)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from bonuses.health import shard_ages
from bonuses.models import MonitorShard
from config.celery import app as celery_app
from config.health import beat_key, beat_stamp, beat_watch
from config.redis_clients import redis_client

CLOSED_PORT = "redis://:s3cret-password@127.0.0.1:1/0"  # nothing listens on port 1
pytestmark = pytest.mark.django_db


@pytest.fixture
def fresh_shard():
    return MonitorShard.objects.create(
        shard=0,
        shards=1,
        holder="monitor-a",
        lease_until=timezone.now() + timedelta(seconds=3),
        last_cycle_at=timezone.now(),
    )


@pytest.fixture
def celery_not_eager():
    """As in production: tasks go to a broker, so beat and workers are part of readiness."""
    celery_app.conf.task_always_eager = False
    yield
    celery_app.conf.task_always_eager = True


def ready(client):
    response = client.get(reverse("health-ready"))
    assert response["Content-Type"] == "application/json"
    return response.status_code, response.json()


def test_readiness_is_200_with_every_check_when_the_system_is_up(client, fresh_shard):
    status, body = ready(client)
    assert status == 200, body
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "redis", "celery_workers", "celery_beat", "bonus_monitor"}
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["redis"]["status"] == "ok"
    assert body["checks"]["bonus_monitor"]["status"] == "ok"
    # Eager Celery (no broker in this deployment's sense): workers and beat are not part of it.
    assert body["checks"]["celery_workers"]["status"] == "not used"
    assert body["checks"]["celery_beat"]["status"] == "not used"


def test_readiness_is_503_when_redis_is_unreachable_and_says_so_without_the_url(client, settings, fresh_shard):
    settings.REDIS_URL = CLOSED_PORT
    status, body = ready(client)
    assert status == 503
    assert body["status"] == "not ready"
    assert body["checks"]["redis"]["status"] == "unavailable"
    assert "connect" in body["checks"]["redis"]["detail"].lower()
    assert body["checks"]["database"]["status"] == "ok"
    text = str(body)
    assert "s3cret" not in text and "127.0.0.1" not in text and ":1/" not in text


def test_liveness_stays_200_when_dependencies_are_down(client, settings):
    settings.REDIS_URL = CLOSED_PORT
    response = client.get(reverse("health-live"))
    assert response.status_code == 200
    assert response.json() == {"status": "alive"}
    assert "no-cache" in response["Cache-Control"]


def test_readiness_without_redis_configured_reports_it_not_used(client, settings, fresh_shard):
    settings.REDIS_URL = ""
    status, body = ready(client)
    assert status == 200, body
    assert body["checks"]["redis"]["status"] == "not used"


def test_readiness_is_503_when_a_monitor_shard_has_not_cycled_within_the_limit(client, settings):
    settings.HEALTH_MONITOR_MAX_AGE_SECONDS = 15
    now = timezone.now()
    live = dict(lease_until=now + timedelta(seconds=3))
    MonitorShard.objects.create(shard=0, shards=2, holder="a", last_cycle_at=now, **live)
    MonitorShard.objects.create(shard=1, shards=2, holder="b", last_cycle_at=now - timedelta(seconds=40))
    status, body = ready(client)
    assert status == 503
    monitor = body["checks"]["bonus_monitor"]
    assert monitor["status"] == "unavailable"
    assert "1/2" in monitor["detail"]
    assert [(i["shard"], i["status"]) for i in monitor["items"]] == [("0/2", "ok"), ("1/2", "unavailable")]
    assert body["checks"]["database"]["status"] == "ok"


def test_readiness_is_503_before_any_monitor_has_cycled(client):
    status, body = ready(client)
    assert status == 503
    assert body["checks"]["bonus_monitor"]["status"] == "unavailable"


def test_a_shard_taken_over_by_a_live_monitor_counts_as_cycled_by_it():
    now = timezone.now()
    lease = now + timedelta(seconds=3)
    rows = [
        MonitorShard(shard=0, shards=2, holder="a", lease_until=lease, last_cycle_at=now),
        # b died 60 s ago; a holds its shard on a live lease and cycles over its accounts.
        MonitorShard(shard=1, shards=2, holder="a", lease_until=lease, last_cycle_at=now - timedelta(seconds=60)),
        # An older split (--shards 1) left behind: not part of the system any more.
        MonitorShard(shard=0, shards=1, holder="", last_cycle_at=now - timedelta(days=2)),
    ]
    ages = shard_ages(rows, now=now, limit=15)
    assert [(a.shard, a.shards, a.stale) for a in ages] == [(0, 2, False), (1, 2, False)]
    rows[1].lease_until = now - timedelta(seconds=1)  # a's lease on it ran out too
    assert [a.stale for a in shard_ages(rows, now=now, limit=15)] == [False, True]


@pytest.mark.usefixtures("celery_not_eager")
def test_readiness_is_503_when_beat_has_not_run(client, settings):
    settings.HEALTH_CHECKS = {"celery_beat": "config.health.CeleryBeat"}
    status, body = ready(client)
    assert status == 503
    assert body["checks"]["celery_beat"] == {
        "status": "unavailable",
        "detail": "beat has not dispatched any task yet",
        "seconds": body["checks"]["celery_beat"]["seconds"],
    }


@pytest.mark.usefixtures("celery_not_eager")
def test_beat_is_ready_after_a_dispatch_and_not_once_it_is_older_than_the_limit(client, settings):
    settings.HEALTH_CHECKS = {"celery_beat": "config.health.CeleryBeat"}
    settings.HEALTH_BEAT_MAX_AGE_SECONDS = 60
    beat_stamp()
    status, body = ready(client)
    assert status == 200, body
    assert body["checks"]["celery_beat"]["detail"].startswith("last dispatch ")
    redis_client().set(beat_key(), repr(time.time() - 300))
    status, body = ready(client)
    assert status == 503
    assert "limit 60.0 s" in body["checks"]["celery_beat"]["detail"]


@pytest.mark.usefixtures("celery_not_eager")
def test_beat_falls_back_to_the_periodic_tasks_last_run_when_redis_has_no_stamp(client, settings):
    settings.HEALTH_CHECKS = {"celery_beat": "config.health.CeleryBeat"}
    every = IntervalSchedule.objects.create(every=5, period=IntervalSchedule.SECONDS)
    task = PeriodicTask.objects.create(name="t", task="x", interval=every, last_run_at=timezone.now())
    assert ready(client)[0] == 200
    task.last_run_at = timezone.now() - timedelta(hours=1)
    task.save()
    assert ready(client)[0] == 503


def test_the_beat_process_stamps_each_dispatch():
    from celery.signals import before_task_publish

    beat_watch()
    try:
        assert redis_client().get(beat_key()) is None
        before_task_publish.send(sender="bonuses.tasks.monitor_fallback_cycle", body=(), headers={})
        assert time.time() - float(redis_client().get(beat_key())) < 5
    finally:
        before_task_publish.disconnect(dispatch_uid="config.health.beat_stamp")


@pytest.mark.usefixtures("celery_not_eager")
def test_readiness_is_503_when_no_celery_worker_answers(client, settings):
    settings.HEALTH_CHECKS = {"celery_workers": "config.health.CeleryWorkers"}
    settings.HEALTH_CELERY_TIMEOUT = 0.3
    status, body = ready(client)
    assert status == 503
    assert body["checks"]["celery_workers"]["status"] == "unavailable"
    assert body["checks"]["celery_workers"]["detail"] == "no Celery worker answered within 0.3 s"


# --- the admin page ----------------------------------------------------------------------------------------


def test_admin_system_health_page_shows_each_check(client, super_admin, settings, fresh_shard):
    settings.REDIS_URL = CLOSED_PORT
    client.force_login(super_admin)
    response = client.get(reverse("admin:system-health"))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-status="not ready"' in page
    assert 'data-check="redis" data-status="unavailable"' in page
    assert 'data-check="database" data-status="ok"' in page
    assert 'data-item="0/1"' in page
    assert "s3cret" not in page


@pytest.mark.parametrize("persona", ["campaign_manager", "support_agent", "read_only"])
def test_every_staff_role_may_open_system_health(client, request, persona, fresh_shard):
    client.force_login(request.getfixturevalue(persona))
    assert client.get(reverse("admin:system-health")).status_code == 200


def test_a_trader_cannot_open_system_health(client, owner):
    client.force_login(owner)
    response = client.get(reverse("admin:system-health"))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
