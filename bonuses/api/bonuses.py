"""Bonus endpoints: list, read, eligibility check, manual assignment, cancel, force-convert, leverage override."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from accounts.api import ERRORS, MAX_LOGIN
from config.errors import ServiceError

from ..choices import BonusStatus, BonusType
from ..models import Bonus, Campaign, GrantApproval
from ..services.assignment import eligibility_check
from ..services.ending import bonus_cancel, bonus_force_convert, bonus_override_leverage
from ..services.manual import bonus_assign_manual
from .base import CONFLICT, UNAVAILABLE, StaffView, gateway_call, money_field, paginate


class BonusSerializer(serializers.ModelSerializer):
    campaign_name = serializers.CharField(source="campaign.name", read_only=True)
    lot_progress = serializers.DecimalField(max_digits=7, decimal_places=2, read_only=True)

    class Meta:
        model = Bonus
        fields = [
            "id",
            "campaign",
            "campaign_name",
            "login",
            "bonus_type",
            "trigger",
            "status",
            "deposit_amount",
            "deposit_deal",
            "amount",
            "credit_outstanding",
            "converted_amount",
            "removed_amount",
            "lots_required",
            "lots_traded",
            "lot_progress",
            "original_leverage",
            "applied_leverage",
            "overridden_checks",
            "promo_code",
            "expires_at",
            "cancel_reason",
            "created_at",
            "ended_at",
        ]
        read_only_fields = fields


class ApprovalSerializer(serializers.ModelSerializer):
    """A grant above BONUS_APPROVAL_THRESHOLD waiting for (or decided by) a second staff member."""

    requested_by = serializers.SlugRelatedField(slug_field="email", read_only=True)
    decided_by = serializers.SlugRelatedField(slug_field="email", read_only=True)

    class Meta:
        model = GrantApproval
        fields = [
            "id",
            "campaign",
            "login",
            "status",
            "amount",
            "deposit_amount",
            "override",
            "overridden_checks",
            "requested_by",
            "requested_at",
            "decided_by",
            "decided_at",
            "note",
            "bonus",
        ]
        read_only_fields = fields


class FailureSerializer(serializers.Serializer):
    check = serializers.CharField()
    message = serializers.CharField()
    overridable = serializers.BooleanField()


class EligibilityRequest(serializers.Serializer):
    login = serializers.IntegerField(min_value=1, max_value=MAX_LOGIN)
    campaign_id = serializers.IntegerField(min_value=1, max_value=MAX_LOGIN)
    deposit_amount = money_field(required=False, allow_null=True)


class AssignRequest(EligibilityRequest):
    amount = money_field(required=False, allow_null=True)
    override_eligibility = serializers.BooleanField(default=False)


class EligibilityResponse(serializers.Serializer):
    eligible = serializers.BooleanField()
    can_override = serializers.BooleanField()
    failures = FailureSerializer(many=True)


class LeverageRequest(serializers.Serializer):
    leverage = serializers.IntegerField(min_value=1, max_value=1000)


class BonusListView(StaffView):
    capabilities = {"GET": "bonuses.view"}

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=BonusStatus.values),
            OpenApiParameter("bonus_type", str, enum=BonusType.values),
            OpenApiParameter("login", int),
            OpenApiParameter("campaign", int),
        ],
        responses={200: BonusSerializer(many=True), **ERRORS},
        tags=["bonuses"],
    )
    def get(self, request):
        rows = self.visible("bonuses.view_bonus", Bonus.objects.select_related("campaign"))
        params = request.query_params
        if params.get("status") in BonusStatus.values:
            rows = rows.filter(status=params["status"])
        if params.get("bonus_type") in BonusType.values:
            rows = rows.filter(bonus_type=params["bonus_type"])
        for name in ("login", "campaign"):
            value = params.get(name, "")
            if value.isdigit() and int(value) <= MAX_LOGIN:
                rows = rows.filter(**{name: int(value)})
            elif value:
                raise ServiceError(f"{name} must be a positive integer.", code="invalid_filter")
        return paginate(self, rows, BonusSerializer)


class BonusDetailView(StaffView):
    capabilities = {"GET": "bonuses.view"}

    def _bonus(self, pk: int) -> Bonus:
        return get_object_or_404(self.visible("bonuses.view_bonus", Bonus.objects.select_related("campaign")), pk=pk)

    @extend_schema(responses={200: BonusSerializer, **ERRORS}, tags=["bonuses"])
    def get(self, request, pk: int):
        return Response(BonusSerializer(self._bonus(pk)).data)


class EligibilityView(StaffView):
    capabilities = {"POST": "bonuses.assign"}

    @extend_schema(
        request=EligibilityRequest, responses={200: EligibilityResponse, **ERRORS, **UNAVAILABLE}, tags=["bonuses"]
    )
    def post(self, request):
        data = EligibilityRequest(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        campaign = get_object_or_404(Campaign, pk=v["campaign_id"])
        failures = gateway_call(eligibility_check, campaign=campaign, login=v["login"], deposit=v.get("deposit_amount"))
        return Response(
            {
                "eligible": not failures,
                "can_override": bool(failures) and all(f.overridable for f in failures),
                "failures": [f.as_dict() for f in failures],
            }
        )


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=True,
    description="One value per assignment (a UUID, 1 to 64 of A-Z a-z 0-9 . _ : -). A repeat with the same key and "
    "body returns the first bonus (200) without posting again; the same key with another body is a 409.",
)


class AssignView(StaffView):
    """Manual assignment, once per ``Idempotency-Key``: 409 with every failure unless ``override_eligibility``
    and all are overridable; 400 naming the cap when the amount is above the campaign's rules or the role's limit."""

    capabilities = {"POST": "bonuses.assign"}

    @extend_schema(
        request=AssignRequest,
        parameters=[IDEMPOTENCY_KEY],
        responses={
            201: BonusSerializer,
            200: BonusSerializer,
            202: OpenApiResponse(
                ApprovalSerializer,
                description="Above the approval threshold: waits for a second "
                "staff member (maker-checker); the same key returns this approval",
            ),
            **ERRORS,
            **CONFLICT,
            **UNAVAILABLE,
        },
        tags=["bonuses"],
    )
    def post(self, request):
        key = request.headers.get("Idempotency-Key", "").strip()
        if not key:
            raise ServiceError(
                "Send an Idempotency-Key header (e.g. a new UUID per assignment) so a retried "
                "request never gives a second bonus.",
                code="idempotency_key_required",
            )
        data = AssignRequest(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        campaign = get_object_or_404(Campaign, pk=v["campaign_id"])
        result = gateway_call(
            bonus_assign_manual,
            actor=request.user,
            campaign=campaign,
            login=v["login"],
            deposit=v.get("deposit_amount"),
            amount=v.get("amount"),
            override=v["override_eligibility"],
            idempotency_key=key,
        )
        if result.approval is not None:
            return Response(ApprovalSerializer(result.approval).data, status=status.HTTP_202_ACCEPTED)
        code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        return Response(BonusSerializer(result.bonus).data, status=code)


class BonusCancelView(BonusDetailView):
    capabilities = {"POST": "bonuses.manage"}

    @extend_schema(
        request=None, responses={200: BonusSerializer, **ERRORS, **CONFLICT, **UNAVAILABLE}, tags=["bonuses"]
    )
    def post(self, request, pk: int):
        bonus = gateway_call(bonus_cancel, actor=request.user, bonus=self._bonus(pk))
        return Response(BonusSerializer(bonus).data)


class BonusForceConvertView(BonusDetailView):
    capabilities = {"POST": "bonuses.manage"}

    @extend_schema(
        request=None, responses={200: BonusSerializer, **ERRORS, **CONFLICT, **UNAVAILABLE}, tags=["bonuses"]
    )
    def post(self, request, pk: int):
        bonus = gateway_call(bonus_force_convert, actor=request.user, bonus=self._bonus(pk))
        return Response(BonusSerializer(bonus).data)


class BonusOverrideLeverageView(BonusDetailView):
    capabilities = {"POST": "bonuses.manage"}

    @extend_schema(
        request=LeverageRequest, responses={200: BonusSerializer, **ERRORS, **CONFLICT, **UNAVAILABLE}, tags=["bonuses"]
    )
    def post(self, request, pk: int):
        bonus = self._bonus(pk)
        data = LeverageRequest(data=request.data)
        data.is_valid(raise_exception=True)
        bonus = gateway_call(
            bonus_override_leverage, actor=request.user, bonus=bonus, leverage=data.validated_data["leverage"]
        )
        return Response(BonusSerializer(bonus).data)
