"""Order templates and the web terminal: orders, commands and their status."""

from __future__ import annotations

from decimal import Decimal

from django.apps import apps
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import ERRORS
from accounts.permissions import restrict

from .. import services
from ..choices import Side
from ..models import OrderTemplate
from .common import (
    ACCOUNT_FILTER,
    CONFLICT,
    SYMBOL,
    filter_uuid,
    volume_field,
)

# --- Templates ---------------------------------------------------------------------------


class OrderTemplateSerializer(serializers.ModelSerializer):
    class Meta:
        model = OrderTemplate
        fields = [
            "id",
            "name",
            "symbol",
            "side",
            "volume",
            "risk_percent",
            "sl_points",
            "tp_points",
            "comment",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]


class OrderTemplateWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=80)
    symbol = SYMBOL
    side = serializers.ChoiceField(choices=Side.choices)
    volume = volume_field(required=False, allow_null=True)
    risk_percent = serializers.DecimalField(
        max_digits=6,
        decimal_places=3,
        min_value=Decimal("0.001"),
        max_value=Decimal("100"),
        required=False,
        allow_null=True,
    )
    sl_points = serializers.IntegerField(min_value=0, max_value=10**9, required=False)
    tp_points = serializers.IntegerField(min_value=0, max_value=10**9, required=False)
    comment = serializers.CharField(max_length=20, required=False, allow_blank=True)


def templates_of(user, perm: str = "copytrading.view_ordertemplate"):
    """The templates ``user`` holds ``perm`` on: their own (templates belong to a person and are never shared
    through an account), or every one for a staff role the matrix gives copy trading on all rows."""
    return restrict(user, perm, OrderTemplate.objects.all(), owner_path="owner")


@extend_schema(tags=["copy trading"])
class TemplateListView(APIView):
    capabilities = {"GET": "copy.view", "POST": "copy.manage"}

    @extend_schema(responses={200: OrderTemplateSerializer(many=True), **ERRORS})
    def get(self, request):
        return Response(OrderTemplateSerializer(templates_of(request.user), many=True).data)

    @extend_schema(request=OrderTemplateWriteSerializer, responses={201: OrderTemplateSerializer, **ERRORS, **CONFLICT})
    def post(self, request):
        data = OrderTemplateWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        template = services.template_create(user=request.user, **data.validated_data)
        return Response(OrderTemplateSerializer(template).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["copy trading"])
class TemplateDetailView(APIView):
    capabilities = {"GET": "copy.view", "PATCH": "copy.manage", "DELETE": "copy.manage"}

    @extend_schema(responses={200: OrderTemplateSerializer, **ERRORS})
    def get(self, request, pk: int):
        return Response(OrderTemplateSerializer(get_object_or_404(templates_of(request.user), pk=pk)).data)

    @extend_schema(
        request=OrderTemplateWriteSerializer(partial=True), responses={200: OrderTemplateSerializer, **ERRORS}
    )
    def patch(self, request, pk: int):
        template = get_object_or_404(templates_of(request.user, "copytrading.change_ordertemplate"), pk=pk)
        data = OrderTemplateWriteSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        return Response(
            OrderTemplateSerializer(services.template_update(template=template, **data.validated_data)).data
        )

    @extend_schema(responses={204: None, **ERRORS})
    def delete(self, request, pk: int):
        get_object_or_404(templates_of(request.user, "copytrading.delete_ordertemplate"), pk=pk).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class CommandSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    account = serializers.UUIDField(source="account_id")
    kind = serializers.CharField()
    params = serializers.JSONField()
    origin = serializers.CharField()
    status = serializers.CharField()
    retcode = serializers.IntegerField(allow_null=True)
    message = serializers.CharField()
    result = serializers.JSONField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class TemplatePlaceSerializer(serializers.Serializer):
    accounts = serializers.ListField(child=serializers.UUIDField(), min_length=1, max_length=200)
    client_key = serializers.CharField(max_length=60, required=False)


