"""REST API for a person's own data rights and email confirmation (docs/privacy.md, docs/security.md).

``/api/auth/verify-email`` (the signed link's token), ``/api/auth/verify-email/resend``, ``/api/me/consent``
(marketing sync opt-in, every change audited), ``/api/me/export`` (everything held about the caller, JSON) and
``/api/me/delete`` (account deletion with the password, and the two-factor code when enrolled).
"""

from __future__ import annotations

import json

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from config.net import client_ip

from . import data_rights, ports, verification
from .api import ERRORS, ErrorSerializer
from .choices import ConsentSource
from .roles import PUBLIC, SIGNED_IN

VERIFIED = inline_serializer(
    "EmailVerification",
    {"email": serializers.EmailField(), "email_verified_at": serializers.DateTimeField(allow_null=True)},
)


class VerifyEmailSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=1024, help_text="The token in the emailed link (/email/verify/<token>/).")


class VerifyEmailView(APIView):
    """Confirm an email address with the token of the link sent at sign-up (opening it twice is harmless)."""

    capabilities = PUBLIC
    authentication_classes: list = []
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"

    @extend_schema(
        request=VerifyEmailSerializer,
        responses={200: VERIFIED, **ERRORS, 429: OpenApiResponse(ErrorSerializer, description="Throttled")},
        tags=["auth"],
    )
    def post(self, request):
        data = VerifyEmailSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = verification.email_verify(data.validated_data["token"])
        return Response({"email": user.email, "email_verified_at": user.email_verified_at})


class ResendVerificationView(APIView):
    """Email a new confirmation link to the caller (at most once a minute; nothing to do once confirmed)."""

    capabilities = SIGNED_IN

    @extend_schema(
        request=None,
        responses={
            202: inline_serializer(
                "VerificationResent", {"sent": serializers.BooleanField(), "email_verified": serializers.BooleanField()}
            ),
            **ERRORS,
        },
        tags=["auth"],
    )
    def post(self, request):
        sent = verification.verification_send(request.user)
        return Response({"sent": sent, "email_verified": request.user.email_verified}, status=status.HTTP_202_ACCEPTED)


class ConsentSerializer(serializers.Serializer):
    marketing = serializers.BooleanField(help_text="Opt in to marketing sync (your figures pushed to Systeme.io).")


CONSENT = inline_serializer(
    "MarketingConsent",
    {
        "marketing": serializers.BooleanField(),
        "changed_at": serializers.DateTimeField(allow_null=True),
        "legal_basis": serializers.ChoiceField(
            choices=["consent", "contract"],
            help_text="The broker's basis for marketing sync: 'contract' syncs every trader whatever this says.",
        ),
        "history": serializers.ListField(child=serializers.DictField()),
    },
)


class ConsentView(APIView):
    """The caller's marketing-sync consent; each change is recorded (when, from what to what, through which path)."""

    capabilities = SIGNED_IN

    def _body(self, user) -> dict:
        return {
            "marketing": user.marketing_consent,
            "changed_at": user.marketing_consent_at,
            "legal_basis": ports.marketing_basis(),
            "history": data_rights.consent_history(user),
        }

    @extend_schema(responses={200: CONSENT, **ERRORS}, tags=["privacy"])
    def get(self, request):
        return Response(self._body(request.user))

    @extend_schema(request=ConsentSerializer, responses={200: CONSENT, **ERRORS}, tags=["privacy"])
    def put(self, request):
        data = ConsentSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        data_rights.consent_set(
            user=request.user,
            granted=data.validated_data["marketing"],
            source=ConsentSource.API,
            actor=request.user,
            ip_address=client_ip(request),
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
        )
        return Response(self._body(request.user))


def export_response(request) -> HttpResponse:
    """The caller's data as a JSON download (shared by the API and the Settings page)."""
    data = data_rights.personal_data_export(
        user=request.user, ip_address=client_ip(request), user_agent=request.META.get("HTTP_USER_AGENT", "")
    )
    response = HttpResponse(json.dumps(data, cls=DjangoJSONEncoder, indent=1), content_type="application/json")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="my-data-{stamp}.json"'
    response["Cache-Control"] = "no-store"
    return response


class ExportView(APIView):
    """Everything held about the caller, as JSON: profile, consent history, MT5 accounts (no credentials) with their
    snapshots, positions, orders and deals, copy links, bonuses, plan and subscriptions, marketing contact."""

    capabilities = SIGNED_IN

    @extend_schema(
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="The data, as a download"), **ERRORS},
        tags=["privacy"],
    )
    def get(self, request):
        return export_response(request)


class DeleteSerializer(serializers.Serializer):
    password = serializers.CharField(max_length=128, trim_whitespace=False, write_only=True)
    otp_code = serializers.CharField(
        max_length=32, required=False, allow_blank=True, default="", help_text="Needed when two-factor login is on."
    )


class DeleteAccountView(APIView):
    """Delete the caller's account: credentials and history erased, money and audit records kept under a pseudonym
    (docs/privacy.md). Tokens and sessions stop working at once."""

    capabilities = SIGNED_IN
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"

    @extend_schema(
        request=DeleteSerializer,
        responses={
            204: None,
            **ERRORS,
            409: OpenApiResponse(ErrorSerializer, description="Already deleted"),
            429: OpenApiResponse(ErrorSerializer, description="Throttled"),
        },
        tags=["privacy"],
    )
    def post(self, request):
        data = DeleteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        data_rights.account_erase(
            user=request.user,
            password=data.validated_data["password"],
            otp_code=data.validated_data["otp_code"],
            ip_address=client_ip(request),
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
