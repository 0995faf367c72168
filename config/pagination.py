"""The API's pagination: DRF's limit and offset, both bounded, for every list (``DEFAULT_PAGINATION_CLASS``)."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination

MAX_OFFSET = 10_000_000  # beyond any real history; keeps OFFSET inside what the database accepts
MAX_LIMIT = 500


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    """LimitOffset with a ceiling on limit (larger asks get ``MAX_LIMIT`` rows) and on offset (a larger one is a 400:
    PostgreSQL refuses an OFFSET beyond a bigint, which DRF's own class passed through as a 500)."""

    max_limit = MAX_LIMIT

    def get_offset(self, request):
        offset = super().get_offset(request)
        if offset > MAX_OFFSET:
            raise serializers.ValidationError({"offset": [f"Ensure this value is at most {MAX_OFFSET}."]})
        return offset
