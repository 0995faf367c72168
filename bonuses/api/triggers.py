"""Trigger endpoints for a CRM or cashier: deposit, registration, promo code."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from accounts.api import ERRORS, MAX_LOGIN

from ..services.controls import client_ip_record
from ..services.monitored import monitoring_register
from ..services.triggers import trigger_deposit, trigger_promo_code, trigger_registration
from .base import CONFLICT, UNAVAILABLE, StaffView, gateway_call, money_field
from .bonuses import BonusSerializer, FailureSerializer


class ClientIp(serializers.Serializer):
    client_ip = serializers.IPAddressField(
        required=False, allow_null=True, help_text="The client's IP as the CRM or cashier saw it (abuse signal)"
    )


class DepositTrigger(ClientIp):
    login = serializers.IntegerField(min_value=1, max_value=MAX_LOGIN)
    amount = money_field()
    deal_ticket = serializers.IntegerField(min_value=1, max_value=MAX_LOGIN, required=False, allow_null=True)


class RegistrationTrigger(ClientIp):
    login = serializers.IntegerField(min_value=1, max_value=MAX_LOGIN)


class PromoTrigger(ClientIp):
    login = serializers.IntegerField(min_value=1, max_value=MAX_LOGIN)
    promo_code = serializers.CharField(max_length=64)
    deposit_amount = money_field(required=False, allow_null=True)


class TriggerResult(serializers.Serializer):
    campaign_id = serializers.IntegerField()
    campaign_name = serializers.CharField()
    assigned = serializers.BooleanField()
    bonus = BonusSerializer(allow_null=True)
    failures = FailureSerializer(many=True)


TriggerResponse = inline_serializer("TriggerResponse", {"results": TriggerResult(many=True)})


def assignments_data(results) -> dict:
    return {
        "results": [
            {
                "campaign_id": a.campaign.pk,
                "campaign_name": a.campaign.name,
                "assigned": a.bonus is not None,
                "bonus": BonusSerializer(a.bonus).data if a.bonus else None,
                "failures": [f.as_dict() for f in a.failures],
            }
            for a in results
        ]
    }


class DepositTriggerView(StaffView):
    """A deposit event: confirmed from the MT5 deal history, then every matching campaign fires once."""

    capabilities = {"POST": "bonuses.trigger"}

    @extend_schema(
        request=DepositTrigger, responses={200: TriggerResponse, **ERRORS, **CONFLICT, **UNAVAILABLE}, tags=["triggers"]
    )
    def post(self, request):
        data = DepositTrigger(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        client_ip_record(login=v["login"], ip=v.get("client_ip"))
        results = gateway_call(
            trigger_deposit, login=v["login"], amount=v["amount"], deal_ticket=v.get("deal_ticket"), actor=request.user
        )
        return Response(assignments_data(results))


class RegistrationTriggerView(StaffView):
    capabilities = {"POST": "bonuses.trigger"}

    @extend_schema(
        request=RegistrationTrigger, responses={200: TriggerResponse, **ERRORS, **UNAVAILABLE}, tags=["triggers"]
    )
    def post(self, request):
        data = RegistrationTrigger(data=request.data)
        data.is_valid(raise_exception=True)
        login = data.validated_data["login"]
        gateway_call(monitoring_register, actor=request.user, login=login)
        client_ip_record(login=login, ip=data.validated_data.get("client_ip"))
        results = gateway_call(trigger_registration, login=login, actor=request.user)
        return Response(assignments_data(results))


class PromoCodeTriggerView(StaffView):
    capabilities = {"POST": "bonuses.trigger"}

    @extend_schema(request=PromoTrigger, responses={200: TriggerResponse, **ERRORS, **UNAVAILABLE}, tags=["triggers"])
    def post(self, request):
        data = PromoTrigger(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        client_ip_record(login=v["login"], ip=v.get("client_ip"))
        results = gateway_call(
            trigger_promo_code,
            login=v["login"],
            code=v["promo_code"],
            deposit=v.get("deposit_amount"),
            actor=request.user,
        )
        return Response(assignments_data(results))
