"""Trader pages of copy trading: links, copy history, rules, templates and the web terminal.

Thin: every row comes through `restrict` (an outsider gets a 404 or an empty list) and every write goes
through `copytrading.services`, so the pages and the API obey the same rules.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import TradingAccount
from accounts.permissions import restrict
from config.errors import ServiceError

from . import services
from .api.links import link_for_change, links_visible_to
from .api.orders import TerminalOrderSerializer, commands_visible_to, templates_of
from .api.rules import rules_visible_to
from .choices import AccountMode
from .equity_stops import link_resume
from .forms import CopyLinkForm, RuleForm, SampleTradeForm, TemplateForm, TerminalOrderForm
from .models import AccountCopyState, CopiedPosition, CopyEvent, Rule, RuleHit
from .web_guards import with_slippage


def _visible_accounts(user):
    return restrict(user, "accounts.view_tradingaccount", TradingAccount.objects.all()).order_by("name", "login")


def _tradable_accounts(user):
    return restrict(user, "accounts.change_tradingaccount", TradingAccount.objects.all()).order_by("name", "login")


@login_required
@require_http_methods(["GET", "POST"])
def links(request: HttpRequest) -> HttpResponse:
    masters, slaves = list(_visible_accounts(request.user)), list(_tradable_accounts(request.user))
    form = CopyLinkForm(request.POST or None, masters=masters, slaves=slaves)
    if request.method == "POST" and form.is_valid():
        try:
            services.copy_link_create(
                user=request.user,
                master_id=form.cleaned_data["master"],
                slave_id=form.cleaned_data["slave"],
                **form.link_values(),
            )
        except ServiceError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, "Copy link created.")
            return redirect("copy-web-links")
    states = dict(AccountCopyState.objects.filter(account__in=slaves).values_list("account_id", "mode"))
    for account in slaves:
        account.copy_mode = states.get(account.pk, AccountMode.NORMAL)
    shown = list(links_visible_to(request.user).order_by("id"))
    with_slippage(shown)
    return render(
        request,
        "copytrading/links.html",
        {
            "links": shown,
            "form": form,
            "sample_form": SampleTradeForm(),
            "slaves": slaves,
            "modes": AccountMode.choices,
        },
    )


@login_required
@require_POST
def link_action(request: HttpRequest, pk: int) -> HttpResponse:
    link = link_for_change(request.user, pk)
    action = request.POST.get("action")
    if action == "delete":
        services.copy_link_delete(link=link)
        messages.success(request, "Copy link deleted.")
    elif action in ("pause", "activate"):
        services.copy_link_update(link=link, active=action == "activate")
        messages.success(request, "Copy link updated.")
    elif action == "resume":
        link_resume(link, actor=request.user)
        messages.success(request, "Copy link resumed after its equity stop.")
    else:
        raise Http404
    return redirect("copy-web-links")


@login_required
@require_POST
def account_mode(request: HttpRequest, account_id) -> HttpResponse:
    try:
        account = services.account_for_trading(user=request.user, account_id=account_id)
        services.copy_mode_set(
            account=account, mode=request.POST.get("mode", ""), reason=f"set by {request.user.email}"
        )
    except ServiceError as exc:
        if exc.status_code == 404:
            raise Http404 from exc
        messages.error(request, exc.message)
    return redirect(_safe_next(request) or "copy-web-links")


def _safe_next(request: HttpRequest) -> str | None:
    """The form's ``next`` when it is a page of this site (never another host: an open redirect), else None."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return None


@login_required
@require_GET
def history(request: HttpRequest) -> HttpResponse:
    copied = restrict(
        request.user, "copytrading.view_copiedposition", CopiedPosition.objects.all(), owner_path="slave_account__owner"
    ).select_related("link")[:200]
    events = restrict(
        request.user, "copytrading.view_copyevent", CopyEvent.objects.all(), owner_path="slave_account__owner"
    )[:200]
    return render(request, "copytrading/history.html", {"copied": copied, "events": events})


@login_required
@require_http_methods(["GET", "POST"])
def rules(request: HttpRequest) -> HttpResponse:
    accounts = list(_tradable_accounts(request.user))
    form = RuleForm(request.POST or None, accounts=accounts)
    if request.method == "POST" and form.is_valid():
        try:
            services.rule_create(user=request.user, account_id=form.cleaned_data["account"], **form.rule_values())
        except ServiceError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, "Rule added.")
            return redirect("copy-web-rules")
    hits = restrict(
        request.user, "copytrading.view_rulehit", RuleHit.objects.all(), owner_path="account__owner"
    ).select_related("account")[:100]
    return render(
        request,
        "copytrading/rules.html",
        {
            "rules": rules_visible_to(request.user).select_related("account"),
            "form": form,
            "hits": hits,
            "accounts": accounts,
        },
    )


@login_required
@require_POST
def rule_delete(request: HttpRequest, pk: int) -> HttpResponse:
    queryset = restrict(request.user, "copytrading.delete_rule", Rule.objects.all(), owner_path="account__owner")
    rule = queryset.filter(pk=pk).first()
    if rule is None:
        raise Http404
    services.rule_delete(rule=rule)
    messages.success(request, "Rule deleted.")
    return redirect("copy-web-rules")


@login_required
@require_http_methods(["GET", "POST"])
def templates(request: HttpRequest) -> HttpResponse:
    form = TemplateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.template_create(user=request.user, **form.cleaned_data)
        except ServiceError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, "Template saved.")
            return redirect("copy-web-templates")
    return render(
        request,
        "copytrading/templates.html",
        {
            "templates": templates_of(request.user),
            "form": form,
            "accounts": _tradable_accounts(request.user),
        },
    )


@login_required
@require_POST
def template_place(request: HttpRequest, pk: int) -> HttpResponse:
    template = templates_of(request.user).filter(pk=pk).first()
    if template is None:
        raise Http404
    account_ids = request.POST.getlist("accounts")[:200]
    try:
        outcome = services.template_place(user=request.user, template=template, account_ids=account_ids)
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("copy-web-templates")
    messages.success(request, f"{len(outcome['commands'])} order(s) sent.")
    for account_id, error in outcome["errors"].items():
        messages.error(request, f"{account_id}: {error['message']}")
    return redirect("copy-web-terminal")


@login_required
@require_http_methods(["GET", "POST"])
def terminal(request: HttpRequest) -> HttpResponse:
    accounts = list(_tradable_accounts(request.user))
    form = TerminalOrderForm(request.POST or None, accounts=accounts)
    if request.method == "POST" and form.is_valid():
        data = {k: v for k, v in form.cleaned_data.items() if v not in (None, "")}
        serializer = TerminalOrderSerializer(data=data)
        if not serializer.is_valid():
            for name, errors in serializer.errors.items():
                form.add_error(name if name in form.fields else None, errors)
        else:
            try:
                services.terminal_order_send(
                    user=request.user,
                    account_id=data["account"],
                    kind=data["kind"],
                    params=serializer.validated_data["params"],
                )
            except ServiceError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, "Order sent to the EA.")
                return redirect("copy-web-terminal")
    return render(request, "copytrading/terminal.html", {"form": form, "accounts": accounts})


@login_required
@require_GET
def terminal_commands(request: HttpRequest) -> HttpResponse:
    """The command list the terminal page polls (HTMX, every second) so each status updates live."""
    commands = commands_visible_to(request.user).select_related("account").order_by("-created_at")[:30]
    return render(request, "copytrading/_commands.html", {"commands": commands})
