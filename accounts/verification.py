"""Email verification at sign-up: a signed, expiring link sent by Django's email backend (docs/security.md).

The link carries ``django.core.signing`` of the user's id and the address it was sent to, salted for this use and
valid LINK_VALID_HOURS (72). Nothing is stored: opening it sets ``User.email_verified_at`` once (a
second opening changes nothing), and a link sent to an address the person no longer uses confirms nothing.

Until confirmed, a person may sign in and look around but cannot connect an MT5 account (`require_verified_email`,
called by `accounts.services.trading_account_create`) or start a copy link (copytrading calls it too). People made
by code (staff in the admin, management commands) are confirmed when created (`accounts.models.UserManager`).
"""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from config.errors import ServiceError

from .choices import SecurityAction
from .models import User
from .security import security_event_record

SALT = "accounts.email-verification"
#: How long a confirmation link works.
LINK_VALID_HOURS = 72
#: A person may ask for a new link once a minute.
RESEND_SECONDS = 60


class EmailUnverified(ServiceError):
    status_code = 403
    code = "email_unverified"


class VerificationLinkInvalid(ServiceError):
    code = "verification_link_invalid"


def verification_token(user: User) -> str:
    return signing.dumps({"u": user.pk, "e": user.email.lower()}, salt=SALT, compress=True)


def verification_url(user: User) -> str:
    return settings.SITE_URL.rstrip("/") + reverse("email-verify", args=[verification_token(user)])


def verification_send(user: User) -> bool:
    """Email ``user`` a confirmation link (no-op for a confirmed person). False: asked again within a minute."""
    if user.email_verified:
        return False
    if not cache.add(f"accounts:email-verify-sent:{user.pk}", 1, RESEND_SECONDS):
        return False
    context = {
        "user": user,
        "url": verification_url(user),
        "hours": LINK_VALID_HOURS,
    }
    send_mail(
        subject="Confirm your email address",
        message=render_to_string("accounts/email_verify_email.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[user.email],
    )
    return True


def email_verify(token: str) -> User:
    """The person the link confirms, now confirmed (idempotent). Raises VerificationLinkInvalid."""
    max_age = LINK_VALID_HOURS * 3600
    try:
        data = signing.loads(token, salt=SALT, max_age=max_age)
    except signing.SignatureExpired:
        raise VerificationLinkInvalid(
            "This confirmation link has expired. Sign in and ask for a new one.", code="verification_link_expired"
        ) from None
    except signing.BadSignature:
        raise VerificationLinkInvalid("This confirmation link is not valid.") from None
    user = User.objects.filter(pk=data.get("u"), is_active=True).first() if isinstance(data, dict) else None
    if user is None or user.email.lower() != str(data.get("e", "")):
        raise VerificationLinkInvalid("This confirmation link is for an address this account no longer uses.")
    if not user.email_verified:
        user.email_verified_at = timezone.now()
        user.save(update_fields=["email_verified_at"])
        security_event_record(action=SecurityAction.EMAIL_VERIFIED, actor=user, account=None, detail=user.email)
    return user


def require_verified_email(user) -> None:
    """Refuse a person who has not confirmed their address yet (staff are created confirmed)."""
    if getattr(user, "is_authenticated", False) and getattr(user, "email_verified_at", None) is None:
        raise EmailUnverified(
            "Confirm your email address first: open the link we emailed you (Settings can send a new one)."
        )


def refuse_unconfirmed_copy_link(sender, instance, **_kwargs) -> None:
    """pre_save of copy trading's CopyLink (connected by model label, so accounts imports no copy code): a new link
    made by a person whose address is unconfirmed is refused, whichever path makes it (web, API, a signal follow)."""
    if instance._state.adding and instance.created_by_id is not None:
        creator = User.objects.filter(pk=instance.created_by_id).only("email_verified_at").first()
        if creator is not None and creator.email_verified_at is None:
            raise EmailUnverified(
                "Confirm your email address before starting copy trading: open the link we emailed you "
                "(Settings can send a new one)."
            )
