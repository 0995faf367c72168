"""Settings pages of the trader web app beyond the profile: API access (the person's API tokens) and two-factor
login (an authenticator app with backup codes), plus the web login form that asks for the code once it is on.

API tokens are the simplejwt refresh tokens of `accounts.jwt`: creating one shows the refresh and access token
once (only a hash of the refresh token is stored), revoking one blacklists it. Two-factor enrolment reuses the
admin's (`accounts.two_factor`): the same devices, QR code and backup codes, so one enrolment covers both logins.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from django_otp import user_has_device
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from config.errors import ServiceError

from . import two_factor
from .jwt import jwt_issue


class TraderLoginForm(two_factor.StaffLoginForm):
    """The web app's login: email and password, and the two-factor code for people who turned it on."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("otp_device", "otp_challenge"):  # one code field is enough: its shape picks the device
            self.fields.pop(name, None)

    def confirm_login_allowed(self, user) -> None:
        AuthenticationForm.confirm_login_allowed(self, user)  # not the admin's staff-only rule

    def clean(self):
        self.cleaned_data = AuthenticationForm.clean(self)
        user = self.get_user()
        if user is not None and user_has_device(user, confirmed=True):
            self.clean_otp(user)
        return self.cleaned_data


def live_api_tokens(user):
    """The person's refresh tokens that still work: not expired, not revoked (newest first)."""
    return (
        OutstandingToken.objects.filter(user=user, expires_at__gt=timezone.now())
        .exclude(pk__in=BlacklistedToken.objects.values("token_id"))
        .order_by("-created_at")
    )


@never_cache  # the page may carry freshly issued tokens
@login_required
@require_http_methods(["GET", "POST"])
def api_tokens(request: HttpRequest) -> HttpResponse:
    issued = None
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "create":
            issued = jwt_issue(user=request.user)
            messages.success(request, "A new API token was created. Copy it now: it is shown only once.")
        elif action == "revoke":
            raw = request.POST.get("token", "")
            token = (
                live_api_tokens(request.user).filter(pk=int(raw)).first() if raw.isdigit() and len(raw) < 19 else None
            )
            if token is None:
                messages.error(request, "That token does not exist or no longer works.")
                return render(
                    request, "accounts/settings_api.html", {"tokens": live_api_tokens(request.user)}, status=404
                )
            BlacklistedToken.objects.get_or_create(token=token)
            messages.success(request, "The API token was revoked: it can no longer get access tokens.")
            return redirect("profile-api-tokens")
        else:
            return render(request, "accounts/settings_api.html", {"tokens": live_api_tokens(request.user)}, status=400)
    return render(request, "accounts/settings_api.html", {"tokens": live_api_tokens(request.user), "issued": issued})


@never_cache  # backup codes are shown once
@login_required
@require_http_methods(["GET", "POST"])
def two_factor_settings(request: HttpRequest) -> HttpResponse:
    user = request.user
    codes = None
    status = 200
    action = request.POST.get("action") if request.method == "POST" else None
    if action == "confirm":
        try:
            device_id = int(request.POST.get("device", "0"))
            _device, codes = two_factor.totp_enrolment_confirm(
                user=user, device_id=device_id, token=request.POST.get("code", "")
            )
        except (ServiceError, ValueError) as exc:
            messages.error(request, getattr(exc, "message", "That code is not right."))
            status = 400
        else:
            messages.success(request, "Two-factor login is on. Keep the backup codes below somewhere safe.")
    elif action == "backup" and user_has_device(user, confirmed=True):
        codes = two_factor.backup_codes_renew(user=user)
        messages.success(request, "New backup codes: the old ones no longer work.")
    elif action == "disable":
        TOTPDevice.objects.filter(user=user).delete()
        StaticDevice.objects.filter(user=user).delete()
        messages.success(request, "Two-factor login is off: the password alone signs you in.")
        return redirect("profile-two-factor")
    elif action is not None:
        status = 400
    enrolled = TOTPDevice.objects.filter(user=user, confirmed=True).exists()
    context = {"enrolled": enrolled, "codes": codes}
    if not enrolled:
        device = two_factor.totp_enrolment_start(user=user)
        context.update(device=device, qr=two_factor.qr_code_svg(device), secret=two_factor.secret_for_typing(device))
    else:
        static = StaticDevice.objects.filter(user=user, confirmed=True).first()
        context["backup_left"] = static.token_set.count() if static else 0
    return render(request, "accounts/settings_two_factor.html", context, status=status)
