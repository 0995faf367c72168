"""REST API of the integrations app: Systeme.io stats/sync, webhooks in and out, account pre-flight."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import MethodNotAllowed
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from accounts.api import ERRORS, UUID_PATTERN, ErrorSerializer
from accounts.models import TradingAccount
from accounts.permissions import can, restrict
from accounts.roles import PUBLIC
from accounts.security import mt5_password_reveal
from config.errors import ServiceError
from config.net import client_ip

from . import selectors
from .choices import DeliveryStatus, WebhookEvent
from .models import PreflightResult, WebhookDelivery, WebhookEndpoint
from .preflight import PASSWORD_PLACEHOLDER, PERIOD_MINUTES, options_from_settings, template_file_name, with_password
from .services import inbound, webhooks
from .services.contacts import SystemeNotConfigured
from .services.preflight import preflight_run
from .tasks import systeme_sync_contacts

SIGNATURE_HEADERS = ("X-Webhook-Signature", "X-Systeme-Signature")


# --- Systeme.io ------------------------------------------------------------------------------


class SystemeStatsView(APIView):
    """Connection status, last sync, contacts and rule firings (staff)."""

    capabilities = "system.config"

    @extend_schema(responses={200: OpenApiTypes.OBJECT, **ERRORS}, tags=["integrations"])
    def get(self, request):
        return Response(selectors.systeme_stats())


class SyncRequestSerializer(serializers.Serializer):
    user_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**31 - 1),
        required=False,
        max_length=1000,
        help_text="Only these users (default: everyone who is synced).",
    )


class SystemeSyncView(APIView):
    """Queue a sync of the contacts' trading figures to Systeme.io (staff)."""

    capabilities = "system.config"

    @extend_schema(
        request=SyncRequestSerializer,
        responses={
            202: inline_serializer("SystemeSyncQueued", {"status": serializers.CharField()}),
            **ERRORS,
            409: OpenApiResponse(ErrorSerializer, description="Systeme.io not configured"),
        },
        tags=["integrations"],
    )
    def post(self, request):
        data = SyncRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        stats = selectors.systeme_stats()
        if not stats["configured"] or not stats["enabled"]:
            raise SystemeNotConfigured("Systeme.io is not configured: set SYSTEME_API_KEY or the key in the admin.")
        systeme_sync_contacts.delay(data.validated_data.get("user_ids"))
        return Response({"status": "queued"}, status=status.HTTP_202_ACCEPTED)


# --- Inbound webhooks ------------------------------------------------------------------------


class SystemeWebhookView(APIView):
    """Systeme.io webhooks, signed with HMAC-SHA256 in X-Webhook-Signature: ``t=<unix>,v1=<hex of "{t}.{body}">``
    (5-minute tolerance) or Systeme.io's own ``<hex of the body>``; replays (same signed body) are processed once."""

    authentication_classes: list = []
    capabilities = PUBLIC  # the signature is the credential
    throttle_classes: list = []  # the signature is the gate; Systeme.io may send bursts

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        parameters=[
            OpenApiParameter(
                "X-Webhook-Signature",
                str,
                OpenApiParameter.HEADER,
                required=True,
                description="\"t=<unix seconds>,v1=<hex HMAC-SHA256 of '{t}.{raw body}'>\" (timestamp within 5 "
                "minutes), or the hex HMAC-SHA256 of the raw body (what Systeme.io sends); key SYSTEME_WEBHOOK_SECRET",
            ),
            OpenApiParameter(
                "X-Webhook-Event",
                str,
                OpenApiParameter.HEADER,
                required=False,
                description="Event name when the body has no `type` (Systeme.io: CONTACT_TAG_ADDED ...)",
            ),
        ],
        responses={
            200: inline_serializer(
                "WebhookAccepted", {"status": serializers.CharField(), "event": serializers.IntegerField()}
            ),
            400: ERRORS[400],
            401: ERRORS[401],
        },
        tags=["webhooks"],
    )
    def post(self, request):
        body = request.body  # the raw bytes, read before anything parses them
        signature = next((request.headers.get(h) for h in SIGNATURE_HEADERS if request.headers.get(h)), None)
        inbound.inbound_signature_verify(body=body, header=signature, secret=settings.SYSTEME_WEBHOOK_SECRET)
        event, created = inbound.inbound_webhook_receive(
            body=body, event_header=request.headers.get("X-Webhook-Event", "")[:64]
        )
        return Response({"status": event.status if created else "duplicate", "event": event.pk})


class WebhookStatusView(APIView):
    """Inbound and outbound webhook health over the last 24 hours (staff)."""

    capabilities = "system.config"

    @extend_schema(responses={200: OpenApiTypes.OBJECT, **ERRORS}, tags=["webhooks"])
    def get(self, request):
        return Response(selectors.webhooks_status())


# --- Outbound webhook endpoints --------------------------------------------------------------


class EndpointSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "description",
            "events",
            "is_active",
            "consecutive_failures",
            "disabled_at",
            "disabled_reason",
            "created_at",
        ]
        read_only_fields = fields


class EndpointCreateSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=500)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=[*WebhookEvent.values, "*"]), min_length=1, max_length=20
    )
    secret = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        write_only=True,
        help_text="Signing secret; generated when left out (returned once).",
    )
    description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class EndpointUpdateSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=500, required=False)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=[*WebhookEvent.values, "*"]), min_length=1, max_length=20, required=False
    )
    secret = serializers.CharField(max_length=200, required=False, allow_blank=True, write_only=True)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)
    is_active = serializers.BooleanField(required=False)


class DeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "endpoint",
            "event",
            "status",
            "attempts",
            "last_status_code",
            "last_error",
            "log",
            "next_attempt_at",
            "created_at",
            "delivered_at",
        ]
        read_only_fields = fields


@extend_schema(tags=["webhooks"])
class WebhookEndpointViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Outbound webhook endpoints (staff): deliveries are signed with HMAC-SHA256 over "{timestamp}.{body}"."""

    serializer_class = EndpointSerializer
    capabilities = "system.config"
    lookup_value_regex = r"[0-9]{1,18}"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    filterset_fields = ["is_active"]

    def get_queryset(self):
        return restrict(
            self.request.user,
            "integrations.view_webhookendpoint",
            WebhookEndpoint.objects.all(),
            owner_path="created_by",
        )

    @extend_schema(
        request=EndpointCreateSerializer,
        responses={
            201: inline_serializer(
                "EndpointCreated", {"endpoint": EndpointSerializer(), "secret": serializers.CharField()}
            ),
            **ERRORS,
        },
    )
    def create(self, request):
        data = EndpointCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint, secret = webhooks.webhook_endpoint_create(created_by=request.user, **data.validated_data)
        return Response(
            {"endpoint": EndpointSerializer(endpoint).data, "secret": secret}, status=status.HTTP_201_CREATED
        )

    @extend_schema(request=EndpointUpdateSerializer, responses={200: EndpointSerializer, **ERRORS})
    def partial_update(self, request, pk=None):
        endpoint = self.get_object()
        data = EndpointUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        return Response(
            EndpointSerializer(webhooks.webhook_endpoint_update(endpoint=endpoint, **data.validated_data)).data
        )

    @extend_schema(responses={204: None, **ERRORS})
    def destroy(self, request, pk=None):
        self.get_object().delete()
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={202: DeliverySerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def ping(self, request, pk=None):
        """Queue a signed test delivery to this endpoint."""
        delivery = webhooks.webhook_ping(endpoint=self.get_object())
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(tags=["webhooks"])
class WebhookDeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Outbound deliveries with their attempts and status codes (staff)."""

    serializer_class = DeliverySerializer
    capabilities = "system.config"
    lookup_value_regex = UUID_PATTERN
    filterset_fields = ["status", "event", "endpoint"]

    def get_queryset(self):
        return restrict(
            self.request.user,
            "integrations.view_webhookdelivery",
            WebhookDelivery.objects.select_related("endpoint"),
            owner_path="endpoint__created_by",
        )

    @extend_schema(request=None, responses={202: DeliverySerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        """Try a delivery again from now (its attempt count starts over)."""
        delivery = self.get_object()
        if delivery.status == DeliveryStatus.SUCCEEDED:
            raise ServiceError("This delivery already succeeded.", code="already_delivered", status_code=409)
        return Response(
            DeliverySerializer(webhooks.webhook_delivery_retry(delivery=delivery)).data, status=status.HTTP_202_ACCEPTED
        )


# --- Pre-flight ------------------------------------------------------------------------------


class PreflightSerializer(serializers.ModelSerializer):
    class Meta:
        model = PreflightResult
        fields = [
            "id",
            "account",
            "created_at",
            "status",
            "payload",
            "chart_symbol",
            "chart_period",
            "warnings",
            "error",
            "symbols_found",
        ]
        read_only_fields = fields


class PreflightRequestSerializer(serializers.Serializer):
    chart_symbol = serializers.RegexField(
        r"^[A-Za-z0-9._#+\-]{1,32}$",
        required=False,
        help_text="Base symbol the chart opens (default PREFLIGHT_CHART_SYMBOL).",
    )
    chart_period = serializers.ChoiceField(choices=list(PERIOD_MINUTES), required=False)


def _account_for(request, account_id, perm: str) -> TradingAccount:
    visible = restrict(request.user, "accounts.view_tradingaccount", TradingAccount.objects.all())
    account = get_object_or_404(visible, pk=account_id)
    if perm != "accounts.view_tradingaccount" and not can(request.user, perm, account):
        raise ServiceError("You may not do that on this account.", code="forbidden", status_code=403)
    return account


class PreflightView(APIView):
    """Symbol pre-flight of an account: run it (POST), or read the newest result (GET)."""

    capabilities = {"GET": "accounts.view", "POST": "accounts.manage"}

    @extend_schema(responses={200: PreflightSerializer, **ERRORS}, tags=["preflight"])
    def get(self, request, account_id):
        account = _account_for(request, account_id, "accounts.view_tradingaccount")
        result = selectors.latest_preflight(account)
        if result is None:
            raise ServiceError("No pre-flight has run for this account yet.", code="not_found", status_code=404)
        return Response(PreflightSerializer(result).data)

    @extend_schema(
        request=PreflightRequestSerializer, responses={201: PreflightSerializer, **ERRORS}, tags=["preflight"]
    )
    def post(self, request, account_id):
        account = _account_for(request, account_id, "accounts.sync_tradingaccount")
        data = PreflightRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        options = options_from_settings(**data.validated_data)
        options.s3_prefix = f"{options.s3_prefix}{account.pk}/"
        result = preflight_run(account=account, user=request.user, options=options)
        return Response(PreflightSerializer(result).data, status=status.HTTP_201_CREATED)


class StartupIniPasswordSerializer(serializers.Serializer):
    password = serializers.CharField(
        max_length=128,
        trim_whitespace=False,
        write_only=True,
        help_text="Your own login password (the one of this back office), not the MT5 password.",
    )


class PreflightFileView(APIView):
    """Download the newest chart template (.tpl) or start-up .ini of an account.

    The .ini carries a placeholder on its Password= line. Only the account's owner gets the real MT5 password,
    by POSTing their own login password (accounts.security.mt5_password_reveal: checked, throttled, audited).
    """

    capabilities = {"GET": "accounts.view", "POST": "accounts.password"}

    kind = "template"

    def get_throttles(self):
        throttles = super().get_throttles()
        if self.request.method == "POST":
            # The POST checks a login password: the same rate as logging in.
            self.throttle_scope = "auth"
            throttles.append(ScopedRateThrottle())
        return throttles

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "include_password",
                bool,
                required=False,
                description="No longer honoured: answers 400. The MT5 password is only in the .ini POSTed for by "
                "the account's owner.",
            )
        ],
        responses={(200, "text/plain"): OpenApiTypes.STR, **ERRORS},
        tags=["preflight"],
        description="The .ini's Password= line holds a placeholder.",
    )
    def get(self, request, account_id):
        account = _account_for(request, account_id, "accounts.view_tradingaccount")
        if self.kind == "ini" and request.query_params.get("include_password", "").lower() in ("1", "true", "yes"):
            raise ServiceError(
                "The MT5 password is not sent by GET. The account's owner POSTs "
                '{"password": "<their login password>"} to this address for the .ini with it.',
                code="password_needs_confirmation",
            )
        result = selectors.latest_preflight(account, usable_only=True)
        if result is None:
            raise ServiceError("No successful pre-flight for this account yet.", code="not_found", status_code=404)
        return preflight_file_response(result, self.kind)

    @extend_schema(
        request=StartupIniPasswordSerializer,
        responses={
            (200, "text/plain"): OpenApiTypes.STR,
            **ERRORS,
            429: OpenApiResponse(ErrorSerializer, description="Throttled (the login rate)"),
        },
        tags=["preflight"],
        summary="The start-up .ini with the MT5 password, for the account's owner",
        description="Only the account's owner, re-entering their own login password; anyone else (staff, a user "
        "the account is shared with) or a wrong password answers 403. Every attempt leaves a security audit "
        "row (who, which account, when, from which IP).",
    )
    def post(self, request, account_id):
        if self.kind != "ini":
            raise MethodNotAllowed(request.method)
        account = _account_for(request, account_id, "accounts.view_tradingaccount")
        login_password = ""  # anyone but the owner is refused (and recorded) whatever they sent
        if account.owner_id == request.user.pk:
            data = StartupIniPasswordSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            login_password = data.validated_data["password"]
        result = selectors.latest_preflight(account, usable_only=True)
        if result is None:
            raise ServiceError("No successful pre-flight for this account yet.", code="not_found", status_code=404)
        password = mt5_password_reveal(
            account=account,
            user=request.user,
            login_password=login_password,
            ip_address=client_ip(request),
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
        )
        return preflight_file_response(result, "ini", password=password)


def preflight_file_response(result: PreflightResult, kind: str, *, password: str | None = None) -> HttpResponse:
    """The file as a download; the .ini with ``password`` on its Password= line, else the placeholder."""
    ea = result.payload.get("chart", {}).get("expert") or settings.PREFLIGHT_EA_NAME
    if kind == "ini":
        name = f"{result.account.login}-startup.ini"
        text = with_password(result.startup_ini, PASSWORD_PLACEHOLDER if password is None else password)
    else:
        text, name = result.template, template_file_name(ea)
    response = HttpResponse(text, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "no-store"
    return response
