"""The trader's EA setup page: issue or rotate the account's EA token (shown once), see whether the EA is
connected, download the EA, and follow the installation steps with this account's values filled in.

Thin: the account comes through `restrict` (an outsider gets a 404), the token and the connection through
`mt5bridge.ea.services`.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from accounts.models import TradingAccount
from accounts.permissions import can, restrict
from config.errors import ServiceError
from mt5bridge.beats import ea_last_beats
from mt5bridge.ea import services
from mt5bridge.ea.models import EAConnection, EAToken

VIEW = "accounts.view_tradingaccount"
CHANGE = "accounts.change_tradingaccount"
PACKAGE = Path(__file__).resolve().parent
#: The files a trader may download, by the name in the URL: (path in the package, download name, content type).
DOWNLOADS = {
    "mql5": (PACKAGE / "mql5" / "MT5BackOfficeEA.mq5", "MT5BackOfficeEA.mq5", "text/plain; charset=utf-8"),
    "python": (PACKAGE / "ea_client.py", "mt5_backoffice_reference_ea.py", "text/x-python; charset=utf-8"),
}


def _account(request: HttpRequest, account_id, perm: str = VIEW) -> TradingAccount:
    return get_object_or_404(restrict(request.user, perm, TradingAccount.objects.all()), pk=account_id)


def _server_url(request: HttpRequest) -> str:
    """The base URL the EA calls: the one the trader reached this page with (behind a proxy: its public name)."""
    return request.build_absolute_uri("/").rstrip("/")


def connection(account: TradingAccount) -> dict:
    """Status (online / stale / offline), the last beat's time and figures, the EA's version."""
    state = services.ea_state_latest(account.pk)
    conn = EAConnection.objects.filter(account=account).first()
    last_beat = ea_last_beats([account.pk]).get(str(account.pk))
    return {
        "status": services.ea_connection_status(account.pk),
        "last_beat": last_beat,
        "state": state,
        "ea_version": conn.ea_version if conn else "",
        "denied": conn.access_denied_reason if conn else "",
        "online_seconds": settings.EA_ONLINE_SECONDS,
    }


def _page(request, account, *, token: str | None = None, status: int = 200) -> HttpResponse:
    context = {
        "account": account,
        "token_row": EAToken.objects.filter(account=account).first(),
        "token": token,
        "connection": connection(account),
        "server_url": _server_url(request),
        "can_change": can(request.user, CHANGE, account),
    }
    return render(request, "mt5bridge/ea_setup.html", context, status=status)


@never_cache  # the page may carry a freshly issued token
@login_required
@require_http_methods(["GET", "POST"])
def ea_setup(request: HttpRequest, account_id) -> HttpResponse:
    if request.method == "GET":
        return _page(request, _account(request, account_id))
    account = _account(request, account_id, CHANGE)
    action = request.POST.get("action")
    if action == "issue":
        token = services.ea_token_issue(account=account, by=request.user)
        messages.success(request, "A new EA token was created. Copy it now: it is shown only once.")
        return _page(request, account, token=token)
    if action == "revoke":
        try:
            services.ea_token_revoke(account=account, by=request.user)
        except ServiceError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "The EA token was revoked: the EA is refused until you create a new token.")
        return redirect("web-account-ea", account_id=account.pk)
    return _page(request, account, status=400)


@login_required
@require_GET
def ea_status(request: HttpRequest, account_id) -> HttpResponse:
    """The connection panel alone, polled by the page (htmx)."""
    account = _account(request, account_id)
    return render(request, "mt5bridge/_ea_status.html", {"account": account, "connection": connection(account)})


@login_required
@require_GET
def ea_download(request: HttpRequest, account_id, kind: str) -> FileResponse:
    _account(request, account_id)  # downloads hang off an account page the person may see
    if kind not in DOWNLOADS:
        raise Http404
    path, name, content_type = DOWNLOADS[kind]
    return FileResponse(path.open("rb"), as_attachment=True, filename=name, content_type=content_type)
