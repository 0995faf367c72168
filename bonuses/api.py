"""REST API of the bonus back office: campaigns, bonuses, triggers, account lookup, monitoring, reports, audit."""

from __future__ import annotations

from decimal import Decimal

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import ERRORS, MAX_LOGIN, ErrorSerializer
from accounts.permissions import restrict
from config.errors import NotAllowed, ServiceError
from mt5bridge import gateway as gw

from . import reports, selectors
from .choices import CAMPAIGN_TRIGGERS, AuditAction, BonusStatus, BonusType, CampaignStatus
from .models import AuditLog, Bonus, Campaign, MonitoredAccount
from .services.assignment import eligibility_check
from .services.campaigns import (
    CAMPAIGN_FIELDS,
    campaign_create,
    campaign_duplicate,
    campaign_set_status,
    campaign_update,
)
from .services.ending import bonus_cancel, bonus_force_convert, bonus_override_leverage
from .services.manual import bonus_assign_manual
from .services.monitored import default_gateway, monitoring_register, monitoring_reset_errors
from .services.triggers import trigger_deposit, trigger_promo_code, trigger_registration

MONEY_MAX = Decimal("1000000000")
CONFLICT = {409: OpenApiResponse(ErrorSerializer, description="Conflict (not eligible, wrong state)")}
UNAVAILABLE = {503: OpenApiResponse(ErrorSerializer, description="MT5 unreachable; retry later")}


# --- Permissions -----------------------------------------------------------------------


class StaffView(APIView):
    """A bonus back-office endpoint: each HTTP method it serves declares its capability (accounts.roles)."""

    capabilities: dict[str, str] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # Only the methods a view declares a capability for, even when it inherits more handlers.
        methods = [m.lower() for m in cls.capabilities]
        cls.http_method_names = [*methods, *(["head"] if "get" in methods else []), "options"]

    def visible(self, perm: str, queryset):
        # Permission already checked for the method: restrict() gives staff roles every row.
        return restrict(self.request.user, perm, queryset)

    def gateway(self):
        return default_gateway()


