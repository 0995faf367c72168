"""Celery entry points of the bonuses app: the fallback monitor cycle, expiry, pending operations."""

from __future__ import annotations

from celery import shared_task

from mt5bridge.gateway import GatewayUnavailable

from .monitor import fallback_cycle, prune_history
from .services.ending import bonuses_expire
from .services.operations import operations_resume


@shared_task(name="bonuses.tasks.monitor_fallback_cycle", acks_late=True, expires=10, ignore_result=True)
def monitor_fallback_cycle() -> int | None:
    """One monitor pass when no run_bonus_monitor worker is alive (returns the accounts read, or None)."""
    result = fallback_cycle()
    return None if result is None else result.accounts


@shared_task(name="bonuses.tasks.expire_bonuses", acks_late=True, expires=3000, ignore_result=True)
def expire_bonuses() -> int:
    prune_history()
    return bonuses_expire()


@shared_task(
    name="bonuses.tasks.resume_operations",
    acks_late=True,
    expires=60,
    ignore_result=True,
    autoretry_for=(GatewayUnavailable,),
    retry_backoff=True,
    max_retries=5,
)
def resume_operations() -> int:
    return operations_resume()
