"""Celery entry points of entitlements (thin: they call services)."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="entitlements.tasks.enforce_plans", acks_late=True, expires=3000)
def enforce_plans() -> int:
    """Re-apply plan rules for everyone with a subscription or staff choice (grace periods end with time)."""
    return services.plan_limits_enforce_all()