def _paginate(view: APIView, queryset, serializer_class):
    paginator = view.paginator if hasattr(view, "paginator") else None
    from rest_framework.pagination import LimitOffsetPagination

    paginator = paginator or LimitOffsetPagination()
    page = paginator.paginate_queryset(queryset, view.request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


def _gateway_call(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except gw.GatewayUnavailable as exc:
        raise ServiceError(f"MT5 is unreachable: {exc}", code="mt5_unavailable", status_code=503) from None
    except gw.NotFound as exc:
        raise ServiceError(str(exc), code="account_not_found", status_code=404) from None


# --- Serializers -----------------------------------------------------------------------


def _money(**kwargs):
    return serializers.DecimalField(max_digits=20, decimal_places=2, min_value=Decimal("0"), max_value=MONEY_MAX,
                                    **kwargs)  # fmt: skip


def _strings(**kwargs):
    return serializers.ListField(child=serializers.CharField(max_length=64), max_length=500, required=False, **kwargs)


class CampaignSerializer(serializers.ModelSerializer):
    bonus_percent = serializers.DecimalField(max_digits=7, decimal_places=2, min_value=Decimal("0"),
                                             max_value=Decimal("1000"))  # fmt: skip
    max_bonus_amount = _money(required=False, allow_null=True)
    fixed_amount = _money(required=False, allow_null=True)
    min_deposit = _money(required=False)
    max_deposit = _money(required=False, allow_null=True)
    target_groups = _strings()
    target_countries = _strings()
    agent_codes = _strings()
    promo_codes = _strings()
    counting_symbols = _strings()
    triggers = serializers.ListField(child=serializers.ChoiceField(choices=CAMPAIGN_TRIGGERS), required=False,
                                     max_length=4)  # fmt: skip
    expiry_days = serializers.IntegerField(min_value=1, max_value=3650, required=False, allow_null=True)
    max_concurrent = serializers.IntegerField(min_value=0, max_value=1000, required=False)
    lots_per_unit = serializers.DecimalField(max_digits=14, decimal_places=4, min_value=Decimal("0"),
                                             max_value=Decimal("1000000"), required=False)  # fmt: skip
    unit_amount = serializers.DecimalField(max_digits=20, decimal_places=2, min_value=Decimal("0.01"),
                                           max_value=MONEY_MAX, required=False)  # fmt: skip
    min_lot = serializers.DecimalField(max_digits=14, decimal_places=4, min_value=Decimal("0"),
                                       max_value=Decimal("100000"), required=False)  # fmt: skip
    bonuses_active = serializers.IntegerField(read_only=True, required=False)

    class Meta:
        model = Campaign
        fields = ["id", "name", "description", "bonus_type", "status", *CAMPAIGN_FIELDS[3:],
                  "created_at", "updated_at", "bonuses_active"]  # fmt: skip
        read_only_fields = ["id", "status", "created_at", "updated_at"]


class CampaignStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=CampaignStatus.choices)


class BonusSerializer(serializers.ModelSerializer):
    campaign_name = serializers.CharField(source="campaign.name", read_only=True)
    lot_progress = serializers.DecimalField(max_digits=7, decimal_places=2, read_only=True)

    class Meta:
        model = Bonus
        fields = ["id", "campaign", "campaign_name", "login", "bonus_type", "trigger", "status", "deposit_amount",
                  "deposit_deal", "amount", "credit_outstanding", "converted_amount", "removed_amount",
                  "lots_required", "lots_traded", "lot_progress", "original_leverage", "applied_leverage",
                  "overridden_checks", "promo_code", "expires_at", "cancel_reason", "created_at",
                  "ended_at"]  # fmt: skip
        read_only_fields = fields


class FailureSerializer(serializers.Serializer):
    check = serializers.CharField()
    message = serializers.CharField()
    overridable = serializers.BooleanField()


class EligibilityRequest(serializers.Serializer):
    login = serializers.IntegerField(min_value=1, max_value=MAX_LOGIN)
    campaign_id = serializers.IntegerField(min_value=1, max_value=MAX_LOGIN)
    deposit_amount = _money(required=False, allow_null=True)


class AssignRequest(EligibilityRequest):
    amount = _money(required=False, allow_null=True)
    override_eligibility = serializers.BooleanField(default=False)


class EligibilityResponse(serializers.Serializer):
    eligible = serializers.BooleanField()
    can_override = serializers.BooleanField()
    failures = FailureSerializer(many=True)


class LeverageRequest(serializers.Serializer):
    leverage = serializers.IntegerField(min_value=1, max_value=1000)


class DepositTrigger(serializers.Serializer):
    login = serializers.IntegerField(min_value=1, max_value=MAX_LOGIN)
    amount = _money()
    deal_ticket = serializers.IntegerField(min_value=1, max_value=MAX_LOGIN, required=False, allow_null=True)


class RegistrationTrigger(serializers.Serializer):
    login = serializers.IntegerField(min_value=1, max_value=MAX_LOGIN)


class PromoTrigger(serializers.Serializer):
    login = serializers.IntegerField(min_value=1, max_value=MAX_LOGIN)
    promo_code = serializers.CharField(max_length=64)
    deposit_amount = _money(required=False, allow_null=True)


class TriggerResult(serializers.Serializer):
    campaign_id = serializers.IntegerField()
    campaign_name = serializers.CharField()
    assigned = serializers.BooleanField()
    bonus = BonusSerializer(allow_null=True)
    failures = FailureSerializer(many=True)


TriggerResponse = inline_serializer("TriggerResponse", {"results": TriggerResult(many=True)})


def _assignments(results) -> dict:
    return {"results": [{
        "campaign_id": a.campaign.pk, "campaign_name": a.campaign.name, "assigned": a.bonus is not None,
        "bonus": BonusSerializer(a.bonus).data if a.bonus else None,
        "failures": [f.as_dict() for f in a.failures],
    } for a in results]}  # fmt: skip


class MonitoredAccountSerializer(serializers.ModelSerializer):
    class Meta:
        model = MonitoredAccount
        fields = ["login", "server", "group", "country", "lead_source", "status", "consecutive_errors",
                  "last_error", "balance", "credit", "equity", "leverage", "original_leverage", "snapshot_at",
                  "discovered_at"]  # fmt: skip
        read_only_fields = fields


class AuditSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditLog
        fields = ["id", "created_at", "actor_label", "action", "login", "bonus", "campaign", "before", "after",
                  "message"]  # fmt: skip
        read_only_fields = fields


class AmountRequest(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=20, decimal_places=2, min_value=Decimal("0.01"), max_value=MONEY_MAX)


# --- Campaigns -------------------------------------------------------------------------


class CampaignListView(StaffView):
    """Campaigns (GET: bonuses.view_campaign) and campaign creation (POST: bonuses.add_campaign)."""

    capabilities = {"GET": "campaigns.view", "POST": "campaigns.manage"}

    @extend_schema(
        parameters=[OpenApiParameter("status", str, enum=CampaignStatus.values),
                    OpenApiParameter("bonus_type", str, enum=BonusType.values)],
        responses={200: CampaignSerializer(many=True), **ERRORS}, tags=["campaigns"],
    )  # fmt: skip
    def get(self, request):
        rows = self.visible("bonuses.view_campaign", selectors.campaigns_with_counts())
        wanted = request.query_params.get("status")
        if wanted in CampaignStatus.values:
            rows = rows.filter(status=wanted)
        kind = request.query_params.get("bonus_type")
        if kind in BonusType.values:
            rows = rows.filter(bonus_type=kind)
        return _paginate(self, rows, CampaignSerializer)

    @extend_schema(request=CampaignSerializer, responses={201: CampaignSerializer, **ERRORS}, tags=["campaigns"])
    def post(self, request):
        data = CampaignSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        campaign = campaign_create(actor=request.user, **data.validated_data)
        return Response(CampaignSerializer(campaign).data, status=status.HTTP_201_CREATED)


class CampaignDetailView(StaffView):
    capabilities = {"GET": "campaigns.view", "PUT": "campaigns.manage"}

    def _campaign(self, pk: int) -> Campaign:
        return get_object_or_404(self.visible("bonuses.view_campaign", Campaign.objects.all()), pk=pk)

    @extend_schema(responses={200: CampaignSerializer, **ERRORS}, tags=["campaigns"])
    def get(self, request, pk: int):
        return Response(CampaignSerializer(self._campaign(pk)).data)

    @extend_schema(request=CampaignSerializer, responses={200: CampaignSerializer, **ERRORS, **CONFLICT},
                   tags=["campaigns"])  # fmt: skip
    def put(self, request, pk: int):
        campaign = self._campaign(pk)
        data = CampaignSerializer(campaign, data=request.data)
        data.is_valid(raise_exception=True)
        campaign = campaign_update(actor=request.user, campaign=campaign, **data.validated_data)
        return Response(CampaignSerializer(campaign).data)


class CampaignDuplicateView(CampaignDetailView):
    capabilities = {"POST": "campaigns.manage"}

    @extend_schema(request=None, responses={201: CampaignSerializer, **ERRORS}, tags=["campaigns"])
    def post(self, request, pk: int):
        copy = campaign_duplicate(actor=request.user, campaign=self._campaign(pk))
        return Response(CampaignSerializer(copy).data, status=status.HTTP_201_CREATED)


class CampaignStatusView(CampaignDetailView):
    capabilities = {"PATCH": "campaigns.manage"}

    @extend_schema(request=CampaignStatusSerializer, responses={200: CampaignSerializer, **ERRORS, **CONFLICT},
                   tags=["campaigns"])  # fmt: skip
    def patch(self, request, pk: int):
        campaign = self._campaign(pk)
        data = CampaignStatusSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        campaign = campaign_set_status(actor=request.user, campaign=campaign,
                                                status=data.validated_data["status"])  # fmt: skip
        return Response(CampaignSerializer(campaign).data)


# --- Bonuses ---------------------------------------------------------------------------


class BonusListView(StaffView):
    capabilities = {"GET": "bonuses.view"}

    @extend_schema(
        parameters=[OpenApiParameter("status", str, enum=BonusStatus.values),
                    OpenApiParameter("bonus_type", str, enum=BonusType.values),
                    OpenApiParameter("login", int), OpenApiParameter("campaign", int)],
        responses={200: BonusSerializer(many=True), **ERRORS}, tags=["bonuses"],
    )  # fmt: skip
    def get(self, request):
        rows = self.visible("bonuses.view_bonus", Bonus.objects.select_related("campaign"))
        params = request.query_params
        if params.get("status") in BonusStatus.values:
            rows = rows.filter(status=params["status"])
        if params.get("bonus_type") in BonusType.values:
            rows = rows.filter(bonus_type=params["bonus_type"])
        for name in ("login", "campaign"):
            value = params.get(name, "")
            if value.isdigit() and int(value) <= MAX_LOGIN:
                rows = rows.filter(**{name: int(value)})
            elif value:
                raise ServiceError(f"{name} must be a positive integer.", code="invalid_filter")
        return _paginate(self, rows, BonusSerializer)


class BonusDetailView(StaffView):
    capabilities = {"GET": "bonuses.view"}

    def _bonus(self, pk: int) -> Bonus:
        return get_object_or_404(self.visible("bonuses.view_bonus", Bonus.objects.select_related("campaign")), pk=pk)

    @extend_schema(responses={200: BonusSerializer, **ERRORS}, tags=["bonuses"])
    def get(self, request, pk: int):
        return Response(BonusSerializer(self._bonus(pk)).data)


class EligibilityView(StaffView):
    capabilities = {"POST": "bonuses.assign"}

    @extend_schema(request=EligibilityRequest, responses={200: EligibilityResponse, **ERRORS, **UNAVAILABLE},
                   tags=["bonuses"])  # fmt: skip
    def post(self, request):
        data = EligibilityRequest(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        campaign = get_object_or_404(Campaign, pk=v["campaign_id"])
        failures = _gateway_call(eligibility_check, campaign=campaign, login=v["login"],
                                 deposit=v.get("deposit_amount"))  # fmt: skip
        return Response({
            "eligible": not failures,
            "can_override": bool(failures) and all(f.overridable for f in failures),
            "failures": [f.as_dict() for f in failures],
        })  # fmt: skip


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key", str, OpenApiParameter.HEADER, required=True,
    description="One value per assignment (a UUID, 1 to 64 of A-Z a-z 0-9 . _ : -). A repeat with the same key and "
                "body returns the first bonus (200) without posting again; the same key with another body is a 409.",
)  # fmt: skip


class AssignView(StaffView):
    """Manual assignment, once per ``Idempotency-Key``: 409 with every failure unless ``override_eligibility``
    and all are overridable; 400 naming the cap when the amount is above the campaign's rules or the role's limit."""

    capabilities = {"POST": "bonuses.assign"}

    @extend_schema(request=AssignRequest, parameters=[IDEMPOTENCY_KEY],
                   responses={201: BonusSerializer, 200: BonusSerializer, **ERRORS, **CONFLICT, **UNAVAILABLE},
                   tags=["bonuses"])  # fmt: skip
    def post(self, request):
        key = request.headers.get("Idempotency-Key", "").strip()
        if not key:
            raise ServiceError("Send an Idempotency-Key header (e.g. a new UUID per assignment) so a retried "
                               "request never gives a second bonus.", code="idempotency_key_required")  # fmt: skip
        data = AssignRequest(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        campaign = get_object_or_404(Campaign, pk=v["campaign_id"])
        result = _gateway_call(
            bonus_assign_manual, actor=request.user, campaign=campaign, login=v["login"],
            deposit=v.get("deposit_amount"), amount=v.get("amount"), override=v["override_eligibility"],
            idempotency_key=key,
        )  # fmt: skip
        code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        return Response(BonusSerializer(result.bonus).data, status=code)


class BonusCancelView(BonusDetailView):
    capabilities = {"POST": "bonuses.manage"}

    @extend_schema(request=None, responses={200: BonusSerializer, **ERRORS, **CONFLICT, **UNAVAILABLE},
                   tags=["bonuses"])  # fmt: skip
    def post(self, request, pk: int):
        bonus = _gateway_call(bonus_cancel, actor=request.user, bonus=self._bonus(pk))
        return Response(BonusSerializer(bonus).data)


class BonusForceConvertView(BonusDetailView):
    capabilities = {"POST": "bonuses.manage"}

    @extend_schema(request=None, responses={200: BonusSerializer, **ERRORS, **CONFLICT, **UNAVAILABLE},
                   tags=["bonuses"])  # fmt: skip
    def post(self, request, pk: int):
        bonus = _gateway_call(bonus_force_convert, actor=request.user, bonus=self._bonus(pk))
        return Response(BonusSerializer(bonus).data)


class BonusOverrideLeverageView(BonusDetailView):
    capabilities = {"POST": "bonuses.manage"}

    @extend_schema(request=LeverageRequest, responses={200: BonusSerializer, **ERRORS, **CONFLICT, **UNAVAILABLE},
                   tags=["bonuses"])  # fmt: skip
    def post(self, request, pk: int):
        bonus = self._bonus(pk)
        data = LeverageRequest(data=request.data)
        data.is_valid(raise_exception=True)
        bonus = _gateway_call(bonus_override_leverage, actor=request.user, bonus=bonus,
                              leverage=data.validated_data["leverage"])  # fmt: skip
        return Response(BonusSerializer(bonus).data)


# --- Triggers --------------------------------------------------------------------------


class DepositTriggerView(StaffView):
    """A deposit event: confirmed from the MT5 deal history, then every matching campaign fires once."""

    capabilities = {"POST": "bonuses.trigger"}

    @extend_schema(request=DepositTrigger, responses={200: TriggerResponse, **ERRORS, **CONFLICT, **UNAVAILABLE},
                   tags=["triggers"])  # fmt: skip
    def post(self, request):
        data = DepositTrigger(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        results = _gateway_call(trigger_deposit, login=v["login"], amount=v["amount"],
                                deal_ticket=v.get("deal_ticket"), actor=request.user)  # fmt: skip
        return Response(_assignments(results))


class RegistrationTriggerView(StaffView):
    capabilities = {"POST": "bonuses.trigger"}

    @extend_schema(request=RegistrationTrigger, responses={200: TriggerResponse, **ERRORS, **UNAVAILABLE},
                   tags=["triggers"])  # fmt: skip
    def post(self, request):
        data = RegistrationTrigger(data=request.data)
        data.is_valid(raise_exception=True)
        login = data.validated_data["login"]
        _gateway_call(monitoring_register, actor=request.user, login=login)
        results = _gateway_call(trigger_registration, login=login, actor=request.user)
        return Response(_assignments(results))


class PromoCodeTriggerView(StaffView):
    capabilities = {"POST": "bonuses.trigger"}

    @extend_schema(request=PromoTrigger, responses={200: TriggerResponse, **ERRORS, **UNAVAILABLE},
                   tags=["triggers"])  # fmt: skip
    def post(self, request):
        data = PromoTrigger(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        results = _gateway_call(trigger_promo_code, login=v["login"], code=v["promo_code"],
                                deposit=v.get("deposit_amount"), actor=request.user)  # fmt: skip
        return Response(_assignments(results))


# --- Accounts --------------------------------------------------------------------------


class Mt5MetadataView(StaffView):
    capabilities = {"GET": "campaigns.view"}

    @extend_schema(responses={200: inline_serializer("Mt5Metadata", {
        "groups": serializers.ListField(child=serializers.CharField()),
        "countries": serializers.ListField(child=serializers.CharField()),
        "accounts": serializers.ListField(child=serializers.IntegerField()),
        "scanned_at": serializers.DateTimeField(allow_null=True)}), **ERRORS}, tags=["accounts"])  # fmt: skip
    def get(self, request):
        return Response(selectors.mt5_metadata())


class AccountLookupView(StaffView):
    """Staff lookup by MT5 login: live figures from MT5, bonus history and audit trail."""

    capabilities = {"GET": "accounts.lookup"}

    @extend_schema(responses={200: OpenApiTypes.OBJECT, **ERRORS, **UNAVAILABLE}, tags=["accounts"],
                   operation_id="bonus_account_lookup")  # fmt: skip
    def get(self, request, login: int):
        if login > MAX_LOGIN:
            raise ServiceError("Unknown login.", code="not_found", status_code=404)
        return Response(_gateway_call(selectors.account_lookup, login=login, gateway=self.gateway()))


# --- Monitoring ------------------------------------------------------------------------


class MonitoringStatusView(StaffView):
    capabilities = {"GET": "bonuses.view"}

    @extend_schema(responses={200: OpenApiTypes.OBJECT, **ERRORS}, tags=["monitoring"])
    def get(self, request):
        return Response(selectors.monitoring_status())


class MonitoredAccountListView(StaffView):
    capabilities = {"GET": "bonuses.view"}

    @extend_schema(parameters=[OpenApiParameter("status", str, enum=["active", "paused"])],
                   responses={200: MonitoredAccountSerializer(many=True), **ERRORS}, tags=["monitoring"])  # fmt: skip
    def get(self, request):
        rows = self.visible("bonuses.view_monitoredaccount", MonitoredAccount.objects.all())
        if request.query_params.get("status") in ("active", "paused"):
            rows = rows.filter(status=request.query_params["status"])
        return _paginate(self, rows, MonitoredAccountSerializer)


class _LoginView(StaffView):
    def check_login(self, login: int) -> None:
        if login > MAX_LOGIN:
            raise ServiceError("Unknown login.", code="not_found", status_code=404)


class RegisterAccountView(_LoginView):
    capabilities = {"POST": "monitor.manage"}

    @extend_schema(request=None, responses={200: MonitoredAccountSerializer, **ERRORS, **UNAVAILABLE},
                   tags=["monitoring"])  # fmt: skip
    def post(self, request, login: int):
        self.check_login(login)
        account = _gateway_call(monitoring_register, actor=request.user, login=login)
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

    @extend_schema(request=AmountRequest, responses={200: inline_serializer("SimulatedMoney", {
        "login": serializers.IntegerField(), "deal_ticket": serializers.IntegerField()}), **ERRORS, **CONFLICT},
        tags=["monitoring"])  # fmt: skip
    def post(self, request, login: int):
        self.check_login(login)
        gateway = self.gateway()
        if gateway.kind != "simulated":
            raise NotAllowed("Test deposits and withdrawals work against the simulated MT5 server only.",
                             code="simulated_only")  # fmt: skip
        data = AmountRequest(data=request.data)
        data.is_valid(raise_exception=True)
        amount = data.validated_data["amount"] * self.sign
        comment = "Test deposit" if self.sign > 0 else "Test withdrawal"
        try:
            ticket = gateway.balance_operation(login, amount, gw.DealType.BALANCE, comment)
        except gw.NotFound:
            raise ServiceError(f"Login {login} does not exist on MT5.", code="account_not_found",
                               status_code=404) from None  # fmt: skip
        except gw.GatewayError as exc:
            raise ServiceError(f"MT5 refused: {exc}", code="refused", status_code=409) from None
        return Response({"login": login, "deal_ticket": ticket})


class TestDepositView(_SimulatedMoneyView):
    sign = 1


class TestWithdrawView(_SimulatedMoneyView):
    sign = -1


# --- Reports and audit -----------------------------------------------------------------


class _ReportView(StaffView):
    capabilities = {"GET": "reports.view"}
    report = ""

    @extend_schema(responses={200: OpenApiTypes.OBJECT, **ERRORS}, tags=["reports"])
    def get(self, request):
        return Response({"rows": reports.REPORTS[self.report]()})


class SummaryReportView(_ReportView):
    report = "summary"


class ConversionsReportView(_ReportView):
    report = "conversions"


class CancellationsReportView(_ReportView):
    report = "cancellations"


class LeverageReportView(_ReportView):
    report = "leverage"


class ExportView(StaffView):
    capabilities = {"GET": "reports.view"}

    @extend_schema(
        parameters=[OpenApiParameter("report", str, enum=list(reports.REPORTS), default="summary"),
                    OpenApiParameter("format", str, enum=["csv", "xlsx"], default="csv")],
        responses={(200, "text/csv"): OpenApiTypes.BINARY, **ERRORS}, tags=["reports"],
    )  # fmt: skip
    def get(self, request):
        name = request.query_params.get("report", "summary")
        kind = request.query_params.get("format", "csv")
        if name not in reports.REPORTS or kind not in ("csv", "xlsx"):
            raise ServiceError("report must be one of summary, conversions, cancellations, leverage; "
                               "format csv or xlsx.", code="invalid_export")  # fmt: skip
        body, content_type = reports.export(name, kind)
        response = HttpResponse(body, content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="bonus-{name}.{kind}"'
        return response

    def perform_content_negotiation(self, request, force=False):
        # The export answers with a file whatever the Accept header asks for.
        return super().perform_content_negotiation(request, force=True)


class AuditListView(StaffView):
    capabilities = {"GET": "audit.view"}

    @extend_schema(
        parameters=[OpenApiParameter("login", int), OpenApiParameter("bonus", int), OpenApiParameter("campaign", int),
                    OpenApiParameter("action", str, enum=AuditAction.values)],
        responses={200: AuditSerializer(many=True), **ERRORS}, tags=["audit"],
    )  # fmt: skip
    def get(self, request):
        rows = self.visible("bonuses.view_auditlog", AuditLog.objects.all())
        params = request.query_params
        for name in ("login", "bonus", "campaign"):
            value = params.get(name, "")
            if value.isdigit() and int(value) <= MAX_LOGIN:
                rows = rows.filter(**{name: int(value)})
            elif value:
                raise ServiceError(f"{name} must be a positive integer.", code="invalid_filter")
        if params.get("action") in AuditAction.values:
            rows = rows.filter(action=params["action"])
        return _paginate(self, rows, AuditSerializer)
