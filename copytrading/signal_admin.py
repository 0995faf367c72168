"""Back-office admin of signals: published signals, followers, each month's fee and the audit (read-only: every
change goes through the trader's pages and API, so it is checked and audited once)."""

from __future__ import annotations

from django.contrib import admin
from unfold.admin import ModelAdmin

from accounts.admin import ReadOnlyAdminMixin, RestrictedAdminMixin

from .signal_models import SignalAudit, SignalFee, SignalSubscription, TradingSignal


@admin.register(TradingSignal)
class TradingSignalAdmin(RestrictedAdminMixin, ReadOnlyAdminMixin, ModelAdmin):
    restrict_perm = "copytrading.view_tradingsignal"
    owner_path = "owner"
    list_display = [
        "name",
        "owner",
        "master",
        "currency",
        "min_deposit",
        "monthly_fee",
        "performance_fee_pct",
        "listed",
    ]
    list_filter = ["listed", "currency"]
    list_select_related = ["owner", "master"]
    search_fields = ["name", "owner__email", "master__login"]


@admin.register(SignalSubscription)
class SignalSubscriptionAdmin(RestrictedAdminMixin, ReadOnlyAdminMixin, ModelAdmin):
    restrict_perm = "copytrading.view_signalsubscription"
    owner_path = "follower"
    list_display = [
        "id",
        "signal",
        "follower",
        "account",
        "status",
        "monthly_fee",
        "performance_fee_pct",
        "cumulative_pnl",
        "high_water_mark",
        "started_at",
        "stopped_at",
        "stop_mode",
    ]
    list_filter = ["status", "stop_mode"]
    list_select_related = ["signal", "follower", "account"]
    search_fields = ["signal__name", "follower__email", "account__login"]


@admin.register(SignalFee)
class SignalFeeAdmin(RestrictedAdminMixin, ReadOnlyAdminMixin, ModelAdmin):
    restrict_perm = "copytrading.view_signalfee"
    owner_path = "subscription__follower"
    list_display = [
        "period",
        "subscription",
        "pnl",
        "hwm_before",
        "hwm_after",
        "performance_fee",
        "monthly_fee",
        "total",
        "currency",
        "status",
        "charge_reference",
    ]
    list_filter = ["status", "period"]
    search_fields = ["charge_reference", "subscription__follower__email"]


@admin.register(SignalAudit)
class SignalAuditAdmin(RestrictedAdminMixin, ReadOnlyAdminMixin, ModelAdmin):
    restrict_perm = "copytrading.view_signalaudit"
    owner_path = "actor"
    list_display = ["created_at", "action", "signal", "subscription", "actor"]
    list_filter = ["action"]
    show_full_result_count = False
    date_hierarchy = "created_at"
