"""Install every periodic job (idempotent; admin edits to enabled/interval survive a deploy).

Each app declares its jobs in ``<app>/schedule.py`` as ``PERIODIC_JOBS``: dicts with name,
task, every (seconds), queue and optionally enabled and kwargs.
"""

from __future__ import annotations

import json
from importlib import import_module

from django.apps import apps
from django.core.management.base import BaseCommand
from django_celery_beat.models import IntervalSchedule, PeriodicTask


def periodic_jobs() -> list[dict]:
    jobs = []
    for config in apps.get_app_configs():
        try:
            module = import_module(f"{config.name}.schedule")
        except ModuleNotFoundError as exc:
            if exc.name != f"{config.name}.schedule":
                raise
            continue
        jobs.extend(module.PERIODIC_JOBS)
    return jobs


class Command(BaseCommand):
    help = "Create or update the periodic Celery beat tasks declared in each app's schedule.py."

    def handle(self, *args, **options):
        for job in periodic_jobs():
            schedule, _ = IntervalSchedule.objects.get_or_create(every=job["every"], period=IntervalSchedule.SECONDS)
            task, created = PeriodicTask.objects.get_or_create(
                name=job["name"],
                defaults={
                    "task": job["task"],
                    "interval": schedule,
                    "queue": job["queue"],
                    "enabled": job.get("enabled", True),
                    "kwargs": json.dumps(job.get("kwargs", {})),
                },
            )
            if not created:
                # Keep what staff changed (enabled, interval); fix what code owns (task path, queue).
                task.task = job["task"]
                task.queue = job["queue"]
                task.save(update_fields=["task", "queue"])
            self.stdout.write(f"{'created' if created else 'kept'}: {job['name']}")
