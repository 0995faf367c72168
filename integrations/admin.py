"""Back-office admin: Systeme.io connection and rules, firings, webhooks in and out, pre-flight results."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Count, OuterRef, Subquery
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html_join
from unfold.admin import ModelAdmin

from accounts.admin import EstimatedCountPaginator, ReadOnlyAdminMixin, RestrictedAdminMixin, TradingAccountAdmin
from accounts.permissions import capability_required
from config.errors import ServiceError

from .api import preflight_file_response
from .choices import DeliveryStatus, PreflightStatus, WebhookEvent
from .models import (
    AutomationRule,
    ContactSync,
    InboundWebhookEvent,
    PreflightResult,
    RuleFiring,
    SystemeSettings,
    WebhookDelivery,
    WebhookEndpoint,
)
from .services import contacts, webhooks
from .services.preflight import preflight_run

# --- Systeme.io connection -------------------------------------------------------------------


class SystemeSettingsForm(forms.ModelForm):
    api_key = forms.CharField(
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False),
        help_text="Stored encrypted. Leave empty to keep the stored key (or SYSTEME_API_KEY when none is stored).",
    )
    clear_api_key = forms.BooleanField(required=False, help_text="Forget the stored key.")

    class Meta:
        model = SystemeSettings
        fields = ["enabled", "sync_all_traders", "legal_basis", "locale"]


@admin.register(SystemeSettings)
class SystemeSettingsAdmin(ModelAdmin):
    form = SystemeSettingsForm
    list_display = [
        "__str__",
        "enabled",
        "key_source",
        "legal_basis",
        "connection",
        "connection_checked_at",
        "last_sync_at",
        "last_sync_ok",
    ]
    readonly_fields = [
        "key_source",
        "connection",
        "connection_checked_at",
        "last_sync_at",
        "last_sync_ok",
        "last_sync_summary",
        "missing_fields",
    ]
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "api_key",
                    "clear_api_key",
                    "key_source",
                    "enabled",
                    "sync_all_traders",
                    "legal_basis",
                    "locale",
                )
            },
        ),
        (
            "Status",
            {
                "fields": (
                    "connection",
                    "connection_checked_at",
                    "last_sync_at",
                    "last_sync_ok",
                    "last_sync_summary",
                    "missing_fields",
                )
            },
        ),
    )
    actions = ["test_connection", "sync_now"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        SystemeSettings.load()  # the single row always exists
        return super().changelist_view(request, extra_context)

    @admin.display(description="API key")
    def key_source(self, obj):
        if obj.has_stored_key:
            return "stored in the admin (encrypted)"
        return "SYSTEME_API_KEY" if settings.SYSTEME_API_KEY else "not configured"

    @admin.display(description="Connection")
    def connection(self, obj):
        if obj.connection_ok is None:
            return "not checked yet"
        return "OK" if obj.connection_ok else f"failing: {obj.connection_error}"

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        api_key = "" if data.get("clear_api_key") else (data.get("api_key") or None)
        contacts.systeme_settings_update(
            api_key=api_key,
            enabled=data["enabled"],
            sync_all_traders=data["sync_all_traders"],
            legal_basis=data["legal_basis"],
            locale=data["locale"],
        )

    @admin.action(description="Test the connection", permissions=["change"])
    def test_connection(self, request, queryset):
        row = contacts.systeme_connection_check()
        if row.connection_ok:
            self.message_user(request, "Systeme.io accepted the API key.", messages.SUCCESS)
        else:
            self.message_user(request, f"Systeme.io connection failed: {row.connection_error}", messages.ERROR)

    @admin.action(description="Sync contacts now", permissions=["change"])
    def sync_now(self, request, queryset):
        try:
            summary = contacts.systeme_sync()
        except ServiceError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        level = messages.SUCCESS if not summary["errors"] else messages.WARNING
        self.message_user(
            request,
            f"Synced {summary['synced']} contact(s), {summary['failed']} failed. " + "; ".join(summary["errors"][:3]),
            level,
        )


@admin.register(ContactSync)
class ContactSyncAdmin(RestrictedAdminMixin, ModelAdmin):
    restrict_perm = "integrations.view_contactsync"
    owner_path = "user"
    list_display = ["email", "user", "included", "contact_id", "last_synced_at", "last_error", "tag_list"]
    list_filter = ["included"]
    search_fields = ["email", "user__email", "=contact_id"]
    raw_id_fields = ["user"]
    list_select_related = ["user"]
    readonly_fields = ["contact_id", "email", "fields", "tags", "last_synced_at", "last_error", "created_at"]
    actions = ["include_in_sync", "exclude_from_sync"]

    @admin.display(description="Tags")
    def tag_list(self, obj):
        return ", ".join(obj.tags) or "—"

    @admin.action(description="Include in the Systeme.io sync", permissions=["change"])
    def include_in_sync(self, request, queryset):
        for record in queryset.select_related("user"):
            contacts.contact_include(user=record.user, included=True)
        self.message_user(request, f"{queryset.count()} contact(s) included.", messages.SUCCESS)

    @admin.action(description="Exclude from the Systeme.io sync", permissions=["change"])
    def exclude_from_sync(self, request, queryset):
        for record in queryset.select_related("user"):
            contacts.contact_include(user=record.user, included=False)
        self.message_user(request, f"{queryset.count()} contact(s) excluded.", messages.SUCCESS)


@admin.register(AutomationRule)
class AutomationRuleAdmin(ModelAdmin):
    list_display = ["name", "enabled", "condition", "threshold", "action", "tag", "firings_count", "last_fired"]
    list_filter = ["enabled", "condition", "action"]
    list_editable = ["enabled", "threshold"]
    search_fields = ["name", "slug", "tag"]
    prepopulated_fields = {"slug": ("name",)}

    def get_queryset(self, request):
        firings = RuleFiring.objects.filter(rule=OuterRef("pk")).values("rule").annotate(n=Count("pk")).values("n")
        last = RuleFiring.objects.filter(rule=OuterRef("pk")).order_by("-fired_at").values("fired_at")[:1]
        return super().get_queryset(request).annotate(firings_n=Subquery(firings), last_fired_at=Subquery(last))

    @admin.display(description="Firings", ordering="firings_n")
    def firings_count(self, obj):
        return obj.firings_n or 0

    @admin.display(description="Last fired", ordering="last_fired_at")
    def last_fired(self, obj):
        return obj.last_fired_at or "—"


@admin.register(RuleFiring)
class RuleFiringAdmin(RestrictedAdminMixin, ReadOnlyAdminMixin, ModelAdmin):
    restrict_perm = "integrations.view_rulefiring"
    owner_path = "contact__user"
    list_display = ["fired_at", "rule", "contact", "account", "action", "tag", "result", "error"]
    list_filter = ["result", "rule", "action"]
    list_select_related = ["rule", "contact", "account"]
    search_fields = ["contact__email", "tag"]
    date_hierarchy = "fired_at"
    paginator = EstimatedCountPaginator
    show_full_result_count = False


@admin.register(InboundWebhookEvent)
class InboundWebhookEventAdmin(ReadOnlyAdminMixin, ModelAdmin):
    # Inbound events belong to no user; the model permission alone gates them (staff only).
    list_display = ["received_at", "event_type", "status", "note", "replays"]
    list_filter = ["status", "event_type"]
    search_fields = ["key", "note"]
    date_hierarchy = "received_at"
    paginator = EstimatedCountPaginator
    show_full_result_count = False


# --- Outbound webhooks -----------------------------------------------------------------------


class WebhookEndpointForm(forms.ModelForm):
    events = forms.MultipleChoiceField(
        choices=[("*", "Every event"), *WebhookEvent.choices], widget=forms.CheckboxSelectMultiple
    )
    secret = forms.CharField(
        required=False,
        max_length=200,
        widget=forms.PasswordInput(render_value=False),
        help_text="Signing secret. On add, left empty: one is generated and shown once. On change, left empty: kept.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description", "events", "is_active"]

    def clean(self):
        data = super().clean()
        try:
            if data.get("url"):
                webhooks.webhook_url_validate(data["url"])
        except ServiceError as exc:
            self.add_error("url", exc.message)
        return data


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(RestrictedAdminMixin, ModelAdmin):
    form = WebhookEndpointForm
    restrict_perm = "integrations.view_webhookendpoint"
    owner_path = "created_by"
    list_display = [
        "url",
        "is_active",
        "event_list",
        "consecutive_failures",
        "disabled_at",
        "disabled_reason",
        "deliveries_24h",
    ]
    list_filter = ["is_active"]
    search_fields = ["url", "description"]
    readonly_fields = ["consecutive_failures", "disabled_at", "disabled_reason", "created_by", "created_at"]
    actions = ["enable", "send_test"]

    def get_queryset(self, request):
        recent = (
            WebhookDelivery.objects.filter(
                endpoint=OuterRef("pk"), created_at__gte=timezone.now() - timedelta(hours=24)
            )
            .values("endpoint")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return super().get_queryset(request).annotate(recent_n=Subquery(recent))

    @admin.display(description="Events")
    def event_list(self, obj):
        return ", ".join(obj.events)

    @admin.display(description="Deliveries (24 h)", ordering="recent_n")
    def deliveries_24h(self, obj):
        return obj.recent_n or 0

    def changelist_view(self, request, extra_context=None):
        for endpoint in self.get_queryset(request).filter(is_active=False, disabled_at__isnull=False):
            self.message_user(
                request, f"Disabled after failures: {endpoint.url} — {endpoint.disabled_reason}", messages.WARNING
            )
        return super().changelist_view(request, extra_context)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        try:
            if change:
                updated = webhooks.webhook_endpoint_update(
                    endpoint=obj,
                    url=data["url"],
                    events=list(data["events"]),
                    description=data["description"],
                    is_active=data["is_active"],
                    secret=data.get("secret") or "",
                )
                obj.pk = updated.pk
                return
            endpoint, secret = webhooks.webhook_endpoint_create(
                url=data["url"],
                events=list(data["events"]),
                secret=data.get("secret") or "",
                description=data["description"],
                created_by=request.user,
            )
        except ServiceError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        obj.pk = endpoint.pk
        obj._state.adding = False
        if not data.get("secret"):
            self.message_user(request, f"Signing secret (shown once): {secret}", messages.WARNING)

    @admin.action(description="Enable (reset the failure count)", permissions=["change"])
    def enable(self, request, queryset):
        for endpoint in queryset:
            webhooks.webhook_endpoint_update(endpoint=endpoint, is_active=True)
        self.message_user(request, f"Enabled {queryset.count()} endpoint(s).", messages.SUCCESS)

    @admin.action(description="Send a test delivery", permissions=["change"])
    def send_test(self, request, queryset):
        sent = 0
        for endpoint in queryset.filter(is_active=True):
            webhooks.webhook_ping(endpoint=endpoint)
            sent += 1
        self.message_user(request, f"Queued {sent} test delivery(ies); see Webhook deliveries.", messages.SUCCESS)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(RestrictedAdminMixin, ReadOnlyAdminMixin, ModelAdmin):
    restrict_perm = "integrations.view_webhookdelivery"
    owner_path = "endpoint__created_by"
    list_display = [
        "created_at",
        "event",
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "last_error",
        "next_attempt_at",
        "delivered_at",
    ]
    list_filter = ["status", "event"]
    list_select_related = ["endpoint"]
    search_fields = ["=id", "endpoint__url"]
    date_hierarchy = "created_at"
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    actions = ["retry"]

    @admin.action(description="Retry now", permissions=["retry"])
    def retry(self, request, queryset):
        count = 0
        for delivery in queryset.exclude(status=DeliveryStatus.SUCCEEDED):
            webhooks.webhook_delivery_retry(delivery=delivery)
            count += 1
        self.message_user(request, f"Queued {count} delivery(ies) again.", messages.SUCCESS)

    def has_retry_permission(self, request):
        return request.user.has_perm("integrations.change_webhookdelivery")


# --- Pre-flight ------------------------------------------------------------------------------


@admin.register(PreflightResult)
class PreflightResultAdmin(RestrictedAdminMixin, ReadOnlyAdminMixin, ModelAdmin):
    owner_path = "account__owner"
    list_display = [
        "created_at",
        "account",
        "status",
        "chart_symbol",
        "chart_period",
        "symbols_found",
        "downloads",
        "error",
    ]
    list_filter = ["status", "chart_period"]
    list_select_related = ["account"]
    search_fields = ["=account__login", "account__server"]
    raw_id_fields = ["account"]
    readonly_fields = [
        "account",
        "created_at",
        "created_by",
        "status",
        "chart_symbol",
        "chart_period",
        "downloads",
        "warnings",
        "error",
        "symbols_found",
        "payload",
        "template",
        "startup_ini",
    ]

    @admin.display(description="Files")
    def downloads(self, obj):
        if not obj.template:
            return "—"
        links = [
            (reverse("admin:integrations_preflight_file", args=[obj.pk, kind]), label)
            for kind, label in (("template", ".tpl"), ("ini", ".ini"), ("json", ".json"))
        ]
        return format_html_join(" · ", '<a href="{}">{}</a>', links)

    def get_urls(self):
        return [
            path(
                "<int:pk>/download/<str:kind>/",
                self.admin_site.admin_view(self.download),
                name="integrations_preflight_file",
            ),
            *super().get_urls(),
        ]

    @capability_required("accounts.manage")
    def download(self, request, pk: int, kind: str):
        result = get_object_or_404(self.get_queryset(request), pk=pk)
        if not self.has_view_permission(request, result) or kind not in ("template", "ini", "json"):
            raise Http404
        if kind == "json":
            response = JsonResponse(result.payload, json_dumps_params={"indent": 2})
            response["Content-Disposition"] = f'attachment; filename="{result.account.login}-symbols.json"'
            return response
        return preflight_file_response(result, kind)


# --- Trading accounts: the "Run symbol pre-flight" action --------------------------------------


@admin.action(description="Run symbol pre-flight", permissions=["sync"])
def run_preflight(modeladmin, request, queryset) -> None:
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
    """Called from ``IntegrationsConfig.ready``: the accounts admin knows nothing of the pre-flight."""
    if run_preflight not in TradingAccountAdmin.actions:
        TradingAccountAdmin.actions = [*TradingAccountAdmin.actions, run_preflight]
