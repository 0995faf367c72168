"""Celery entry points of the MT5 bridge: thin, they call the sync services."""

from __future__ import annotations

from celery import shared_task

from mt5bridge import commands
from mt5bridge import gateway as gw
from mt5bridge.sync import account_sync, accounts_due_for_sync, sync_queue_for


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=(gw.GatewayUnavailable,),
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=4,
    ignore_result=True,
)
def sync_account(self, account_id: str, trigger: str = "schedule") -> str:
    return account_sync(account_id=account_id, trigger=trigger).outcome


@shared_task(ignore_result=True, expires=50)
def sync_due_accounts() -> int:
    """Beat: queue a sync for every account whose interval has passed."""
    count = 0
    for account in accounts_due_for_sync().iterator():
        sync_account.apply_async(args=[str(account.pk)], queue=sync_queue_for(account), expires=600)
        count += 1
    return count


@shared_task(ignore_result=True, expires=50)
def commands_expire_sweep() -> int:
    """Beat: mark expired every open command past its expiry, also for EAs that stopped beating.

    Delivery expires a due command lazily; without the sweep, a command for an EA that never comes back
    would stay "queued" in the history forever.
    """
    return commands.commands_expire_due()


def sync_enqueue(account, *, trigger: str) -> None:
    """Queue an immediate sync ("sync now" from the API or the admin)."""
    sync_account.apply_async(args=[str(account.pk)], kwargs={"trigger": trigger}, queue=sync_queue_for(account))
