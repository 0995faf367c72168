"""People's API tokens: JWT access and refresh tokens (djangorestframework-simplejwt), issued, rotated and revoked.

An access token lives JWT_ACCESS_MINUTES and is never stored; a refresh token lives JWT_REFRESH_DAYS, is used
once (each refresh returns a new pair and blacklists the old one) and is blacklisted at logout. The blacklist
app records every refresh token it hands out; only a hash of the token is kept there (see `_hash_stored_token`).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models.signals import pre_save
from django.dispatch import receiver
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import get_md5_hash_password

from config.errors import ServiceError

INVALID_REFRESH_MESSAGE = "The refresh token is not valid, has expired or was already used. Log in again."
STORED_PREFIX = "sha256:"


class BearerJWTScheme(SimpleJWTScheme):
    """The OpenAPI security scheme of people's bearer tokens (simplejwt's extension only matches its own class)."""

    target_class = "accounts.authentication.BearerJWTAuthentication"


def _expires_at(token) -> str:
    return datetime.fromtimestamp(token["exp"], tz=UTC).isoformat()


def _pair(refresh: RefreshToken) -> dict:
    access = refresh.access_token
    return {"access": str(access), "refresh": str(refresh), "access_expires_at": _expires_at(access)}


def jwt_issue(*, user) -> dict:
    """A new access and refresh token for a person who has just proved who they are."""
    return _pair(RefreshToken.for_user(user))


def _valid_refresh(raw: str) -> RefreshToken:
    try:
        return RefreshToken(raw)  # signature, expiry, type and the blacklist
    except TokenError:
        raise ServiceError(INVALID_REFRESH_MESSAGE, code="token_not_valid", status_code=401) from None


def _refresh_owner(refresh: RefreshToken):
    user = get_user_model().objects.filter(pk=refresh.get(api_settings.USER_ID_CLAIM)).first()
    if user is None or not user.is_active:
        raise ServiceError(INVALID_REFRESH_MESSAGE, code="token_not_valid", status_code=401)
    # Tokens carry a hash of the password hash: a password change ends every session issued before it.
    if refresh.get(api_settings.REVOKE_TOKEN_CLAIM) != get_md5_hash_password(user.password):
        raise ServiceError("The password was changed since this token was issued. Log in again.",
                           code="password_changed", status_code=401)  # fmt: skip
    return user


def jwt_refresh(*, raw_refresh: str) -> dict:
    """Trade a refresh token for a new pair; the old refresh token can never be used again."""
    refresh = _valid_refresh(raw_refresh)
    user = _refresh_owner(refresh)
    with transaction.atomic():
        outstanding, _ = OutstandingToken.objects.get_or_create(
            jti=refresh[api_settings.JTI_CLAIM],
            defaults={"user": user, "token": raw_refresh, "expires_at": datetime.fromtimestamp(refresh["exp"], UTC)},
        )
        _, created = BlacklistedToken.objects.get_or_create(token=outstanding)
    if not created:
        # Two refreshes raced with the same token: only the first one gets a new pair.
        raise ServiceError(INVALID_REFRESH_MESSAGE, code="token_not_valid", status_code=401)
    return jwt_issue(user=user)


def jwt_revoke(*, raw_refresh: str, user) -> None:
    """Logout: the refresh token stops working at once (access tokens end within JWT_ACCESS_MINUTES)."""
    refresh = _valid_refresh(raw_refresh)
    if str(refresh.get(api_settings.USER_ID_CLAIM)) != str(user.pk):
        raise ServiceError("This refresh token belongs to another person.", code="not_your_token")
    refresh.blacklist()


@receiver(pre_save, sender=OutstandingToken, dispatch_uid="accounts.jwt.hash_stored_token")
def _hash_stored_token(sender, instance: OutstandingToken, **kwargs) -> None:
    # The blacklist app keeps each refresh token it issues in clear, and a clear refresh token mints access
    # tokens for a week. Revocation only needs the jti, so the row keeps a hash (still useful to match a leak).
    if instance.token and not instance.token.startswith(STORED_PREFIX):
        instance.token = STORED_PREFIX + hashlib.sha256(instance.token.encode()).hexdigest()
