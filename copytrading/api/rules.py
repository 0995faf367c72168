"""Rules, rule hits and each account's copy mode."""

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
from ..choices import AccountMode, RuleAction, RuleKind
from ..models import AccountCopyState, Rule, RuleHit
from .common import (
    ACCOUNT_FILTER,
    filter_uuid,
    symbols_field,
)

# --- Rules -------------------------------------------------------------------------------


class RuleSerializer(serializers.ModelSerializer):
    class Meta:
        model = Rule
        fields = ["id", "account", *services.RULE_FIELDS, "triggered", "created_at"]
        read_only_fields = fields


class RuleWriteSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=RuleKind.choices, required=False)
    action = serializers.ChoiceField(choices=RuleAction.choices, required=False)
    active = serializers.BooleanField(required=False)
    threshold = serializers.DecimalField(
        max_digits=20,
        decimal_places=2,
        min_value=Decimal("0"),
        max_value=Decimal("1e15"),
        required=False,
        allow_null=True,
    )
    threshold_is_percent = serializers.BooleanField(required=False)
    max_open_trades = serializers.IntegerField(min_value=0, max_value=100000, required=False, allow_null=True)
    symbols_allow = symbols_field(required=False)
    symbols_deny = symbols_field(required=False)
    hours_start = serializers.TimeField(required=False, allow_null=True)
    hours_end = serializers.TimeField(required=False, allow_null=True)
    timezone = serializers.CharField(max_length=64, required=False)


class RuleCreateSerializer(RuleWriteSerializer):
    account = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=RuleKind.choices)


def rules_visible_to(user):
    return restrict(user, "copytrading.view_rule", Rule.objects.all(), owner_path="account__owner")


@extend_schema(tags=["copy trading"])
class RuleListView(APIView):
    capabilities = {"GET": "copy.view", "POST": "copy.manage"}

    @extend_schema(responses={200: RuleSerializer(many=True), **ERRORS})
    def get(self, request):
        return Response(RuleSerializer(rules_visible_to(request.user).order_by("id"), many=True).data)

    @extend_schema(request=RuleCreateSerializer, responses={201: RuleSerializer, **ERRORS})
    def post(self, request):
        data = RuleCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        rule = services.rule_create(user=request.user, account_id=values.pop("account"), **values)
        return Response(RuleSerializer(rule).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["copy trading"])
class RuleDetailView(APIView):
    capabilities = {"GET": "copy.view", "PATCH": "copy.manage", "DELETE": "copy.manage"}

    def _rule(self, request, pk):
        return get_object_or_404(
            restrict(request.user, "copytrading.change_rule", Rule.objects.all(), owner_path="account__owner"), pk=pk
        )

    @extend_schema(responses={200: RuleSerializer, **ERRORS})
    def get(self, request, pk: int):
        return Response(RuleSerializer(get_object_or_404(rules_visible_to(request.user), pk=pk)).data)

    @extend_schema(request=RuleWriteSerializer, responses={200: RuleSerializer, **ERRORS})
    def patch(self, request, pk: int):
        rule = self._rule(request, pk)
        data = RuleWriteSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        return Response(RuleSerializer(services.rule_update(rule=rule, **data.validated_data)).data)

    @extend_schema(responses={204: None, **ERRORS})
    def delete(self, request, pk: int):
        services.rule_delete(rule=self._rule(request, pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class RuleHitSerializer(serializers.ModelSerializer):
    class Meta:
        model = RuleHit
        fields = ["id", "rule", "account", "kind", "action", "detail", "command_id", "created_at"]
        read_only_fields = fields


@extend_schema(tags=["copy trading"], parameters=[ACCOUNT_FILTER])
class RuleHitListView(ListAPIView):
    serializer_class = RuleHitSerializer
    capabilities = "copy.view"

    def get_queryset(self):
        queryset = restrict(
            self.request.user, "copytrading.view_rulehit", RuleHit.objects.all(), owner_path="account__owner"
        )
        if (account := filter_uuid(self.request, "account")) is not None:
            queryset = queryset.filter(account_id=account)
        return queryset.order_by("-created_at", "-id")


class CopyStateSerializer(serializers.Serializer):
    account = serializers.UUIDField(source="account_id")
    mode = serializers.ChoiceField(choices=AccountMode.choices)
    mode_reason = serializers.CharField(read_only=True)


class CopyModeSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(choices=AccountMode.choices)


@extend_schema(tags=["copy trading"])
class CopyModeView(APIView):
    """An account's copy mode: normal, paused or close-only (rules set it; the trader resumes)."""

    capabilities = {"GET": "copy.view", "PUT": "copy.manage"}

    @extend_schema(responses={200: CopyStateSerializer, **ERRORS})
    def get(self, request, account_id):
        account = services.account_for_viewing(user=request.user, account_id=account_id)
        state = AccountCopyState.objects.filter(account=account).first() or AccountCopyState(account=account)
        return Response(CopyStateSerializer(state).data)

    @extend_schema(request=CopyModeSerializer, responses={200: CopyStateSerializer, **ERRORS})
    def put(self, request, account_id):
        account = services.account_for_trading(user=request.user, account_id=account_id)
        data = CopyModeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        state = services.copy_mode_set(
            account=account, mode=data.validated_data["mode"], reason=f"set by {request.user.email}"
        )
        return Response(CopyStateSerializer(state).data)
