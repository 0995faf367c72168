"""Report, export and audit endpoints."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from accounts.api import ERRORS, MAX_LOGIN
from config.errors import ServiceError

from .. import reports
from ..choices import AuditAction
from ..models import AuditLog
from .base import StaffView, paginate


class AuditSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditLog
        fields = [
            "id",
            "created_at",
            "actor_label",
            "action",
            "login",
            "bonus",
            "campaign",
            "before",
            "after",
            "message",
        ]
        read_only_fields = fields


class _ReportView(StaffView):
    capabilities = {"GET": "reports.view"}
    report = ""

    @extend_schema(responses={200: OpenApiTypes.OBJECT, **ERRORS}, tags=["reports"])
    def get(self, request):
        return Response({"rows": reports.REPORTS[self.report]()})


class SummaryReportView(_ReportView):
    report = "summary"


class ConversionsReportView(_ReportView):
    report = "conversions"


class CancellationsReportView(_ReportView):
    report = "cancellations"


class LeverageReportView(_ReportView):
    report = "leverage"


class ExportView(StaffView):
    capabilities = {"GET": "reports.view"}

    @extend_schema(
        parameters=[
            OpenApiParameter("report", str, enum=list(reports.REPORTS), default="summary"),
            OpenApiParameter("format", str, enum=["csv", "xlsx"], default="csv"),
        ],
        responses={(200, "text/csv"): OpenApiTypes.BINARY, **ERRORS},
        tags=["reports"],
    )
    def get(self, request):
        name = request.query_params.get("report", "summary")
        kind = request.query_params.get("format", "csv")
        if name not in reports.REPORTS or kind not in ("csv", "xlsx"):
            raise ServiceError(
                "report must be one of summary, conversions, cancellations, leverage; format csv or xlsx.",
                code="invalid_export",
            )
        body, content_type = reports.export(name, kind)
        response = HttpResponse(body, content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="bonus-{name}.{kind}"'
        return response

    def perform_content_negotiation(self, request, force=False):
        # The export answers with a file whatever the Accept header asks for.
        return super().perform_content_negotiation(request, force=True)


class AuditListView(StaffView):
    capabilities = {"GET": "audit.view"}

    @extend_schema(
        parameters=[
            OpenApiParameter("login", int),
            OpenApiParameter("bonus", int),
            OpenApiParameter("campaign", int),
            OpenApiParameter("action", str, enum=AuditAction.values),
        ],
        responses={200: AuditSerializer(many=True), **ERRORS},
        tags=["audit"],
    )
    def get(self, request):
        rows = self.visible("bonuses.view_auditlog", AuditLog.objects.all())
        params = request.query_params
        for name in ("login", "bonus", "campaign"):
            value = params.get(name, "")
            if value.isdigit() and int(value) <= MAX_LOGIN:
                rows = rows.filter(**{name: int(value)})
            elif value:
                raise ServiceError(f"{name} must be a positive integer.", code="invalid_filter")
        if params.get("action") in AuditAction.values:
            rows = rows.filter(action=params["action"])
        return paginate(self, rows, AuditSerializer)
