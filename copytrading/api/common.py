"""Shared pieces of the copy-trading API: field factories, filters and the query-string parsers."""

from __future__ import annotations

import uuid
from decimal import Decimal

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers

from accounts.api import ErrorSerializer

from .. import services

MAX_VOLUME = Decimal("100000")
CONFLICT = {409: OpenApiResponse(ErrorSerializer, description="Conflict")}
SYMBOL = serializers.CharField(max_length=64)


def symbols_field(**kw):
    return serializers.ListField(child=serializers.CharField(max_length=64), max_length=500, **kw)


def magics_field(**kw):
    return serializers.ListField(child=serializers.IntegerField(min_value=0, max_value=2**63 - 1), max_length=500, **kw)


def volume_field(**kw):
    return serializers.DecimalField(
        max_digits=14, decimal_places=4, min_value=Decimal("0.0001"), max_value=MAX_VOLUME, **kw
    )


ACCOUNT_FILTER = OpenApiParameter("account", str, description="Only this (slave) account (UUID).")
LINK_FILTER = OpenApiParameter("link", int, description="Only this copy link.")


def filter_int(request, name):
    value = request.query_params.get(name)
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except ValueError as exc:
        raise services.ServiceError(f"{name} must be an integer.", code="invalid") from exc
    if not 0 < number < 2**63:
        raise services.ServiceError(f"{name} is out of range.", code="invalid")
    return number


def filter_uuid(request, name):
    value = request.query_params.get(name)
    if value in (None, ""):
        return None
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise services.ServiceError(f"{name} must be a UUID.", code="invalid") from exc
