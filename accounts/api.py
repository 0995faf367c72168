"""REST API for people and trading accounts: auth, /api/accounts and its actions."""

from __future__ import annotations

from django.contrib.auth import authenticate
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from config.errors import ServiceError

from . import freshness, jwt, services
from .choices import AccountCategory, PasswordKind
from .figures import FIGURES
from .models import SyncRun, TradingAccount
from .roles import PUBLIC, SIGNED_IN
from .selectors import accounts_visible_to, sync_success_rate

UUID_PATTERN = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
MAX_LOGIN = 2**63 - 1


class ErrorSerializer(serializers.Serializer):
    """The JSON error body every endpoint uses."""

    error = inline_serializer(
        "ErrorDetail",
        fields={
            "code": serializers.CharField(),
            "message": serializers.CharField(),
            "details": serializers.JSONField(required=False),
        },
    )


ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Invalid input"),
    401: OpenApiResponse(ErrorSerializer, description="Not authenticated"),
    403: OpenApiResponse(ErrorSerializer, description="Not allowed"),
    404: OpenApiResponse(ErrorSerializer, description="Not found"),
}


# --- Auth ---------------------------------------------------------------------------------


class LoginSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=128, trim_whitespace=False, write_only=True)


class UserSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    email = serializers.EmailField(read_only=True)
    display_name = serializers.CharField(read_only=True)
    is_staff = serializers.BooleanField(read_only=True)
    email_verified = serializers.BooleanField(read_only=True, help_text="False until the sign-up link is opened.")
    marketing_consent = serializers.BooleanField(read_only=True)
    roles = serializers.SerializerMethodField()

    def get_roles(self, user) -> list[str]:
        return sorted(user.groups.values_list("name", flat=True))


class LoginView(APIView):
    """Exchange email and password for a bearer access token and a refresh token.

    Repeated failures lock the login out (django-axes), and the "auth" throttle limits the rate.
    """

    capabilities = PUBLIC
    authentication_classes: list = []
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"

    @extend_schema(
        request=LoginSerializer,
        responses={
            200: inline_serializer(
                "TokenResponse",
                {
                    "access": serializers.CharField(),
                    "refresh": serializers.CharField(),
                    "access_expires_at": serializers.DateTimeField(),
                    "user": UserSerializer(),
                },
            ),
            **ERRORS,
            429: OpenApiResponse(ErrorSerializer, description="Locked out or throttled"),
        },
        tags=["auth"],
    )
    def post(self, request):
        data = LoginSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(
            request=request, username=data.validated_data["email"], password=data.validated_data["password"]
        )
        if user is None:
            if getattr(request, "axes_locked_out", False):
                return Response(
                    {"error": {"code": "locked_out", "message": "Too many failed login attempts."}},
                    status=status.HTTP_429_TOO_MANY_REQUESTS,
                )
            raise ServiceError("Email or password is wrong.", code="invalid_credentials", status_code=401)
        return Response({**jwt.jwt_issue(user=user), "user": UserSerializer(user).data})


class RefreshSerializer(serializers.Serializer):
    refresh = serializers.CharField(max_length=4096, trim_whitespace=True)


TOKEN_PAIR = inline_serializer(
    "TokenPair",
    {
        "access": serializers.CharField(),
        "refresh": serializers.CharField(),
        "access_expires_at": serializers.DateTimeField(),
    },
)


class RefreshView(APIView):
    """Trade a refresh token for a new access and refresh token; the old refresh token stops working."""

    capabilities = PUBLIC
    authentication_classes: list = []  # the refresh token is the credential (the access token may have expired)
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth"

    @extend_schema(request=RefreshSerializer, responses={200: TOKEN_PAIR, **ERRORS}, tags=["auth"])
    def post(self, request):
        data = RefreshSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(jwt.jwt_refresh(raw_refresh=data.validated_data["refresh"]))


