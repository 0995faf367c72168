"""Back-office admin for people, roles and MT5 accounts with their synced data."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Count, OuterRef, Subquery
from django.utils import timezone
from django.utils.functional import cached_property
from unfold.admin import ModelAdmin

from config.errors import ServiceError

from . import services, sql
from .choices import SyncStatus
from .figures import FIGURES
from .freshness import account_data_age, data_ages
from .models import (
    AccountSnapshot,
    ConsentRecord,
    Deal,
    Order,
    Position,
    SecurityEvent,
    SyncRun,
    TradingAccount,
    User,
)
from .permissions import restrict


class EstimatedCountPaginator(Paginator):
    """For big tables: PostgreSQL's row estimate instead of COUNT(*) when the list is unfiltered."""

    @cached_property
    def count(self):
        query = self.object_list.query
        if connection.vendor == "postgresql" and not query.where:
            estimate = sql.table_row_estimate(self.object_list.model._meta.db_table)
            if estimate is not None and estimate > 10000:
                return estimate
        return super().count


class RestrictedAdminMixin:
    """Admin querysets go through the same permission path as the API and web views."""

    restrict_perm = "accounts.view_tradingaccount"
    owner_path: str | None = None

    def get_queryset(self, request):
        return restrict(request.user, self.restrict_perm, super().get_queryset(request), owner_path=self.owner_path)


class ReadOnlyAdminMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "display_name", "roles", "is_staff", "is_active", "accounts_count", "date_joined"]
    list_filter = ["is_staff", "is_superuser", "is_active", "groups"]
    search_fields = ["email", "display_name"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("display_name", "first_name", "last_name")}),
        ("Roles and permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
        (
            "Email and consent",
            {"fields": ("email_verified_at", "marketing_consent", "marketing_consent_at", "erased_at")},
        ),
    )
    # Consent is the person's to give (Settings → Privacy, audited); deletion is theirs too (docs/privacy.md).
    readonly_fields = ["marketing_consent", "marketing_consent_at", "erased_at"]
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2", "groups")}),)

    def save_model(self, request, obj, form, change):
        if not change and obj.email_verified_at is None:
            obj.email_verified_at = timezone.now()  # staff vouch for the people they create
        super().save_model(request, obj, form, change)

    def get_queryset(self, request):
        accounts = (
            TradingAccount.objects.filter(owner=OuterRef("pk")).values("owner").annotate(n=Count("pk")).values("n")
        )
        return super().get_queryset(request).prefetch_related("groups").annotate(accounts_n=Subquery(accounts))

    @admin.display(description="Roles")
    def roles(self, obj):
        return ", ".join(group.name for group in obj.groups.all()) or "—"

    @admin.display(description="MT5 accounts", ordering="accounts_n")
    def accounts_count(self, obj):
        return obj.accounts_n or 0


class SyncStatusFilter(admin.SimpleListFilter):
    title = "sync status"
    parameter_name = "health"

    def lookups(self, request, model_admin):
        return [
            ("failing", "Failing (errors or paused)"),
            ("paused", "Paused"),
            ("ok", "Healthy"),
            ("never", "Never synced"),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "failing":
            return queryset.filter(consecutive_errors__gt=0)
        if value == "paused":
            return queryset.filter(sync_status=SyncStatus.PAUSED)
        if value == "ok":
            return queryset.filter(sync_status=SyncStatus.OK)
        if value == "never":
            return queryset.filter(last_sync_at__isnull=True)
        return queryset


class TradingAccountAddForm(forms.ModelForm):
    password = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        strip=False,
        help_text="Checked with the MT5 server before anything is stored; stored encrypted.",
    )

    class Meta:
        model = TradingAccount
        fields = ["owner", "login", "server", "password", "category", "name", "gateway_kind"]

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            services.check_credentials(
                login=data["login"], password=data["password"], server=data["server"], gateway_kind=data["gateway_kind"]
            )
        except ServiceError as exc:
            raise ValidationError(exc.message) from None
        return data


