"""Celery entry points of the bonuses app: the fallback monitor cycle, expiry, pending operations, reconciliation."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError, connection, transaction

from mt5bridge.gateway import GatewayUnavailable

from .monitor import fallback_cycle, prune_history
from .reconciliation import reconciliation_execute, reconciliation_run_now
from .services.ending import bonuses_expire
from .services.operations import operations_resume
from .services.queued import ACCOUNT_WORK_TASK, AccountBusy, account_work


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


@shared_task(name=ACCOUNT_WORK_TASK, bind=True, acks_late=True, ignore_result=True, max_retries=None)
def account_work_task(self, login: int) -> int:
    """One account's queued bonus work (services/queued.py): deals read, postings sent in order; returns posted.

    Another task of the same account running: this one runs again in a moment. MT5 or the database
    unreachable: again with backoff; the monitor's sweep also resends an account whose work is left.
    """
    try:
        return account_work(login=login).posted
    except AccountBusy as exc:
        raise self.retry(countdown=0.2, max_retries=50, exc=exc) from None
    except (GatewayUnavailable, OperationalError, InterfaceError) as exc:
        connection.close()
        raise self.retry(countdown=min(30, 0.5 * 2 ** min(self.request.retries, 6)), max_retries=20, exc=exc) from None


@shared_task(name="bonuses.tasks.reconcile_nightly", acks_late=True, expires=6 * 3600, ignore_result=True)
def reconcile_nightly() -> int:
    """Compare every bonus operation with the synced credit deals (bonuses/reconciliation.py); returns found."""
    return reconciliation_run_now().found


@shared_task(name="bonuses.tasks.reconcile_run", acks_late=True, ignore_result=True)
def reconcile_run(run_id: int) -> int:
    """A run staff asked for (admin action, API), recorded before it was queued; returns the mismatches found."""
    return reconciliation_execute(run_id=run_id).found


def reconcile_queue(run) -> None:
    """Queue a recorded run once the transaction that recorded it has committed."""
    transaction.on_commit(lambda: reconcile_run.delay(run.pk))
