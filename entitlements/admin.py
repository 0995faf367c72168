"""Plans back office: plans, plan assignments (staff choose plans here), plan changes, usage per user.

The Stripe records (customers, subscriptions, invoices, webhook deliveries) are dj-stripe's own admin.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Count, OuterRef, Q, Subquery
from django.urls import reverse
from django.utils.html import format_html
from unfold.admin import ModelAdmin

from accounts.models import TradingAccount
from accounts.permissions import restrict
from config.errors import ServiceError

from . import services
from .counters import api_calls_today
from .models import BillingPause, Plan, PlanAssignment, PlanChange, UserUsage
from .selectors import counted_usage, local_mode, plan_for_user


def _against(used: int, limit: int | None) -> str:
    if limit is None:
        return f"{used} / unlimited"
    return f"{used} / {limit}" + (" (over)" if used > limit else "")


@admin.register(Plan)
class PlanAdmin(ModelAdmin):
    list_display = [
        "name",
        "slug",
        "rank",
        "price_monthly",
        "price_yearly",
        "trial_days",
        "limit_accounts",
        "limit_history_days",
        "limit_copy_links",
        "limit_slaves_per_master",
        "has_stripe_prices",
        "is_public",
    ]
    list_editable = ["is_public"]
    search_fields = ["name", "slug", "stripe_price_monthly", "stripe_price_yearly"]
    fieldsets = (
        (None, {"fields": ("slug", "name", "rank", "description", "is_public")}),
        (
            "Prices",
            {
                "fields": (
                    "currency",
                    "price_monthly",
                    "price_yearly",
                    "stripe_price_monthly",
                    "stripe_price_yearly",
                    "trial_days",
                )
            },
        ),
        (
            "Limits (blank = unlimited)",
            {"fields": ("limit_accounts", "limit_history_days", "limit_copy_links", "limit_slaves_per_master")},
        ),
        (
            "Features",
            {
                "fields": (
                    "analytics_advanced",
                    "copy_trading",
                    "web_terminal",
                    "templates",
                    "rules",
                    "systeme_sync",
                    "api_access",
                )
            },
        ),
    )

    @admin.display(boolean=True, description="Stripe prices")
    def has_stripe_prices(self, obj: Plan) -> bool:
        return bool(obj.stripe_price_monthly or obj.stripe_price_yearly)


@admin.register(PlanAssignment)
class PlanAssignmentAdmin(ModelAdmin):
    list_display = [
        "user",
        "effective_plan",
        "manual_plan",
        "manual_until",
        "subscription_status",
        "subscribed_plan",
        "trial_end",
        "current_period_end",
        "past_due_since",
        "updated_at",
    ]
    list_filter = ["effective_plan", "manual_plan", "subscription_status"]
    list_select_related = ["user", "effective_plan", "manual_plan", "subscribed_plan"]
    search_fields = ["user__email", "subscription_id"]
    raw_id_fields = ["user"]
    readonly_fields = [
        "effective_plan",
        "subscription_id",
        "subscription_status",
        "subscribed_plan",
        "interval",
        "trial_end",
        "current_period_end",
        "cancel_at_period_end",
        "past_due_since",
        "trial_used",
        "updated_at",
    ]
    fieldsets = (
        (None, {"fields": ("user", "effective_plan")}),
        (
            "Staff choice (wins over the default plan and any subscription)",
            {"fields": ("manual_plan", "manual_until", "note")},
        ),
        (
            "Stripe subscription (mirrored from webhooks)",
            {
                "fields": (
                    "subscription_id",
                    "subscription_status",
                    "subscribed_plan",
                    "interval",
                    "trial_end",
                    "current_period_end",
                    "cancel_at_period_end",
                    "past_due_since",
                    "trial_used",
                    "updated_at",
                )
            },
        ),
    )

    def get_queryset(self, request):
        return restrict(
            request.user, "entitlements.view_planassignment", super().get_queryset(request), owner_path="user"
        )

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "user"] if obj else self.readonly_fields

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        if local_mode():
            initial.setdefault("note", "local mode")
        return initial

    def save_model(self, request, obj, form, change):
        # The service owns the write (audit row, pausing accounts over a new limit).
        try:
            result = services.plan_assign_manual(
                user=obj.user,
                plan=form.cleaned_data.get("manual_plan"),
                until=form.cleaned_data.get("manual_until"),
                note=form.cleaned_data.get("note") or "",
                actor=request.user,
            )
        except ServiceError as exc:
            messages.error(request, exc.message)
            saved = PlanAssignment.objects.filter(user=obj.user).first()
        else:
            saved = PlanAssignment.objects.get(user=obj.user)
            if result is not None:
                messages.info(
                    request,
                    f"{obj.user} is now on {result.to_plan}"
                    + (
                        f"; {result.accounts_paused} account(s) over the limit were paused."
                        if result.accounts_paused
                        else "."
                    ),
                )
        if saved is not None:
            obj.pk = saved.pk
            obj.refresh_from_db()

    @admin.action(description="Re-apply plan rules (end of grace period, staff choice expiry)", permissions=["change"])
    def refresh(self, request, queryset):
        changed = sum(
            1
            for a in queryset.select_related("user")
            if services.plan_assignment_refresh(user=a.user, reason="staff_refresh")
        )
        self.message_user(request, f"{changed} of {queryset.count()} users changed plan.")

    @admin.action(description="Clear the staff choice (back to default plan or subscription)", permissions=["change"])
    def clear_manual(self, request, queryset):
        for assignment in queryset.select_related("user"):
            services.plan_assign_manual(user=assignment.user, plan=None, actor=request.user)
        self.message_user(request, f"Staff choice cleared for {queryset.count()} users.")

    actions = ["refresh", "clear_manual"]


@admin.register(PlanChange)
class PlanChangeAdmin(ModelAdmin):
    list_display = [
        "created_at",
        "user",
        "from_plan",
        "to_plan",
        "reason",
        "detail",
        "accounts_paused",
        "actor",
        "stripe_event_id",
    ]
    list_filter = ["reason", "to_plan"]
    list_select_related = ["user", "from_plan", "to_plan", "actor"]
    search_fields = ["user__email", "stripe_event_id"]
    show_full_result_count = False

    def get_queryset(self, request):
        return restrict(request.user, "entitlements.view_planchange", super().get_queryset(request), owner_path="user")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(BillingPause)
class BillingPauseAdmin(ModelAdmin):
    list_display = ["account", "owner", "plan", "paused_at"]
    list_select_related = ["account__owner", "plan"]
    search_fields = ["account__login", "account__owner__email"]

    def get_queryset(self, request):
        return restrict(
            request.user, "entitlements.view_billingpause", super().get_queryset(request), owner_path="account__owner"
        )

    @admin.display(description="Owner")
    def owner(self, obj):
        return obj.account.owner

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(UserUsage)
class UserUsageAdmin(ModelAdmin):
    """Each user's plan and usage (accounts, copy links, API calls today) against the plan's limits."""

    list_display = ["email", "plan", "accounts_usage", "copy_links_usage", "history", "api_calls", "assignment_link"]
    search_fields = ["email", "display_name"]
    ordering = ["email"]
    show_full_result_count = False

    def get_queryset(self, request):
        active = (
            TradingAccount.objects.filter(owner=OuterRef("pk"))
            .values("owner")
            .annotate(n=Count("pk", filter=Q(is_active=True)))
            .values("n")
        )
        qs = super().get_queryset(request).annotate(active_accounts=Subquery(active))
        return restrict(request.user, "entitlements.view_userusage", qs, owner_path="pk")

    @admin.display(description="Plan")
    def plan(self, obj) -> str:
        return plan_for_user(obj).name

    @admin.display(description="MT5 accounts (active / limit)")
    def accounts_usage(self, obj) -> str:
        return _against(obj.active_accounts or 0, plan_for_user(obj).limit_accounts)

    @admin.display(description="Copy links")
    def copy_links_usage(self, obj) -> str:
        return _against(counted_usage(obj).get("copy_links", 0), plan_for_user(obj).limit_copy_links)

    @admin.display(description="History days")
    def history(self, obj) -> str:
        days = plan_for_user(obj).limit_history_days
        return "unlimited" if days is None else str(days)

    @admin.display(description="API calls today")
    def api_calls(self, obj) -> int:
        return api_calls_today(obj.pk)

    @admin.display(description="Plan assignment")
    def assignment_link(self, obj):
        assignment = PlanAssignment.objects.filter(user=obj).only("pk").first()
        if assignment:
            return format_html(
                '<a href="{}">change plan</a>',
                reverse("admin:entitlements_planassignment_change", args=[assignment.pk]),
            )
        return format_html(
            '<a href="{}?user={}">set plan</a>', reverse("admin:entitlements_planassignment_add"), obj.pk
        )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
