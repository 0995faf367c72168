"""REST API of billing: plans, the user's subscription and usage, Checkout and Portal sessions, active accounts."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import ERRORS, ErrorSerializer
from accounts.models import TradingAccount
from accounts.roles import PUBLIC
from entitlements import services as entitlements_services
from entitlements.models import FEATURES, LIMITS, PlanAssignment
from entitlements.selectors import local_mode, plan_for_user, plans, resolve_for, usage_for

from . import services

CONFLICT = {409: OpenApiResponse(ErrorSerializer, description="Local mode, already subscribed, or no customer")}
STRIPE_DOWN = {502: OpenApiResponse(ErrorSerializer, description="Stripe refused or was unreachable")}


class PlanSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    rank = serializers.IntegerField()
    description = serializers.CharField()
    currency = serializers.CharField()
    price_monthly = serializers.DecimalField(max_digits=10, decimal_places=2)
    price_yearly = serializers.DecimalField(max_digits=10, decimal_places=2)
    trial_days = serializers.IntegerField()
    purchasable = serializers.SerializerMethodField()
    limits = serializers.SerializerMethodField()
    features = serializers.SerializerMethodField()

    def get_purchasable(self, plan) -> dict[str, bool]:
        return {"month": bool(plan.stripe_price_monthly), "year": bool(plan.stripe_price_yearly)}

    def get_limits(self, plan) -> dict[str, int | None]:
        return {name: plan.limit(name) for name in LIMITS}

    def get_features(self, plan) -> dict[str, bool]:
        return {name: bool(getattr(plan, name)) for name in FEATURES}


class PlansView(APIView):
    """Every public plan with its prices, limits and features (no login needed: it is the price list)."""

    capabilities = PUBLIC

    @extend_schema(responses={200: PlanSerializer(many=True), **ERRORS}, tags=["billing"])
    def get(self, request):
        return Response(PlanSerializer([p for p in plans().values() if p.is_public], many=True).data)


class SubscriptionSerializer(serializers.Serializer):
    local_mode = serializers.BooleanField()
    plan = PlanSerializer()
    reason = serializers.CharField()
    status = serializers.CharField(allow_blank=True)
    subscribed_plan = serializers.CharField(allow_null=True)
    interval = serializers.CharField(allow_blank=True)
    trial_end = serializers.DateTimeField(allow_null=True)
    current_period_end = serializers.DateTimeField(allow_null=True)
    cancel_at_period_end = serializers.BooleanField()
    past_due_since = serializers.DateTimeField(allow_null=True)
    grace_days = serializers.IntegerField()
    staff_plan = serializers.CharField(allow_null=True)
    staff_plan_until = serializers.DateTimeField(allow_null=True)


def subscription_payload(user) -> dict:
    assignment = PlanAssignment.objects.filter(user=user).select_related("subscribed_plan", "manual_plan").first()
    _slug, reason = resolve_for(assignment)
    return {
        "local_mode": local_mode(),
        "plan": plan_for_user(user),
        "reason": reason,
        "status": assignment.subscription_status if assignment else "",
        "subscribed_plan": assignment.subscribed_plan.slug if assignment and assignment.subscribed_plan else None,
        "interval": assignment.interval if assignment else "",
        "trial_end": assignment.trial_end if assignment else None,
        "current_period_end": assignment.current_period_end if assignment else None,
        "cancel_at_period_end": assignment.cancel_at_period_end if assignment else False,
        "past_due_since": assignment.past_due_since if assignment else None,
        "grace_days": settings.BILLING_PAST_DUE_GRACE_DAYS,
        "staff_plan": assignment.manual_plan.slug if assignment and assignment.manual_plan else None,
        "staff_plan_until": assignment.manual_until if assignment else None,
    }


class SubscriptionView(APIView):
    """The plan the gates apply to you now, why, and your Stripe subscription's state."""

    capabilities = "billing.own"

    @extend_schema(responses={200: SubscriptionSerializer, **ERRORS}, tags=["billing"])
    def get(self, request):
        return Response(SubscriptionSerializer(subscription_payload(request.user)).data)