@admin.register(TradingAccount)
class TradingAccountAdmin(RestrictedAdminMixin, ModelAdmin):
    list_display = [
        "__str__",
        "login",
        "server",
        "owner",
        "category",
        "sync_status",
        "last_sync_at",
        "data_age",
        "consecutive_errors",
        "balance",
        "equity",
        "is_active",
    ]
    list_filter = [SyncStatusFilter, "sync_status", "server", "category", "gateway_kind", "is_active"]
    list_select_related = ["owner"]
    search_fields = ["=login", "name", "owner__email", "server"]
    raw_id_fields = ["owner"]
    actions = ["sync_now", "resume"]
    readonly_fields = [
        "id",
        "broker",
        "currency",
        "leverage",
        "is_hedging",
        "sync_status",
        "last_sync_at",
        "last_deal_time",
        "consecutive_errors",
        "last_error",
        "paused_at",
        *FIGURES,
        "created_at",
        "updated_at",
    ]
    fieldsets = (
        (None, {"fields": ("id", "owner", "login", "server", "gateway_kind", "name", "category", "is_active")}),
        (
            "From MT5",
            {
                "fields": (
                    "broker",
                    "currency",
                    "leverage",
                    "is_hedging",
                    *FIGURES,
                )
            },
        ),
        (
            "Sync",
            {
                "fields": (
                    "sync_status",
                    "last_sync_at",
                    "last_deal_time",
                    "consecutive_errors",
                    "last_error",
                    "paused_at",
                    "created_at",
                    "updated_at",
                )
            },
        ),
    )

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        page = list(changelist.result_list)  # evaluated once here; the template reads the same rows
        ages = data_ages(page)
        for account in page:
            account._data_age = ages[account.pk]
        return changelist

    @admin.display(description="data")
    def data_age(self, account) -> str:
        """How old the figures are: "current", or "stale since <time>" (accounts.freshness)."""
        age = getattr(account, "_data_age", None) or account_data_age(account)
        return age.label or "current"

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = TradingAccountAddForm
        return super().get_form(request, obj, **kwargs)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return ((None, {"fields": ("owner", "login", "server", "password", "gateway_kind", "name", "category")}),)
        return super().get_fieldsets(request, obj)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return [*self.readonly_fields, "owner", "login", "server", "gateway_kind"]

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        data = form.cleaned_data
        created = services.trading_account_create(
            owner=data["owner"],
            login=data["login"],
            password=data["password"],
            server=data["server"],
            category=data["category"],
            name=data["name"],
            gateway_kind=data["gateway_kind"],
            added_by_staff=True,
        )
        obj.pk = created.pk
        obj._state.adding = False

    @admin.action(description="Sync now", permissions=["sync"])
    def sync_now(self, request, queryset):
        queued, refused = 0, []
        for account in queryset:
            try:
                services.trading_account_sync_now(account=account, trigger="admin")
                queued += 1
            except ServiceError as exc:
                refused.append(f"{account.login}: {exc.message}")
        self.message_user(request, f"Queued a sync for {queued} account(s).", messages.SUCCESS)
        if refused:
            self.message_user(request, "Not queued — " + "; ".join(refused), messages.WARNING)

    @admin.action(description="Resume syncing (clear errors)", permissions=["sync"])
    def resume(self, request, queryset):
        count = 0
        for account in queryset.filter(consecutive_errors__gt=0) | queryset.filter(sync_status=SyncStatus.PAUSED):
            services.trading_account_resume(account=account)
            count += 1
        self.message_user(request, f"Resumed {count} account(s); a sync is queued for each.", messages.SUCCESS)

    def has_sync_permission(self, request):
        return request.user.has_perm("accounts.sync_tradingaccount")


class AccountDataAdmin(RestrictedAdminMixin, ReadOnlyAdminMixin, ModelAdmin):
    """Synced MT5 data: read-only, cheap pagination for big tables."""

    owner_path = "account__owner"
    raw_id_fields = ["account"]
    list_select_related = ["account"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 50


@admin.register(AccountSnapshot)
class AccountSnapshotAdmin(AccountDataAdmin):
    list_display = ["account", "taken_at", "balance", "credit", "equity", "margin", "margin_level", "floating_profit"]
    date_hierarchy = "taken_at"
    search_fields = ["=account__login"]


@admin.register(Position)
class PositionAdmin(AccountDataAdmin):
    list_display = [
        "ticket",
        "account",
        "symbol",
        "side",
        "volume",
        "price_open",
        "price_current",
        "sl",
        "tp",
        "profit",
        "magic",
        "opened_at",
    ]
    list_filter = ["side"]
    search_fields = ["=ticket", "=account__login", "symbol"]


@admin.register(Order)
class OrderAdmin(AccountDataAdmin):
    list_display = [
        "ticket",
        "account",
        "symbol",
        "order_type",
        "volume_current",
        "price_open",
        "sl",
        "tp",
        "placed_at",
    ]
    search_fields = ["=ticket", "=account__login", "symbol"]


@admin.register(Deal)
class DealAdmin(AccountDataAdmin):
    list_display = [
        "ticket",
        "account",
        "time",
        "deal_type",
        "entry",
        "symbol",
        "volume",
        "price",
        "profit",
        "commission",
        "swap",
        "magic",
        "comment",
    ]
    list_filter = ["deal_type", "entry"]
    search_fields = ["=ticket", "=account__login", "symbol", "comment"]
    date_hierarchy = "time"


@admin.register(SyncRun)
class SyncRunAdmin(AccountDataAdmin):
    list_display = [
        "account",
        "started_at",
        "outcome",
        "duration_ms",
        "deals_added",
        "positions",
        "orders",
        "trigger",
        "error",
    ]
    list_filter = ["outcome", "trigger"]
    search_fields = ["=account__login"]
    date_hierarchy = "started_at"


@admin.register(SecurityEvent)
class SecurityEventAdmin(ReadOnlyAdminMixin, ModelAdmin):
    """The security audit: each MT5 password given out or refused, who, which account, when, from which IP."""

    list_display = ["created_at", "action", "actor_label", "account_login", "ip_address", "detail"]
    list_filter = ["action"]
    search_fields = ["=account_login", "actor_label", "=ip_address"]
    date_hierarchy = "created_at"
    raw_id_fields = ["actor", "account"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 50


@admin.register(ConsentRecord)
class ConsentRecordAdmin(ReadOnlyAdminMixin, ModelAdmin):
    """Every change of a person's marketing consent: when, from what to what, through which path, by whom."""

    list_display = ["created_at", "user", "purpose", "previous", "granted", "source", "actor_label", "ip_address"]
    list_filter = ["purpose", "granted", "source"]
    search_fields = ["user__email", "actor_label"]
    date_hierarchy = "created_at"
    raw_id_fields = ["user", "actor"]
    list_select_related = ["user"]
