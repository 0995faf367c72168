"""Trader pages of signals: the public list and page, publishing (with followers and earnings), following and
stopping (with the fee calculation). Thin: rows come through ``restrict`` and writes through ``signal_services``."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import TradingAccount
from accounts.permissions import restrict
from config.errors import ServiceError

from . import signal_services as signals
from .signal_forms import FollowForm, SignalForm, StopForm


def _own_accounts(user):
    return restrict(user, "accounts.change_tradingaccount", TradingAccount.objects.filter(owner=user)).order_by(
        "name", "login"
    )


@require_GET
def signal_list(request: HttpRequest) -> HttpResponse:
    """Every listed signal (no login needed)."""
    listed = list(signals.signals_listed().order_by("-created_at")[:200])
    return render(request, "copytrading/signal_list.html", {"signals": listed})


@require_GET
def signal_page(request: HttpRequest, pk: int) -> HttpResponse:
    """A signal's public page: the terms and the figures verified from the master's synced history."""
    signal = signals.signal_visible(request.user, pk)
    if signal is None:
        raise Http404
    return render(
        request,
        "copytrading/signal_page.html",
        {
            "signal": signal,
            "figures": signals.signal_figures(signal),
            "is_provider": signal.owner_id == request.user.pk,
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def signal_follow(request: HttpRequest, pk: int) -> HttpResponse:
    signal = signals.signals_listed().filter(pk=pk).first()
    if signal is None:
        raise Http404
    accounts = [a for a in _own_accounts(request.user) if a.pk != signal.master_id]
    form = FollowForm(request.POST or None, accounts=accounts)
    if request.method == "POST" and form.is_valid():
        try:
            signals.signal_subscribe(
                user=request.user, signal_id=signal.pk, account_id=form.cleaned_data["slave"], **form.link_values()
            )
        except ServiceError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, f"Your account now follows {signal.name}.")
            return redirect("copy-web-following")
    return render(request, "copytrading/signal_follow.html", {"signal": signal, "form": form})


@login_required
@require_http_methods(["GET", "POST"])
def signals_mine(request: HttpRequest) -> HttpResponse:
    """The provider's page: publish a master; each signal's followers, their fees and the earnings."""
    form = SignalForm(request.POST or None, masters=_own_accounts(request.user))
    if request.method == "POST" and form.is_valid():
        values = dict(form.cleaned_data)
        try:
            signals.signal_publish(user=request.user, master_id=values.pop("master"), **values)
        except ServiceError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, "Signal published.")
            return redirect("copy-web-signals-mine")
    published = []
    for signal in signals.signals_of(request.user).order_by("-created_at"):
        followers = list(signals.followers_of(signal).prefetch_related("fees"))
        published.append({"signal": signal, "followers": followers, "earnings": signals.earnings_of(signal)})
    return render(request, "copytrading/signals_mine.html", {"form": form, "published": published})


@login_required
@require_POST
def signal_listing(request: HttpRequest, pk: int) -> HttpResponse:
    signal = signals.signals_of(request.user, "copytrading.change_tradingsignal").filter(pk=pk).first()
    if signal is None:
        raise Http404
    signals.signal_update(user=request.user, signal=signal, listed=request.POST.get("listed") == "1")
    messages.success(request, "Signal listed." if signal.listed else "Signal withdrawn: it takes no new followers.")
    return redirect("copy-web-signals-mine")


@login_required
@require_GET
def following(request: HttpRequest) -> HttpResponse:
    """The follower's page: each subscription, its fees with their calculation, and the stop form."""
    follows = signals.follows_of(request.user).prefetch_related("fees")[:200]
    return render(request, "copytrading/following.html", {"follows": follows, "stop_form": StopForm()})


@login_required
@require_POST
def follow_stop(request: HttpRequest, pk: int) -> HttpResponse:
    subscription = signals.follows_of(request.user, "copytrading.change_signalsubscription").filter(pk=pk).first()
    if subscription is None:
        raise Http404
    form = StopForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose whether the open copies are closed or kept.")
        return redirect("copy-web-following")
    signals.signal_stop(user=request.user, subscription=subscription, close_open=form.cleaned_data["close_open"])
    messages.success(request, f"You no longer follow {subscription.signal.name}.")
    return redirect("copy-web-following")