class LogoutView(APIView):
    """Revoke a refresh token (blacklisted at once); the access token ends by itself within its lifetime."""

    capabilities = SIGNED_IN

    @extend_schema(request=RefreshSerializer, responses={204: None, **ERRORS}, tags=["auth"])
    def post(self, request):
        data = RefreshSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        jwt.jwt_revoke(raw_refresh=data.validated_data["refresh"], user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    capabilities = SIGNED_IN

    @extend_schema(responses={200: UserSerializer, **ERRORS}, tags=["auth"])
    def get(self, request):
        return Response(UserSerializer(request.user).data)


# --- Trading accounts ---------------------------------------------------------------------


class DataAgeSerializer(serializers.Serializer):
    """How old the account's figures are (accounts/freshness.py): never presented as current once stale."""

    as_of = serializers.DateTimeField(
        allow_null=True, help_text="The newer of the last sync and the EA's last heartbeat; null: no data yet."
    )
    source = serializers.ChoiceField(choices=["sync", "ea", ""], help_text="Which of the two that was.")
    age_seconds = serializers.IntegerField(allow_null=True)
    stale = serializers.BooleanField(help_text="Older than ACCOUNT_STALE_SECONDS (or no data yet).")
    stale_since = serializers.DateTimeField(
        allow_null=True, help_text="as_of when the data is stale (show it as 'stale since'); null while fresh."
    )


class _AccountListSerializer(serializers.ListSerializer):
    def to_representation(self, data):
        accounts = list(data.all() if hasattr(data, "all") else data)
        self.context["data_ages"] = freshness.data_ages(accounts)  # one look-up of the EAs' beats for the page
        return super().to_representation(accounts)


class TradingAccountSerializer(serializers.ModelSerializer):
    sync_status_display = serializers.CharField(source="get_sync_status_display", read_only=True)
    owner = serializers.EmailField(source="owner.email", read_only=True)
    data_age = serializers.SerializerMethodField()
    access = serializers.ChoiceField(
        source="password_kind", choices=PasswordKind.choices, read_only=True, help_text="The kind of MT5 login stored."
    )

    @extend_schema_field(DataAgeSerializer)
    def get_data_age(self, account) -> dict:
        ages = self.context.get("data_ages") or {}
        age = ages.get(account.pk) or freshness.account_data_age(account)
        return DataAgeSerializer(age.as_dict()).data

    class Meta:
        model = TradingAccount
        fields = [
            "id",
            "owner",
            "login",
            "server",
            "broker",
            "category",
            "name",
            "currency",
            "leverage",
            "is_hedging",
            "is_active",
            "gateway_kind",
            "access",
            "ownership_proof",
            "sync_status",
            "sync_status_display",
            "last_sync_at",
            "data_age",
            "consecutive_errors",
            "last_error",
            *FIGURES,
            "created_at",
        ]
        read_only_fields = fields
        list_serializer_class = _AccountListSerializer


class TradingAccountCreateSerializer(serializers.Serializer):
    login = serializers.IntegerField(min_value=1, max_value=MAX_LOGIN)
    password = serializers.CharField(max_length=128, trim_whitespace=False, write_only=True)
    server = serializers.CharField(max_length=128)
    category = serializers.ChoiceField(choices=AccountCategory.choices, default=AccountCategory.DEMO)
    name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    access = serializers.ChoiceField(
        source="password_kind",
        choices=PasswordKind.choices,
        default=PasswordKind.MASTER,
        help_text="investor: the password is the investor (read-only) one; then holder_name and currency must "
        "match the MT5 account.",
    )
    holder_name = serializers.CharField(
        max_length=150, required=False, allow_blank=True, default="", help_text="The MT5 account holder's name."
    )
    currency = serializers.CharField(
        max_length=8, required=False, allow_blank=True, default="", help_text="The MT5 account's deposit currency."
    )


class TradingAccountUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    category = serializers.ChoiceField(choices=AccountCategory.choices, required=False)
    is_active = serializers.BooleanField(required=False)
    password = serializers.CharField(max_length=128, trim_whitespace=False, write_only=True, required=False)


class SyncQueuedSerializer(serializers.Serializer):
    status = serializers.CharField()
    account = TradingAccountSerializer()


@extend_schema(tags=["accounts"])
class TradingAccountViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """The MT5 accounts the user can see: their own, those shared with them, all for staff roles."""

    serializer_class = TradingAccountSerializer
    capabilities = {
        "list": "accounts.view",
        "retrieve": "accounts.view",
        "create": "accounts.connect",
        "partial_update": "accounts.manage",
        "destroy": "accounts.manage",
        "sync": "accounts.manage",
        "resume": "accounts.manage",
    }
    lookup_value_regex = UUID_PATTERN
    filterset_fields = ["category", "is_active", "sync_status", "server"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    object_perm_action: str | None = None  # set per action: the object permission it needs

    def get_queryset(self):
        return accounts_visible_to(self.request.user).order_by("name", "login")

    @extend_schema(
        request=TradingAccountCreateSerializer,
        responses={
            201: TradingAccountSerializer,
            **ERRORS,
            409: OpenApiResponse(ErrorSerializer, description="Already connected"),
            502: OpenApiResponse(ErrorSerializer, description="MT5 server unreachable"),
        },
    )
    def create(self, request):
        data = TradingAccountCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        account = services.trading_account_create(owner=request.user, **data.validated_data)
        return Response(TradingAccountSerializer(account).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=TradingAccountUpdateSerializer, responses={200: TradingAccountSerializer, **ERRORS})
    def partial_update(self, request, pk=None):
        account = self.get_object()
        data = TradingAccountUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        account = services.trading_account_update(account=account, **data.validated_data)
        return Response(TradingAccountSerializer(account).data)

    @extend_schema(responses={204: None, **ERRORS})
    def destroy(self, request, *args, **kwargs):
        services.trading_account_delete(account=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={202: SyncQueuedSerializer, **ERRORS})
    @action(detail=True, methods=["post"], throttle_classes=[ScopedRateThrottle], object_perm_action="sync")
    def sync(self, request, pk=None):
        """Queue a sync of this account now."""
        account = self.get_object()
        services.trading_account_sync_now(account=account, trigger="api")
        return Response(
            {"status": "queued", "account": TradingAccountSerializer(account).data}, status=status.HTTP_202_ACCEPTED
        )

    @extend_schema(request=None, responses={200: TradingAccountSerializer, **ERRORS})
    @action(detail=True, methods=["post"], object_perm_action="change")
    def resume(self, request, pk=None):
        """Resume syncing an account that was paused after repeated errors."""
        account = services.trading_account_resume(account=self.get_object())
        return Response(TradingAccountSerializer(account).data)

    def get_throttles(self):
        if self.action == "sync":
            self.throttle_scope = "sync"
        return super().get_throttles()


class SyncHealthView(APIView):
    """Share of successful syncs over the last 24 hours, over the accounts the user can see."""

    capabilities = "accounts.view"

    @extend_schema(
        responses={
            200: inline_serializer(
                "SyncHealth",
                {
                    "since": serializers.DateTimeField(),
                    "total": serializers.IntegerField(),
                    "succeeded": serializers.IntegerField(),
                    "rate": serializers.FloatField(allow_null=True),
                },
            ),
            **ERRORS,
        },
        tags=["accounts"],
    )
    def get(self, request):
        visible = accounts_visible_to(request.user)
        return Response(sync_success_rate(runs=SyncRun.objects.filter(account__in=visible)))
