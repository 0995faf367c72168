"""REST edges of the EA protocol: heartbeat, commands (with long poll), command-ack, and the owner's token endpoints.

The EA endpoints skip DRF's parsers, serializers and cache throttles on purpose: they read the raw body
once, validate it with the protocol's strict parser and count requests with atomic Redis counters.
"""

from __future__ import annotations

from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from django.http.request import RawPostDataException
from django.shortcuts import get_object_or_404
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import authentication, exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import ERRORS, ErrorSerializer
from accounts.models import TradingAccount
from accounts.permissions import restrict
from accounts.roles import EA
from config.errors import error_body
from config.net import client_ip
from mt5bridge import commands as cq
from mt5bridge.ea import edge, pipeline, services
from mt5bridge.ea.models import EAToken
from mt5bridge.ea.protocol import MAX_POLL_COMMANDS, ProtocolError, decode_ack, parse_poll

EA_ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="The message breaks the protocol (details.field says where)"),
    401: OpenApiResponse(ErrorSerializer, description="Missing, wrong or revoked EA token"),
    413: OpenApiResponse(ErrorSerializer, description="Body larger than EA_MAX_BODY_BYTES"),
    429: OpenApiResponse(ErrorSerializer, description="More than EA_THROTTLE_PER_SECOND requests for this account"),
}


def extract_token(meta: dict) -> str | None:
    """``Authorization: Bearer <token>`` or ``X-EA-Token: <token>``."""
    header = meta.get("HTTP_AUTHORIZATION", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return meta.get("HTTP_X_EA_TOKEN") or None


class EATokenAuthentication(authentication.BaseAuthentication):
    """Authenticates an EA by its account token; the account is taken from the token, never from the body."""

    def authenticate(self, request):
        token = extract_token(request.META)
        if not token:
            return None
        ip = client_ip(request)
        client = services.ea_authenticate(token)
        if client is None:
            if not services.bad_token_allows(ip):
                raise exceptions.Throttled(detail="Too many wrong EA tokens from this address.")
            raise exceptions.AuthenticationFailed("The EA token is wrong or has been revoked.")
        return client, token

    def authenticate_header(self, request):
        return 'Bearer realm="ea"'


class EAView(APIView):
    authentication_classes = [EATokenAuthentication]
    capabilities = EA
    throttle_classes: list = []
    parser_classes: list = []

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if not services.ea_throttle_allows(request.user):
            raise exceptions.Throttled(wait=1)

    @staticmethod
    def read_body(request) -> bytes:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.EA_MAX_BODY_BYTES:
            raise _TooLarge()
        try:
            body = request._request.body
        except (RequestDataTooBig, RawPostDataException):
            raise _TooLarge() from None
        if len(body) > settings.EA_MAX_BODY_BYTES:
            raise _TooLarge()
        return body


class _TooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The body is larger than the protocol allows."
    default_code = "too_large"


def protocol_error(exc: ProtocolError) -> JsonResponse:
    return JsonResponse(error_body("protocol_error", exc.message, {"field": exc.field}), status=400)


_COMMAND = inline_serializer(
    "EACommand",
    {
        "id": serializers.UUIDField(),
        "kind": serializers.CharField(),
        "params": serializers.JSONField(),
        "comment": serializers.CharField(),
        "created_at": serializers.FloatField(),
        "expires_at": serializers.FloatField(allow_null=True),
    },
)
_REPLY = inline_serializer(
    "EAReply",
    {
        "v": serializers.IntegerField(),
        "status": serializers.ChoiceField(["ok", "denied"]),
        "reason": serializers.CharField(required=False),
        "server_time": serializers.FloatField(),
        "next_beat_ms": serializers.IntegerField(),
        "commands": serializers.ListField(child=_COMMAND),
        "acks": serializers.ListField(child=serializers.JSONField(), required=False),
    },
)


class HeartbeatView(EAView):
    """The EA's state, positions, orders, terminal info and command results; the reply carries the due commands."""

    @extend_schema(
        request={"application/json": OpenApiTypes.OBJECT},
        responses={200: _REPLY, **EA_ERRORS},
        tags=["ea"],
        description="JSON schema of the body: docs/ea-protocol.md (protocol version 1).",
    )
    def post(self, request):
        body = self.read_body(request)
        try:
            reply = pipeline.heartbeat_process(client=request.user, body=body)
        except ProtocolError as exc:
            return protocol_error(exc)
        return JsonResponse(reply)


class CommandsView(EAView):
    """Poll for due commands; with ``wait=N`` the request is held up to N seconds until one arrives."""

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "wait", int, description=f"long poll: hold up to N s (0–{settings.EA_LONG_POLL_MAX_SECONDS})"
            ),
            OpenApiParameter("max", int, description=f"at most this many commands (1–{MAX_POLL_COMMANDS}, default 50)"),
        ],
        responses={200: _REPLY, **EA_ERRORS},
        tags=["ea"],
    )
    def get(self, request):
        try:
            wait, limit = parse_poll(
                request.query_params.get("wait"),
                request.query_params.get("max"),
                max_wait=settings.EA_LONG_POLL_MAX_SECONDS,
            )
        except ProtocolError as exc:
            return protocol_error(exc)
        account_id = request.user.account_id
        allowed, reason = services.ea_poll_access(request.user)

        def deliver() -> list[dict]:
            return cq.commands_deliver(account_id=account_id, limit=limit)

        commands = deliver() if allowed else []
        if allowed and not commands and wait:
            # The ASGI edge's long poll, run from this thread (its deliveries come back to it): one mechanism.
            commands = async_to_sync(edge.wait_for_commands)(account_id, wait, sync_to_async(deliver))
        return JsonResponse(pipeline.poll_reply(allowed=allowed, reason=reason, commands=commands))


