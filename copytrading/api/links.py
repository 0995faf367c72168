"""Copy links and the copy history (copied positions, skipped and failed copies)."""

from __future__ import annotations

from decimal import Decimal

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import ERRORS
from accounts.permissions import restrict

from .. import services
from ..choices import NoStopLoss, SizingMode
from ..models import CopiedPosition, CopyEvent, CopyLink
from .common import (
    ACCOUNT_FILTER,
    CONFLICT,
    LINK_FILTER,
    filter_int,
    filter_uuid,
    magics_field,
    symbols_field,
    volume_field,
)

# --- Links -------------------------------------------------------------------------------


class CopyLinkSerializer(serializers.ModelSerializer):
    master_name = serializers.CharField(source="master.__str__", read_only=True)
    slave_name = serializers.CharField(source="slave.__str__", read_only=True)
    equity_stop_level = serializers.DecimalField(
        max_digits=20,
        decimal_places=2,
        read_only=True,
        allow_null=True,
        help_text="The slave equity at or below which the link stops (the higher of the amount and the %).",
    )

    class Meta:
        model = CopyLink
        fields = [
            "id",
            "master",
            "slave",
            "master_name",
            "slave_name",
            *services.LINK_FIELDS,
            "start_equity",
            "equity_stop_level",
            "stop_reason",
            "stopped_at",
            "refusal_code",
            "refusal_reason",
            "refused_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class CopyLinkWriteSerializer(serializers.Serializer):
    active = serializers.BooleanField(required=False)
    priority = serializers.IntegerField(min_value=0, max_value=32767, required=False)
    sizing_mode = serializers.ChoiceField(choices=SizingMode.choices, required=False)
    multiplier = serializers.DecimalField(
        max_digits=12, decimal_places=4, min_value=Decimal("0.0001"), max_value=Decimal("10000"), required=False
    )
    fixed_volume = volume_field(required=False)
    risk_percent = serializers.DecimalField(
        max_digits=6, decimal_places=3, min_value=Decimal("0.001"), max_value=Decimal("100"), required=False
    )
    no_sl = serializers.ChoiceField(choices=NoStopLoss.choices, required=False)
    default_sl_points = serializers.IntegerField(min_value=0, max_value=10**9, required=False)
    contract_size_aware = serializers.BooleanField(required=False)
    min_volume = volume_field(required=False, allow_null=True)
    max_volume = volume_field(required=False, allow_null=True)
    symbol_overrides = serializers.DictField(
        child=serializers.CharField(max_length=64, allow_blank=True), required=False
    )
    symbols_include = symbols_field(required=False)
    symbols_exclude = symbols_field(required=False)
    magics_include = magics_field(required=False)
    magics_exclude = magics_field(required=False)
    reverse = serializers.BooleanField(required=False)
    copy_sltp = serializers.BooleanField(required=False)
    copy_pending = serializers.BooleanField(required=False)
    close_only = serializers.BooleanField(required=False)
    max_delay_seconds = serializers.IntegerField(min_value=0, max_value=86400, required=False)
    max_slippage_points = serializers.IntegerField(min_value=0, max_value=100000, required=False)
    skip_below_min_volume = serializers.BooleanField(required=False)
    equity_stop = serializers.DecimalField(
        max_digits=20, decimal_places=2, min_value=Decimal("0.01"), required=False, allow_null=True
    )
    equity_stop_percent = serializers.DecimalField(
        max_digits=6,
        decimal_places=3,
        min_value=Decimal("0.001"),
        max_value=Decimal("100"),
        required=False,
        allow_null=True,
    )
    equity_stop_close = serializers.BooleanField(required=False)

    def validate_symbol_overrides(self, value):
        if len(value) > 500 or any(len(k) > 64 for k in value):
            raise serializers.ValidationError("At most 500 overrides of symbols up to 64 characters.")
        return value


class CopyLinkCreateSerializer(CopyLinkWriteSerializer):
    master = serializers.UUIDField()
    slave = serializers.UUIDField()


def links_visible_to(user):
    return restrict(
        user, "copytrading.view_copylink", CopyLink.objects.select_related("master", "slave"), owner_path="slave__owner"
    )


def link_for_change(user, pk) -> CopyLink:
    return get_object_or_404(
        restrict(user, "copytrading.change_copylink", CopyLink.objects.all(), owner_path="slave__owner"), pk=pk
    )


@extend_schema(tags=["copy trading"])
class CopyLinkListView(APIView):
    """Copy links where one of the user's accounts is the slave (staff roles see all)."""

    capabilities = {"GET": "copy.view", "POST": "copy.manage"}

    @extend_schema(responses={200: CopyLinkSerializer(many=True), **ERRORS})
    def get(self, request):
        return Response(CopyLinkSerializer(links_visible_to(request.user).order_by("id"), many=True).data)

    @extend_schema(request=CopyLinkCreateSerializer, responses={201: CopyLinkSerializer, **ERRORS, **CONFLICT})
    def post(self, request):
        data = CopyLinkCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        link = services.copy_link_create(
            user=request.user, master_id=values.pop("master"), slave_id=values.pop("slave"), **values
        )
        return Response(CopyLinkSerializer(link).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["copy trading"])
class CopyLinkDetailView(APIView):
    capabilities = {"GET": "copy.view", "PATCH": "copy.manage", "DELETE": "copy.manage"}

    @extend_schema(responses={200: CopyLinkSerializer, **ERRORS})
    def get(self, request, pk: int):
        return Response(CopyLinkSerializer(get_object_or_404(links_visible_to(request.user), pk=pk)).data)

    @extend_schema(request=CopyLinkWriteSerializer, responses={200: CopyLinkSerializer, **ERRORS})
    def patch(self, request, pk: int):
        link = link_for_change(request.user, pk)
        data = CopyLinkWriteSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        return Response(CopyLinkSerializer(services.copy_link_update(link=link, **data.validated_data)).data)

    @extend_schema(responses={204: None, **ERRORS})
    def delete(self, request, pk: int):
        services.copy_link_delete(link=link_for_change(request.user, pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- History -----------------------------------------------------------------------------


class CopyEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = CopyEvent
        fields = [
            "id",
            "link",
            "master_account",
            "slave_account",
            "intent",
            "status",
            "reason_code",
            "reason",
            "master_ticket",
            "symbol",
            "volume",
            "created_at",
        ]
        read_only_fields = fields


class CopiedPositionSerializer(serializers.ModelSerializer):
    class Meta:
        model = CopiedPosition
        fields = [
            "id",
            "link",
            "slave_account",
            "kind",
            "master_ticket",
            "master_symbol",
            "master_volume",
            "slave_ticket",
            "slave_symbol",
            "slave_side",
            "slave_volume",
            "status",
            "copy_id",
            "opened_at",
            "closed_at",
        ]
        read_only_fields = fields


@extend_schema(tags=["copy trading"], parameters=[ACCOUNT_FILTER, LINK_FILTER])
class CopyEventListView(ListAPIView):
    """Copies not sent (with the reason) or refused by the slave, newest first."""

    serializer_class = CopyEventSerializer
    capabilities = "copy.view"

    def get_queryset(self):
        queryset = restrict(
            self.request.user, "copytrading.view_copyevent", CopyEvent.objects.all(), owner_path="slave_account__owner"
        )
        if (account := filter_uuid(self.request, "account")) is not None:
            queryset = queryset.filter(slave_account_id=account)
        if (link := filter_int(self.request, "link")) is not None:
            queryset = queryset.filter(link_id=link)
        return queryset.order_by("-created_at", "-id")


@extend_schema(tags=["copy trading"], parameters=[ACCOUNT_FILTER, LINK_FILTER])
class CopiedPositionListView(ListAPIView):
    """Slave positions linked to master positions (the copy history)."""

    serializer_class = CopiedPositionSerializer
    capabilities = "copy.view"

    def get_queryset(self):
        queryset = restrict(
            self.request.user,
            "copytrading.view_copiedposition",
            CopiedPosition.objects.all(),
            owner_path="slave_account__owner",
        )
        if (account := filter_uuid(self.request, "account")) is not None:
            queryset = queryset.filter(slave_account_id=account)
        if (link := filter_int(self.request, "link")) is not None:
            queryset = queryset.filter(link_id=link)
        return queryset.order_by("-opened_at", "-id")
