"""The DRF throttle that counts API calls per user and day and gates programmatic access by plan."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser
from rest_framework.throttling import BaseThrottle

from accounts.authentication import is_bearer_auth

from .counters import api_call_count


class ApiCallCounter(BaseThrottle):
    """A DRF throttle that counts authenticated API calls, and gates programmatic access.

    Calls authenticated with a bearer token (``Authorization: Bearer <access>`` from
    ``POST /api/auth/login``) need the plan's ``api_access`` feature (403 naming the plan
    otherwise); the browser's session and the EA's own tokens are not "API access".
    """

    def allow_request(self, request, view) -> bool:
        user = getattr(request, "user", None)
        # Only people: the EA protocol authenticates as its own client object.
        if not isinstance(user, AbstractBaseUser) or not user.is_authenticated:
            return True
        api_call_count(user.pk)
        if is_bearer_auth(request.auth):
            # Imported here: DRF loads this throttle while rest_framework.views is first imported, which
            # config.errors (imported by the gates) does itself; a module-level import would be circular.
            from .gates import require_feature

            require_feature(user, "api_access")
        return True
