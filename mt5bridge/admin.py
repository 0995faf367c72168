"""Back-office admin for the EA protocol: tokens, EA connections and the command queue."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Q
from django.utils import timezone
from django.utils.html import format_html
from unfold.admin import ModelAdmin

from accounts.admin import EstimatedCountPaginator, RestrictedAdminMixin
from config.errors import ServiceError
from mt5bridge import commands as cq
from mt5bridge.ea import services
from mt5bridge.ea.models import Command, EAConnection, EAToken


@admin.register(EAToken)
class EATokenAdmin(RestrictedAdminMixin, ModelAdmin):
    restrict_perm = "mt5bridge.view_eatoken"
    owner_path = "account__owner"
    list_display = ("account", "hint", "created_at", "rotated_at", "revoked_at", "last_used_at")
    list_select_related = ("account",)
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("account__login", "hint")
    raw_id_fields = ("account",)
    readonly_fields = ("hint", "created_at", "rotated_at", "revoked_at", "last_used_at")
    actions = ("rotate_tokens", "revoke_tokens")

    def has_add_permission(self, request) -> bool:
        return False  # tokens are issued by the rotate action or the owner's API, never typed in

    @admin.action(description="Rotate selected tokens (new tokens are shown once)", permissions=["change"])
    def rotate_tokens(self, request, queryset):
        for token in queryset.select_related("account"):
            plain = services.ea_token_issue(account=token.account, by=request.user)
            self.message_user(request, f"New EA token for {token.account}: {plain} (shown once)", messages.WARNING)

    @admin.action(description="Revoke selected tokens", permissions=["change"])
    def revoke_tokens(self, request, queryset):
        count = 0
        for token in queryset.select_related("account"):
            services.ea_token_revoke(account=token.account, by=request.user)
            count += 1
        self.message_user(request, f"Revoked {count} EA token(s).")


class ConnectionStatusFilter(admin.SimpleListFilter):
    title = "connection"
    parameter_name = "connection"

    def lookups(self, request, model_admin):
        return [("online", "online"), ("stale", "stale"), ("offline", "offline")]

    def queryset(self, request, queryset):
        now = timezone.now()
        online = now - timedelta(seconds=settings.EA_ONLINE_SECONDS)
        offline = now - timedelta(seconds=settings.EA_OFFLINE_SECONDS)
        if self.value() == "online":
            return queryset.filter(last_seen_at__gte=online)
        if self.value() == "stale":
            return queryset.filter(last_seen_at__lt=online, last_seen_at__gte=offline)
        if self.value() == "offline":
            return queryset.filter(Q(last_seen_at__lt=offline) | Q(last_seen_at__isnull=True))
        return queryset


@admin.register(EAConnection)
class EAConnectionAdmin(RestrictedAdminMixin, ModelAdmin):
    restrict_perm = "mt5bridge.view_eaconnection"
    owner_path = "account__owner"
    list_display = (
        "account",
        "status_badge",
        "live_last_seen",
        "ea_version",
        "protocol_version",
        "persisted_at",
        "access_denied_reason",
    )
    list_select_related = ("account",)
    list_filter = (ConnectionStatusFilter, "protocol_version")
    search_fields = ("account__login",)
    raw_id_fields = ("account",)
    readonly_fields = [f.name for f in EAConnection._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="status")
    def status_badge(self, obj):
        status = services.ea_connection_status(obj.account_id)
        # A class, not a style attribute: the Content-Security-Policy allows no inline styles (accounts/admin.css).
        return format_html('<b class="ea-status-{}">{}</b>', status, status)

    @admin.display(description="last heartbeat (stored)")
    def live_last_seen(self, obj):
        return obj.last_seen_at


@admin.register(Command)
class CommandAdmin(RestrictedAdminMixin, ModelAdmin):
    restrict_perm = "mt5bridge.view_command"
    owner_path = "account__owner"
    list_display = (
        "id",
        "account",
        "kind",
        "origin",
        "status",
        "retcode",
        "message",
        "created_at",
        "delivered_at",
        "finished_at",
        "expires_at",
    )
    list_select_related = ("account",)
    list_filter = ("status", "origin", "kind")
    search_fields = ("=id", "account__login", "idempotency_key")
    raw_id_fields = ("account", "retry_of", "created_by")
    readonly_fields = (
        "id",
        "account",
        "kind",
        "params",
        "origin",
        "status",
        "retcode",
        "message",
        "result",
        "created_at",
        "delivered_at",
        "delivery_count",
        "finished_at",
        "expires_at",
        "idempotency_key",
        "origin_ref",
        "intent",
        "retry_of",
        "created_by",
    )
    date_hierarchy = "created_at"
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    actions = ("cancel_commands", "retry_commands")

    def has_add_permission(self, request) -> bool:
        return False  # commands come from services (copy, web terminal, templates, rules)

    @admin.action(description="Cancel selected open commands", permissions=["change"])
    def cancel_commands(self, request, queryset):
        done, refused = 0, []
        for command in queryset:
            try:
                cq.command_cancel(command_id=command.id, by=request.user)
                done += 1
            except ServiceError as exc:
                refused.append(f"{command.id}: {exc.message}")
        self.message_user(request, f"Cancelled {done} command(s).")
        if refused:
            self.message_user(request, "Not cancelled: " + "; ".join(refused[:10]), messages.WARNING)

    @admin.action(description="Retry selected failed/expired/cancelled commands", permissions=["change"])
    def retry_commands(self, request, queryset):
        done, refused = 0, []
        for command in queryset:
            try:
                cq.command_retry(command_id=command.id, by=request.user)
                done += 1
            except ServiceError as exc:
                refused.append(f"{command.id}: {exc.message}")
        self.message_user(request, f"Queued {done} retry command(s).")
        if refused:
            self.message_user(request, "Not retried: " + "; ".join(refused[:10]), messages.WARNING)
