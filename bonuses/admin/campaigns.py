"""Campaign manager in the admin: the form (validated by the service rules), actions, Scan MT5."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.shortcuts import redirect
from django.urls import path
from django.utils.html import format_html
from unfold.admin import ModelAdmin

from accounts.permissions import capability_required, restrict
from config.errors import ServiceError
from mt5bridge import gateway as gw
from mt5bridge.groups import mask_problems

from .. import selectors
from ..choices import CAMPAIGN_TRIGGERS, CampaignStatus
from ..models import (
    Campaign,
    Mt5Scan,
)
from ..services.campaigns import (
    CAMPAIGN_FIELDS,
    campaign_archive,
    campaign_create,
    campaign_duplicate,
    campaign_set_status,
    campaign_update,
    validate_campaign,
)
from ..services.monitored import mt5_scan
from .base import report_error


class CampaignForm(forms.ModelForm):
    triggers = forms.MultipleChoiceField(
        choices=[(t.value, t.label) for t in CAMPAIGN_TRIGGERS], required=False, widget=forms.CheckboxSelectMultiple
    )

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
                "JSON list of MT5 group masks (real\\*, !demo*). Known groups: {}", ", ".join(scan.groups[:50])
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
        groups = cleaned.get("target_groups")
        if "target_groups" not in self.errors and groups and (problems := mask_problems(groups)):
            self.add_error("target_groups", " ".join(problems))
        if not self.errors:
            values = {f: cleaned.get(f, getattr(self.instance, f)) for f in CAMPAIGN_FIELDS}
            try:
                validate_campaign(values)
            except ServiceError as exc:
                raise forms.ValidationError(exc.message) from exc
        return cleaned


@admin.register(Campaign)
class CampaignAdmin(ModelAdmin):
    """Campaign manager: list, create, edit, duplicate, archive, status changes, Scan MT5."""

    form = CampaignForm
    list_before_template = "admin/bonuses/_nav.html"
    list_display = [
        "name",
        "bonus_type",
        "status",
        "bonus_percent",
        "max_bonus_amount",
        "active_bonuses",
        "starts_at",
        "ends_at",
    ]
    list_filter = ["status", "bonus_type"]
    search_fields = ["name"]
    actions = ["duplicate", "archive", "activate", "pause", "end"]
    change_list_template = "admin/bonuses/campaign_change_list.html"
    fieldsets = [
        (None, {"fields": ["name", "description", "bonus_type", "bonus_percent", "max_bonus_amount", "fixed_amount"]}),
        ("Deposit and dates", {"fields": ["min_deposit", "max_deposit", "starts_at", "ends_at", "expiry_days"]}),
        ("Budget", {"fields": ["budget_total", "client_credit_cap"]}),
        (
            "Targeting and triggers",
            {
                "fields": [
                    "triggers",
                    "target_groups",
                    "target_countries",
                    "agent_codes",
                    "promo_codes",
                    "one_per_account",
                    "max_concurrent",
                ]
            },
        ),
        (
            "Type C conversion",
            {"fields": ["lots_per_unit", "unit_amount", "counting_symbols", "min_lot", "only_after_bonus"]},
        ),
    ]

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
                self.message_user(
                    request,
                    f"MT5 scanned: {len(scan.groups)} groups, {len(scan.countries)} "
                    f"countries, {scan.accounts} accounts.",
                )
            except gw.GatewayError as exc:
                report_error(self, request, exc)
        return redirect("admin:bonuses_campaign_changelist")


class _Refused(Exception):
    pass
