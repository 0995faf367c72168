"""Account and monitoring endpoints: MT5 metadata, account lookup, monitor status, register, reset errors, test money."""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from accounts.api import ERRORS, MAX_LOGIN
from config.errors import NotAllowed, ServiceError
from mt5bridge import gateway as gw

from .. import selectors
from ..models import MonitoredAccount
from ..services.monitored import monitoring_register, monitoring_reset_errors
from .base import CONFLICT, MONEY_MAX, UNAVAILABLE, StaffView, gateway_call, paginate


class MonitoredAccountSerializer(serializers.ModelSerializer):
    class Meta:
        model = MonitoredAccount
        fields = [
            "login",
            "server",
            "group",
            "country",
            "lead_source",
            "status",
            "consecutive_errors",
            "last_error",
            "balance",
            "credit",
            "equity",
            "leverage",
            "original_leverage",
            "snapshot_at",
            "discovered_at",
        ]
        read_only_fields = fields


class AmountRequest(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=20, decimal_places=2, min_value=Decimal("0.01"), max_value=MONEY_MAX)


class Mt5MetadataView(StaffView):
    capabilities = {"GET": "campaigns.view"}

    @extend_schema(
        responses={
            200: inline_serializer(
                "Mt5Metadata",
                {
                    "groups": serializers.ListField(child=serializers.CharField()),
                    "countries": serializers.ListField(child=serializers.CharField()),
                    "accounts": serializers.ListField(child=serializers.IntegerField()),
                    "scanned_at": serializers.DateTimeField(allow_null=True),
                },
            ),
            **ERRORS,
        },
        tags=["accounts"],
    )
    def get(self, request):
        return Response(selectors.mt5_metadata())


class AccountLookupView(StaffView):
    """Staff lookup by MT5 login: live figures from MT5, bonus history and audit trail."""

    capabilities = {"GET": "accounts.lookup"}

    @extend_schema(
        responses={200: OpenApiTypes.OBJECT, **ERRORS, **UNAVAILABLE},
        tags=["accounts"],
        operation_id="bonus_account_lookup",
    )
    def get(self, request, login: int):
        if login > MAX_LOGIN:
            raise ServiceError("Unknown login.", code="not_found", status_code=404)
        return Response(gateway_call(selectors.account_lookup, login=login, gateway=self.gateway()))


class MonitoringStatusView(StaffView):
    capabilities = {"GET": "bonuses.view"}

    @extend_schema(responses={200: OpenApiTypes.OBJECT, **ERRORS}, tags=["monitoring"])
    def get(self, request):
        return Response(selectors.monitoring_status())


class MonitoredAccountListView(StaffView):
    capabilities = {"GET": "bonuses.view"}

    @extend_schema(
        parameters=[OpenApiParameter("status", str, enum=["active", "paused"])],
        responses={200: MonitoredAccountSerializer(many=True), **ERRORS},
        tags=["monitoring"],
    )
    def get(self, request):
        rows = self.visible("bonuses.view_monitoredaccount", MonitoredAccount.objects.all())
        if request.query_params.get("status") in ("active", "paused"):
            rows = rows.filter(status=request.query_params["status"])
        return paginate(self, rows, MonitoredAccountSerializer)


class _LoginView(StaffView):
    def check_login(self, login: int) -> None:
        if login > MAX_LOGIN:
            raise ServiceError("Unknown login.", code="not_found", status_code=404)


class RegisterAccountView(_LoginView):
    capabilities = {"POST": "monitor.manage"}

    @extend_schema(
        request=None, responses={200: MonitoredAccountSerializer, **ERRORS, **UNAVAILABLE}, tags=["monitoring"]
    )
    def post(self, request, login: int):
        self.check_login(login)
        account = gateway_call(monitoring_register, actor=request.user, login=login)
        return Response(MonitoredAccountSerializer(account).data)


class ResetErrorsView(_LoginView):
    capabilities = {"POST": "monitor.manage"}

    @extend_schema(request=None, responses={200: MonitoredAccountSerializer, **ERRORS}, tags=["monitoring"])
    def post(self, request, login: int):
        self.check_login(login)
        account = monitoring_reset_errors(actor=request.user, login=login)
        return Response(MonitoredAccountSerializer(account).data)


class _SimulatedMoneyView(_LoginView):
    """Seed a deposit or withdrawal on the simulated server; the monitor detects it like a real one."""

    capabilities = {"POST": "monitor.manage"}
    sign = 1

    @extend_schema(
        request=AmountRequest,
        responses={
            200: inline_serializer(
                "SimulatedMoney", {"login": serializers.IntegerField(), "deal_ticket": serializers.IntegerField()}
            ),
            **ERRORS,
            **CONFLICT,
        },
        tags=["monitoring"],
    )
    def post(self, request, login: int):
        self.check_login(login)
        gateway = self.gateway()
        if gateway.kind != "simulated":
            raise NotAllowed(
                "Test deposits and withdrawals work against the simulated MT5 server only.", code="simulated_only"
            )
        data = AmountRequest(data=request.data)
        data.is_valid(raise_exception=True)
        amount = data.validated_data["amount"] * self.sign
        comment = "Test deposit" if self.sign > 0 else "Test withdrawal"
        try:
            ticket = gateway.balance_operation(login, amount, gw.DealType.BALANCE, comment)
        except gw.NotFound:
            raise ServiceError(
                f"Login {login} does not exist on MT5.", code="account_not_found", status_code=404
            ) from None
        except gw.GatewayError as exc:
            raise ServiceError(f"MT5 refused: {exc}", code="refused", status_code=409) from None
        return Response({"login": login, "deal_ticket": ticket})


class TestDepositView(_SimulatedMoneyView):
    sign = 1


class TestWithdrawView(_SimulatedMoneyView):
    sign = -1
