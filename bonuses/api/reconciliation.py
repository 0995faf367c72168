"""Reconciliation endpoints: runs (list, run now) and the mismatches with MT5's credit deals (list, review)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from accounts.api import ERRORS, MAX_LOGIN, ErrorSerializer
from config.errors import ServiceError

from .. import reconciliation
from ..reconciliation_models import (
    MismatchKind,
    MismatchStatus,
    ReconciliationMismatch,
    ReconciliationRun,
    RunTrigger,
)
from ..tasks import reconcile_queue
from .base import StaffView, paginate


class MismatchSerializer(serializers.ModelSerializer):
    campaign = serializers.IntegerField(source="bonus.campaign_id", read_only=True, allow_null=True)

    class Meta:
        model = ReconciliationMismatch
        fields = [
            "id",
            "key",
            "kind",
            "status",
            "login",
            "operation",
            "bonus",
            "campaign",
            "expected_amount",
            "found_amount",
            "deal_tickets",
            "deal_time",
            "message",
            "first_seen_at",
            "last_seen_at",
            "cleared_at",
            "reviewed_at",
            "review_note",
        ]
        read_only_fields = fields


class RunSerializer(serializers.ModelSerializer):
    class Meta:
        model = ReconciliationRun
        fields = [
            "id",
            "trigger",
            "status",
            "actor_label",
            "logins",
            "created_at",
            "started_at",
            "finished_at",
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
        read_only_fields = fields


class RunRequest(serializers.Serializer):
    logins = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_LOGIN),
        max_length=1000,
        required=False,
        help_text="Only these MT5 logins; empty: every login with a bonus",
    )


class ReviewRequest(serializers.Serializer):
    note = serializers.CharField(max_length=reconciliation.MAX_NOTE, trim_whitespace=True)


class MismatchListView(StaffView):
    capabilities = {"GET": "reconciliation.view"}

    @extend_schema(
        parameters=[
            OpenApiParameter("kind", str, enum=MismatchKind.values),
            OpenApiParameter("status", str, enum=MismatchStatus.values),
            OpenApiParameter("login", int),
            OpenApiParameter("campaign", int),
        ],
        responses={200: MismatchSerializer(many=True), **ERRORS},
        tags=["reconciliation"],
    )
    def get(self, request):
        rows = self.visible(
            "bonuses.view_reconciliationmismatch", ReconciliationMismatch.objects.select_related("bonus")
        )
        params = request.query_params
        for name, field in (("login", "login"), ("campaign", "bonus__campaign_id")):
            value = params.get(name, "")
            if value.isdigit() and int(value) <= MAX_LOGIN:
                rows = rows.filter(**{field: int(value)})
            elif value:
                raise ServiceError(f"{name} must be a positive integer.", code="invalid_filter")
        for name, values in (("kind", MismatchKind.values), ("status", MismatchStatus.values)):
            value = params.get(name, "")
            if value and value not in values:
                raise ServiceError(f"{name} must be one of {', '.join(values)}.", code="invalid_filter")
            if value:
                rows = rows.filter(**{name: value})
        return paginate(self, rows, MismatchSerializer)


class RunListView(StaffView):
    capabilities = {"GET": "reconciliation.view", "POST": "reconciliation.manage"}

    @extend_schema(responses={200: RunSerializer(many=True), **ERRORS}, tags=["reconciliation"])
    def get(self, request):
        return paginate(
            self, self.visible("bonuses.view_reconciliationrun", ReconciliationRun.objects.all()), RunSerializer
        )

    @extend_schema(
        request=RunRequest,
        responses={202: RunSerializer, **ERRORS},
        tags=["reconciliation"],
        description="Queue a reconciliation now (the nightly one runs by itself). The run's figures fill in when "
        "it is done: GET /api/reconciliation/runs.",
    )
    def post(self, request):
        data = RunRequest(data=request.data)
        data.is_valid(raise_exception=True)
        run = reconciliation.reconciliation_request(
            actor=request.user, trigger=RunTrigger.API, logins=data.validated_data.get("logins", [])
        )
        reconcile_queue(run)
        return Response(RunSerializer(run).data, status=202)


class MismatchReviewView(StaffView):
    capabilities = {"POST": "reconciliation.manage"}

    @extend_schema(
        request=ReviewRequest,
        responses={
            200: MismatchSerializer,
            **ERRORS,
            409: OpenApiResponse(ErrorSerializer, description="Already reviewed"),
        },
        tags=["reconciliation"],
    )
    def post(self, request, pk: int):
        mismatch = (
            self.visible("bonuses.view_reconciliationmismatch", ReconciliationMismatch.objects.all())
            .filter(pk=pk)
            .first()
        )
        if mismatch is None:
            raise ServiceError("No such mismatch.", code="not_found", status_code=404)
        data = ReviewRequest(data=request.data)
        data.is_valid(raise_exception=True)
        mismatch = reconciliation.mismatch_review(
            actor=request.user, mismatch=mismatch, note=data.validated_data["note"]
        )
        return Response(MismatchSerializer(mismatch).data)
