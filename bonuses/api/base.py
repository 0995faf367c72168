"""What every bonus API view shares: the staff view with its declared capabilities, pagination, MT5 errors, fields."""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.views import APIView

from accounts.api import ErrorSerializer
from accounts.permissions import restrict
from config.errors import ServiceError
from config.pagination import BoundedLimitOffsetPagination
from mt5bridge import gateway as gw

from ..services.monitored import default_gateway

MONEY_MAX = Decimal("1000000000")


CONFLICT = {409: OpenApiResponse(ErrorSerializer, description="Conflict (not eligible, wrong state)")}


UNAVAILABLE = {503: OpenApiResponse(ErrorSerializer, description="MT5 unreachable; retry later")}


class StaffView(APIView):
    """A bonus back-office endpoint: each HTTP method it serves declares its capability (accounts.roles)."""

    capabilities: dict[str, str] = {}
    # Lists answer a page ({count, next, previous, results}); the schema says so for every list view.
    pagination_class = BoundedLimitOffsetPagination

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


def paginate(view: APIView, queryset, serializer_class):
    paginator = view.pagination_class()
    page = paginator.paginate_queryset(queryset, view.request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


def gateway_call(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except gw.GatewayUnavailable as exc:
        raise ServiceError(f"MT5 is unreachable: {exc}", code="mt5_unavailable", status_code=503) from None
    except gw.NotFound as exc:
        raise ServiceError(str(exc), code="account_not_found", status_code=404) from None


def money_field(**kwargs):
    return serializers.DecimalField(
        max_digits=20, decimal_places=2, min_value=Decimal("0"), max_value=MONEY_MAX, **kwargs
    )


def strings_field(**kwargs):
    return serializers.ListField(child=serializers.CharField(max_length=64), max_length=500, required=False, **kwargs)
