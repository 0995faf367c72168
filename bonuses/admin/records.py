"""Monitored accounts, MT5 postings (retry now, mark resolved), audit log, monitor cycles and shards, scans."""

from __future__ import annotations

from django.contrib import admin
from unfold.admin import ModelAdmin

from accounts.admin import EstimatedCountPaginator
from accounts.permissions import restrict
from config.errors import ServiceError
from mt5bridge import gateway as gw

from ..choices import MonitorStatus, OperationStatus
from ..models import (
    AuditLog,
    BonusOperation,
    MonitorCycle,
    MonitoredAccount,
    MonitorShard,
    Mt5Scan,
)
from ..services.monitored import monitoring_reset_errors
from ..services.operations import UNFINISHED, operation_resolve, operation_retry
from .base import ReadOnlyAdmin, report_error


@admin.register(MonitoredAccount)
class MonitoredAccountAdmin(ModelAdmin):
    list_before_template = "admin/bonuses/_nav.html"
    list_display = [
        "login",
        "group",
        "country",
        "lead_source",
        "status",
        "consecutive_errors",
        "balance",
        "credit",
        "leverage",
        "snapshot_at",
    ]
    list_filter = ["status", "group"]
    search_fields = ["=login", "lead_source"]
    actions = ["reset_errors"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False

    def get_queryset(self, request):
        return restrict(request.user, "bonuses.view_monitoredaccount", super().get_queryset(request))

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in MonitoredAccount._meta.concrete_fields]

    def has_add_permission(self, request):
        return False  # accounts are discovered by the monitor, by Scan MT5 or the register endpoint

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Reset errors and resume monitoring", permissions=["change"])
    def reset_errors(self, request, queryset):
        for account in queryset.filter(status=MonitorStatus.PAUSED) | queryset.filter(consecutive_errors__gt=0):
            monitoring_reset_errors(actor=request.user, login=account.login)
        self.message_user(request, "Monitoring resumed.")


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    """Read-only for everyone (the table itself refuses changes on PostgreSQL)."""

    list_before_template = "admin/bonuses/_nav.html"
    list_display = ["created_at", "actor_label", "action", "login", "bonus_id", "campaign_id", "message"]
    list_filter = ["action"]
    search_fields = ["=login", "=bonus__id", "actor_label"]
    readonly_fields = [
        "created_at",
        "actor_label",
        "action",
        "login",
        "bonus",
        "campaign",
        "before",
        "after",
        "message",
    ]
    exclude = ["actor"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False

    def get_queryset(self, request):
        return restrict(request.user, "bonuses.view_auditlog", super().get_queryset(request))


@admin.register(BonusOperation)
class BonusOperationAdmin(ReadOnlyAdmin):
    """MT5 postings; failed ones (retried BONUS_OPERATION_MAX_ATTEMPTS times) wait here for a person."""

    list_before_template = "admin/bonuses/_nav.html"
    list_display = [
        "id",
        "bonus_id",
        "login",
        "kind",
        "amount",
        "leverage",
        "status",
        "deal_ticket",
        "attempts",
        "next_attempt_at",
        "error",
        "created_at",
    ]
    list_filter = ["status", "kind"]
    search_fields = ["=login", "=bonus__id"]
    actions = ["retry_now", "mark_resolved"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False

    def get_queryset(self, request):
        return restrict(request.user, "bonuses.view_bonusoperation", super().get_queryset(request))

    def has_resolve_permission(self, request) -> bool:
        # Held with the capability that cancels bonuses (bonuses.manage in accounts/roles.py): Super Admin.
        return request.user.has_perm("bonuses.resolve_bonusoperation")

    @admin.action(description="Retry now (failed or waiting postings)", permissions=["resolve"])
    def retry_now(self, request, queryset):
        done = 0
        for operation in queryset.filter(status__in=UNFINISHED):
            try:
                if operation_retry(actor=request.user, operation=operation).status == OperationStatus.DONE:
                    done += 1
            except (ServiceError, gw.GatewayError) as exc:
                report_error(self, request, exc)
        self.message_user(request, f"{done} posting(s) done; the others show their error.")

    @admin.action(description="Mark resolved (settled by hand, nothing is sent)", permissions=["resolve"])
    def mark_resolved(self, request, queryset):
        done = 0
        for operation in queryset.filter(status=OperationStatus.FAILED):
            operation_resolve(actor=request.user, operation=operation, note=f"by {request.user.email}")
            done += 1
        self.message_user(request, f"{done} failed posting(s) marked resolved.")


@admin.register(MonitorCycle)
class MonitorCycleAdmin(ReadOnlyAdmin):
    list_display = [
        "started_at",
        "shard",
        "shards",
        "duration_ms",
        "accounts",
        "discovered",
        "deposits",
        "withdrawals",
        "drawdowns",
        "conversions",
        "errors",
        "paused",
        "error",
    ]
    list_filter = ["shards", "shard"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False

    def get_queryset(self, request):
        return restrict(request.user, "bonuses.view_monitorcycle", super().get_queryset(request))


@admin.register(MonitorShard)
class MonitorShardAdmin(ReadOnlyAdmin):
    list_display = [
        "shard",
        "shards",
        "holder",
        "lease_until",
        "last_cycle_at",
        "last_duration_ms",
        "last_accounts",
        "cycles",
        "deposits",
        "withdrawals",
        "drawdowns",
        "errors",
    ]

    def get_queryset(self, request):
        return restrict(request.user, "bonuses.view_monitorshard", super().get_queryset(request))


@admin.register(Mt5Scan)
class Mt5ScanAdmin(ReadOnlyAdmin):
    list_display = ["scanned_at", "scanned_by", "accounts"]

    def get_queryset(self, request):
        return restrict(request.user, "bonuses.view_mt5scan", super().get_queryset(request))