class UsageView(APIView):
    """Your usage against your plan's limits (null limit: unlimited)."""

    capabilities = "billing.own"

    @extend_schema(
        responses={
            200: inline_serializer(
                "BillingUsage",
                {
                    "plan": serializers.CharField(),
                    "accounts": serializers.DictField(child=serializers.IntegerField(allow_null=True)),
                    "copy_links": serializers.DictField(child=serializers.IntegerField(allow_null=True)),
                    "history_days": serializers.DictField(child=serializers.IntegerField(allow_null=True)),
                    "slaves_per_master": serializers.DictField(child=serializers.IntegerField(allow_null=True)),
                    "api_calls_today": serializers.IntegerField(),
                },
            ),
            **ERRORS,
        },
        tags=["billing"],
    )
    def get(self, request):
        return Response(usage_for(request.user))


def _site_url(name: str) -> str:
    return settings.SITE_URL.rstrip("/") + reverse(name)


class CheckoutRequest(serializers.Serializer):
    plan = serializers.SlugField(max_length=32)
    interval = serializers.ChoiceField(choices=["month", "year"], default="month")


class CheckoutView(APIView):
    """Start a Stripe Checkout to subscribe or upgrade; send the browser to the returned url."""

    capabilities = "billing.own"

    @extend_schema(
        request=CheckoutRequest,
        responses={
            201: inline_serializer(
                "CheckoutSession",
                {
                    "id": serializers.CharField(),
                    "url": serializers.URLField(),
                    "plan": serializers.CharField(),
                    "interval": serializers.CharField(),
                    "trial_days": serializers.IntegerField(),
                },
            ),
            **ERRORS,
            **CONFLICT,
            **STRIPE_DOWN,
        },
        tags=["billing"],
    )
    def post(self, request):
        data = CheckoutRequest(data=request.data)
        data.is_valid(raise_exception=True)
        session = services.checkout_session_create(
            user=request.user,
            plan_slug=data.validated_data["plan"],
            interval=data.validated_data["interval"],
            success_url=_site_url("billing:overview") + "?checkout=success",
            cancel_url=_site_url("billing:pricing") + "?checkout=cancelled",
        )
        return Response(session, status=status.HTTP_201_CREATED)


class PortalView(APIView):
    """Open the Stripe Customer Portal (cards, invoices, cancel, downgrade); send the browser to the url."""

    capabilities = "billing.own"

    @extend_schema(
        request=None,
        responses={
            201: inline_serializer("PortalSession", {"url": serializers.URLField()}),
            **ERRORS,
            **CONFLICT,
            **STRIPE_DOWN,
        },
        tags=["billing"],
    )
    def post(self, request):
        session = services.portal_session_create(user=request.user, return_url=_site_url("billing:overview"))
        return Response(session, status=status.HTTP_201_CREATED)


class ActiveAccountsRequest(serializers.Serializer):
    account_ids = serializers.ListField(child=serializers.UUIDField(), max_length=1000)


class ActiveAccountsView(APIView):
    """Which of your MT5 accounts stay active under your plan's account limit; the others are paused, never deleted."""

    capabilities = "billing.own"

    @extend_schema(
        responses={
            200: inline_serializer(
                "ActiveAccounts",
                {
                    "limit": serializers.IntegerField(allow_null=True),
                    "accounts": serializers.ListField(
                        child=inline_serializer(
                            "ActiveAccountRow",
                            {
                                "id": serializers.UUIDField(),
                                "login": serializers.IntegerField(),
                                "server": serializers.CharField(),
                                "name": serializers.CharField(),
                                "is_active": serializers.BooleanField(),
                                "paused_by_plan": serializers.BooleanField(),
                            },
                        )
                    ),
                },
            ),
            **ERRORS,
        },
        tags=["billing"],
    )
    def get(self, request):
        rows = TradingAccount.objects.filter(owner=request.user).order_by("created_at").select_related("billing_pause")
        return Response(
            {
                "limit": plan_for_user(request.user).limit_accounts,
                "accounts": [
                    {
                        "id": a.pk,
                        "login": a.login,
                        "server": a.server,
                        "name": a.name,
                        "is_active": a.is_active,
                        "paused_by_plan": hasattr(a, "billing_pause"),
                    }
                    for a in rows
                ],
            }
        )

    @extend_schema(
        request=ActiveAccountsRequest,
        responses={
            200: inline_serializer(
                "ActiveAccountsChosen",
                {
                    "active": serializers.ListField(child=serializers.UUIDField()),
                    "paused": serializers.ListField(child=serializers.UUIDField()),
                },
            ),
            **ERRORS,
        },
        tags=["billing"],
    )
    def post(self, request):
        data = ActiveAccountsRequest(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(
            entitlements_services.active_accounts_choose(
                user=request.user, account_ids=data.validated_data["account_ids"]
            )
        )
