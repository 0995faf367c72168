"""The live bonus monitor: rows refreshed by htmx polling, and the per-row actions the viewer's role allows.

Each action is its own admin page that declares its capability in the permission matrix (accounts/roles.py):
cancel and force-convert ask for a confirmation (GET shows it, POST does it), override leverage is a form.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme

from accounts.permissions import capability_required, has_capability
from config.errors import ServiceError
from mt5bridge import gateway as gw

from ..choices import BonusStatus, BonusType
from ..models import Bonus
from ..services.ending import bonus_cancel, bonus_force_convert
from .base import admin_context, report_error

LIVE_ROWS = 25
POLL_SECONDS = 5
# The changelist filters the live rows follow (the same query string as the monitor's table).
LIVE_FILTERS = {"status__exact": "status", "bonus_type__exact": "bonus_type", "campaign__id__exact": "campaign_id"}


@dataclass(frozen=True)
class RowAction:
    name: str
    label: str
    url_name: str
    capability: str
    danger: bool = False

    def applies(self, bonus: Bonus) -> bool:
        if self.name == "cancel":
            return bonus.is_open
        if self.name == "force_convert":
            return bonus.bonus_type == BonusType.CONVERTIBLE and bonus.status == BonusStatus.ACTIVE
        if self.name == "override_leverage":
            return bonus.bonus_type == BonusType.DYNAMIC_LEVERAGE and bonus.is_open
        return True


ROW_ACTIONS = (
    RowAction("override_leverage", "Override leverage", "admin:bonuses_override_leverage", "bonuses.manage"),
    RowAction("force_convert", "Force-convert", "admin:bonuses_force_convert", "bonuses.manage"),
    RowAction("cancel", "Cancel", "admin:bonuses_cancel", "bonuses.manage", danger=True),
)


def row_actions(user, bonus: Bonus) -> list[dict]:
    """The actions this person's role allows on this bonus, in its current state."""
    return [
        {"name": a.name, "label": a.label, "url": reverse(a.url_name, args=[bonus.pk]), "danger": a.danger}
        for a in ROW_ACTIONS
        if a.applies(bonus) and has_capability(user, a.capability)
    ]


def _safe_next(request, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        return target
    return default


class LiveMonitorMixin:
    """Adds the live rows endpoint and the confirmation pages of the row actions to the bonus monitor."""

    list_before_template = "admin/bonuses/_live_panel.html"
    change_form_template = "admin/bonuses/bonus_change_form.html"

    def live_urls(self):
        view = self.admin_site.admin_view
        return [
            path("live/", view(self.live_view), name="bonuses_monitor_live"),
            path("<int:pk>/cancel/", view(self.cancel_view), name="bonuses_cancel"),
            path("<int:pk>/force-convert/", view(self.force_convert_view), name="bonuses_force_convert"),
        ]

    def live_rows(self, request) -> list[dict]:
        queryset = self.get_queryset(request).select_related("campaign").order_by("-created_at", "-pk")
        for param, field in LIVE_FILTERS.items():
            value = request.GET.get(param)
            if value and (field != "campaign_id" or value.isdigit()):  # a malformed id filters nothing out
                queryset = queryset.filter(**{field: value})
        query = (request.GET.get("q") or "").strip()
        if query.isdigit():
            queryset = queryset.filter(login=int(query)) | queryset.filter(pk=int(query))
        return [{"bonus": bonus, "actions": row_actions(request.user, bonus)} for bonus in queryset[:LIVE_ROWS]]

    @capability_required("bonuses.view")
    def live_view(self, request):
        """The monitor's rows as an HTML fragment (htmx swaps it in every POLL_SECONDS)."""
        return TemplateResponse(
            request,
            "admin/bonuses/_live_rows.html",
            {
                "rows": self.live_rows(request),
                "poll_seconds": POLL_SECONDS,
                "next": reverse("admin:bonuses_bonus_changelist"),
            },
        )

    def changelist_view(self, request, extra_context=None):
        extra = {
            "live_url": reverse("admin:bonuses_monitor_live"),
            "poll_seconds": POLL_SECONDS,
            **(extra_context or {}),
        }
        extra["live_rows"] = self.live_rows(request)
        return super().changelist_view(request, extra)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        extra = dict(extra_context or {})
        if object_id:
            bonus = self.get_queryset(request).filter(pk=object_id).first()
            if bonus is not None:
                extra["row_actions"] = row_actions(request.user, bonus)
        return super().changeform_view(request, object_id, form_url, extra)

    def _confirm(self, request, pk: int, *, title: str, question: str, perform, done: str):
        bonus = get_object_or_404(self.get_queryset(request).select_related("campaign"), pk=pk)
        back = _safe_next(request, reverse("admin:bonuses_bonus_changelist"))
        if request.method == "POST":
            try:
                perform(bonus)
            except (ServiceError, gw.GatewayError) as exc:
                report_error(self, request, exc)
            else:
                self.message_user(request, done.format(bonus=bonus), messages.SUCCESS)
            return redirect(back)
        return TemplateResponse(
            request,
            "admin/bonuses/confirm_action.html",
            admin_context(self, request, title, bonus=bonus, question=question, back=back),
        )

    @capability_required("bonuses.manage")
    def cancel_view(self, request, pk: int):
        return self._confirm(
            request,
            pk,
            title="Cancel bonus",
            question="Cancel this bonus? Its credit outstanding is removed from the account in MT5.",
            perform=lambda bonus: bonus_cancel(actor=request.user, bonus=bonus),
            done="Bonus #{bonus.pk} of {bonus.login} cancelled.",
        )

    @capability_required("bonuses.manage")
    def force_convert_view(self, request, pk: int):
        return self._confirm(
            request,
            pk,
            title="Force-convert bonus",
            question="Convert this bonus's credit outstanding to balance now, whatever lots were traded?",
            perform=lambda bonus: bonus_force_convert(actor=request.user, bonus=bonus),
            done="Bonus #{bonus.pk} of {bonus.login} converted.",
        )
