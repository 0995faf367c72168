"""Views of the trader web app: sign-up, profile, dashboard, accounts, deals, analytics, statement import.

Thin: every account is fetched through `restrict` (an outsider gets a 404), writes go through
`accounts.services` / `accounts.statements`, figures come from `accounts.dashboard` and
`accounts.analytics`.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from config.errors import ServiceError
from config.net import client_ip

from . import data_rights, ports, services, verification
from .analytics.history import statistics_for_account
from .choices import ConsentSource, PasswordKind, Role
from .dashboard import dashboard_summary
from .forms import (
    AnalyticsRangeForm,
    DealFilterForm,
    ProfileForm,
    SignupForm,
    StatementUploadForm,
    TradingAccountAddForm,
    TradingAccountEditForm,
)
from .freshness import account_data_age, data_ages
from .models import Deal, Order, Position, StatementImport, TradingAccount
from .permissions import restrict
from .statements.importing import statement_import
from .statements.upload import StatementTooLarge, read_upload, request_too_large, upload_limit_message

VIEW = "accounts.view_tradingaccount"
CHANGE = "accounts.change_tradingaccount"
DELETE = "accounts.delete_tradingaccount"
SYNC = "accounts.sync_tradingaccount"
DEALS_PER_PAGE = 50
ORDER_TYPES = {
    0: "Buy",
    1: "Sell",
    2: "Buy Limit",
    3: "Sell Limit",
    4: "Buy Stop",
    5: "Sell Stop",
    6: "Buy Stop Limit",
    7: "Sell Stop Limit",
    8: "Close By",
}
DEAL_TYPES = {
    0: "Buy",
    1: "Sell",
    2: "Balance",
    3: "Credit",
    4: "Charge",
    5: "Correction",
    6: "Bonus",
    7: "Commission",
    8: "Daily commission",
    9: "Monthly commission",
    12: "Interest",
    15: "Dividend",
    17: "Tax",
}
DEAL_ENTRIES = {0: "in", 1: "out", 2: "in/out", 3: "out by"}


def _account(request: HttpRequest, account_id, perm: str = VIEW) -> TradingAccount:
    """The account if ``request.user`` holds ``perm`` on it; a 404 otherwise (no hint it exists)."""
    account = restrict(request.user, perm, TradingAccount.objects.all()).filter(pk=account_id).first()
    if account is None:
        raise Http404("No such account.")
    return account


def _can(request: HttpRequest, perm: str, account: TradingAccount) -> bool:
    return restrict(request.user, perm, TradingAccount.objects.filter(pk=account.pk)).exists()


# --- people --------------------------------------------------------------------------------


def home(request: HttpRequest) -> HttpResponse:
    return redirect("dashboard" if request.user.is_authenticated else "login")


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("dashboard")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()  # the address stays unconfirmed until the emailed link is opened
        user.groups.add(*Group.objects.filter(name=Role.TRADER))
        if form.cleaned_data.get("marketing_consent"):
            data_rights.consent_set(
                user=user,
                granted=True,
                source=ConsentSource.SIGNUP,
                actor=user,
                ip_address=client_ip(request),
                user_agent=request.META.get("HTTP_USER_AGENT", ""),
            )
        verification.verification_send(user)
        login(request, user, backend="accounts.backends.ModelBackend")
        messages.success(
            request,
            f"Welcome! We emailed a link to {user.email}: open it to confirm your address, then connect your first "
            "MT5 account.",
        )
        return redirect("web-account-add")
    return render(request, "accounts/signup.html", {"form": form})


@login_required
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    old_address = request.user.email  # the form writes the new one onto the user while it validates
    form = ProfileForm(request.POST or None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        user = form.save(commit=False)
        new_address = user.email != old_address
        if new_address:
            user.email_verified_at = None  # a new address is confirmed like the first one
        user.save()
        if new_address:
            verification.verification_send(user)
            messages.success(request, f"Your profile was saved. We emailed a link to {user.email} to confirm it.")
        else:
            messages.success(request, "Your profile was saved.")
        return redirect("profile")
    return render(request, "accounts/profile.html", {"form": form})


# --- dashboard -----------------------------------------------------------------------------


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:

    summary = dashboard_summary(request.user)
    template = "accounts/_dashboard_body.html" if request.headers.get("HX-Request") else "accounts/dashboard.html"
    return render(request, template, {"summary": summary})


# --- trading accounts ----------------------------------------------------------------------


@login_required
@require_GET
def account_list(request: HttpRequest) -> HttpResponse:
    accounts = list(
        restrict(request.user, VIEW, TradingAccount.objects.select_related("owner")).order_by("name", "login")
    )
    ages = data_ages(accounts)
    for account in accounts:
        account.data_age = ages[account.pk]
    return render(request, "accounts/account_list.html", {"accounts": accounts})


@login_required
@require_http_methods(["GET", "POST"])
def account_add(request: HttpRequest) -> HttpResponse:
    form = TradingAccountAddForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            account = services.trading_account_create(
                owner=request.user,
                login=data["login"],
                password=data["password"],
                server=data["server"].strip(),
                category=data["category"],
                name=data["name"].strip(),
                password_kind=data["password_kind"] or PasswordKind.MASTER,
                holder_name=data["holder_name"],
                currency=data["currency"],
            )
        except ServiceError as exc:
            _form_error(form, exc)
        else:
            messages.success(request, f"Account {account.login} is connected; its history is being synced.")
            return redirect("web-account-detail", account_id=account.pk)
    context = {"form": form, "adding": True, "unverified": not request.user.email_verified}
    return render(request, "accounts/account_form.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def account_edit(request: HttpRequest, account_id) -> HttpResponse:
    account = _account(request, account_id, CHANGE)
    initial = {"name": account.name, "category": account.category, "is_active": account.is_active}
    form = TradingAccountEditForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.trading_account_update(
                account=account,
                password=data["password"] or None,
                name=data["name"],
                category=data["category"],
                is_active=data["is_active"],
            )
        except ServiceError as exc:
            field = "password" if getattr(exc, "code", "") == "credentials_refused" else None
            form.add_error(field, _message(exc))
        else:
            messages.success(request, "The account was saved.")
            return redirect("web-account-detail", account_id=account.pk)
    return render(request, "accounts/account_form.html", {"form": form, "account": account, "adding": False})


@login_required
@require_http_methods(["GET", "POST"])
def account_delete(request: HttpRequest, account_id) -> HttpResponse:
    account = _account(request, account_id, DELETE)
    if request.method == "POST":
        label = str(account)
        services.trading_account_delete(account=account)
        messages.success(request, f"{label} and its stored history were removed.")
        return redirect("web-account-list")
    counts = {"deals": account.deals.count(), "snapshots": account.snapshots.count()}
    return render(request, "accounts/account_confirm_delete.html", {"account": account, "counts": counts})


@login_required
@require_POST
def account_sync(request: HttpRequest, account_id) -> HttpResponse:
    account = _account(request, account_id, SYNC)
    try:
        if account.is_paused:
            services.trading_account_resume(account=account)
        else:
            services.trading_account_sync_now(account=account, trigger="manual")
    except ServiceError as exc:
        messages.error(request, _message(exc))
    else:
        messages.success(request, "A sync was started; figures update here as soon as it finishes.")
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect("web-account-detail", account_id=account.pk)


def _message(exc: ServiceError) -> str:
    return getattr(exc, "message", None) or str(exc)


def _form_error(form, exc: ServiceError) -> None:
    """A refused account on the field it is about: the password, the typed ownership details, else the form."""
    code = getattr(exc, "code", "")
    fields = (getattr(exc, "details", None) or {}).get("fields") if code.startswith("ownership_") else None
    if code == "credentials_refused":
        form.add_error("password", _message(exc))
    elif fields:
        form.add_error(None, _message(exc))
        for name in fields:
            form.add_error(name, "Does not match the MT5 account." if code == "ownership_mismatch" else "Required.")
    else:
        form.add_error(None, _message(exc))


@login_required
@require_GET
def account_detail(request: HttpRequest, account_id) -> HttpResponse:

    account = _account(request, account_id)
    stats = statistics_for_account(account, viewer=request.user)
    context = {
        "account": account,
        "stats": stats,
        "equity_series": stats["series"].get("equity", []),
        "positions": Position.objects.filter(account=account).order_by("opened_at"),
        "orders": [
            {"order": order, "type": ORDER_TYPES.get(order.order_type, order.order_type)}
            for order in Order.objects.filter(account=account).order_by("placed_at")
        ],
        "deal_filters": DealFilterForm(),
        "sections": stat_sections(stats["summary"], stats.get("insufficient", []))[:2],
        "can_change": _can(request, CHANGE, account),
        "can_sync": _can(request, SYNC, account),
        "can_delete": _can(request, DELETE, account),
        "last_run": account.sync_runs.order_by("-started_at").first(),
        "data_age": account_data_age(account),
    }
    return render(request, "accounts/account_detail.html", context)


def _deal_query(account: TradingAccount, data: dict, viewer):
    deals = ports.within_history(Deal.objects.filter(account=account), account.owner, viewer=viewer)
    if data.get("symbol"):
        deals = deals.filter(symbol__iexact=data["symbol"].strip())
    if data.get("magic") is not None:
        deals = deals.filter(magic=data["magic"])
    if data.get("date_from"):
        deals = deals.filter(
            time__gte=datetime.combine(data["date_from"], time.min, tzinfo=timezone.get_current_timezone())
        )
    if data.get("date_to"):
        end = datetime.combine(data["date_to"] + timedelta(days=1), time.min, tzinfo=timezone.get_current_timezone())
        deals = deals.filter(time__lt=end)
    kind = data.get("kind")
    if kind == "trades":
        deals = deals.filter(deal_type__in=(0, 1))
    elif kind == "buy":
        deals = deals.filter(deal_type=0)
    elif kind == "sell":
        deals = deals.filter(deal_type=1)
    elif kind == "balance":
        deals = deals.filter(deal_type=2)
    elif kind == "credit":
        deals = deals.filter(deal_type=3)
    elif kind == "other":
        deals = deals.filter(~Q(deal_type__in=(0, 1, 2, 3)))
    return deals.order_by("-time", "-ticket")


@login_required
@require_GET
def account_deals(request: HttpRequest, account_id) -> HttpResponse:
    """The deal history table (filters + pagination); a fragment for HTMX, a page otherwise."""
    account = _account(request, account_id)
    form = DealFilterForm(request.GET or None)
    page = None
    if not form.is_bound or form.is_valid():
        data = form.cleaned_data if form.is_bound else {}
        paginator = Paginator(_deal_query(account, data, request.user), DEALS_PER_PAGE)
        page = paginator.get_page(request.GET.get("page"))
        for deal in page.object_list:
            deal.type_label = DEAL_TYPES.get(deal.deal_type, str(deal.deal_type))
            deal.entry_label = DEAL_ENTRIES.get(deal.entry, "") if deal.deal_type in (0, 1) else ""
    query = request.GET.copy()
    query.pop("page", None)
    context = {"account": account, "form": form, "page": page, "query": query.urlencode()}
    template = "accounts/_deals.html" if request.headers.get("HX-Request") else "accounts/deals.html"
    return render(request, template, context)


@login_required
@require_GET
def account_analytics(request: HttpRequest, account_id) -> HttpResponse:

    account = _account(request, account_id)
    form = AnalyticsRangeForm(request.GET or None)
    date_from = date_to = None
    if form.is_bound and form.is_valid():
        date_from, date_to = form.cleaned_data["date_from"], form.cleaned_data["date_to"]
        if date_from and date_to and date_from > date_to:
            form.add_error(None, "“From” must be on or before “To”.")
            date_from = date_to = None
    stats = statistics_for_account(account, date_from=date_from, date_to=date_to, viewer=request.user)
    context = {
        "account": account,
        "stats": stats,
        "form": form,
        "sections": stat_sections(stats["summary"], stats.get("insufficient", [])),
    }
    return render(request, "accounts/analytics.html", context)


# CSRF is checked by hand below: the middleware's check reads request.POST, which parses (and so receives and
# spools) the whole multipart body before the view could refuse an oversized upload unread.
@csrf_exempt
@login_required
@require_http_methods(["GET", "POST"])
def account_import(request: HttpRequest, account_id) -> HttpResponse:
    account = _account(request, account_id, CHANGE)
    if request.method == "POST" and request_too_large(request.META):
        form = StatementUploadForm.refused(upload_limit_message())
        return _import_page(request, account, form, None, status=413)
    return _account_import_checked(request, account)


@csrf_protect
def _account_import_checked(request: HttpRequest, account: TradingAccount) -> HttpResponse:
    form = StatementUploadForm(request.POST or None, request.FILES or None)
    result = None
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["report"]
        try:
            result = statement_import(
                account=account, user=request.user, filename=upload.name, data=read_upload(upload)
            )
        except ServiceError as exc:
            form.add_error("report", ValidationError(_message(exc), code=exc.code))
        else:
            form = StatementUploadForm()
    too_large = any(error.code == StatementTooLarge.code for error in form.errors.as_data().get("report", []))
    return _import_page(request, account, form, result, status=413 if too_large else 400 if form.errors else 200)


def _import_page(request, account, form, result, *, status: int) -> HttpResponse:
    history = StatementImport.objects.filter(account=account).order_by("-uploaded_at")[:20]
    return render(
        request,
        "accounts/import.html",
        {"account": account, "form": form, "result": result, "history": history},
        status=status,
    )


# --- statistics as labelled rows -----------------------------------------------------------

STAT_GROUPS = (
    ("Drawdown", ("drawdown",)),
    (
        "Growth",
        ("gain", "cagr", "net_profit", "deposits", "withdrawals", "bonuses", "credit", "balance", "period", "days"),
    ),
    ("Trades", ("trade", "win", "loss", "lots", "profit", "expectancy", "average", "consecutive", "best", "worst")),
    ("Risk", ("sharpe", "sortino", "std_dev", "z_score", "ahpr", "ghpr", "ruin", "recovery")),
    ("Costs", ("commission", "swap", "fee")),
)
ACRONYMS = {"pct": "%", "cagr": "CAGR", "ahpr": "AHPR", "ghpr": "GHPR", "std": "std.", "dev": "dev.", "z": "Z"}


def stat_label(key: str) -> str:
    words = [ACRONYMS.get(word, word) for word in key.split("_")]
    text = " ".join(words).replace(" %", " (%)")
    return text[:1].upper() + text[1:]


def stat_text(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, dict):
        if "count" in value and "money" in value:
            return f"{value['count']} ({value['money']})"
        if "profit" in value:
            when = str(value.get("closed_at") or value.get("at") or "")[:10]
            return f"{value['profit']} (#{value.get('position', '')} {when})".replace(" #)", ")")
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and "T" in value:
        return value[:16].replace("T", " ")
    return str(value)


def stat_sections(summary: dict, insufficient: list[str]) -> list[dict]:
    """The summary grouped for display; withheld statistics say why instead of showing noise."""
    sections = {title: [] for title, _ in STAT_GROUPS}
    sections["Other"] = []
    withheld = set(insufficient)
    for key, value in summary.items():
        title = next((t for t, words in STAT_GROUPS if any(w in key for w in words)), "Other")
        text = "needs 30 closed trades" if key in withheld else stat_text(value)
        sections[title].append({"key": key, "label": stat_label(key), "text": text, "withheld": key in withheld})
    order = ("Growth", "Drawdown", "Trades", "Risk", "Costs", "Other")
    return [{"title": title, "rows": sections[title]} for title in order if sections.get(title)]
