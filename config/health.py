"""Health: liveness, readiness and the report they share with the admin's "System health" page.

The checks are django-health-check's (``HealthCheck`` subclasses, run side by side, each within its own time
budget); ``settings.HEALTH_CHECKS`` names them, so an app above config adds its own (the bonus monitor's shards,
``bonuses/health.py``) without config importing it. A check may find its dependency is not used in this
deployment (no Redis configured, Celery eager): it then reports "not used" and does not fail readiness.

What the endpoints show is safe to show anyone: a status and a short sentence per check, never a URL,
a host name or a credential (the checks' messages are written for this; an unexpected error is "unknown error").
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import health_check
import redis.asyncio as aredis
from asgiref.sync import async_to_sync, sync_to_async
from celery.app import app_or_default
from django.conf import settings
from django.http import JsonResponse
from django.utils import timezone
from django.utils.module_loading import import_string
from health_check.base import HealthCheck, HealthCheckResult
from health_check.contrib.celery import Ping
from health_check.contrib.redis import Redis as RedisPing
from health_check.exceptions import ServiceUnavailable, ServiceWarning
from health_check.views import HealthCheckView

from config.redis_clients import redis_client

logger = logging.getLogger(__name__)

OK, WARNING, FAILED, NOT_USED = "ok", "warning", "unavailable", "not used"


class Reported:
    """What a check tells besides pass/fail: a sentence (``detail``), "not used", and rows for the admin page."""

    detail: str = ""
    not_used: bool = False
    items: list[dict] | None = None

    def skip(self, why: str) -> None:
        self.not_used, self.detail = True, why


class ReadsDatabase:
    """A check that reads the database: its ``check()`` runs where the request's synchronous code runs (the thread
    Django gives the request, as for a sync view), on the request's own connection, which Django manages."""

    def check(self) -> None:
        raise NotImplementedError

    async def run(self) -> None:
        await sync_to_async(self.check, thread_sensitive=True)()


# --- the checks --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Database(ReadsDatabase, Reported, health_check.Database):
    """PostgreSQL (or SQLite) answers ``SELECT 1``."""

    def check(self) -> None:
        health_check.Database.run(self)
        self.detail = "answered SELECT 1"


def _redis_from_settings() -> aredis.Redis:
    timeout = settings.HEALTH_REDIS_TIMEOUT
    return aredis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=timeout, socket_timeout=timeout)


@dataclasses.dataclass
class Redis(Reported, RedisPing):
    """Redis (cache, Celery broker, Channels, EA state) answers PING; "not used" without REDIS_URL."""

    client_factory: object = dataclasses.field(default=_redis_from_settings, repr=False)

    def __repr__(self) -> str:  # the library's names host and port; the report names checks by their key
        return "Redis()"

    @property
    def timeout(self) -> timedelta:
        return timedelta(seconds=settings.HEALTH_REDIS_TIMEOUT)

    async def run(self) -> None:
        if not settings.REDIS_URL:
            return self.skip("no REDIS_URL: cache and channels run in process")
        await super().run()
        self.detail = "answered PING"


def _celery_used(app=None) -> bool:
    """Whether tasks go through a broker to workers (not when eager: they run in the calling process)."""
    conf = (app or app_or_default()).conf
    return not conf.task_always_eager and bool(conf.broker_url)


@dataclasses.dataclass
class CeleryWorkers(Reported, Ping):
    """At least one worker answers a ping and every declared queue has a worker (each within HEALTH_CELERY_TIMEOUT)."""

    def __post_init__(self) -> None:
        # Two round trips (ping, then the workers' queues), each given the setting's time: the check's budget.
        self.timeout = timedelta(seconds=2 * settings.HEALTH_CELERY_TIMEOUT)

    def run(self) -> None:
        if not _celery_used(self.app):
            return self.skip("tasks run in the calling process (CELERY_TASK_ALWAYS_EAGER)")
        wait = settings.HEALTH_CELERY_TIMEOUT
        try:
            answers = self.app.control.ping(timeout=wait)
        except OSError as exc:
            raise ServiceUnavailable("the broker does not answer") from exc
        if not answers:
            raise ServiceUnavailable(f"no Celery worker answered within {wait:g} s")
        workers = list(self.active_workers(answers))
        served = {
            queue.get("name")
            for queues in (self.app.control.inspect(workers, timeout=wait).active_queues() or {}).values()
            for queue in queues
        }
        declared = {q.name for q in self.app.conf.task_queues or ()} or {self.app.conf.task_default_queue}
        missing = sorted(declared - served)
        if missing:
            raise ServiceUnavailable(f"no worker for the queue {', '.join(missing)}")
        self.detail = f"{len(workers)} worker{'s' if len(workers) != 1 else ''} answered"


