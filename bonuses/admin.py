"""The bonus back office in the Django admin: campaigns, bonus monitor, assign with override, lookup, reports."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from accounts.admin import EstimatedCountPaginator
from accounts.permissions import capability_required, has_capability, restrict
from config.errors import Conflict, ServiceError
from mt5bridge import gateway as gw

from . import limits, reports, selectors
from .choices import CAMPAIGN_TRIGGERS, BonusType, CampaignStatus, MonitorStatus, OperationStatus
from .models import (
    AuditLog,
    Bonus,
    BonusOperation,
    Campaign,
    MonitorCycle,
    MonitoredAccount,
    MonitorShard,
    Mt5Scan,
)
from .services.campaigns import (
    CAMPAIGN_FIELDS,
    campaign_archive,
    campaign_create,
    campaign_duplicate,
    campaign_set_status,
    campaign_update,
    validate_campaign,
)
from .services.ending import bonus_cancel, bonus_force_convert, bonus_override_leverage
from .services.manual import MANUAL_KEY, bonus_assign_manual
from .services.monitored import default_gateway, monitoring_reset_errors, mt5_scan
from .services.operations import UNFINISHED, operation_resolve, operation_retry

MAX_LOGIN = 2**63 - 1


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _context(model_admin: admin.ModelAdmin, request, title: str, **extra) -> dict:
    return {**model_admin.admin_site.each_context(request), "title": title, "opts": model_admin.model._meta, **extra}


def _report_error(model_admin, request, exc: Exception) -> None:
    if isinstance(exc, gw.GatewayError):
        model_admin.message_user(request, f"MT5 did not answer: {exc}", messages.ERROR)
    else:
        model_admin.message_user(request, getattr(exc, "message", str(exc)), messages.ERROR)


# --- Campaigns -------------------------------------------------------------------------


class CampaignForm(forms.ModelForm):
    triggers = forms.MultipleChoiceField(choices=[(t.value, t.label) for t in CAMPAIGN_TRIGGERS], required=False,
                                         widget=forms.CheckboxSelectMultiple)  # fmt: skip

    class Meta:
        model = Campaign
        fields = list(CAMPAIGN_FIELDS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        scan = Mt5Scan.objects.first()
        if scan is not None:
            # Group and country names come from MT5 (traders can influence them) and the admin renders help_text
            # as HTML: escape them.
            self.fields["target_groups"].help_text = format_html(
                "JSON list. Known groups: {}", ", ".join(scan.groups[:50])
            )
            self.fields["target_countries"].help_text = format_html(
                "JSON list. Known countries: {}", ", ".join(scan.countries[:80])
            )

    def clean(self):
        cleaned = super().clean()
        for name in ("target_groups", "target_countries", "agent_codes", "promo_codes", "counting_symbols"):
            value = cleaned.get(name)
            if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
                self.add_error(name, 'Give a JSON list of strings, e.g. ["DE", "FR"].')
        if not self.errors:
            values = {f: cleaned.get(f, getattr(self.instance, f)) for f in CAMPAIGN_FIELDS}
            try:
                validate_campaign(values)
            except ServiceError as exc:
                raise forms.ValidationError(exc.message) from exc
        return cleaned


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    """Campaign manager: list, create, edit, duplicate, archive, status changes, Scan MT5."""

    form = CampaignForm
    list_display = ["name", "bonus_type", "status", "bonus_percent", "max_bonus_amount", "active_bonuses",
                    "starts_at", "ends_at"]  # fmt: skip
    list_filter = ["status", "bonus_type"]
    search_fields = ["name"]
    actions = ["duplicate", "archive", "activate", "pause", "end"]
    change_list_template = "admin/bonuses/campaign_change_list.html"
    fieldsets = [
        (None, {"fields": ["name", "description", "bonus_type", "bonus_percent", "max_bonus_amount", "fixed_amount"]}),
        ("Deposit and dates", {"fields": ["min_deposit", "max_deposit", "starts_at", "ends_at", "expiry_days"]}),
        ("Targeting and triggers", {"fields": ["triggers", "target_groups", "target_countries", "agent_codes",
                                               "promo_codes", "one_per_account", "max_concurrent"]}),
        ("Type C conversion", {"fields": ["lots_per_unit", "unit_amount", "counting_symbols", "min_lot",
                                          "only_after_bonus"]}),
    ]  # fmt: skip

    def get_queryset(self, request):
        return restrict(request.user, "bonuses.view_campaign", selectors.campaigns_with_counts())

    @admin.display(description="Active bonuses", ordering="bonuses_active")
    def active_bonuses(self, obj) -> int:
        return obj.bonuses_active

    def save_model(self, request, obj, form, change):
        values = {name: form.cleaned_data[name] for name in CAMPAIGN_FIELDS if name in form.cleaned_data}
        try:
            if change:
                saved = campaign_update(actor=request.user, campaign=obj, **values)
            else:
                saved = campaign_create(actor=request.user, **values)
        except ServiceError as exc:
            # The form was valid, the business rule was not: say so instead of a 500.
            self.message_user(request, exc.message, messages.ERROR)
            raise _Refused from exc
        obj.pk, obj.status = saved.pk, saved.status

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except _Refused:
            return redirect(request.get_full_path())

    def has_delete_permission(self, request, obj=None):
        return False  # campaigns are archived, never deleted (bonuses and audit point at them)

    def _status(self, request, queryset, status: str) -> None:
        done = 0
        for campaign in queryset:
            try:
                campaign_set_status(actor=request.user, campaign=campaign, status=status)
                done += 1
            except ServiceError as exc:
                self.message_user(request, f"{campaign}: {exc.message}", messages.WARNING)
        self.message_user(request, f"{done} campaign(s) now {status}.")

    @admin.action(description="Duplicate as draft", permissions=["add"])
    def duplicate(self, request, queryset):
        for campaign in queryset:
            campaign_duplicate(actor=request.user, campaign=campaign)
        self.message_user(request, f"{queryset.count()} campaign(s) duplicated as drafts.")

    @admin.action(description="Archive", permissions=["change"])
    def archive(self, request, queryset):
        done = 0
        for campaign in queryset:
            try:
                campaign_archive(actor=request.user, campaign=campaign)
                done += 1
            except ServiceError as exc:
                self.message_user(request, f"{campaign}: {exc.message}", messages.WARNING)
        self.message_user(request, f"{done} campaign(s) archived.")

    @admin.action(description="Activate", permissions=["change"])
    def activate(self, request, queryset):
        self._status(request, queryset, CampaignStatus.ACTIVE)

    @admin.action(description="Pause", permissions=["change"])
    def pause(self, request, queryset):
        self._status(request, queryset, CampaignStatus.PAUSED)

    @admin.action(description="End", permissions=["change"])
    def end(self, request, queryset):
        self._status(request, queryset, CampaignStatus.ENDED)

    def get_urls(self):
        extra = [path("scan/", self.admin_site.admin_view(self.scan_view), name="bonuses_campaign_scan")]
        return extra + super().get_urls()

    @capability_required("campaigns.manage")
    def scan_view(self, request):
        """Scan MT5: refresh the groups and countries offered for targeting (POST only)."""
        if request.method == "POST":
            try:
                scan = mt5_scan(actor=request.user)
                self.message_user(request, f"MT5 scanned: {len(scan.groups)} groups, {len(scan.countries)} "
                                           f"countries, {scan.accounts} accounts.")  # fmt: skip
            except gw.GatewayError as exc:
                _report_error(self, request, exc)
        return redirect("admin:bonuses_campaign_changelist")


class _Refused(Exception):
    pass


# --- Bonus monitor ---------------------------------------------------------------------


class AssignForm(forms.Form):
    login = forms.IntegerField(min_value=1, max_value=MAX_LOGIN, label="MT5 login")
    campaign = forms.ModelChoiceField(queryset=Campaign.objects.exclude(status=CampaignStatus.ARCHIVED))
    deposit_amount = forms.DecimalField(max_digits=20, decimal_places=2, min_value=Decimal("0"), required=False)
    amount = forms.DecimalField(max_digits=20, decimal_places=2, min_value=Decimal("0.01"), required=False,
                                help_text="Leave empty to use the campaign's rule (percent of the deposit, or its "
                                          "fixed amount). At most the campaign's rule and your role's limit.")  # fmt: skip
    # One key per rendered form: a double submit (or a reload of the POST) posts once.
    idempotency_key = forms.RegexField(regex=MANUAL_KEY, widget=forms.HiddenInput, error_messages={
        "required": "This form has expired: open Assign bonus again.",
        "invalid": "This form has expired: open Assign bonus again.",
    })  # fmt: skip

    def add_service_error(self, exc: ServiceError) -> None:
        """Show a refusal from the service next to the field it is about (a cap names itself)."""
        self.add_error("amount" if exc.code in AMOUNT_REFUSALS else None, exc.message)


AMOUNT_REFUSALS = ("amount_above_campaign_cap", "amount_above_role_limit", "zero_amount")


class LeverageForm(forms.Form):
    leverage = forms.IntegerField(min_value=1, max_value=1000)


class LookupForm(forms.Form):
    login = forms.IntegerField(min_value=1, max_value=MAX_LOGIN, label="MT5 login")


@admin.register(Bonus)
class BonusAdmin(admin.ModelAdmin):
    """The bonus monitor, with the back office's other pages hanging off it."""

    list_display = ["id", "login", "campaign", "bonus_type", "trigger", "status", "amount", "credit_outstanding",
                    "converted_amount", "lot_progress", "applied_leverage", "created_at"]  # fmt: skip
    list_filter = ["status", "bonus_type", "trigger", "campaign"]
    list_select_related = ["campaign"]
    search_fields = ["=login", "=id"]
    actions = ["cancel", "force_convert"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    change_list_template = "admin/bonuses/bonus_change_list.html"

    def get_queryset(self, request):
        return restrict(request.user, "bonuses.view_bonus", super().get_queryset(request))

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Bonus._meta.concrete_fields]

    def has_add_permission(self, request):
        return False  # bonuses are given through "Assign bonus" (eligibility check) or triggers

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Cancel (remove the credit)", permissions=["change"])
    def cancel(self, request, queryset):
        done = 0
        for bonus in queryset:
            try:
                bonus_cancel(actor=request.user, bonus=bonus)
                done += 1
            except (ServiceError, gw.GatewayError) as exc:
                _report_error(self, request, exc)
        self.message_user(request, f"{done} bonus(es) cancelled.")

    @admin.action(description="Force-convert (type C)", permissions=["change"])
    def force_convert(self, request, queryset):
        done = 0
        for bonus in queryset:
            try:
                bonus_force_convert(actor=request.user, bonus=bonus)
                done += 1
            except (ServiceError, gw.GatewayError) as exc:
                _report_error(self, request, exc)
        self.message_user(request, f"{done} bonus(es) converted.")

    def changelist_view(self, request, extra_context=None):
        failed = BonusOperation.objects.filter(status=OperationStatus.FAILED).count()
        if failed and request.method == "GET":
            # The alert of the bonus monitor page: postings MT5 kept refusing wait for a person.
            url = reverse("admin:bonuses_bonusoperation_changelist") + f"?status__exact={OperationStatus.FAILED}"
            self.message_user(
                request,
                format_html(
                    '{} MT5 posting(s) failed after every retry: <a href="{}">retry them or mark them resolved</a>.',
                    failed,
                    url,
                ),
                messages.ERROR,
            )
        return super().changelist_view(request, extra_context)

    def get_urls(self):
        view = self.admin_site.admin_view
        extra = [
            path("dashboard/", view(self.dashboard_view), name="bonuses_dashboard"),
            path("assign/", view(self.assign_view), name="bonuses_assign"),
            path("lookup/", view(self.lookup_view), name="bonuses_lookup"),
            path("reports/", view(self.reports_view), name="bonuses_reports"),
            path("reports/export/", view(self.export_view), name="bonuses_export"),
            path("monitoring/", view(self.monitoring_view), name="bonuses_monitoring"),
            path("<int:pk>/override-leverage/", view(self.leverage_view), name="bonuses_override_leverage"),
        ]
        return extra + super().get_urls()

    @capability_required("bonuses.view")
    def dashboard_view(self, request):
        return TemplateResponse(request, "admin/bonuses/dashboard.html",
                                _context(self, request, "Bonus dashboard", stats=selectors.dashboard()))  # fmt: skip

    @capability_required("bonuses.assign")
    def assign_view(self, request):
        """Manual assign: eligibility first; overridable failures get a red confirmation page."""
        form = AssignForm(request.POST or None,
                          initial={"login": request.GET.get("login"), "idempotency_key": uuid.uuid4().hex})  # fmt: skip
        failures = []
        if request.method == "POST" and form.is_valid():
            v = form.cleaned_data
            override = request.POST.get("override") == "1"
            key = v["idempotency_key"]
            try:
                result = bonus_assign_manual(
                    actor=request.user, campaign=v["campaign"], login=v["login"], deposit=v["deposit_amount"],
                    amount=v["amount"], override=override, idempotency_key=key,
                )  # fmt: skip
            except Conflict as exc:
                if exc.code == "idempotency_key_reused":
                    form.add_service_error(exc)
                elif exc.code != "not_eligible":
                    self.message_user(request, exc.message, messages.ERROR)
                else:
                    failures = exc.details["failures"]
                    blocked = [f for f in failures if not f["overridable"]]
                    form = AssignForm(initial={**v, "campaign": v["campaign"].pk, "idempotency_key": key})
                    return TemplateResponse(request, "admin/bonuses/assign_confirm.html", _context(
                        self, request, "Not eligible", form=form, failures=failures, blocked=blocked,
                        values=v))  # fmt: skip
            except ServiceError as exc:
                if exc.code in AMOUNT_REFUSALS:
                    form.add_service_error(exc)
                else:
                    _report_error(self, request, exc)
            except gw.GatewayError as exc:
                _report_error(self, request, exc)
            else:
                self.message_user(request, f"Bonus #{result.bonus.pk} assigned to {result.bonus.login}: "
                                           f"{result.bonus.amount} ({result.bonus.status}).")  # fmt: skip
                return redirect("admin:bonuses_bonus_changelist")
        declared, limit, role = limits.manual_assign_limit(request.user)
        return TemplateResponse(request, "admin/bonuses/assign.html", _context(
            self, request, "Assign bonus", form=form, limit_declared=declared, limit=limit, limit_role=role))  # fmt: skip

    @capability_required("accounts.lookup")
    def lookup_view(self, request):
        form = LookupForm(request.GET or None)
        found = None
        if form.is_valid():
            try:
                found = selectors.account_lookup(login=form.cleaned_data["login"], gateway=default_gateway())
            except (ServiceError, gw.GatewayError) as exc:
                _report_error(self, request, exc)
        return TemplateResponse(request, "admin/bonuses/lookup.html",
                                _context(self, request, "Account lookup", form=form, found=found))  # fmt: skip

    @capability_required("reports.view")
    def reports_view(self, request):
        name = request.GET.get("report", "summary")
        if name not in reports.REPORTS:
            name = "summary"
        rows = reports.REPORTS[name]()
        return TemplateResponse(request, "admin/bonuses/reports.html", _context(
            self, request, "Bonus reports", report=name, names=list(reports.REPORTS), rows=rows,
            headers=list(rows[0]) if rows else []))  # fmt: skip

    @capability_required("reports.view")
    def export_view(self, request):
        name, kind = request.GET.get("report", "summary"), request.GET.get("format", "csv")
        if name not in reports.REPORTS or kind not in ("csv", "xlsx"):
            self.message_user(request, "Unknown report or format.", messages.ERROR)
            return redirect("admin:bonuses_reports")
        body, content_type = reports.export(name, kind)
        response = HttpResponse(body, content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="bonus-{name}.{kind}"'
        return response

    @capability_required("bonuses.view")
    def monitoring_view(self, request):
        return TemplateResponse(
            request,
            "admin/bonuses/monitoring.html",
            _context(self, request, "Monitoring status", status=selectors.monitoring_status()),
        )

    @capability_required("bonuses.manage")
    def leverage_view(self, request, pk: int):
        bonus = get_object_or_404(self.get_queryset(request), pk=pk, bonus_type=BonusType.DYNAMIC_LEVERAGE)
        form = LeverageForm(request.POST or None, initial={"leverage": bonus.applied_leverage})
        if request.method == "POST" and form.is_valid():
            try:
                leverage = form.cleaned_data["leverage"]
                bonus_override_leverage(actor=request.user, bonus=bonus, leverage=leverage)
                self.message_user(request, f"Leverage of {bonus.login} set to 1:{form.cleaned_data['leverage']}.")
                return redirect(reverse("admin:bonuses_bonus_change", args=[bonus.pk]))
            except (ServiceError, gw.GatewayError) as exc:
                _report_error(self, request, exc)
        return TemplateResponse(request, "admin/bonuses/override_leverage.html",
                                _context(self, request, f"Override leverage of bonus #{bonus.pk}", form=form,
                                         bonus=bonus))  # fmt: skip


@admin.register(MonitoredAccount)
class MonitoredAccountAdmin(admin.ModelAdmin):
    list_display = ["login", "group", "country", "lead_source", "status", "consecutive_errors", "balance", "credit",
                    "leverage", "snapshot_at"]  # fmt: skip
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

    list_display = ["created_at", "actor_label", "action", "login", "bonus_id", "campaign_id", "message"]
    list_filter = ["action"]
    search_fields = ["=login", "=bonus__id", "actor_label"]
    readonly_fields = ["created_at", "actor_label", "action", "login", "bonus", "campaign", "before", "after",
                       "message"]  # fmt: skip
    exclude = ["actor"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False

    def get_queryset(self, request):
        return restrict(request.user, "bonuses.view_auditlog", super().get_queryset(request))


@admin.register(BonusOperation)
class BonusOperationAdmin(ReadOnlyAdmin):
    """MT5 postings; failed ones (retried BONUS_OPERATION_MAX_ATTEMPTS times) wait here for a person."""

    list_display = ["id", "bonus_id", "login", "kind", "amount", "leverage", "status", "deal_ticket", "attempts",
                    "next_attempt_at", "error", "created_at"]  # fmt: skip
    list_filter = ["status", "kind"]
    search_fields = ["=login", "=bonus__id"]
    actions = ["retry_now", "mark_resolved"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False

    def get_queryset(self, request):
        return restrict(request.user, "bonuses.view_bonusoperation", super().get_queryset(request))

    def has_resolve_permission(self, request) -> bool:
        # Settling a posting MT5 refused is a change to the bonus's money: the same capability as cancelling one.
        return has_capability(request.user, "bonuses.manage")

    @admin.action(description="Retry now (failed or waiting postings)", permissions=["resolve"])
    def retry_now(self, request, queryset):
        done = 0
        for operation in queryset.filter(status__in=UNFINISHED):
            try:
                if operation_retry(actor=request.user, operation=operation).status == OperationStatus.DONE:
                    done += 1
            except (ServiceError, gw.GatewayError) as exc:
                _report_error(self, request, exc)
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
    list_display = ["started_at", "shard", "shards", "duration_ms", "accounts", "discovered", "deposits",
                    "withdrawals", "drawdowns", "conversions", "errors", "paused", "error"]  # fmt: skip
    list_filter = ["shards", "shard"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False

    def get_queryset(self, request):
        return restrict(request.user, "bonuses.view_monitorcycle", super().get_queryset(request))


@admin.register(MonitorShard)
class MonitorShardAdmin(ReadOnlyAdmin):
    list_display = ["shard", "shards", "holder", "lease_until", "last_cycle_at", "last_duration_ms", "last_accounts",
                    "cycles", "deposits", "withdrawals", "drawdowns", "errors"]  # fmt: skip

    def get_queryset(self, request):
        return restrict(request.user, "bonuses.view_monitorshard", super().get_queryset(request))


@admin.register(Mt5Scan)
class Mt5ScanAdmin(ReadOnlyAdmin):
    list_display = ["scanned_at", "scanned_by", "accounts"]

    def get_queryset(self, request):
        return restrict(request.user, "bonuses.view_mt5scan", super().get_queryset(request))
