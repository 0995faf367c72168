"""What the integrations app does when other apps announce something: one outbound webhook event per change.

Connected in ``IntegrationsConfig.ready``: ``account.synced`` (post_save of ``accounts.SyncRun``), ``bonus.granted``,
``bonus.cancelled``, ``bonus.converted`` (the ports in ``bonuses/signals.py``) and ``copy.command_failed``
(``copytrading/signals.py``). The ports send after their transaction commits; the sync run's post_save is inside
the sync's, so its event waits for that commit here.
"""

from __future__ import annotations

from django.db import transaction

from accounts.choices import SyncOutcome
from accounts.figures import figures_of
from accounts.models import TradingAccount

from .choices import WebhookEvent
from .selectors import webhook_event_wanted
from .services.webhooks import webhook_emit


def sync_run_saved(sender, instance, created: bool, **kwargs) -> None:
    if not created or instance.outcome != SyncOutcome.OK:
        return
    if not webhook_event_wanted(WebhookEvent.ACCOUNT_SYNCED):
        return  # nobody subscribed: no account read, no payload (the hot path of every sync)
    account_id, run_pk = instance.account_id, instance.pk

    def emit() -> None:
        account = TradingAccount.objects.filter(pk=account_id).first()
        if account is None:
            return
        webhook_emit(
            WebhookEvent.ACCOUNT_SYNCED,
            {
                "account_id": str(account.pk),
                "login": account.login,
                "server": account.server,
                **figures_of(account),
                "sync_run": run_pk,
                "deals_added": instance.deals_added,
                "positions": instance.positions,
                "synced_at": instance.started_at,
            },
        )

    transaction.on_commit(emit)


def _bonus_payload(bonus) -> dict:
    return {
        "bonus_id": bonus.pk,
        "login": bonus.login,
        "campaign_id": bonus.campaign_id,
        "campaign": bonus.campaign.name,
        "bonus_type": bonus.bonus_type,
        "trigger": bonus.trigger,
        "status": bonus.status,
        "amount": bonus.amount,
        "credit_outstanding": bonus.credit_outstanding,
        "converted_amount": bonus.converted_amount,
        "removed_amount": bonus.removed_amount,
        "lots_required": bonus.lots_required,
        "lots_traded": bonus.lots_traded,
        "expires_at": bonus.expires_at,
        "created_at": bonus.created_at,
        "ended_at": bonus.ended_at,
    }


def bonus_granted(sender, bonus, **kwargs) -> None:
    if webhook_event_wanted(WebhookEvent.BONUS_GRANTED):
        webhook_emit(WebhookEvent.BONUS_GRANTED, _bonus_payload(bonus))


def bonus_cancelled(sender, bonus, reason: str = "", **kwargs) -> None:
    if webhook_event_wanted(WebhookEvent.BONUS_CANCELLED):
        webhook_emit(WebhookEvent.BONUS_CANCELLED, {**_bonus_payload(bonus), "reason": str(reason or "")})


def bonus_converted(sender, bonus, **kwargs) -> None:
    if webhook_event_wanted(WebhookEvent.BONUS_CONVERTED):
        webhook_emit(WebhookEvent.BONUS_CONVERTED, _bonus_payload(bonus))


def bonus_operation_failed(sender, bonus, operation, error: str = "", **kwargs) -> None:
    if webhook_event_wanted(WebhookEvent.BONUS_OPERATION_FAILED):
        webhook_emit(
            WebhookEvent.BONUS_OPERATION_FAILED,
            {
                **_bonus_payload(bonus),
                "operation_id": operation.pk,
                "operation_kind": operation.kind,
                "operation_amount": operation.amount,
                "attempts": operation.attempts,
                "error": error,
            },
        )


def copy_command_failed(sender, copy, retcode: int | None = None, reason: str = "", **kwargs) -> None:
    if not webhook_event_wanted(WebhookEvent.COPY_COMMAND_FAILED):
        return
    webhook_emit(
        WebhookEvent.COPY_COMMAND_FAILED,
        {
            "copy_id": copy.copy_id,
            "link_id": copy.link_id,
            "master_account_id": str(copy.link.master_id),
            "slave_account_id": str(copy.slave_account_id),
            "kind": copy.kind,
            "status": copy.status,
            "master_ticket": copy.master_ticket,
            "master_symbol": copy.master_symbol,
            "slave_symbol": copy.slave_symbol,
            "slave_side": copy.slave_side,
            "slave_volume": copy.slave_volume,
            "retcode": retcode,
            "reason": str(reason or ""),
        },
    )
