"""Install every periodic job (idempotent; admin edits to enabled/interval survive a deploy).

Each app declares its jobs in ``<app>/schedule.py`` as ``PERIODIC_JOBS``: dicts with name,
task, every (seconds), queue and optionally enabled, kwargs and crontab (a dict of CrontabSchedule fields,
e.g. {"minute": "30", "hour": "2"} for nightly at 02:30 in CELERY_TIMEZONE; it replaces every on install).
"""

from __future__ import annotations

import json
from importlib import import_module

from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask


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
            if "crontab" in job:
                crontab, _ = CrontabSchedule.objects.get_or_create(**job["crontab"], timezone=settings.CELERY_TIMEZONE)
                schedule = {"crontab": crontab}
            else:
                every, _ = IntervalSchedule.objects.get_or_create(every=job["every"], period=IntervalSchedule.SECONDS)
                schedule = {"interval": every}
            task, created = PeriodicTask.objects.get_or_create(
                name=job["name"],
                defaults={
                    "task": job["task"],
                    **schedule,
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