class CommandAckView(EAView):
    """Report command results outside a heartbeat (the heartbeat's ``results`` does the same)."""

    @extend_schema(
        request={"application/json": OpenApiTypes.OBJECT},
        responses={
            200: inline_serializer("EAAckReply", {"acks": serializers.ListField(child=serializers.JSONField())}),
            **EA_ERRORS,
        },
        tags=["ea"],
    )
    def post(self, request):
        body = self.read_body(request)
        try:
            results = decode_ack(body)
        except ProtocolError as exc:
            return protocol_error(exc)
        outcomes = cq.command_results_apply(account_id=request.user.account_id, results=results)
        return JsonResponse(services.ack_reply(outcomes))


# --- owner side: the account's token ---


class EATokenInfoSerializer(serializers.Serializer):
    exists = serializers.BooleanField()
    active = serializers.BooleanField()
    hint = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField(allow_null=True)
    rotated_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)
    connection = serializers.ChoiceField(["online", "stale", "offline"])


def token_info(account: TradingAccount) -> dict:
    token = EAToken.objects.filter(account=account).first()
    return {
        "exists": token is not None,
        "active": bool(token and token.is_active),
        "hint": token.hint if token else "",
        "created_at": token.created_at if token else None,
        "rotated_at": token.rotated_at if token else None,
        "revoked_at": token.revoked_at if token else None,
        "connection": services.ea_connection_status(account.pk),
    }


class AccountEATokenView(APIView):
    """The EA token of one trading account: see its status, issue/rotate it (shown once), revoke it."""

    capabilities = {"GET": "accounts.view", "POST": "accounts.manage", "DELETE": "accounts.manage"}

    throttle_scope = "ea"

    def _account(self, request, account_id, perm: str) -> TradingAccount:
        return get_object_or_404(restrict(request.user, perm, TradingAccount.objects.all()), pk=account_id)

    @extend_schema(responses={200: EATokenInfoSerializer, **ERRORS}, tags=["ea"])
    def get(self, request, account_id):
        account = self._account(request, account_id, "accounts.view_tradingaccount")
        return Response(EATokenInfoSerializer(token_info(account)).data)

    @extend_schema(
        request=None,
        responses={
            201: inline_serializer(
                "EATokenIssued",
                {
                    "token": serializers.CharField(help_text="Shown once; only its hash is stored."),
                    "info": EATokenInfoSerializer(),
                },
            ),
            **ERRORS,
        },
        tags=["ea"],
    )
    def post(self, request, account_id):
        account = self._account(request, account_id, "accounts.change_tradingaccount")
        token = services.ea_token_issue(account=account, by=request.user)
        return Response(
            {"token": token, "info": EATokenInfoSerializer(token_info(account)).data}, status=status.HTTP_201_CREATED
        )

    @extend_schema(request=None, responses={200: EATokenInfoSerializer, **ERRORS}, tags=["ea"])
    def delete(self, request, account_id):
        account = self._account(request, account_id, "accounts.change_tradingaccount")
        services.ea_token_revoke(account=account, by=request.user)
        return Response(EATokenInfoSerializer(token_info(account)).data)


class EATokenScheme(OpenApiAuthenticationExtension):
    """Documents the EA token in the OpenAPI schema (a bearer UUID, or the X-EA-Token header)."""

    target_class = "mt5bridge.ea.api.EATokenAuthentication"
    name = "eaToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "UUID (EA token; X-EA-Token also accepted)"}
