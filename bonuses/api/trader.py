"""The trader's bonus endpoint: one account's bonuses, figures and (with ?withdraw=) a withdrawal preview."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import ERRORS
from accounts.models import TradingAccount
from accounts.permissions import restrict
from config.errors import ServiceError

from ..services.monitored import default_gateway
from ..trader import accounts_bonuses, preview_for
from .base import MONEY_MAX, UNAVAILABLE
from .bonuses import BonusSerializer

MONEY = {"max_digits": 20, "decimal_places": 2}


class TraderBonusSerializer(BonusSerializer):
    campaign_terms = serializers.SerializerMethodField()

    class Meta(BonusSerializer.Meta):
        fields = [f for f in BonusSerializer.Meta.fields if f not in ("overridden_checks", "deposit_deal")]
        fields += ["campaign_terms"]
        read_only_fields = fields

    def get_campaign_terms(self, bonus) -> dict:
        c = bonus.campaign
        return {
            "bonus_percent": str(c.bonus_percent),
            "max_bonus_amount": None if c.max_bonus_amount is None else str(c.max_bonus_amount),
            "lots_per_unit": str(c.lots_per_unit),
            "unit_amount": str(c.unit_amount),
            "counting_symbols": c.counting_symbols,
            "min_lot": str(c.min_lot),
            "expiry_days": c.expiry_days,
        }


PreviewBonus = inline_serializer(
    "WithdrawalPreviewBonus",
    {
        "bonus_id": serializers.IntegerField(),
        "credit_before": serializers.DecimalField(**MONEY),
        "credit_removed": serializers.DecimalField(**MONEY),
        "credit_after": serializers.DecimalField(**MONEY),
        "ends": serializers.BooleanField(),
    },
    many=True,
)

AccountBonusesResponse = inline_serializer(
    "AccountBonuses",
    {
        "account": serializers.UUIDField(),
        "login": serializers.IntegerField(),
        "balance": serializers.DecimalField(**MONEY),
        "credit": serializers.DecimalField(**MONEY),
        "credit_outstanding": serializers.DecimalField(**MONEY),
        "leverage": serializers.IntegerField(allow_null=True),
        "original_leverage": serializers.IntegerField(allow_null=True),
        "live": serializers.BooleanField(help_text="Figures read from MT5 now (false: the last figures stored)"),
        "bonuses": TraderBonusSerializer(many=True),
        "ended": TraderBonusSerializer(many=True),
        "withdrawal_preview": inline_serializer(
            "WithdrawalPreview",
            {
                "amount": serializers.DecimalField(**MONEY),
                "balance_before": serializers.DecimalField(**MONEY),
                "balance_after": serializers.DecimalField(**MONEY),
                "fraction": serializers.DecimalField(max_digits=12, decimal_places=8),
                "credit_removed": serializers.DecimalField(**MONEY),
                "leverage_before": serializers.IntegerField(allow_null=True),
                "leverage_after": serializers.IntegerField(allow_null=True),
                "bonuses": PreviewBonus,
            },
            allow_null=True,
        ),
    },
)


def _withdraw_param(raw: str | None) -> Decimal | None:
    if raw in (None, ""):
        return None
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        raise ServiceError("withdraw must be an amount such as 250.00.", code="invalid_amount") from None
    if not amount.is_finite() or amount > MONEY_MAX or amount.as_tuple().exponent < -2:
        raise ServiceError("withdraw must be an amount with at most two decimals.", code="invalid_amount")
    return amount


class AccountBonusesView(APIView):
    """A trader's own account: its bonuses (terms, credit outstanding, type A leverage, type C lot progress).

    With ``?withdraw=<amount>``, what that withdrawal would do: the credit each bonus loses and the leverage
    after, by the formulas the bonus monitor applies when the withdrawal happens (``bonuses/preview.py``).
    """

    capabilities = "bonuses.own"

    @extend_schema(
        parameters=[OpenApiParameter("withdraw", str, description="An amount to preview (at most the balance)")],
        responses={200: AccountBonusesResponse, **ERRORS, **UNAVAILABLE},
        tags=["bonuses"],
    )
    def get(self, request, account_id):
        account = get_object_or_404(
            restrict(request.user, "accounts.view_tradingaccount", TradingAccount.objects.all()), pk=account_id
        )
        amount = _withdraw_param(request.query_params.get("withdraw"))
        rows = accounts_bonuses([account], gateway=default_gateway())
        if not rows:
            raise ServiceError(
                "The bonus engine does not serve this account's server.", code="not_served", status_code=404
            )
        row = rows[0]
        preview = preview_for(row, amount) if amount is not None else None
        return Response(
            {
                "account": account.pk,
                "login": account.login,
                "balance": str(row.balance),
                "credit": str(row.credit),
                "credit_outstanding": str(row.credit_outstanding),
                "leverage": row.leverage,
                "original_leverage": row.original_leverage,
                "live": row.live,
                "bonuses": TraderBonusSerializer(row.open, many=True).data,
                "ended": TraderBonusSerializer(row.ended, many=True).data,
                "withdrawal_preview": None if preview is None else _preview_data(preview),
            }
        )


def _preview_data(preview) -> dict:
    return {
        "amount": str(preview.amount),
        "balance_before": str(preview.balance_before),
        "balance_after": str(preview.balance_after),
        "fraction": f"{preview.fraction:.8f}",
        "credit_removed": str(preview.credit_removed),
        "leverage_before": preview.leverage_before,
        "leverage_after": preview.leverage_after,
        "bonuses": [{k: str(v) if isinstance(v, Decimal) else v for k, v in vars(b).items()} for b in preview.bonuses],
    }
