"""Account 360: the support agent's one page about an account, behind the bonus back office's "Account lookup".

One search (MT5 login, email or name) finds the trading accounts; the page of one account shows its owner
and plan, sync status and data age, the EA connection and last beat, copy links both ways with recent copy
failures and rule hits (through the `accounts.ports` support panel that copy trading fills: bonuses does not
import copytrading), bonuses with their audit trail, recent deals and balance operations, each with a link to
its admin page. The MT5 figures and bonus history of a login that is on MT5 but not connected to any
account here come from the existing lookup (`bonuses.selectors.account_lookup`).

Access: the page's capability (``accounts.lookup``), then every row through `restrict`. Action links are
shown only for the capabilities the viewer holds (read-only viewers see none).
"""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone

from accounts import ports
from accounts.models import Deal, TradingAccount
from accounts.permissions import has_capability, restrict
from config.errors import ServiceError
from entitlements.selectors import plan_for_user
from mt5bridge import gateway as gw
from mt5bridge.beats import ea_last_beats
from mt5bridge.ea import services as ea_services
from mt5bridge.ea.models import EAConnection, EAToken

from .. import selectors
from ..models import AuditLog, Bonus
from ..services.monitored import default_gateway
from .base import MAX_LOGIN

VIEW_ACCOUNT = "accounts.view_tradingaccount"
MATCHES = 50
RECENT = 20
#: MT5 deal types that move money without a trade: balance, credit, charge, correction, bonus, interest, tax...
BALANCE_OPERATION_TYPES = (2, 3, 4, 5, 6, 12, 15, 16, 17)


class Account360Form(forms.Form):
    q = forms.CharField(
        label="MT5 login, email or name", max_length=150, required=False, widget=forms.TextInput(attrs={"autofocus": 1})
    )
    login = forms.IntegerField(min_value=1, max_value=MAX_LOGIN, required=False, widget=forms.HiddenInput)

    def query(self) -> str:
        data = self.cleaned_data
        return (data.get("q") or (str(data["login"]) if data.get("login") else "")).strip()


def search(user, query: str):
    """The accounts the viewer may see whose login, owner's email or name, or account name matches ``query``."""
    accounts = restrict(user, VIEW_ACCOUNT, TradingAccount.objects.select_related("owner"))
    if query.isdigit() and int(query) <= MAX_LOGIN:
        return list(accounts.filter(login=int(query)).order_by("server")[:MATCHES])
    people = get_user_model().objects.filter(
        Q(email__icontains=query) | Q(display_name__icontains=query) | Q(first_name__icontains=query)
        | Q(last_name__icontains=query)
    )  # fmt: skip
    return list(
        accounts.filter(Q(owner__in=people) | Q(name__icontains=query)).order_by("owner__email", "login")[:MATCHES]
    )


def _ea(account: TradingAccount) -> dict:
    conn = EAConnection.objects.filter(account=account).first()
    last_beat = ea_last_beats([account.pk]).get(str(account.pk))
    return {
        "status": ea_services.ea_connection_status(account.pk),
        "last_beat": last_beat,
        "connection": conn,
        "token": EAToken.objects.filter(account=account).first(),
    }


def account_360(user, account: TradingAccount) -> dict:
    """Everything support needs about one account the viewer may see (see the module's docstring)."""
    now = timezone.now()
    deals = restrict(user, "accounts.view_deal", Deal.objects.filter(account=account))
    bonuses = restrict(user, "bonuses.view_bonus", Bonus.objects.filter(login=account.login))
    # The audit trail of the account's bonuses is part of the lookup capability (accounts.roles.MATRIX).
    audit = AuditLog.objects.filter(login=account.login) if has_capability(user, "accounts.lookup") else None
    return {
        "account": account,
        "owner": account.owner,
        "plan": plan_for_user(account.owner_id),
        "data_age": (now - account.last_sync_at) if account.last_sync_at else None,
        "last_run": account.sync_runs.order_by("-started_at").first(),
        "ea": _ea(account),
        "panels": ports.support_panels(account),
        "bonuses": list(bonuses.select_related("campaign").order_by("-created_at")[:RECENT]),
        "audit": [] if audit is None else list(audit.order_by("-created_at", "-id")[:RECENT]),
        "deals": list(deals.exclude(deal_type__in=BALANCE_OPERATION_TYPES).order_by("-time", "-ticket")[:RECENT]),
        "balance_operations": list(
            deals.filter(deal_type__in=BALANCE_OPERATION_TYPES).order_by("-time", "-ticket")[:RECENT]
        ),
    }


def actions_for(user) -> dict:
    """The action controls the viewer's role allows (none for a read-only viewer)."""
    return {
        "assign": has_capability(user, "bonuses.assign"),
        "manage_bonuses": has_capability(user, "bonuses.manage"),
        "manage_accounts": user.has_perm("accounts.change_tradingaccount"),
        "copy_admin": user.has_perm("copytrading.view_copylink"),
        "deal_admin": user.has_perm("accounts.view_deal"),
        "account_admin": user.has_perm("accounts.view_tradingaccount"),
        "user_admin": user.has_perm("accounts.view_user"),
    }


def lookup_context(request) -> dict:
    """The page's context: the search form, the matches, the chosen account's 360 and the MT5 lookup."""
    form = Account360Form(request.GET or None)
    context = {"form": form, "matches": None, "view": None, "found": None, "error": None, "query": ""}
    if not form.is_valid():
        return context
    query = form.query()
    context["query"] = query
    if not query:
        return context
    matches = search(request.user, query)
    context["matches"] = matches
    chosen = request.GET.get("account")
    picked = next((a for a in matches if str(a.pk) == chosen), None) if chosen else None
    if picked is None and len(matches) == 1:
        picked = matches[0]
    if picked is not None:
        context["view"] = account_360(request.user, picked)
        context["actions"] = actions_for(request.user)
    login = picked.login if picked else (int(query) if query.isdigit() and int(query) <= MAX_LOGIN else None)
    if login is not None:
        try:
            context["found"] = selectors.account_lookup(login=login, gateway=default_gateway())
        except (ServiceError, gw.GatewayError) as exc:
            context["error"] = getattr(exc, "message", None) or str(exc)
    return context
