"""Reconciliation in the admin: the mismatches (filters, mark reviewed with a note, re-check), runs, run now.

Every action and page declares its permission from the role matrix (accounts/roles.py): seeing mismatches
and runs is ``reconciliation.view``; running and reviewing is ``reconciliation.manage``. The finance report
(bonuses.admin.finance) hangs off this admin's addresses too.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from accounts.admin import EstimatedCountPaginator
from accounts.permissions import capability_required, has_capability, restrict
from config.errors import ServiceError

from .. import reconciliation
from ..reconciliation_models import MismatchStatus, ReconciliationMismatch, ReconciliationRun, RunTrigger
from ..tasks import reconcile_queue
from . import finance
from .base import ReadOnlyAdmin, admin_context

MAX_NOTE = reconciliation.MAX_NOTE


class ReviewForm(forms.Form):
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=MAX_NOTE,
        help_text="What was found or done (kept on each mismatch and in the audit log).",
    )


@admin.register(ReconciliationMismatch)
class ReconciliationMismatchAdmin(ReadOnlyAdmin):
    list_before_template = "admin/bonuses/_reconciliation_panel.html"
    list_display = [
        "last_seen_at",
        "kind",
        "status",
        "login",
        "operation_link",
        "campaign",
        "expected_amount",
        "found_amount",
        "tickets",
        "message",
        "reviewed_by",
        "reviewed_at",
    ]
    list_filter = ["status", "kind", ("bonus__campaign", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["bonus__campaign", "reviewed_by"]
    search_fields = ["=login", "=operation__id", "=bonus__id"]
    date_hierarchy = "last_seen_at"
    readonly_fields = [
        "key",
        "kind",
        "status",
        "login",
        "operation",
        "bonus",
        "expected_amount",
        "found_amount",
        "deal_tickets",
        "deal_time",
        "message",
        "first_seen_at",
        "last_seen_at",
        "first_run",
        "last_run",
        "cleared_at",
        "reviewed_by",
        "reviewed_at",
        "review_note",
    ]
    actions = ["recheck_accounts", "mark_reviewed"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False

    def get_queryset(self, request):
        return restrict(request.user, "bonuses.view_reconciliationmismatch", super().get_queryset(request))

    def has_run_permission(self, request) -> bool:
        return request.user.has_perm("bonuses.run_reconciliationmismatch")

    def has_review_permission(self, request) -> bool:
        return request.user.has_perm("bonuses.review_reconciliationmismatch")

    @admin.display(description="operation", ordering="operation_id")
    def operation_link(self, obj):
        if obj.operation_id is None:
            return "—"
        url = reverse("admin:bonuses_bonusoperation_changelist") + f"?q={obj.login}"
        return format_html('<a href="{}">#{}</a>', url, obj.operation_id)

    @admin.display(description="campaign")
    def campaign(self, obj):
        return obj.bonus.campaign.name if obj.bonus_id else "—"

    @admin.display(description="deals")
    def tickets(self, obj):
        return ", ".join(f"#{t}" for t in obj.deal_tickets) or "—"

    def changelist_view(self, request, extra_context=None):
        extra = {
            "last_run": reconciliation.last_run(),
            "open_mismatches": reconciliation.open_count(),
            "can_run": has_capability(request.user, "reconciliation.manage"),
            "can_see_finance": has_capability(request.user, "reports.view"),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("run/", view(self.run_view), name="bonuses_reconciliation_run"),
            path("finance/", view(self.finance_view), name="bonuses_finance_report"),
            path("finance/export/", view(self.finance_export_view), name="bonuses_finance_export"),
            *super().get_urls(),
        ]

    @admin.action(description="Re-check the accounts of these mismatches now", permissions=["run"])
    def recheck_accounts(self, request, queryset):
        logins = set(queryset.values_list("login", flat=True))
        run = reconciliation.reconciliation_request(actor=request.user, trigger=RunTrigger.ADMIN, logins=logins)
        reconcile_queue(run)
        self.message_user(request, f"Reconciliation #{run.pk} queued for {len(logins)} account(s).")

    @admin.action(description="Mark reviewed (with a note)", permissions=["review"])
    def mark_reviewed(self, request, queryset):
        """First the note (an intermediate page, as Django's delete confirmation), then the change."""
        form = ReviewForm(request.POST if request.POST.get("apply") else None)
        if form.is_bound and form.is_valid():
            try:
                done = reconciliation.mismatches_review(
                    actor=request.user, mismatches=queryset.values_list("pk", flat=True), note=form.cleaned_data["note"]
                )
            except ServiceError as exc:
                self.message_user(request, exc.message, messages.ERROR)
                return None
            self.message_user(request, f"{done} mismatch(es) marked reviewed.")
            return None
        return TemplateResponse(
            request,
            "admin/bonuses/reconciliation_review.html",
            admin_context(
                self,
                request,
                "Mark mismatches reviewed",
                form=form,
                mismatches=queryset.select_related("bonus__campaign")[:200],
                selected=request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
                select_across=request.POST.get("select_across", "0"),
                action="mark_reviewed",
                already=queryset.filter(status=MismatchStatus.REVIEWED).count(),
            ),
        )

    @capability_required("reconciliation.manage")
    def run_view(self, request):
        """Run the whole reconciliation now: GET asks, POST queues it."""
        back = reverse("admin:bonuses_reconciliationmismatch_changelist")
        if request.method == "POST":
            run = reconciliation.reconciliation_request(actor=request.user, trigger=RunTrigger.ADMIN)
            reconcile_queue(run)
            self.message_user(request, f"Reconciliation #{run.pk} queued: every account with a bonus.")
            return redirect(back)
        return TemplateResponse(
            request,
            "admin/bonuses/reconciliation_run.html",
            admin_context(
                self, request, "Run the bonus reconciliation now", back=back, last_run=reconciliation.last_run()
            ),
        )

    @capability_required("reports.view")
    def finance_view(self, request):
        return finance.finance_page(self, request)

    @capability_required("reports.view")
    def finance_export_view(self, request):
        return finance.finance_export(self, request)


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ReadOnlyAdmin):
    list_before_template = "admin/bonuses/_nav.html"
    list_display = [
        "created_at",
        "trigger",
        "status",
        "actor_label",
        "duration_ms",
        "accounts_checked",
        "accounts_not_synced",
        "operations_checked",
        "deals_checked",
        "found",
        "new",
        "cleared",
        "error",
    ]
    list_filter = ["status", "trigger"]
    exclude = ["actor"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False

    def get_queryset(self, request):
        return restrict(request.user, "bonuses.view_reconciliationrun", super().get_queryset(request))

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in ReconciliationRun._meta.concrete_fields if f.name != "actor"]