def beat_key() -> str:
    return f"{settings.CACHE_KEY_PREFIX}:health:beat-dispatched"


def beat_stamp(**_kwargs) -> None:
    """Record that beat dispatched a task now (a ``before_task_publish`` receiver in the beat process only)."""
    r = redis_client()
    if r is None:
        return
    try:
        r.set(beat_key(), repr(time.time()), ex=7 * 86400)
    except Exception:  # noqa: BLE001 — a Redis outage must not stop beat; readiness then reads the database
        logger.debug("could not record beat's dispatch", exc_info=True)


def beat_watch() -> None:
    """Called by the ``beat_init`` signal (config/celery.py): stamp each dispatch of this beat process."""
    from celery.signals import before_task_publish  # noqa: PLC0415  (only the beat process listens)

    before_task_publish.connect(beat_stamp, weak=False, dispatch_uid="config.health.beat_stamp")


def beat_last_dispatch() -> datetime | None:
    """When beat last dispatched a task: its stamp in Redis, or django-celery-beat's last_run_at (saved in batches)."""
    from django_celery_beat.models import PeriodicTask  # noqa: PLC0415  (a model: only once apps are loaded)

    times = []
    r = redis_client()
    if r is not None:
        try:
            stamp = r.get(beat_key())
        except Exception:  # noqa: BLE001 — Redis down: the database's record still tells
            stamp = None
        if stamp:
            times.append(datetime.fromtimestamp(float(stamp), tz=UTC))
    latest = PeriodicTask.objects.filter(enabled=True, last_run_at__isnull=False).order_by("-last_run_at").first()
    if latest is not None:
        times.append(latest.last_run_at)
    return max(times, default=None)


def age_text(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@dataclasses.dataclass
class CeleryBeat(ReadsDatabase, Reported, HealthCheck):
    """Beat dispatched a task within HEALTH_BEAT_MAX_AGE_SECONDS."""

    def check(self) -> None:
        if not _celery_used():
            return self.skip("periodic jobs are not dispatched by beat (CELERY_TASK_ALWAYS_EAGER)")
        last = beat_last_dispatch()
        limit = settings.HEALTH_BEAT_MAX_AGE_SECONDS
        if last is None:
            raise ServiceUnavailable("beat has not dispatched any task yet")
        age = (timezone.now() - last).total_seconds()
        self.detail = f"last dispatch {age_text(max(age, 0.0))} ago (limit {age_text(limit)})"
        if age > limit:
            raise ServiceUnavailable(self.detail)


# --- running them ------------------------------------------------------------------------------------------


def health_checks() -> list[HealthCheck]:
    checks = []
    for name, path in settings.HEALTH_CHECKS.items():
        check = import_string(path)()
        check.name = name
        checks.append(check)
    return checks


def _entry(result: HealthCheckResult) -> dict:
    check, error = result.check, result.error
    if getattr(check, "not_used", False):
        status = NOT_USED
    elif error is None:
        status = OK
    elif isinstance(error, ServiceWarning):
        status = WARNING
    else:
        status = FAILED
    detail = getattr(check, "detail", "") or ""
    if error is not None:
        detail = error.message if isinstance(error.message, str) else str(error.message)
    entry = {"status": status, "detail": detail, "seconds": round(result.time_taken, 3)}
    if getattr(check, "items", None) is not None:
        entry["items"] = check.items
    return entry


async def readiness_report() -> dict:
    """Every check of HEALTH_CHECKS, side by side: {"status": "ready"|"not ready", "checks": {name: entry}}."""
    checks = health_checks()
    # Threads for the synchronous checks that read no database (a Celery ping waits for answers), this report only.
    with ThreadPoolExecutor(max_workers=max(1, len(checks)), thread_name_prefix="health") as executor:
        results = await asyncio.gather(*(check.get_result(executor) for check in checks))
    entries = {check.name: _entry(result) for check, result in zip(checks, results, strict=True)}
    ready = all(entry["status"] != FAILED for entry in entries.values())
    return {"status": "ready" if ready else "not ready", "checked_at": timezone.now().isoformat(), "checks": entries}


def readiness_report_sync() -> dict:
    """The same report from synchronous code (the admin page)."""
    return async_to_sync(readiness_report)()


class LivenessView(HealthCheckView):
    """200 while the process serves requests: no dependency is asked (a restart would not fix one)."""

    checks = ()

    async def get(self, request, *args, **kwargs):
        return JsonResponse({"status": "alive"})


class ReadinessView(HealthCheckView):
    """200 when every dependency in HEALTH_CHECKS is up (or not used), 503 otherwise; JSON either way."""

    async def get(self, request, *args, **kwargs):
        report = await readiness_report()
        return JsonResponse(report, status=200 if report["status"] == "ready" else 503)
