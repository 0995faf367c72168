"""Web pages of billing: your plan, the price list with upgrade buttons, the portal, choosing active accounts."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.models import TradingAccount
from config.errors import ServiceError
from entitlements import services as entitlements_services
from entitlements.models import FEATURE_LABELS, FEATURES, LIMIT_LABELS, LIMITS
from entitlements.selectors import local_mode, plan_for_user, plans, usage_for

from . import services
from .api import subscription_payload


def _site_url(name: str) -> str:
    return settings.SITE_URL.rstrip("/") + reverse(name)


def _common(request) -> dict:
    return {
        "local_mode": local_mode(),
        "current_plan": plan_for_user(request.user),
        "default_plan": settings.BILLING_DEFAULT_PLAN,
    }


@login_required
def overview(request):
    context = {**_common(request), "subscription": subscription_payload(request.user), "usage": usage_for(request.user)}
    if request.GET.get("checkout") == "success":
        messages.success(request, "Thank you: your subscription starts as soon as Stripe confirms the payment.")
    return render(request, "billing/overview.html", context)


@login_required
def pricing(request):
    public = [p for p in plans().values() if p.is_public]
    rows = [{"label": LIMIT_LABELS[name], "values": [p.limit(name) for p in public]} for name in LIMITS]
    features = [
        {"label": FEATURE_LABELS[name], "values": [bool(getattr(p, name)) for p in public]} for name in FEATURES
    ]
    if request.GET.get("checkout") == "cancelled":
        messages.info(request, "Checkout was cancelled; nothing changed.")
    return render(
        request,
        "billing/pricing.html",
        {**_common(request), "plans": public, "limit_rows": rows, "feature_rows": features},
    )


@login_required
@require_POST
def checkout(request, slug: str, interval: str):
    if interval not in ("month", "year"):
        messages.error(request, "Choose monthly or yearly billing.")
        return redirect("billing:pricing")
    try:
        session = services.checkout_session_create(
            user=request.user,
            plan_slug=slug,
            interval=interval,
            success_url=_site_url("billing:overview") + "?checkout=success",
            cancel_url=_site_url("billing:pricing") + "?checkout=cancelled",
        )
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("billing:pricing")
    return redirect(session["url"])


@login_required
@require_POST
def portal(request):
    try:
        session = services.portal_session_create(user=request.user, return_url=_site_url("billing:overview"))
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("billing:overview")
    return redirect(session["url"])


@login_required
def active_accounts(request):
    plan = plan_for_user(request.user)
    accounts = TradingAccount.objects.filter(owner=request.user).order_by("created_at").select_related("billing_pause")
    if request.method == "POST":
        chosen = request.POST.getlist("account")
        owned = {str(a.pk): a.pk for a in accounts}
        unknown = [c for c in chosen if c not in owned]
        if unknown:
            messages.error(request, "Some of the chosen accounts are not yours.")
        else:
            try:
                result = entitlements_services.active_accounts_choose(
                    user=request.user, account_ids=[owned[c] for c in chosen]
                )
            except ServiceError as exc:
                messages.error(request, exc.message)
            else:
                messages.success(
                    request,
                    f"{len(result['active'])} active, {len(result['paused'])} paused. "
                    "Paused accounts keep all their data.",
                )
                return redirect("billing:active-accounts")
    rows = [{"account": a, "paused_by_plan": hasattr(a, "billing_pause")} for a in accounts]
    return render(request, "billing/active_accounts.html", {**_common(request), "rows": rows, "plan": plan})
