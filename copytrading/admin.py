"""Back-office admin of copy trading: links, copied positions, the skip log, rules and rule hits."""

from __future__ import annotations

from django.contrib import admin
from unfold.admin import ModelAdmin

from accounts.admin import ReadOnlyAdminMixin, RestrictedAdminMixin

from .models import AccountCopyState, CopiedPosition, CopyEvent, CopyLink, OrderTemplate, Rule, RuleHit
from .selectors import bump_config_version


class RefusedFilter(admin.SimpleListFilter):
    """Links whose new copies the account or billing gate refuses now (master or slave paused, plan, limit)."""

    title = "copies refused"
    parameter_name = "refused"

    def lookups(self, request, model_admin):
        return [("yes", "Refused now"), ("no", "Copying")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(refusal_code="")
        if self.value() == "no":
            return queryset.filter(refusal_code="")
        return queryset


@admin.register(CopyLink)
class CopyLinkAdmin(RestrictedAdminMixin, ModelAdmin):
    restrict_perm = "copytrading.view_copylink"
    owner_path = "slave__owner"
    list_display = [
        "id",
        "master",
        "slave",
        "active",
        "priority",
        "sizing_mode",
        "multiplier",
        "reverse",
        "close_only",
        "max_delay_seconds",
        "refusal_code",
        "created_at",
    ]
    list_filter = ["active", "sizing_mode", "reverse", "close_only", "copy_pending", RefusedFilter]
    list_select_related = ["master", "slave"]
    raw_id_fields = ["master", "slave", "created_by"]
    search_fields = ["master__login", "slave__login", "master__name", "slave__name"]
    actions = ["deactivate", "activate"]
    readonly_fields = ["refusal_code", "refusal_reason", "refused_at"]
    fieldsets = (
        (None, {"fields": ("master", "slave", "created_by", "active", "priority")}),
        ("Refused copies", {"fields": ("refusal_code", "refusal_reason", "refused_at")}),
        (
            "Sizing",
            {
                "fields": (
                    "sizing_mode",
                    "multiplier",
                    "fixed_volume",
                    "risk_percent",
                    "no_sl",
                    "default_sl_points",
                    "contract_size_aware",
                    "min_volume",
                    "max_volume",
                )
            },
        ),
        (
            "Symbols and filters",
            {"fields": ("symbol_overrides", "symbols_include", "symbols_exclude", "magics_include", "magics_exclude")},
        ),
        (
            "Behaviour",
            {
                "fields": (
                    "reverse",
                    "copy_sltp",
                    "copy_pending",
                    "close_only",
                    "max_delay_seconds",
                    "max_slippage_points",
                )
            },
        ),
    )

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        bump_config_version()

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        bump_config_version()

    @admin.action(description="Deactivate the selected links", permissions=["change"])
    def deactivate(self, request, queryset):
        count = queryset.update(active=False)
        bump_config_version()
        self.message_user(request, f"{count} link(s) deactivated.")

    @admin.action(description="Activate the selected links", permissions=["change"])
    def activate(self, request, queryset):
        count = queryset.update(active=True)
        bump_config_version()
        self.message_user(request, f"{count} link(s) activated.")


@admin.register(CopiedPosition)
class CopiedPositionAdmin(RestrictedAdminMixin, ReadOnlyAdminMixin, ModelAdmin):
    restrict_perm = "copytrading.view_copiedposition"
    owner_path = "slave_account__owner"
    list_display = [
        "copy_id",
        "link",
        "kind",
        "master_ticket",
        "slave_ticket",
        "slave_symbol",
        "slave_side",
        "slave_volume",
        "status",
        "opened_at",
        "closed_at",
    ]
    list_filter = ["status", "kind"]
    list_select_related = ["link"]
    search_fields = ["copy_id", "slave_symbol", "=master_ticket", "=slave_ticket"]
    show_full_result_count = False


@admin.register(CopyEvent)
class CopyEventAdmin(RestrictedAdminMixin, ReadOnlyAdminMixin, ModelAdmin):
    restrict_perm = "copytrading.view_copyevent"
    owner_path = "slave_account__owner"
    list_display = ["created_at", "link", "intent", "status", "reason_code", "reason", "symbol", "master_ticket"]
    list_filter = ["status", "reason_code", "intent"]
    search_fields = ["reason", "symbol", "=master_ticket"]
    show_full_result_count = False
    date_hierarchy = "created_at"


@admin.register(Rule)
class RuleAdmin(RestrictedAdminMixin, ModelAdmin):
    restrict_perm = "copytrading.view_rule"
    owner_path = "account__owner"
    list_display = ["id", "account", "kind", "action", "active", "triggered", "threshold", "max_open_trades"]
    list_filter = ["kind", "action", "active", "triggered"]
    list_select_related = ["account"]
    raw_id_fields = ["account"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        bump_config_version()


@admin.register(RuleHit)
class RuleHitAdmin(RestrictedAdminMixin, ReadOnlyAdminMixin, ModelAdmin):
    restrict_perm = "copytrading.view_rulehit"
    owner_path = "account__owner"
    list_display = ["created_at", "account", "kind", "action", "detail", "command_id"]
    list_filter = ["kind", "action"]
    list_select_related = ["account"]
    search_fields = ["account__login", "detail"]
    show_full_result_count = False
    date_hierarchy = "created_at"


@admin.register(AccountCopyState)
class AccountCopyStateAdmin(RestrictedAdminMixin, ModelAdmin):
    restrict_perm = "copytrading.view_accountcopystate"
    owner_path = "account__owner"
    list_display = ["account", "mode", "mode_reason", "day", "day_start_equity", "updated_at"]
    list_filter = ["mode"]
    list_select_related = ["account"]
    raw_id_fields = ["account"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        bump_config_version()


@admin.register(OrderTemplate)
class OrderTemplateAdmin(ModelAdmin):
    list_display = ["name", "owner", "symbol", "side", "volume", "risk_percent", "sl_points", "tp_points"]
    list_select_related = ["owner"]
    raw_id_fields = ["owner"]
    search_fields = ["name", "symbol", "owner__email"]


# Signals' admin pages live in their own module; imported here so the admin registry finds them.
from . import signal_admin  # noqa: E402, F401
