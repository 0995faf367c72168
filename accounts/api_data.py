"""REST API over a trader's data: dashboard summary, analytics, snapshots, positions, deals, /api/mt5/*."""

from __future__ import annotations

from datetime import date

from django import forms
from django.shortcuts import get_object_or_404
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from config.errors import ServiceError
from config.pagination import BoundedLimitOffsetPagination

from . import ports, services
from .analytics.history import statistics_for_account
from .api import ERRORS, ErrorSerializer
from .choices import SyncStatus
from .dashboard import dashboard_summary, mt5_stats
from .figures import FIGURES
from .models import AccountSnapshot, Deal, Position, TradingAccount
from .permissions import restrict

VIEW = "accounts.view_tradingaccount"
MIN_DATE, MAX_DATE = date(1970, 1, 1), date(9998, 12, 31)
BIGINT = 2**63 - 1


def visible_account(request, account_id) -> TradingAccount:
    """The account if the user may see it; 404 otherwise (an outsider learns nothing)."""
    return get_object_or_404(restrict(request.user, VIEW, TradingAccount.objects.all()), pk=account_id)


# --- Pagination ---------------------------------------------------------------------------


class NoCountLimitOffsetPagination(BoundedLimitOffsetPagination):
    """LimitOffset without COUNT(*): reads one row more than the page to know if there is a next one.

    Deals and snapshots grow into millions of rows; counting them on every page costs more
    than the page itself. The response has ``next``/``previous`` links but no ``count``.
    """

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        self.limit = self.get_limit(request)
        self.offset = self.get_offset(request)
        self.count = None
        rows = list(queryset[self.offset : self.offset + self.limit + 1])
        self.has_next = len(rows) > self.limit
        return rows[: self.limit]

    def get_next_link(self):
        if not self.has_next:
            return None
        url = self.request.build_absolute_uri()
        url = replace_query_param(url, self.limit_query_param, self.limit)
        return replace_query_param(url, self.offset_query_param, self.offset + self.limit)

    def get_paginated_response(self, data):
        return Response({"next": self.get_next_link(), "previous": self.get_previous_link(), "results": data})

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["results"],
            "properties": {
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "previous": {"type": "string", "nullable": True, "format": "uri"},
                "results": schema,
            },
        }


# --- Filters ------------------------------------------------------------------------------


class IntegerFilter(filters.NumberFilter):
    field_class = forms.IntegerField


def _range(field: str) -> dict:
    return {
        "from": filters.IsoDateTimeFilter(
            field_name=field, lookup_expr="gte", help_text="From this moment (ISO 8601 date or date-time), inclusive."
        ),
        "to": filters.IsoDateTimeFilter(
            field_name=field, lookup_expr="lt", help_text="Up to this moment (ISO 8601), exclusive."
        ),
    }


class _DealFilterMeta:
    model = Deal
    fields: list[str] = []


# ``from`` is a keyword, so the filter sets are built with type().
DealFilter = type(
    "DealFilter",
    (filters.FilterSet,),
    {
        **_range("time"),
        "symbol": filters.CharFilter(field_name="symbol", max_length=64),
        "magic": IntegerFilter(field_name="magic", min_value=-BIGINT - 1, max_value=BIGINT),
        "type": IntegerFilter(
            field_name="deal_type",
            min_value=0,
            max_value=32767,
            help_text="MT5 DEAL_TYPE_* value (0 buy, 1 sell, 2 balance, 3 credit, 6 bonus…)",
        ),
        "entry": IntegerFilter(
            field_name="entry",
            min_value=0,
            max_value=32767,
            help_text="MT5 DEAL_ENTRY_* value (0 in, 1 out, 2 in/out, 3 out by)",
        ),
        "position": IntegerFilter(field_name="position_id", min_value=-BIGINT - 1, max_value=BIGINT),
        "Meta": _DealFilterMeta,
    },
)


class _SnapshotFilterMeta:
    model = AccountSnapshot
    fields: list[str] = []


