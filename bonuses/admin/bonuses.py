"""The bonus monitor page and the pages that hang off it: dashboard, assign, lookup, reports, monitoring, leverage."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from unfold.admin import ModelAdmin

from accounts.admin import EstimatedCountPaginator
from accounts.permissions import capability_required, restrict
from config.errors import Conflict, ServiceError
from mt5bridge import gateway as gw

from .. import limits, reports, selectors
from ..choices import ApprovalStatus, AuditAction, BonusType, CampaignStatus, OperationStatus
from ..models import (
    AbuseSignal,
    AuditLog,
    Bonus,
    BonusOperation,
    Campaign,
    GrantApproval,
)
from ..services.ending import bonus_cancel, bonus_force_convert, bonus_override_leverage
from ..services.manual import MANUAL_KEY, bonus_assign_manual
from . import account360
from .base import MAX_LOGIN, admin_context, report_error
from .dashboard import dashboard_context
from .live import LiveMonitorMixin


class AssignForm(forms.Form):
    login = forms.IntegerField(min_value=1, max_value=MAX_LOGIN, label="MT5 login")
    campaign = forms.ModelChoiceField(queryset=Campaign.objects.exclude(status=CampaignStatus.ARCHIVED))
    deposit_amount = forms.DecimalField(max_digits=20, decimal_places=2, min_value=Decimal("0"), required=False)
    amount = forms.DecimalField(
        max_digits=20,
        decimal_places=2,
        min_value=Decimal("0.01"),
        required=False,
        help_text="Leave empty to use the campaign's rule (percent of the deposit, or its "
        "fixed amount). At most the campaign's rule and your role's limit.",
    )
    # One key per rendered form: a double submit (or a reload of the POST) posts once.
    idempotency_key = forms.RegexField(
        regex=MANUAL_KEY,
        widget=forms.HiddenInput,
        error_messages={
            "required": "This form has expired: open Assign bonus again.",
            "invalid": "This form has expired: open Assign bonus again.",
        },
    )

    def add_service_error(self, exc: ServiceError) -> None:
        """Show a refusal from the service next to the field it is about (a cap names itself)."""
        self.add_error("amount" if exc.code in AMOUNT_REFUSALS else None, exc.message)


AMOUNT_REFUSALS = ("amount_above_campaign_cap", "amount_above_role_limit", "zero_amount")


class LeverageForm(forms.Form):
    leverage = forms.IntegerField(min_value=1, max_value=1000)


@admin.register(Bonus)
class BonusAdmin(LiveMonitorMixin, ModelAdmin):
    """The bonus monitor, with the back office's other pages hanging off it."""

    list_display = [
        "id",
        "login",
        "campaign",
        "bonus_type",
        "trigger",
        "status",
        "amount",
        "credit_outstanding",
        "converted_amount",
        "lot_progress",
        "applied_leverage",
        "created_at",
    ]
    list_filter = ["status", "bonus_type", "trigger", "campaign"]
    list_select_related = ["campaign"]
    search_fields = ["=login", "=id"]
    actions = ["cancel", "force_convert"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    change_list_template = "admin/bonuses/bonus_change_list.html"

    def get_queryset(self, request):
        return restrict(request.user, "bonuses.view_bonus", super().get_queryset(request))

    # The campaign and the staff member are shown as text: a link to their admin pages would refuse the roles that
    # may view bonuses but not campaigns (Support Agent) or people (everyone but Super Admin).
    exclude = ["campaign", "assigned_by"]
    LINKLESS = {"campaign": "campaign_name", "assigned_by": "assigned_by_name"}

    def get_readonly_fields(self, request, obj=None):
        return [self.LINKLESS.get(f.name, f.name) for f in Bonus._meta.concrete_fields]

    @admin.display(description="Campaign")
    def campaign_name(self, obj) -> str:
        return obj.campaign.name

    @admin.display(description="Assigned by")
    def assigned_by_name(self, obj) -> str:
        return obj.assigned_by.email if obj.assigned_by_id else ""

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
                report_error(self, request, exc)
        self.message_user(request, f"{done} bonus(es) cancelled.")

    @admin.action(description="Force-convert (type C)", permissions=["change"])
    def force_convert(self, request, queryset):
        done = 0
        for bonus in queryset:
            try:
                bonus_force_convert(actor=request.user, bonus=bonus)
                done += 1
            except (ServiceError, gw.GatewayError) as exc:
                report_error(self, request, exc)
        self.message_user(request, f"{done} bonus(es) converted.")

    def changelist_view(self, request, extra_context=None):
        waiting = GrantApproval.objects.filter(status=ApprovalStatus.PENDING).count()
        if waiting and request.method == "GET":
            # Maker-checker: grants above BONUS_APPROVAL_THRESHOLD wait for a second staff member.
            url = reverse("admin:bonuses_grantapproval_changelist") + f"?status__exact={ApprovalStatus.PENDING}"
            self.message_user(
                request,
                format_html('{} grant(s) wait for approval: <a href="{}">approve or reject them</a>.', waiting, url),
                messages.WARNING,
            )
        since = timezone.now() - timedelta(days=1)
        refused = AuditLog.objects.filter(action=AuditAction.GRANT_REFUSED, created_at__gte=since).count()
        if refused and request.method == "GET":
            url = reverse("admin:bonuses_auditlog_changelist") + f"?action__exact={AuditAction.GRANT_REFUSED}"
            self.message_user(
                request,
                format_html(
                    '{} grant(s) refused by a campaign budget cap in the last 24 hours: <a href="{}">see why</a>.',
                    refused,
                    url,
                ),
                messages.WARNING,
            )
        flagged = AbuseSignal.objects.filter(reviewed_at__isnull=True).count()
        if flagged and request.method == "GET":
            url = reverse("admin:bonuses_abusesignal_changelist") + "?reviewed_at__isnull=True"
            self.message_user(
                request,
                format_html(
                    "{} abuse signal(s) to review (accounts sharing an email domain, lead source or IP on one "
                    'campaign): <a href="{}">review them</a>.',
                    flagged,
                    url,
                ),
                messages.WARNING,
            )
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
        return extra + self.live_urls() + super().get_urls()

    @capability_required("bonuses.view")
    def dashboard_view(self, request):
        return TemplateResponse(
            request,
            "admin/bonuses/dashboard.html",
            admin_context(self, request, "Bonus dashboard", **dashboard_context(request)),
        )

    @capability_required("bonuses.assign")
    def assign_view(self, request):
        """Manual assign: eligibility first; overridable failures get a red confirmation page."""
        form = AssignForm(
            request.POST or None, initial={"login": request.GET.get("login"), "idempotency_key": uuid.uuid4().hex}
        )
        failures = []
        if request.method == "POST" and form.is_valid():
            v = form.cleaned_data
            override = request.POST.get("override") == "1"
            key = v["idempotency_key"]
            try:
                result = bonus_assign_manual(
                    actor=request.user,
                    campaign=v["campaign"],
                    login=v["login"],
                    deposit=v["deposit_amount"],
                    amount=v["amount"],
                    override=override,
                    idempotency_key=key,
                )
            except Conflict as exc:
                if exc.code == "idempotency_key_reused":
                    form.add_service_error(exc)
                elif exc.code != "not_eligible":
                    self.message_user(request, exc.message, messages.ERROR)
                else:
                    failures = exc.details["failures"]
                    blocked = [f for f in failures if not f["overridable"]]
                    form = AssignForm(initial={**v, "campaign": v["campaign"].pk, "idempotency_key": key})
                    return TemplateResponse(
                        request,
                        "admin/bonuses/assign_confirm.html",
                        admin_context(
                            self, request, "Not eligible", form=form, failures=failures, blocked=blocked, values=v
                        ),
                    )
            except ServiceError as exc:
                if exc.code in AMOUNT_REFUSALS:
                    form.add_service_error(exc)
                else:
                    report_error(self, request, exc)
            except gw.GatewayError as exc:
                report_error(self, request, exc)
            else:
                if result.approval is not None:
                    self.message_user(
                        request,
                        f"The grant of {result.approval.amount} to {result.approval.login} is above the approval "
                        f"threshold: it waits for a second staff member (approval #{result.approval.pk}).",
                        messages.WARNING,
                    )
                    return redirect("admin:bonuses_grantapproval_changelist")
                self.message_user(
                    request,
                    f"Bonus #{result.bonus.pk} assigned to {result.bonus.login}: "
                    f"{result.bonus.amount} ({result.bonus.status}).",
                )
                return redirect("admin:bonuses_bonus_changelist")
        declared, limit, role = limits.manual_assign_limit(request.user)
        return TemplateResponse(
            request,
            "admin/bonuses/assign.html",
            admin_context(
                self, request, "Assign bonus", form=form, limit_declared=declared, limit=limit, limit_role=role
            ),
        )

    @capability_required("accounts.lookup")
    def lookup_view(self, request):
        """Account 360 (bonuses.admin.account360): search by MT5 login, email or name, then the whole account."""
        context = account360.lookup_context(request)
        if context["error"]:
            self.message_user(request, context["error"], messages.ERROR)
        return TemplateResponse(
            request, "admin/bonuses/account360.html", admin_context(self, request, "Account lookup", **context)
        )

    @capability_required("reports.view")
    def reports_view(self, request):
        name = request.GET.get("report", "summary")
        if name not in reports.REPORTS:
            name = "summary"
        rows = reports.REPORTS[name]()
        return TemplateResponse(
            request,
            "admin/bonuses/reports.html",
            admin_context(
                self,
                request,
                "Bonus reports",
                report=name,
                names=list(reports.REPORTS),
                rows=rows,
                headers=list(rows[0]) if rows else [],
            ),
        )

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
            admin_context(self, request, "Monitoring status", status=selectors.monitoring_status()),
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
                report_error(self, request, exc)
        return TemplateResponse(
            request,
            "admin/bonuses/override_leverage.html",
            admin_context(self, request, f"Override leverage of bonus #{bonus.pk}", form=form, bonus=bonus),
        )
