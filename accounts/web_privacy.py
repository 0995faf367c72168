"""Settings → Privacy of the trader web app (marketing consent, data export, account deletion) and the email
confirmation link. The rules live in `accounts.data_rights` and `accounts.verification`; docs/privacy.md says what
is exported, erased and kept.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from config.errors import ServiceError
from config.net import client_ip

from . import data_rights, ports, verification
from .api_privacy import export_response
from .choices import ConsentSource
from .forms import ConsentForm, DeleteAccountForm


def _privacy_page(request: HttpRequest, *, delete_form=None, status: int = 200) -> HttpResponse:
    user = request.user
    context = {
        "consent_form": ConsentForm(initial={"marketing_consent": user.marketing_consent}),
        "delete_form": delete_form or DeleteAccountForm(),
        "history": data_rights.consent_history(user)[::-1][:20],
        "legal_basis": ports.marketing_basis(),
    }
    return render(request, "accounts/settings_privacy.html", context, status=status)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def privacy(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = ConsentForm(request.POST)
        form.is_valid()  # a lone optional checkbox: always valid
        granted = bool(form.cleaned_data.get("marketing_consent"))
        record = data_rights.consent_set(
            user=request.user,
            granted=granted,
            source=ConsentSource.WEB,
            actor=request.user,
            ip_address=client_ip(request),
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
        )
        if record is None:
            messages.info(request, "Nothing changed.")
        elif granted:
            messages.success(request, "Thank you: you will receive our news and offers.")
        else:
            messages.success(request, "Done: we no longer send your details to our marketing tool.")
        return redirect("profile-privacy")
    return _privacy_page(request)


@never_cache
@login_required
@require_GET
def privacy_export(request: HttpRequest) -> HttpResponse:
    return export_response(request)


@never_cache
@login_required
@require_POST
def privacy_delete(request: HttpRequest) -> HttpResponse:
    form = DeleteAccountForm(request.POST)
    if not form.is_valid():
        return _privacy_page(request, delete_form=form, status=400)
    try:
        data_rights.account_erase(
            user=request.user,
            password=form.cleaned_data["password"],
            otp_code=form.cleaned_data["otp_code"],
            ip_address=client_ip(request),
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
        )
    except ServiceError as exc:
        field = {"wrong_password": "password", "otp_required": "otp_code", "otp_invalid": "otp_code"}.get(exc.code)
        form.add_error(field, exc.message)
        return _privacy_page(request, delete_form=form, status=403)
    logout(request)
    messages.success(request, "Your account was deleted. What the law makes us keep is kept under a pseudonym.")
    return redirect("login")


@require_GET
def email_verify(request: HttpRequest, token: str) -> HttpResponse:
    """The link in the sign-up email: confirms the address (a second opening says it is confirmed already)."""
    try:
        user = verification.email_verify(token)
    except ServiceError as exc:
        return render(request, "accounts/email_verified.html", {"error": exc.message}, status=400)
    return render(request, "accounts/email_verified.html", {"verified_email": user.email})


@login_required
@require_POST
def email_verify_resend(request: HttpRequest) -> HttpResponse:
    if request.user.email_verified:
        messages.info(request, "Your email address is confirmed already.")
    elif verification.verification_send(request.user):
        messages.success(request, f"We emailed a new link to {request.user.email}.")
    else:
        messages.info(request, "A link was sent less than a minute ago: check your inbox (and spam folder).")
    return redirect("profile")