@extend_schema(tags=["copy trading"])
class TemplatePlaceView(APIView):
    """Place a template's order on one or many accounts (one command each)."""

    capabilities = {"POST": "copy.manage"}

    @extend_schema(
        request=TemplatePlaceSerializer,
        responses={
            201: inline_serializer(
                "TemplatePlaced", {"commands": CommandSerializer(many=True), "errors": serializers.DictField()}
            ),
            **ERRORS,
        },
    )
    def post(self, request, pk: int):
        template = get_object_or_404(templates_of(request.user), pk=pk)
        data = TemplatePlaceSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        outcome = services.template_place(
            user=request.user,
            template=template,
            account_ids=data.validated_data["accounts"],
            client_key=data.validated_data.get("client_key"),
        )
        return Response(
            {"commands": CommandSerializer(outcome["commands"], many=True).data, "errors": outcome["errors"]},
            status=status.HTTP_201_CREATED,
        )


# --- Web terminal ------------------------------------------------------------------------


class TerminalOrderSerializer(serializers.Serializer):
    account = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=services.TERMINAL_KINDS)
    symbol = SYMBOL.__class__(max_length=64, required=False)
    side = serializers.ChoiceField(choices=Side.choices, required=False)
    type = serializers.IntegerField(min_value=2, max_value=7, required=False)
    volume = volume_field(required=False)
    price = serializers.DecimalField(max_digits=20, decimal_places=8, min_value=Decimal("0"), required=False)
    sl = serializers.DecimalField(max_digits=20, decimal_places=8, min_value=Decimal("0"), required=False)
    tp = serializers.DecimalField(max_digits=20, decimal_places=8, min_value=Decimal("0"), required=False)
    ticket = serializers.IntegerField(min_value=1, max_value=2**63 - 1, required=False)
    comment = serializers.CharField(max_length=31, required=False, allow_blank=True)
    client_key = serializers.CharField(max_length=60, required=False)

    NEEDS = {
        "open_market": ("symbol", "side", "volume"),
        "place_pending": ("symbol", "type", "volume", "price"),
        "close": ("ticket",),
        "close_partial": ("ticket", "volume"),
        "modify_sltp": ("ticket",),
        "modify_pending": ("ticket", "price"),
        "cancel_pending": ("ticket",),
        "close_all": (),
    }
    ALLOWED = {
        "open_market": ("symbol", "side", "volume", "sl", "tp", "comment"),
        "place_pending": ("symbol", "type", "volume", "price", "sl", "tp", "comment"),
        "close": ("ticket",),
        "close_partial": ("ticket", "volume"),
        "modify_sltp": ("ticket", "sl", "tp"),
        "modify_pending": ("ticket", "price", "sl", "tp"),
        "cancel_pending": ("ticket",),
        "close_all": ("symbol",),
    }

    def validate(self, attrs):
        kind = attrs["kind"]
        missing = [name for name in self.NEEDS[kind] if name not in attrs]
        if missing:
            raise serializers.ValidationError({name: "This field is required for this kind." for name in missing})
        attrs["params"] = {
            name: (format(attrs[name].normalize(), "f") if isinstance(attrs[name], Decimal) else attrs[name])
            for name in self.ALLOWED[kind]
            if name in attrs
        }
        return attrs


def commands_visible_to(user):
    Command = apps.get_model("mt5bridge", "Command")
    return restrict(user, "mt5bridge.view_command", Command.objects.all(), owner_path="account__owner")


@extend_schema(tags=["copy trading"])
class TerminalOrderView(APIView):
    """Send an order from the web terminal; the EA executes it and the command's status follows."""

    capabilities = {"POST": "copy.manage"}

    @extend_schema(request=TerminalOrderSerializer, responses={201: CommandSerializer, **ERRORS, **CONFLICT})
    def post(self, request):
        data = TerminalOrderSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        command = services.terminal_order_send(
            user=request.user,
            account_id=values["account"],
            kind=values["kind"],
            params=values["params"],
            client_key=values.get("client_key"),
        )
        return Response(CommandSerializer(command).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["copy trading"], parameters=[ACCOUNT_FILTER])
class TerminalCommandListView(APIView):
    """The latest web-terminal, template and rule commands of the user's accounts, with their status."""

    capabilities = "copy.view"

    @extend_schema(responses={200: CommandSerializer(many=True), **ERRORS})
    def get(self, request):
        queryset = commands_visible_to(request.user).filter(origin__in=("web_terminal", "template", "rule"))
        if (account := filter_uuid(request, "account")) is not None:
            queryset = queryset.filter(account_id=account)
        return Response(CommandSerializer(queryset.order_by("-created_at")[:50], many=True).data)
