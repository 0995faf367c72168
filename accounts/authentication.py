"""DRF authentication for people's API calls: ``Authorization: Bearer <access token>`` (accounts.jwt issues them).

Kept apart from accounts.jwt: DRF imports this class while config.errors is still loading.
"""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.tokens import AccessToken

LEGACY_TOKEN_MESSAGE = (
    "API tokens (Authorization: Token ...) are no longer accepted. Log in again with POST /api/auth/login "
    "and send the access token it returns as Authorization: Bearer <access>."
)
INVALID_BEARER_MESSAGE = (
    "The bearer token is not valid or has expired. Get a new one with POST /api/auth/refresh, "
    "or log in again with POST /api/auth/login."
)


class BearerJWTAuthentication(JWTAuthentication):
    """``Authorization: Bearer <access token>`` for people, with clear 401s for old and bad credentials."""

    def authenticate(self, request):
        header = self.get_header(request)
        if header is None:
            return None
        scheme = header.split(None, 1)[0].lower() if header.strip() else b""
        if scheme == b"token":
            # Clients of the retired DRF tokens: say what to do instead of "credentials were not provided".
            raise exceptions.AuthenticationFailed(LEGACY_TOKEN_MESSAGE, code="token_scheme_retired")
        try:
            return super().authenticate(request)
        except InvalidToken as exc:  # simplejwt's detail is a nested dict; one sentence is clearer
            raise exceptions.AuthenticationFailed(INVALID_BEARER_MESSAGE, code="token_not_valid") from exc


def is_bearer_auth(auth) -> bool:
    """True when a request was authenticated by a person's access token rather than a session (or an EA token)."""
    return isinstance(auth, AccessToken)
