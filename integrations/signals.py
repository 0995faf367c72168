"""Hooks into other apps: "account.synced" webhooks and the "Run pre-flight" action on trading accounts."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import transaction

from accounts.choices import SyncOutcome


def sync_run_saved(sender, instance, created: bool, **kwargs) -> None:
    if not created or instance.outcome != SyncOutcome.OK:
        return
    from .selectors import webhook_event_wanted

    if not webhook_event_wanted("account.synced"):
        return  # nobody subscribed: no account read, no payload (the hot path of every sync)
    account_id, run_pk = instance.account_id, instance.pk

    def emit() -> None:
        from accounts.models import TradingAccount

        from .services import webhook_emit

        account = TradingAccount.objects.filter(pk=account_id).first()
        if account is None:
            return
        webhook_emit(
            "account.synced",
            {
                "account_id": str(account.pk),
                "login": account.login,
                "server": account.server,
                "balance": account.balance,
                "equity": account.equity,
                "credit": account.credit,
                "margin_level": account.margin_level,
                "sync_run": run_pk,
                "deals_added": instance.deals_added,
                "positions": instance.positions,
                "synced_at": instance.started_at,
            },
        )

    transaction.on_commit(emit)


@admin.action(description="Run symbol pre-flight", permissions=["sync"])
def run_preflight(modeladmin, request, queryset) -> None:
    from .choices import PreflightStatus
    from .services import preflight_run

    done = []
    for account in queryset[:20]:  # each run logs in to MT5; keep one request bounded
        result = preflight_run(account=account, user=request.user)
        done.append((account, result))
    for account, result in done:
        if result.status == PreflightStatus.FAILED:
            modeladmin.message_user(request, f"{account.login}: pre-flight failed — {result.error}", messages.ERROR)
        else:
            level = messages.WARNING if result.warnings else messages.SUCCESS
            note = f" ({'; '.join(result.warnings)})" if result.warnings else ""
            modeladmin.message_user(
                request,
                f"{account.login}: {result.symbols_found} symbols, chart {result.chart_symbol} "
                f"{result.chart_period}{note}",
                level,
            )
    if queryset.count() > 20:
        modeladmin.message_user(request, "Only the first 20 accounts were checked.", messages.WARNING)


def add_preflight_admin_action() -> None:
    from accounts.admin import TradingAccountAdmin

    if run_preflight not in TradingAccountAdmin.actions:
        TradingAccountAdmin.actions = [*TradingAccountAdmin.actions, run_preflight]