SnapshotFilter = type("SnapshotFilter", (filters.FilterSet,), {**_range("taken_at"), "Meta": _SnapshotFilterMeta})


class PositionFilter(filters.FilterSet):
    symbol = filters.CharFilter(field_name="symbol", max_length=64)
    magic = IntegerFilter(field_name="magic", min_value=-BIGINT - 1, max_value=BIGINT)
    side = filters.ChoiceFilter(field_name="side", choices=[(0, "buy"), (1, "sell")])

    class Meta:
        model = Position
        fields: list[str] = []


# --- Serializers (schema) and fast row shaping (hot path) --------------------------------


def _money():
    return serializers.DecimalField(max_digits=20, decimal_places=2)


class DealSerializer(serializers.Serializer):
    ticket = serializers.IntegerField()
    order = serializers.IntegerField()
    time = serializers.DateTimeField()
    deal_type = serializers.IntegerField()
    entry = serializers.IntegerField()
    magic = serializers.IntegerField()
    position_id = serializers.IntegerField()
    reason = serializers.IntegerField()
    volume = serializers.DecimalField(max_digits=14, decimal_places=4)
    price = serializers.DecimalField(max_digits=20, decimal_places=8)
    commission = _money()
    swap = _money()
    profit = _money()
    fee = _money()
    symbol = serializers.CharField()
    comment = serializers.CharField()
    external_id = serializers.CharField()


class SnapshotSerializer(serializers.Serializer):
    taken_at = serializers.DateTimeField()
    balance = _money()
    credit = _money()
    equity = _money()
    margin = _money()
    margin_free = _money()
    margin_level = serializers.DecimalField(max_digits=20, decimal_places=2, allow_null=True)
    floating_profit = _money()


class PositionSerializer(serializers.Serializer):
    ticket = serializers.IntegerField()
    symbol = serializers.CharField()
    side = serializers.ChoiceField(choices=["buy", "sell"])
    volume = serializers.DecimalField(max_digits=14, decimal_places=4)
    price_open = serializers.DecimalField(max_digits=20, decimal_places=8)
    price_current = serializers.DecimalField(max_digits=20, decimal_places=8)
    sl = serializers.DecimalField(max_digits=20, decimal_places=8)
    tp = serializers.DecimalField(max_digits=20, decimal_places=8)
    swap = _money()
    profit = _money()
    magic = serializers.IntegerField()
    comment = serializers.CharField()
    identifier = serializers.IntegerField()
    opened_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


def _shape(row: dict, decimals: tuple[str, ...], times: tuple[str, ...]) -> dict:
    # Decimals as fixed-point strings (DRF's JSON encoder would turn them into floats; str() gives "0E-8" for a
    # zero with eight places, which the schema's decimal pattern refuses), times as ISO 8601.
    for key in decimals:
        if row[key] is not None:
            row[key] = format(row[key], "f")
    for key in times:
        row[key] = row[key].isoformat() if row[key] is not None else None
    return row


DEAL_FIELDS = tuple(DealSerializer().fields)
DEAL_DECIMALS = ("volume", "price", "commission", "swap", "profit", "fee")
SNAPSHOT_FIELDS = tuple(SnapshotSerializer().fields)
SNAPSHOT_DECIMALS = FIGURES
POSITION_FIELDS = tuple(PositionSerializer().fields)
POSITION_DECIMALS = ("volume", "price_open", "price_current", "sl", "tp", "swap", "profit")


