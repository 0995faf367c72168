"""The DRF throttle that counts API calls per user and day and gates programmatic access by plan.

DRF imports this module while ``rest_framework.views`` is being imported (APIView reads its default
throttles then), so it uses the gate's plain answers (``entitlements.refusals``) and DRF's own exception
types, never ``config.errors`` (which imports ``rest_framework.views``).
"""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser
from rest_framework import exceptions
from rest_framework.throttling import BaseThrottle

from accounts.authentication import is_bearer_auth

from .counters import api_call_count
from .refusals import Refusal, feature_refusal


class PlanRefused(exceptions.PermissionDenied):
    """A 403 carrying the gate's code, message and details (the project's error body renders all three)."""

    def __init__(self, refusal: Refusal):
        super().__init__(refusal.message, code=refusal.code)
        self.details = refusal.details


class ApiCallCounter(BaseThrottle):
    """A DRF throttle that counts authenticated API calls, and gates programmatic access.

    Calls authenticated with a bearer token (``Authorization: Bearer <access>`` from
    ``POST /api/auth/login``) need the plan's ``api_access`` feature (403 naming the plan
    otherwise; staff are never refused); the browser's session and the EA's own tokens are
    not "API access".
    """

    def allow_request(self, request, view) -> bool:
        user = getattr(request, "user", None)
        # Only people: the EA protocol authenticates as its own client object.
        if not isinstance(user, AbstractBaseUser) or not user.is_authenticated:
            return True
        api_call_count(user.pk)
        if is_bearer_auth(request.auth):
            refusal = feature_refusal(user, "api_access")
            if refusal is not None:
                raise PlanRefused(refusal)
        return True
