"""Signals: the public list and page, publishing, following, stopping, and the fees with their calculation."""

from __future__ import annotations

from decimal import Decimal

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import ERRORS, ErrorSerializer
from accounts.roles import PUBLIC

from .. import signal_services as signals
from ..choices import NoStopLoss, SizingMode
from ..signal_models import SignalFee, SignalSubscription, TradingSignal
from .common import CONFLICT, volume_field

REFUSED = {422: OpenApiResponse(ErrorSerializer, description="The account's balance is below the minimum deposit")}
MONEY = {"max_digits": 20, "decimal_places": 2, "min_value": Decimal("0"), "max_value": Decimal("1000000000")}
TERMS = ["name", "description", "currency", "min_deposit", "monthly_fee", "performance_fee_pct"]


class SignalFiguresSerializer(serializers.Serializer):
    """Verified from the master's synced history (accounts.analytics); the provider edits none of them."""

    gain_pct = serializers.FloatField(allow_null=True)
    max_drawdown_pct = serializers.FloatField(allow_null=True)
    max_drawdown_equity_pct = serializers.FloatField(allow_null=True)
    months = serializers.IntegerField()
    trades = serializers.IntegerField()
    win_rate_pct = serializers.FloatField(allow_null=True)
    net_profit = serializers.CharField(allow_null=True)
    period_start = serializers.CharField(allow_null=True)
    period_end = serializers.CharField(allow_null=True)
    monthly_returns = serializers.ListField(child=serializers.DictField())
    last_sync_at = serializers.CharField(allow_null=True)


class SignalSerializer(serializers.ModelSerializer):
    provider = serializers.CharField(source="owner.display_name", read_only=True)

    class Meta:
        model = TradingSignal
        fields = ["id", *TERMS, "provider", "listed", "created_at"]
        read_only_fields = fields


class SignalDetailSerializer(SignalSerializer):
    figures = serializers.SerializerMethodField()

    class Meta(SignalSerializer.Meta):
        fields = [*SignalSerializer.Meta.fields, "figures"]
        read_only_fields = fields

    @extend_schema_field(SignalFiguresSerializer)
    def get_figures(self, signal) -> dict:
        return signals.signal_figures(signal)


class SignalWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=80, required=False)
    description = serializers.CharField(max_length=4000, allow_blank=True, required=False)
    min_deposit = serializers.DecimalField(**MONEY, required=False)
    monthly_fee = serializers.DecimalField(**MONEY, required=False)
    performance_fee_pct = serializers.DecimalField(
        max_digits=5, decimal_places=2, min_value=Decimal("0"), max_value=Decimal("100"), required=False
    )
    listed = serializers.BooleanField(required=False)


class SignalPublishSerializer(SignalWriteSerializer):
    master = serializers.UUIDField()
    name = serializers.CharField(max_length=80)


class SignalFollowSerializer(serializers.Serializer):
    account = serializers.UUIDField(help_text="Your account that copies the signal.")
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
    min_volume = volume_field(required=False, allow_null=True)
    max_volume = volume_field(required=False, allow_null=True)
    max_delay_seconds = serializers.IntegerField(min_value=0, max_value=86400, required=False)
    max_slippage_points = serializers.IntegerField(min_value=0, max_value=100000, required=False)
    copy_sltp = serializers.BooleanField(required=False)
    close_only = serializers.BooleanField(required=False)
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


class SignalStopSerializer(serializers.Serializer):
    close_open = serializers.BooleanField(help_text="true: the open copies are closed; false: they are kept.")


class SignalFeeSerializer(serializers.ModelSerializer):
    class Meta:
        model = SignalFee
        fields = [
            "id",
            "period",
            "currency",
            "pnl",
            "cumulative_before",
            "cumulative_after",
            "hwm_before",
            "hwm_after",
            "chargeable_gain",
            "performance_fee_pct",
            "performance_fee",
            "monthly_fee",
            "total",
            "status",
            "charge_reference",
            "charge_error",
            "charged_at",
        ]
        read_only_fields = fields


class SignalSubscriptionSerializer(serializers.ModelSerializer):
    signal_name = serializers.CharField(source="signal.name", read_only=True)
    account_name = serializers.CharField(source="account.__str__", read_only=True)
    fees = SignalFeeSerializer(many=True, read_only=True)

    class Meta:
        model = SignalSubscription
        fields = [
            "id",
            "signal",
            "signal_name",
            "account",
            "account_name",
            "link",
            "status",
            "currency",
            "monthly_fee",
            "performance_fee_pct",
            "cumulative_pnl",
            "high_water_mark",
            "started_at",
            "stopped_at",
            "stop_mode",
            "fees",
        ]
        read_only_fields = fields