class AccountDataList(ListAPIView):
    """Rows of one account the user can see, filtered and paginated."""

    capabilities = "accounts.view"

    model = None
    fields: tuple[str, ...] = ()
    decimals: tuple[str, ...] = ()
    times: tuple[str, ...] = ()
    ordering: tuple[str, ...] = ()
    pagination_class = NoCountLimitOffsetPagination

    def account(self) -> TradingAccount:
        """The account of the URL, as the requester may see it (404 otherwise); looked up once per request."""
        if not hasattr(self, "_account"):
            self._account = visible_account(self.request, self.kwargs["account_id"])
        return self._account

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.model.objects.none()
        return self.model.objects.filter(account=self.account()).order_by(*self.ordering).values(*self.fields)

    def list(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response([self.shape(row) for row in page])

    def shape(self, row: dict) -> dict:
        return _shape(row, self.decimals, self.times)


@extend_schema(tags=["account data"], responses={200: DealSerializer(many=True), **ERRORS})
class AccountDealList(AccountDataList):
    """Deal history of one account, newest first. No total count (see docs/analytics.md)."""

    model = Deal
    serializer_class = DealSerializer
    filterset_class = DealFilter
    fields = DEAL_FIELDS
    decimals = DEAL_DECIMALS
    times = ("time",)
    ordering = ("-time", "-ticket")

    def get_queryset(self):
        deals = super().get_queryset()
        if getattr(self, "swagger_fake_view", False):
            return deals
        return ports.within_history(deals, self.account().owner, viewer=self.request.user)  # the plan's history window


@extend_schema(tags=["account data"], responses={200: SnapshotSerializer(many=True), **ERRORS})
class AccountSnapshotList(AccountDataList):
    """Balance/equity snapshots of one account, oldest first (chart order)."""

    model = AccountSnapshot
    serializer_class = SnapshotSerializer
    filterset_class = SnapshotFilter
    fields = SNAPSHOT_FIELDS
    decimals = SNAPSHOT_DECIMALS
    times = ("taken_at",)
    ordering = ("taken_at", "id")


@extend_schema(tags=["account data"], responses={200: PositionSerializer(many=True), **ERRORS})
class AccountPositionList(AccountDataList):
    """Open positions of one account as of its last sync."""

    model = Position
    serializer_class = PositionSerializer
    filterset_class = PositionFilter
    pagination_class = BoundedLimitOffsetPagination
    fields = POSITION_FIELDS
    decimals = POSITION_DECIMALS
    times = ("opened_at", "updated_at")
    ordering = ("opened_at", "ticket")

    def shape(self, row: dict) -> dict:
        row = super().shape(row)
        row["side"] = "buy" if row["side"] == 0 else "sell"
        return row


# --- Dashboard and analytics ----------------------------------------------------------------


GAIN_FIELDS = {
    "balance": serializers.CharField(),
    "credit": serializers.CharField(),
    "equity": serializers.CharField(),
    "margin": serializers.CharField(),
    "margin_level": serializers.CharField(allow_null=True),
    "floating_profit": serializers.CharField(),
    "today_gain": serializers.CharField(),
    "today_gain_pct": serializers.FloatField(allow_null=True),
    "month_gain": serializers.CharField(),
    "month_gain_pct": serializers.FloatField(allow_null=True),
}
SUMMARY_ACCOUNT_FIELDS = {
    "id": serializers.UUIDField(),
    "name": serializers.CharField(),
    "login": serializers.IntegerField(),
    "server": serializers.CharField(),
    "broker": serializers.CharField(),
    "currency": serializers.CharField(),
    "category": serializers.CharField(),
    "margin_free": serializers.CharField(),
    **GAIN_FIELDS,
    "last_sync_at": serializers.DateTimeField(allow_null=True),
    "data_as_of": serializers.DateTimeField(
        allow_null=True, help_text="The newer of the last sync and the EA's last heartbeat (null: no data yet)."
    ),
    "stale": serializers.BooleanField(help_text="The figures are older than ACCOUNT_STALE_SECONDS (or absent)."),
    "stale_since": serializers.DateTimeField(allow_null=True, help_text="data_as_of when stale; null while fresh."),
    "stale_label": serializers.CharField(help_text='"stale since <time>", "no data yet", or empty while fresh.'),
    "is_active": serializers.BooleanField(),
    "sync_status": serializers.CharField(),
    "sync_status_display": serializers.CharField(),
    "connection": serializers.ChoiceField(
        choices=["connected", "connecting", "error", "auth_failed", "paused", "inactive"]
    ),
    "last_error": serializers.CharField(),
    "consecutive_errors": serializers.IntegerField(),
}
SUMMARY_TOTAL_FIELDS = {"currency": serializers.CharField(), "accounts": serializers.IntegerField(), **GAIN_FIELDS}
DashboardTotalSerializer = type("DashboardTotalSerializer", (serializers.Serializer,), dict(SUMMARY_TOTAL_FIELDS))
DashboardSummarySerializer = inline_serializer(
    "DashboardSummary",
    {
        "generated_at": serializers.DateTimeField(),
        "day_start": serializers.DateTimeField(),
        "month_start": serializers.DateTimeField(),
        "totals": DashboardTotalSerializer(many=True),
        "accounts": inline_serializer("DashboardAccount", SUMMARY_ACCOUNT_FIELDS, many=True),
    },
)


class DashboardSummaryView(APIView):
    """Totals per currency and one row per account: balance, equity, floating P/L, today's and month's gain."""

    capabilities = "accounts.view"

    @extend_schema(responses={200: DashboardSummarySerializer, **ERRORS}, tags=["dashboard"])
    def get(self, request):
        return Response(dashboard_summary(request.user))


class AnalyticsQuerySerializer(serializers.Serializer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # "from" is a keyword, so the fields are added here rather than declared.
        self.fields["from"] = serializers.DateField(required=False)
        self.fields["to"] = serializers.DateField(required=False)

    def validate(self, attrs):
        for name in ("from", "to"):
            value = attrs.get(name)
            if value is not None and not MIN_DATE <= value <= MAX_DATE:
                raise serializers.ValidationError({name: [f"Must be between {MIN_DATE} and {MAX_DATE}."]})
        if attrs.get("from") and attrs.get("to") and attrs["from"] > attrs["to"]:
            raise serializers.ValidationError({"from": ["Must not be after 'to'."]})
        return attrs


AnalyticsSerializer = inline_serializer(
    "AccountAnalytics",
    {
        "account_id": serializers.UUIDField(),
        "currency": serializers.CharField(),
        "date_from": serializers.DateField(allow_null=True),
        "date_to": serializers.DateField(allow_null=True),
        "trades_count": serializers.IntegerField(),
        "min_trades": serializers.IntegerField(),
        "summary": serializers.DictField(help_text="Every statistic; keys in docs/analytics.md. Money as strings."),
        "insufficient": serializers.ListField(
            child=serializers.CharField(), help_text="Statistics withheld because of too few closed trades."
        ),
        "series": inline_serializer(
            "AnalyticsSeries",
            {
                "equity": serializers.ListField(
                    child=serializers.ListField(),
                    help_text="[time, equity, balance, estimated]: balance from the deals since the first deposit, "
                    "equity measured at snapshots and estimated (true) between them.",
                ),
                "growth": serializers.ListField(
                    child=serializers.ListField(),
                    help_text="[time, gain %, equity gain %]: time-weighted return, deposits and withdrawals neutral.",
                ),
                "drawdown": serializers.ListField(
                    child=serializers.ListField(), help_text="[time, % below peak] of the equity index, whole period."
                ),
                # Advanced analytics: present only when the owner's plan has them (see "advanced").
                "monthly_returns": serializers.ListField(child=serializers.DictField(), required=False),
                "by_symbol": serializers.ListField(child=serializers.DictField(), required=False),
                "by_magic": serializers.ListField(child=serializers.DictField(), required=False),
                "by_hour": serializers.ListField(child=serializers.DictField(), required=False),
                "by_weekday": serializers.ListField(child=serializers.DictField(), required=False),
                "profit_distribution": serializers.ListField(child=serializers.DictField(), required=False),
            },
        ),
        "advanced": serializers.DictField(
            required=False,
            help_text="Present when the owner's plan leaves advanced analytics out: required_plan, upgrade_url.",
        ),
    },
)


class AnalyticsView(APIView):
    """Every statistic of one account over whole UTC days (``from``/``to`` inclusive, both optional)."""

    capabilities = "accounts.view"

    @extend_schema(
        parameters=[
            OpenApiParameter("from", OpenApiTypes.DATE, description="First day (YYYY-MM-DD), inclusive."),
            OpenApiParameter("to", OpenApiTypes.DATE, description="Last day (YYYY-MM-DD), inclusive."),
        ],
        responses={200: AnalyticsSerializer, **ERRORS},
        tags=["analytics"],
    )
    def get(self, request, account_id):
        query = AnalyticsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        account = visible_account(request, account_id)
        return Response(
            statistics_for_account(
                account,
                date_from=query.validated_data.get("from"),
                date_to=query.validated_data.get("to"),
                viewer=request.user,
            )
        )


# --- The MT5 dashboard seed's endpoints -----------------------------------------------------


Mt5StatsSerializer = inline_serializer(
    "Mt5Stats",
    {
        "generated_at": serializers.DateTimeField(),
        "accounts": inline_serializer(
            "Mt5StatsAccounts",
            {
                "total": serializers.IntegerField(),
                "active": serializers.IntegerField(),
                "connected": serializers.IntegerField(),
                "by_sync_status": serializers.DictField(child=serializers.IntegerField()),
            },
        ),
        "totals": DashboardTotalSerializer(many=True),
        "open_positions": serializers.IntegerField(),
        "open_positions_profit": serializers.CharField(),
        "trades_today": serializers.IntegerField(),
        "last_sync_at": serializers.DateTimeField(allow_null=True),
        "sync_health": inline_serializer(
            "Mt5SyncHealth",
            {
                "since": serializers.DateTimeField(),
                "total": serializers.IntegerField(),
                "succeeded": serializers.IntegerField(),
                "rate": serializers.FloatField(allow_null=True),
            },
        ),
    },
)

Mt5RefreshSerializer = inline_serializer(
    "Mt5Refresh",
    {
        "queued": inline_serializer(
            "Mt5RefreshQueued",
            {"id": serializers.UUIDField(), "login": serializers.IntegerField(), "server": serializers.CharField()},
            many=True,
        ),
        "skipped": inline_serializer(
            "Mt5RefreshSkipped",
            {
                "id": serializers.UUIDField(),
                "login": serializers.IntegerField(),
                "server": serializers.CharField(),
                "code": serializers.CharField(),
                "reason": serializers.CharField(),
            },
            many=True,
        ),
    },
)


class Mt5StatsView(APIView):
    """Aggregates over every account the user can see: counts, money per currency, positions, sync health."""

    capabilities = "accounts.view"

    @extend_schema(responses={200: Mt5StatsSerializer, **ERRORS}, tags=["mt5"])
    def get(self, request):
        return Response(mt5_stats(request.user))


class Mt5RefreshView(APIView):
    """Queue a sync of every active account the user may sync; paused or inactive ones are skipped with a reason."""

    capabilities = "accounts.manage"

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "sync"

    @extend_schema(
        request=None,
        responses={202: Mt5RefreshSerializer, **ERRORS, 429: OpenApiResponse(ErrorSerializer, description="Throttled")},
        tags=["mt5"],
    )
    def post(self, request):
        accounts = restrict(request.user, "accounts.sync_tradingaccount", TradingAccount.objects.all())
        queued, skipped = [], []
        for account in accounts.order_by("name", "login"):
            ref = {"id": str(account.pk), "login": account.login, "server": account.server}
            if not account.is_active:
                skipped.append({**ref, "code": "inactive", "reason": "The account is deactivated."})
                continue
            if account.sync_status == SyncStatus.PAUSED:
                skipped.append(
                    {
                        **ref,
                        "code": "paused",
                        "reason": "Syncing is paused after repeated errors: "
                        f"{account.last_error or 'see the account'}. Resume it first.",
                    }
                )
                continue
            try:
                services.trading_account_sync_now(account=account, trigger="api")
            except ServiceError as exc:
                skipped.append({**ref, "code": exc.code, "reason": exc.message})
                continue
            queued.append(ref)
        return Response({"queued": queued, "skipped": skipped}, status=status.HTTP_202_ACCEPTED)
