"""Financial controls in the admin: grants waiting for a second staff member, abuse signals to review."""

from __future__ import annotations

from django.contrib import admin

from accounts.admin import EstimatedCountPaginator
from accounts.permissions import restrict
from config.errors import ServiceError
from mt5bridge import gateway as gw

from ..choices import ApprovalStatus
from ..models import AbuseSignal, GrantApproval
from ..services.controls import abuse_signal_review, approval_approve, approval_reject
from .base import ReadOnlyAdmin, report_error


@admin.register(GrantApproval)
class GrantApprovalAdmin(ReadOnlyAdmin):
    """Maker-checker: a manual or overridden grant above BONUS_APPROVAL_THRESHOLD waits here."""

    list_before_template = "admin/bonuses/_nav.html"
    list_display = [
        "id",
        "login",
        "campaign_name",
        "amount",
        "deposit_amount",
        "override",
        "status",
        "requested_by_email",
        "requested_at",
        "decided_by_email",
        "decided_at",
        "bonus_id",
        "note",
    ]
    list_filter = ["status"]
    list_select_related = ["campaign", "requested_by", "decided_by"]
    search_fields = ["=login"]
    actions = ["approve", "reject"]
    exclude = ["campaign", "requested_by", "decided_by", "bonus"]
    readonly_fields = [
        "login",
        "campaign_name",
        "status",
        "amount",
        "deposit_amount",
        "override",
        "overridden_checks",
        "requested_by_email",
        "requested_at",
        "decided_by_email",
        "decided_at",
        "bonus_id",
        "note",
    ]
    paginator = EstimatedCountPaginator
    show_full_result_count = False

    def get_queryset(self, request):
        return restrict(request.user, "bonuses.view_grantapproval", super().get_queryset(request))

    @admin.display(description="Campaign")
    def campaign_name(self, obj) -> str:
        return obj.campaign.name

    @admin.display(description="Asked by")
    def requested_by_email(self, obj) -> str:
        return obj.requested_by.email if obj.requested_by_id else ""

    @admin.display(description="Decided by")
    def decided_by_email(self, obj) -> str:
        return obj.decided_by.email if obj.decided_by_id else ""

    def has_approve_permission(self, request) -> bool:
        # bonuses.approve in accounts/roles.py (Super Admin); the service also refuses the maker's own request.
        return request.user.has_perm("bonuses.approve_grantapproval")

    @admin.action(description="Approve (make the grant)", permissions=["approve"])
    def approve(self, request, queryset):
        done = 0
        for approval in queryset.filter(status__in=[ApprovalStatus.PENDING, ApprovalStatus.APPROVED]):
            try:
                approval = approval_approve(actor=request.user, approval=approval)
                done += 1
            except (ServiceError, gw.GatewayError) as exc:
                report_error(self, request, exc)
        self.message_user(request, f"{done} grant(s) approved and made.")

    @admin.action(description="Reject", permissions=["approve"])
    def reject(self, request, queryset):
        done = 0
        for approval in queryset.filter(status=ApprovalStatus.PENDING):
            try:
                approval_reject(actor=request.user, approval=approval, note=f"by {request.user.email}")
                done += 1
            except ServiceError as exc:
                report_error(self, request, exc)
        self.message_user(request, f"{done} grant(s) rejected.")


class ReviewedFilter(admin.SimpleListFilter):
    title = "reviewed"
    parameter_name = "reviewed_at__isnull"

    def lookups(self, request, model_admin):
        return [("True", "To review"), ("False", "Reviewed")]

    def queryset(self, request, queryset):
        if self.value() in ("True", "False"):
            return queryset.filter(reviewed_at__isnull=self.value() == "True")
        return queryset


@admin.register(AbuseSignal)
class AbuseSignalAdmin(ReadOnlyAdmin):
    """Several accounts sharing an email domain, lead source or IP that received the same campaign."""

    list_before_template = "admin/bonuses/_nav.html"
    list_display = ["id", "campaign_name", "kind", "value", "accounts", "logins", "last_seen_at", "reviewed_at"]
    list_filter = [ReviewedFilter, "kind"]
    list_select_related = ["campaign"]
    search_fields = ["value"]
    actions = ["mark_reviewed"]
    exclude = ["campaign", "reviewed_by"]
    readonly_fields = [
        "campaign_name",
        "kind",
        "value",
        "accounts",
        "logins",
        "first_seen_at",
        "last_seen_at",
        "reviewed_at",
    ]

    def get_queryset(self, request):
        return restrict(request.user, "bonuses.view_abusesignal", super().get_queryset(request))

    @admin.display(description="Campaign")
    def campaign_name(self, obj) -> str:
        return obj.campaign.name

    def has_review_permission(self, request) -> bool:
        return request.user.has_perm("bonuses.review_abusesignal")

    @admin.action(description="Mark reviewed", permissions=["review"])
    def mark_reviewed(self, request, queryset):
        done = 0
        for signal in queryset.filter(reviewed_at__isnull=True):
            abuse_signal_review(actor=request.user, signal=signal)
            done += 1
        self.message_user(request, f"{done} signal(s) marked reviewed.")