class SignalEarningsSerializer(serializers.Serializer):
    currency = serializers.CharField()
    charged = serializers.DecimalField(max_digits=20, decimal_places=2)
    pending = serializers.DecimalField(max_digits=20, decimal_places=2)


class SignalFollowersSerializer(serializers.Serializer):
    earnings = SignalEarningsSerializer()
    followers = SignalSubscriptionSerializer(many=True)


# --- Views ---------------------------------------------------------------------------------------------------


@extend_schema(tags=["signals"])
class SignalListView(APIView):
    """The listed signals (no login needed); POST publishes one of your master accounts."""

    capabilities = {"GET": PUBLIC, "POST": "copy.manage"}

    @extend_schema(responses={200: SignalSerializer(many=True), **ERRORS})
    def get(self, request):
        return Response(SignalSerializer(signals.signals_listed().order_by("-created_at")[:500], many=True).data)

    @extend_schema(request=SignalPublishSerializer, responses={201: SignalDetailSerializer, **ERRORS, **CONFLICT})
    def post(self, request):
        data = SignalPublishSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        signal = signals.signal_publish(user=request.user, master_id=values.pop("master"), **values)
        return Response(SignalDetailSerializer(signal).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["signals"])
class SignalDetailView(APIView):
    """A listed signal's public page: terms and verified figures (no login needed). PATCH: its provider edits the
    terms (new followers get them; followers keep theirs)."""

    capabilities = {"GET": PUBLIC, "PATCH": "copy.manage"}

    @extend_schema(responses={200: SignalDetailSerializer, **ERRORS})
    def get(self, request, pk: int):
        signal = signals.signal_visible(request.user, pk)
        if signal is None:
            raise Http404
        return Response(SignalDetailSerializer(signal).data)

    @extend_schema(request=SignalWriteSerializer, responses={200: SignalDetailSerializer, **ERRORS})
    def patch(self, request, pk: int):
        signal = get_object_or_404(signals.signals_of(request.user, "copytrading.change_tradingsignal"), pk=pk)
        data = SignalWriteSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        signal = signals.signal_update(user=request.user, signal=signal, **data.validated_data)
        return Response(SignalDetailSerializer(signal).data)


@extend_schema(tags=["signals"])
class SignalFollowersView(APIView):
    """The provider's view of a signal: every follower with their fees and their calculation, and the earnings."""

    capabilities = "copy.view"

    @extend_schema(responses={200: SignalFollowersSerializer, **ERRORS})
    def get(self, request, pk: int):
        signal = get_object_or_404(signals.signals_of(request.user), pk=pk)
        followers = signals.followers_of(signal).prefetch_related("fees")
        payload = {"earnings": signals.earnings_of(signal), "followers": followers}
        return Response(SignalFollowersSerializer(payload).data)


@extend_schema(tags=["signals"])
class SignalSubscribeView(APIView):
    """Follow a signal with one of your accounts: the copy link is made with the sizing and guards given."""

    capabilities = "copy.manage"

    @extend_schema(
        request=SignalFollowSerializer, responses={201: SignalSubscriptionSerializer, **ERRORS, **CONFLICT, **REFUSED}
    )
    def post(self, request, pk: int):
        data = SignalFollowSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        subscription = signals.signal_subscribe(
            user=request.user, signal_id=pk, account_id=values.pop("account"), **values
        )
        return Response(SignalSubscriptionSerializer(subscription).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["signals"])
class SubscriptionListView(APIView):
    """The signals you follow (and followed), each with its fees and their calculation."""

    capabilities = "copy.view"

    @extend_schema(responses={200: SignalSubscriptionSerializer(many=True), **ERRORS})
    def get(self, request):
        follows = signals.follows_of(request.user).prefetch_related("fees")[:500]
        return Response(SignalSubscriptionSerializer(follows, many=True).data)


@extend_schema(tags=["signals"])
class SubscriptionDetailView(APIView):
    capabilities = "copy.view"

    @extend_schema(responses={200: SignalSubscriptionSerializer, **ERRORS})
    def get(self, request, pk: int):
        return Response(SignalSubscriptionSerializer(get_object_or_404(signals.follows_of(request.user), pk=pk)).data)


@extend_schema(tags=["signals"])
class SubscriptionStopView(APIView):
    """Stop following now; ``close_open`` chooses whether the open copies are closed or kept."""

    capabilities = "copy.manage"

    @extend_schema(request=SignalStopSerializer, responses={200: SignalSubscriptionSerializer, **ERRORS})
    def post(self, request, pk: int):
        follows = signals.follows_of(request.user, "copytrading.change_signalsubscription")
        subscription = get_object_or_404(follows, pk=pk)
        data = SignalStopSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        subscription = signals.signal_stop(
            user=request.user, subscription=subscription, close_open=data.validated_data["close_open"]
        )
        return Response(SignalSubscriptionSerializer(subscription).data)
