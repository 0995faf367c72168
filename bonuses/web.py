"""The trader's Bonuses page: each bonus's terms, credit, leverage, lot progress, and a withdrawal preview.

Thin: accounts come through `restrict` (a trader sees only their own accounts and those shared with them),
figures from `bonuses.trader`, the preview from `bonuses.preview` (the monitor's formulas).
"""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.models import TradingAccount
from accounts.permissions import capability_required, restrict
from config.errors import ServiceError

from .services.monitored import default_gateway
from .trader import accounts_bonuses, preview_for

VIEW = "accounts.view_tradingaccount"
MAX_ACCOUNTS = 50


class WithdrawalPreviewForm(forms.Form):
    account = forms.UUIDField(widget=forms.HiddenInput)
    withdraw = forms.DecimalField(
        label="Withdrawal amount", max_digits=20, decimal_places=2, min_value=Decimal("0.01"), max_value=Decimal("1e12")
    )


@login_required
@capability_required("bonuses.own")
@require_GET
def bonuses_page(request: HttpRequest) -> HttpResponse:
    accounts = restrict(request.user, VIEW, TradingAccount.objects.all()).order_by("name", "login")[:MAX_ACCOUNTS]
    rows = accounts_bonuses(list(accounts), gateway=default_gateway())
    form = WithdrawalPreviewForm(request.GET if "withdraw" in request.GET else None)
    previewed = None
    if form.is_bound and form.is_valid():
        previewed = next((r for r in rows if r.account.pk == form.cleaned_data["account"]), None)
        if previewed is None:
            form.add_error(None, "No such account.")
        else:
            try:
                preview_for(previewed, form.cleaned_data["withdraw"])
            except ServiceError as exc:
                form.add_error("withdraw", exc.message)
    for row in rows:
        row.form = form if previewed is row else WithdrawalPreviewForm(initial={"account": row.account.pk})
    return render(request, "bonuses/bonuses.html", {"rows": rows})
