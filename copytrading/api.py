"""REST API of copy trading: links, copy history with skip reasons, rules, rule hits, templates, the web terminal."""

from __future__ import annotations

from decimal import Decimal

from django.apps import apps
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import ERRORS, ErrorSerializer
from accounts.permissions import restrict

from . import services
from .choices import AccountMode, NoStopLoss, RuleAction, RuleKind, Side, SizingMode
from .models import AccountCopyState, CopiedPosition, CopyEvent, CopyLink, OrderTemplate, Rule, RuleHit

MAX_VOLUME = Decimal("100000")
CONFLICT = {409: OpenApiResponse(ErrorSerializer, description="Conflict")}
SYMBOL = serializers.CharField(max_length=64)


def _symbols(**kw):
    return serializers.ListField(child=serializers.CharField(max_length=64), max_length=500, **kw)


def _magics(**kw):
    return serializers.ListField(child=serializers.IntegerField(min_value=0, max_value=2**63 - 1), max_length=500, **kw)


def _volume(**kw):
    return serializers.DecimalField(
        max_digits=14, decimal_places=4, min_value=Decimal("0.0001"), max_value=MAX_VOLUME, **kw
    )


# --- Links -------------------------------------------------------------------------------


class CopyLinkSerializer(serializers.ModelSerializer):
    master_name = serializers.CharField(source="master.__str__", read_only=True)
    slave_name = serializers.CharField(source="slave.__str__", read_only=True)

    class Meta:
        model = CopyLink
        fields = [
            "id",
            "master",
            "slave",
            "master_name",
            "slave_name",
            *services.LINK_FIELDS,
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
    fixed_volume = _volume(required=False)
    risk_percent = serializers.DecimalField(
        max_digits=6, decimal_places=3, min_value=Decimal("0.001"), max_value=Decimal("100"), required=False
    )
    no_sl = serializers.ChoiceField(choices=NoStopLoss.choices, required=False)
    default_sl_points = serializers.IntegerField(min_value=0, max_value=10**9, required=False)
    contract_size_aware = serializers.BooleanField(required=False)
    min_volume = _volume(required=False, allow_null=True)
    max_volume = _volume(required=False, allow_null=True)
    symbol_overrides = serializers.DictField(
        child=serializers.CharField(max_length=64, allow_blank=True), required=False
    )
    symbols_include = _symbols(required=False)
    symbols_exclude = _symbols(required=False)
    magics_include = _magics(required=False)
    magics_exclude = _magics(required=False)
    reverse = serializers.BooleanField(required=False)
    copy_sltp = serializers.BooleanField(required=False)
    copy_pending = serializers.BooleanField(required=False)
    close_only = serializers.BooleanField(required=False)
    max_delay_seconds = serializers.IntegerField(min_value=0, max_value=86400, required=False)
    max_slippage_points = serializers.IntegerField(min_value=0, max_value=100000, required=False)

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


ACCOUNT_FILTER = OpenApiParameter("account", str, description="Only this (slave) account (UUID).")
LINK_FILTER = OpenApiParameter("link", int, description="Only this copy link.")


def _filter_int(request, name):
    value = request.query_params.get(name)
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except ValueError as exc:
        raise services.ServiceError(f"{name} must be an integer.", code="invalid") from exc
    if not 0 < number < 2**63:
        raise services.ServiceError(f"{name} is out of range.", code="invalid")
    return number


def _filter_uuid(request, name):
    import uuid

    value = request.query_params.get(name)
    if value in (None, ""):
        return None
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise services.ServiceError(f"{name} must be a UUID.", code="invalid") from exc


@extend_schema(tags=["copy trading"], parameters=[ACCOUNT_FILTER, LINK_FILTER])
class CopyEventListView(ListAPIView):
    """Copies not sent (with the reason) or refused by the slave, newest first."""

    serializer_class = CopyEventSerializer
    capabilities = "copy.view"

    def get_queryset(self):
        queryset = restrict(
            self.request.user, "copytrading.view_copyevent", CopyEvent.objects.all(), owner_path="slave_account__owner"
        )
        if (account := _filter_uuid(self.request, "account")) is not None:
            queryset = queryset.filter(slave_account_id=account)
        if (link := _filter_int(self.request, "link")) is not None:
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
        if (account := _filter_uuid(self.request, "account")) is not None:
            queryset = queryset.filter(slave_account_id=account)
        if (link := _filter_int(self.request, "link")) is not None:
            queryset = queryset.filter(link_id=link)
        return queryset.order_by("-opened_at", "-id")


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
    symbols_allow = _symbols(required=False)
    symbols_deny = _symbols(required=False)
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
        if (account := _filter_uuid(self.request, "account")) is not None:
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
    volume = _volume(required=False, allow_null=True)
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


def templates_of(user):
    # Templates belong to a person, not to an account, so the account permission path does not apply.
    if not user.is_authenticated:
        return OrderTemplate.objects.none()
    return OrderTemplate.objects.filter(owner=user)


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
        template = get_object_or_404(templates_of(request.user), pk=pk)
        data = OrderTemplateWriteSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        return Response(
            OrderTemplateSerializer(services.template_update(template=template, **data.validated_data)).data
        )

    @extend_schema(responses={204: None, **ERRORS})
    def delete(self, request, pk: int):
        get_object_or_404(templates_of(request.user), pk=pk).delete()
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
    volume = _volume(required=False)
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
        if (account := _filter_uuid(request, "account")) is not None:
            queryset = queryset.filter(account_id=account)
        return Response(CommandSerializer(queryset.order_by("-created_at")[:50], many=True).data)
