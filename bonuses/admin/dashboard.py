"""The bonus dashboard (the admin's home page): the seed's figures and four charts, read from the bonus tables.

Charts are drawn by Chart.js from the JSON each canvas carries (django-unfold's chart components); nothing here
writes. Days are UTC calendar days, the last DAYS of them, today included.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.permissions import has_capability

from .. import selectors
from ..choices import OPEN_BONUS_STATUSES, BonusStatus, BonusType, CancelReason
from ..models import Bonus

DAYS = 30
TOP_CAMPAIGNS = 8
TOP_CONVERSIONS = 10
ZERO = Decimal("0")
# Cancellation reasons drawn per day (a conversion ends a bonus too, but it is not a cancellation).
CANCEL_REASONS = (CancelReason.MANUAL, CancelReason.WITHDRAWAL, CancelReason.DRAWDOWN, CancelReason.EXPIRY)
ENDED_BY_CANCELLATION = (BonusStatus.CANCELLED, BonusStatus.EXPIRED)
REASON_COLOURS = {
    CancelReason.MANUAL: "#64748b",
    CancelReason.WITHDRAWAL: "#f59e0b",
    CancelReason.DRAWDOWN: "#ef4444",
    CancelReason.EXPIRY: "#a855f7",
}
GRANTED_COLOUR = "var(--color-primary-600)"


def _days(today: date) -> list[date]:
    return [today - timedelta(days=DAYS - 1 - i) for i in range(DAYS)]


def _per_day(queryset, field: str, value) -> dict[date, object]:
    rows = queryset.annotate(day=TruncDate(field)).values("day").annotate(v=value).values_list("day", "v")
    return dict(rows)


def credit_outstanding_series(today: date) -> list[tuple[date, Decimal]]:
    """Credit outstanding at the end of each day: credit posted minus credit taken back.

    A bonus counts its amount from the day it was given until the day it ended (converted, cancelled, expired);
    a partial reduction of a bonus still open (a withdrawal's share, a type C partial conversion) is counted on
    today, so the last point is exactly the credit outstanding now.
    """
    days = _days(today)
    start = days[0]
    posted = Bonus.objects.exclude(status=BonusStatus.FAILED)
    before = posted.filter(created_at__date__lt=start).aggregate(s=Sum("amount"))["s"] or ZERO
    ended_before = posted.filter(ended_at__date__lt=start).aggregate(s=Sum("amount"))["s"] or ZERO
    given = _per_day(posted.filter(created_at__date__gte=start), "created_at", Sum("amount"))
    ended = _per_day(posted.filter(ended_at__date__gte=start), "ended_at", Sum("amount"))
    partial = (
        posted.filter(status__in=OPEN_BONUS_STATUSES).aggregate(s=Sum(F("amount") - F("credit_outstanding")))["s"]
        or ZERO
    )
    level = before - ended_before
    series = []
    for day in days:
        level += (given.get(day) or ZERO) - (ended.get(day) or ZERO)
        series.append((day, level - partial if day == today else level))
    return series


def granted_and_cancelled(today: date) -> dict:
    """Per day: bonuses granted, and bonuses cancelled by reason (withdrawal, drawdown, expiry, by staff)."""
    days = _days(today)
    start = days[0]
    granted = _per_day(
        Bonus.objects.exclude(status=BonusStatus.FAILED).filter(created_at__date__gte=start), "created_at", Count("id")
    )
    cancelled = Bonus.objects.filter(status__in=ENDED_BY_CANCELLATION, ended_at__date__gte=start)
    by_reason = {
        reason: _per_day(cancelled.filter(cancel_reason=reason), "ended_at", Count("id")) for reason in CANCEL_REASONS
    }
    return {
        "labels": [d.isoformat() for d in days],
        "granted": [granted.get(d, 0) for d in days],
        "cancelled": {reason: [by_reason[reason].get(d, 0) for d in days] for reason in CANCEL_REASONS},
    }


def conversion_progress(limit: int = TOP_CONVERSIONS) -> dict:
    """Type C bonuses on their way to conversion: the totals, and the open ones closest to converting."""
    type_c = Bonus.objects.filter(bonus_type=BonusType.CONVERTIBLE)
    totals = type_c.aggregate(
        open=Count("id", filter=Q(status__in=OPEN_BONUS_STATUSES)),
        converted=Count("id", filter=Q(status=BonusStatus.CONVERTED)),
        converted_amount=Sum("converted_amount"),
        outstanding=Sum("credit_outstanding", filter=Q(status__in=OPEN_BONUS_STATUSES)),
    )
    rows = []
    for bonus in type_c.filter(status__in=OPEN_BONUS_STATUSES, lots_required__gt=0).select_related("campaign"):
        percent = min(Decimal("100"), bonus.lots_traded * 100 / bonus.lots_required).quantize(Decimal("0.1"))
        rows.append({"bonus": bonus, "percent": percent})
    rows.sort(key=lambda r: r["percent"], reverse=True)
    return {
        "open": totals["open"],
        "converted": totals["converted"],
        "converted_amount": totals["converted_amount"] or ZERO,
        "outstanding": totals["outstanding"] or ZERO,
        "rows": rows[:limit],
    }


def top_campaigns(today: date, limit: int = TOP_CAMPAIGNS) -> list[dict]:
    """The campaigns that gave the most credit over the period, with how many bonuses and how many still open."""
    start = _days(today)[0]
    rows = (
        Bonus.objects.exclude(status=BonusStatus.FAILED)
        .filter(created_at__date__gte=start)
        .values("campaign_id", "campaign__name")
        .annotate(
            given=Sum("amount"),
            bonuses=Count("id"),
            open=Count("id", filter=Q(status__in=OPEN_BONUS_STATUSES)),
        )
        .order_by("-given", "campaign__name")[:limit]
    )
    return [
        {
            "id": r["campaign_id"],
            "name": r["campaign__name"],
            "given": r["given"],
            "bonuses": r["bonuses"],
            "open": r["open"],
        }
        for r in rows
    ]


def _scales(stacked: bool = False) -> dict:
    axis = {"stacked": stacked, "grid": {"display": True}, "ticks": {"display": True}, "border": {"display": False}}
    return {"x": {**axis, "grid": {"display": False}}, "y": {**axis, "beginAtZero": True}}


def _options(*, legend: bool, stacked: bool = False, horizontal: bool = False) -> str:
    options = {
        "animation": False,
        "maintainAspectRatio": False,
        "plugins": {
            "legend": {"display": legend, "position": "bottom", "align": "start"},
            "tooltip": {"enabled": True},
        },
        "scales": _scales(stacked),
    }
    if horizontal:
        options["indexAxis"] = "y"
    return json.dumps(options)


def charts(today: date | None = None) -> dict:
    """Everything the dashboard draws: chart JSON for the canvases, and the rows of its tables."""
    today = today or timezone.now().date()
    credit = credit_outstanding_series(today)
    flows = granted_and_cancelled(today)
    campaigns = top_campaigns(today)
    labels = dict(CancelReason.choices)
    flow_datasets = [
        {"label": "Granted", "data": flows["granted"], "backgroundColor": GRANTED_COLOUR, "stack": "granted"}
    ] + [
        {
            "label": f"Cancelled: {labels[reason]}",
            "data": flows["cancelled"][reason],
            "backgroundColor": REASON_COLOURS[reason],
            "stack": "cancelled",
        }
        for reason in CANCEL_REASONS
    ]
    return {
        "credit": credit,
        "credit_chart": json.dumps(
            {
                "labels": [d.isoformat() for d, _ in credit],
                "datasets": [
                    {
                        "label": "Credit outstanding",
                        "data": [float(v) for _, v in credit],
                        "borderColor": GRANTED_COLOUR,
                        "backgroundColor": "transparent",
                        "pointRadius": 0,
                        "tension": 0.2,
                    }
                ],
            }
        ),
        "credit_options": _options(legend=False),
        "flows": flows,
        "flows_chart": json.dumps({"labels": flows["labels"], "datasets": flow_datasets}),
        "flows_options": _options(legend=True, stacked=True),
        "conversion": conversion_progress(),
        "campaigns": campaigns,
        "campaigns_chart": json.dumps(
            {
                "labels": [c["name"] for c in campaigns],
                "datasets": [
                    {
                        "label": "Credit given",
                        "data": [float(c["given"]) for c in campaigns],
                        "backgroundColor": GRANTED_COLOUR,
                    }
                ],
            }
        ),
        "campaigns_options": _options(legend=False, horizontal=True),
        "days": DAYS,
    }


def dashboard_context(request) -> dict:
    """The figures and charts of the bonus dashboard, or nothing for a person who may not view bonuses."""
    if not has_capability(request.user, "bonuses.view"):
        return {"bonus_dashboard": False}
    return {
        "bonus_dashboard": True,
        "stats": selectors.dashboard(),
        "link_campaigns": has_capability(request.user, "campaigns.view"),  # no link to a page the role cannot open
        **charts(),
    }


def dashboard_callback(request, context: dict) -> dict:
    """django-unfold's DASHBOARD_CALLBACK: the admin's home page is the bonus dashboard."""
    context.update(dashboard_context(request))
    return context
