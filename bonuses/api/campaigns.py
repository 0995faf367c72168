"""Campaign endpoints: list, create, read, edit, duplicate, status steps."""

from __future__ import annotations

from decimal import Decimal

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from accounts.api import ERRORS

from .. import selectors
from ..choices import CAMPAIGN_TRIGGERS, BonusType, CampaignStatus
from ..models import Campaign
from ..services.campaigns import (
    CAMPAIGN_FIELDS,
    campaign_create,
    campaign_duplicate,
    campaign_set_status,
    campaign_update,
)
from .base import CONFLICT, MONEY_MAX, StaffView, money_field, paginate, strings_field


class CampaignSerializer(serializers.ModelSerializer):
    bonus_percent = serializers.DecimalField(
        max_digits=7, decimal_places=2, min_value=Decimal("0"), max_value=Decimal("1000")
    )
    max_bonus_amount = money_field(required=False, allow_null=True)
    fixed_amount = money_field(required=False, allow_null=True)
    budget_total = money_field(required=False, allow_null=True)
    client_credit_cap = money_field(required=False, allow_null=True)
    min_deposit = money_field(required=False)
    max_deposit = money_field(required=False, allow_null=True)
    target_groups = strings_field()
    target_countries = strings_field()
    agent_codes = strings_field()
    promo_codes = strings_field()
    counting_symbols = strings_field()
    triggers = serializers.ListField(
        child=serializers.ChoiceField(choices=CAMPAIGN_TRIGGERS), required=False, max_length=4
    )
    expiry_days = serializers.IntegerField(min_value=1, max_value=3650, required=False, allow_null=True)
    max_concurrent = serializers.IntegerField(min_value=0, max_value=1000, required=False)
    lots_per_unit = serializers.DecimalField(
        max_digits=14, decimal_places=4, min_value=Decimal("0"), max_value=Decimal("1000000"), required=False
    )
    unit_amount = serializers.DecimalField(
        max_digits=20, decimal_places=2, min_value=Decimal("0.01"), max_value=MONEY_MAX, required=False
    )
    min_lot = serializers.DecimalField(
        max_digits=14, decimal_places=4, min_value=Decimal("0"), max_value=Decimal("100000"), required=False
    )
    bonuses_active = serializers.IntegerField(read_only=True, required=False)

    class Meta:
        model = Campaign
        fields = [
            "id",
            "name",
            "description",
            "bonus_type",
            "status",
            *CAMPAIGN_FIELDS[3:],
            "created_at",
            "updated_at",
            "bonuses_active",
        ]
        read_only_fields = ["id", "status", "created_at", "updated_at"]


class CampaignStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=CampaignStatus.choices)


class CampaignListView(StaffView):
    """Campaigns (GET: bonuses.view_campaign) and campaign creation (POST: bonuses.add_campaign)."""

    capabilities = {"GET": "campaigns.view", "POST": "campaigns.manage"}

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=CampaignStatus.values),
            OpenApiParameter("bonus_type", str, enum=BonusType.values),
        ],
        responses={200: CampaignSerializer(many=True), **ERRORS},
        tags=["campaigns"],
    )
    def get(self, request):
        rows = self.visible("bonuses.view_campaign", selectors.campaigns_with_counts())
        wanted = request.query_params.get("status")
        if wanted in CampaignStatus.values:
            rows = rows.filter(status=wanted)
        kind = request.query_params.get("bonus_type")
        if kind in BonusType.values:
            rows = rows.filter(bonus_type=kind)
        return paginate(self, rows, CampaignSerializer)

    @extend_schema(request=CampaignSerializer, responses={201: CampaignSerializer, **ERRORS}, tags=["campaigns"])
    def post(self, request):
        data = CampaignSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        campaign = campaign_create(actor=request.user, **data.validated_data)
        return Response(CampaignSerializer(campaign).data, status=status.HTTP_201_CREATED)


class CampaignDetailView(StaffView):
    capabilities = {"GET": "campaigns.view", "PUT": "campaigns.manage"}

    def _campaign(self, pk: int) -> Campaign:
        return get_object_or_404(self.visible("bonuses.view_campaign", Campaign.objects.all()), pk=pk)

    @extend_schema(responses={200: CampaignSerializer, **ERRORS}, tags=["campaigns"])
    def get(self, request, pk: int):
        return Response(CampaignSerializer(self._campaign(pk)).data)

    @extend_schema(
        request=CampaignSerializer, responses={200: CampaignSerializer, **ERRORS, **CONFLICT}, tags=["campaigns"]
    )
    def put(self, request, pk: int):
        campaign = self._campaign(pk)
        data = CampaignSerializer(campaign, data=request.data)
        data.is_valid(raise_exception=True)
        campaign = campaign_update(actor=request.user, campaign=campaign, **data.validated_data)
        return Response(CampaignSerializer(campaign).data)


class CampaignDuplicateView(CampaignDetailView):
    capabilities = {"POST": "campaigns.manage"}

    @extend_schema(request=None, responses={201: CampaignSerializer, **ERRORS}, tags=["campaigns"])
    def post(self, request, pk: int):
        copy = campaign_duplicate(actor=request.user, campaign=self._campaign(pk))
        return Response(CampaignSerializer(copy).data, status=status.HTTP_201_CREATED)


class CampaignStatusView(CampaignDetailView):
    capabilities = {"PATCH": "campaigns.manage"}

    @extend_schema(
        request=CampaignStatusSerializer, responses={200: CampaignSerializer, **ERRORS, **CONFLICT}, tags=["campaigns"]
    )
    def patch(self, request, pk: int):
        campaign = self._campaign(pk)
        data = CampaignStatusSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        campaign = campaign_set_status(actor=request.user, campaign=campaign, status=data.validated_data["status"])
        return Response(CampaignSerializer(campaign).data)
