"""The finance report endpoints: credit granted, converted, removed and the cost of bonuses by period (JSON, CSV)."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from accounts.api import ERRORS

from .. import reports
from .base import StaffView

FINANCE_PARAMETERS = [
    OpenApiParameter("start", OpenApiTypes.DATE, description="First day, included (default: 29 days before end)"),
    OpenApiParameter("end", OpenApiTypes.DATE, description="Last day, included (default: today)"),
    OpenApiParameter("period", str, enum=list(reports.PERIODS), default="day"),
    OpenApiParameter("by", str, enum=["", "campaign"], default="", description="campaign: one row per campaign"),
]


def _money():
    return serializers.DecimalField(max_digits=20, decimal_places=2, coerce_to_string=True)


def _finance_row_fields() -> dict:
    return {
        "period": serializers.DateField(help_text="The period's first day"),
        "campaign_id": serializers.IntegerField(allow_null=True),
        "campaign": serializers.CharField(),
        "bonuses": serializers.IntegerField(help_text="Credits posted"),
        **{name: _money() for name in ("granted", "converted", "removed", "corrections", "cost", "net_credit")},
    }


class FinanceReportView(StaffView):
    capabilities = {"GET": "reports.view"}

    @extend_schema(
        parameters=FINANCE_PARAMETERS,
        responses={
            200: inline_serializer(
                "FinanceReport",
                {
                    "start": serializers.DateField(),
                    "end": serializers.DateField(),
                    "period": serializers.CharField(),
                    "by": serializers.CharField(),
                    "time_zone": serializers.CharField(),
                    "rows": inline_serializer("FinanceRow", _finance_row_fields(), many=True),
                    "totals": serializers.DictField(),
                },
            ),
            **ERRORS,
        },
        tags=["reports"],
        description="Credit granted, converted, removed, corrections and the cost of bonuses (MT5 operations done), "
        "by day, ISO week, month or the whole range, optionally per campaign. Money as decimal strings.",
    )
    def get(self, request):
        return Response(reports.finance(reports.finance_query(request.query_params)))


class FinanceExportView(StaffView):
    capabilities = {"GET": "reports.view"}

    @extend_schema(
        parameters=FINANCE_PARAMETERS,
        responses={(200, "text/csv"): OpenApiTypes.BINARY, **ERRORS},
        tags=["reports"],
    )
    def get(self, request):
        query = reports.finance_query(request.query_params)
        response = HttpResponse(reports.finance_csv(query), content_type="text/csv")
        stamp = f"{query.start:%Y%m%d}-{query.end:%Y%m%d}-{query.period}"
        response["Content-Disposition"] = f'attachment; filename="bonus-finance-{stamp}.csv"'
        return response

    def perform_content_negotiation(self, request, force=False):
        # The export answers with a file whatever the Accept header asks for.
        return super().perform_content_negotiation(request, force=True)
