"""Second factor for staff at the admin login (django-otp): the login form, enrolment, backup codes, and the rule.

The rule the admin site applies: a staff user who has a confirmed device must have given a code in this session;
one without a device may use the admin with the password alone unless OTP_REQUIRED_FOR_STAFF, in which case the
only admin page they reach is the enrolment page. The trader web app's login does not change.
"""

from __future__ import annotations

from base64 import b32encode

import segno
from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.db import transaction
from django.utils.safestring import SafeString, mark_safe
from django_otp import user_has_device
from django_otp.admin import OTPAdminAuthenticationForm
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from config.errors import ServiceError

TOTP_DEVICE_NAME = "Authenticator app"
BACKUP_DEVICE_NAME = "Backup codes"
BACKUP_CODE_COUNT = 10


# --- The rule -------------------------------------------------------------------------------


def is_verified(user) -> bool:
    """Signed in with a second factor in this session (django-otp's middleware sets it)."""
    check = getattr(user, "is_verified", None)
    return bool(check and check())


def has_confirmed_device(request) -> bool:
    # Asked several times per admin page (each_context, admin_view): one lookup per request.
    cached = getattr(request, "_has_confirmed_otp_device", None)
    if cached is None:
        cached = request._has_confirmed_otp_device = user_has_device(request.user, confirmed=True)
    return cached


def second_factor_satisfied(request) -> bool:
    """Whether the signed-in staff user may use the admin as far as the second factor goes."""
    if is_verified(request.user):
        return True
    if has_confirmed_device(request):
        return False  # enrolled: the code is asked at every admin login, whatever the setting
    return not settings.OTP_REQUIRED_FOR_STAFF


def enrolment_required(request) -> bool:
    """A staff user who must enrol before reaching any other admin page."""
    user = request.user
    return bool(
        settings.OTP_REQUIRED_FOR_STAFF
        and user.is_authenticated
        and user.is_active
        and user.is_staff
        and not is_verified(user)
        and not has_confirmed_device(request)
    )


# --- The admin login form -------------------------------------------------------------------


class StaffLoginForm(OTPAdminAuthenticationForm):
    """The admin login: email, password and, for staff who enrolled, a code from the app or a backup code."""

    otp_token = forms.CharField(
        required=False,
        max_length=16,
        label="Two-factor code",
        help_text="Only if you turned on two-factor login: the 6-digit code from your app, or a backup code.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "text"}),
    )
    otp_error_messages = {
        **OTPAdminAuthenticationForm.otp_error_messages,
        "token_required": "Enter the code from your authenticator app (or a backup code): two-factor login is on.",
        "invalid_token": "That code is not right. Check the time on your phone, or use a backup code.",
        "device_required": "That is neither a code from your authenticator app nor one of your backup codes.",
    }

    def clean_otp_token(self) -> str:
        return "".join((self.cleaned_data.get("otp_token") or "").split()).lower()

    def clean(self):
        # Password first (and django-axes' lockout); the code only for staff who enrolled a device.
        self.cleaned_data = AdminAuthenticationForm.clean(self)
        user = self.get_user()
        if user is not None and user_has_device(user, confirmed=True):
            self.clean_otp(user)
        return self.cleaned_data

    def _chosen_device(self, user):
        device = super()._chosen_device(user)
        if device is not None:
            return device
        # No device picked on the form: the code's shape says which one it is meant for. Only that device is
        # tried, so a login never counts as a failed attempt against the other one (django-otp's concern).
        token = self.cleaned_data.get("otp_token") or ""
        model = TOTPDevice if token.isdigit() else StaticDevice
        return model.objects.devices_for_user(user, confirmed=True).select_for_update().first()


# --- Enrolment and backup codes -------------------------------------------------------------


def totp_enrolment_start(*, user) -> TOTPDevice:
    """The unconfirmed authenticator device being enrolled (kept across page loads so the QR code stays valid)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-id").first()
    return device or TOTPDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, confirmed=False)


def totp_enrolment_confirm(*, user, device_id: int, token: str) -> tuple[TOTPDevice, list[str]]:
    """Confirm the device with a code it produced; returns it and a fresh set of backup codes."""
    token = "".join(token.split())
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(pk=device_id, user=user, confirmed=False).first()
        if device is None:
            raise ServiceError("This enrolment has expired: reload the page and scan the new code.", code="stale")
        if not device.verify_is_allowed()[0]:  # django-otp's back-off after wrong codes (doubling each time)
            raise ServiceError("Too many wrong codes: wait a few seconds, then enter the code the app shows now.",
                               code="throttled")  # fmt: skip
        # verify_token saves its failure count itself; nothing here may roll that back.
        verified = token.isdigit() and device.verify_token(token)
        if verified:
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            TOTPDevice.objects.filter(user=user, confirmed=False).delete()
            codes = backup_codes_renew(user=user)
    if not verified:
        raise ServiceError("That code is not right. Scan the QR code again and enter the code the app shows now.",
                           code="invalid_code")  # fmt: skip
    return device, codes


def backup_codes_renew(*, user) -> list[str]:
    """New single-use backup codes for the user (the old ones stop working); shown once, to the user only."""
    with transaction.atomic():
        device, _ = StaticDevice.objects.get_or_create(user=user, name=BACKUP_DEVICE_NAME, defaults={"confirmed": True})
        device.token_set.all().delete()
        codes = [StaticToken.random_token() for _ in range(BACKUP_CODE_COUNT)]
        StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


def qr_code_svg(device: TOTPDevice) -> SafeString:
    """The device's otpauth:// URL as an inline SVG QR code for the authenticator app to scan."""
    return mark_safe(segno.make(device.config_url, error="m").svg_inline(scale=4, dark="#000", light="#fff"))  # noqa: S308 (segno's own markup)


def secret_for_typing(device: TOTPDevice) -> str:
    """The key in base32, in groups of four, for apps that cannot scan."""
    secret = b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
