"""Celery entry points of copy trading (thin: they call services)."""

from __future__ import annotations

from celery import shared_task

from . import signal_services


@shared_task(name="copytrading.tasks.signal_fees", acks_late=True, expires=3000)
def signal_fees() -> dict:
    """Settle every signal follower's finished months and charge the fees due (idempotent per month)."""
    return signal_services.fees_run()
