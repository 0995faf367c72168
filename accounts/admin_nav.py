"""The admin's sidebar (django-unfold's SIDEBAR["navigation"]), built per request from the permission matrix.

The bonus back office comes first, in the order staff use it; then one group per part of the product. A page
appears only for a person whose role may use it: a custom page when the matrix grants its capability, a model
when the admin itself would let them view it (``AdminSite.get_app_list``). A group left empty is not shown.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import admin
from django.urls import NoReverseMatch, resolve, reverse

from .permissions import has_capability
from .roles import SIGNED_IN

# Which sidebar group an app's models go to; an app not named here goes to System.
APP_GROUPS = {
    "accounts": "Accounts",
    "mt5bridge": "Accounts",
    "auth": "Accounts",
    "otp_totp": "Accounts",
    "otp_static": "Accounts",
    "copytrading": "Copy trading",
    "entitlements": "Billing",
    "integrations": "Integrations",
}
GROUP_ORDER = ("Accounts", "Copy trading", "Billing", "Integrations", "System")
GROUP_ICONS = {"Accounts": "person", "Copy trading": "content_copy", "Billing": "payments", "Integrations": "hub"}
STRIPE_APP = "djstripe"  # dj-stripe's ~50 models: one "Stripe records" entry under Billing, Super Admin only
STRIPE_CAPABILITY = "plans.manage"
# The bonus models that are not back-office pages of their own go to System (monitor internals).
BONUS_SYSTEM_MODELS = {"monitorcycle", "monitorshard", "mt5scan"}


@dataclass(frozen=True)
class Page:
    title: str
    url_name: str
    icon: str
    capability: str | None  # None: the model admin decides (the URL name is a changelist)
    model: str | None = None  # "app_label.model" of a changelist entry


# The bonus back office, in the seed's order, then its other pages.
BACK_OFFICE = (
    Page("Dashboard", "admin:index", "dashboard", None),
    Page("Campaigns", "admin:bonuses_campaign_changelist", "campaign", None, "bonuses.campaign"),
    Page("Bonus monitor", "admin:bonuses_bonus_changelist", "monitoring", None, "bonuses.bonus"),
    Page("Account lookup", "admin:bonuses_lookup", "person_search", "accounts.lookup"),
    Page("Reports", "admin:bonuses_reports", "bar_chart", "reports.view"),
    Page("Audit log", "admin:bonuses_auditlog_changelist", "history", None, "bonuses.auditlog"),
    Page("Assign bonus", "admin:bonuses_assign", "add_card", "bonuses.assign"),
    Page("Monitoring status", "admin:bonuses_monitoring", "speed", "bonuses.view"),
    Page(
        "Monitored accounts",
        "admin:bonuses_monitoredaccount_changelist",
        "visibility",
        None,
        "bonuses.monitoredaccount",
    ),
    Page("MT5 postings", "admin:bonuses_bonusoperation_changelist", "sync_alt", None, "bonuses.bonusoperation"),
    Page("Grant approvals", "admin:bonuses_grantapproval_changelist", "approval", None, "bonuses.grantapproval"),
    Page("Abuse signals", "admin:bonuses_abusesignal_changelist", "report", None, "bonuses.abusesignal"),
    Page("Finance report", "admin:bonuses_finance_report", "account_balance", "reports.view"),
    Page(
        "Reconciliation",
        "admin:bonuses_reconciliationmismatch_changelist",
        "rule",
        None,
        "bonuses.reconciliationmismatch",
    ),
)
# Pages other parts of the product add to System when they exist (looked up at render time).
SYSTEM_PAGES = (Page("System health", "admin:system-health", "monitor_heart", None),)


def _visible_models(request) -> dict[str, dict]:
    """ "app_label.model" -> the admin's own entry (name, admin_url) for every model this person may view."""
    models = {}
    for app in admin.site.get_app_list(request):
        for model in app["models"]:
            if model.get("admin_url"):
                models[f"{app['app_label']}.{model['object_name'].lower()}"] = {**model, "app_label": app["app_label"]}
    return models


def _item(title: str, link: str, icon: str, request) -> dict:
    return {"title": title, "link": link, "icon": icon, "active": _is_active(request, link)}


def _is_active(request, link: str) -> bool:
    """The entry of this page: its own address, or for a list the pages of its rows (``<pk>/...``, ``add/``), not
    the other pages hanging off the list's address (``bonus/lookup/`` is Account lookup's, not Bonus monitor's)."""
    if request.path == link:
        return True
    if link == reverse("admin:index") or not request.path.startswith(link):
        return False
    first = request.path[len(link) :].split("/", 1)[0]
    return first.isdigit() or first == "add"


def back_office_items(request, models: dict[str, dict]) -> list[dict]:
    items = []
    for page in BACK_OFFICE:
        if page.model is not None:
            allowed = page.model in models
        elif page.capability is not None:
            allowed = has_capability(request.user, page.capability)
        else:
            allowed = True  # the dashboard: every staff member who reaches the admin
        if allowed:
            items.append(_item(page.title, reverse(page.url_name), page.icon, request))
    return items


def back_office_links(request) -> list[dict]:
    """The bonus back office's entries this person may use (the bonus pages' own link bar shows the same)."""
    return back_office_items(request, _visible_models(request))


def _page_allowed(request, link: str) -> bool:
    """Whether the matrix grants the capability the page's view declares (capability_required); none: refused."""
    capability = getattr(resolve(link).func, "capability", None)
    return capability is not None and (capability == SIGNED_IN or has_capability(request.user, capability))


def _optional_link(url_name: str) -> str | None:
    try:
        return reverse(url_name)
    except NoReverseMatch:
        return None


def navigation(request) -> list[dict]:
    """SIDEBAR["navigation"]: the groups and entries this person may use."""
    models = _visible_models(request)
    back_office_models = {f"bonuses.{p.model.split('.')[1]}" for p in BACK_OFFICE if p.model}
    groups: dict[str, list[dict]] = {name: [] for name in GROUP_ORDER}
    for key, model in models.items():
        app_label, model_name = key.split(".")
        if key in back_office_models or app_label == STRIPE_APP:
            continue
        if app_label == "bonuses" and model_name not in BONUS_SYSTEM_MODELS:
            continue
        group = APP_GROUPS.get(app_label, "System")
        groups[group].append(_item(str(model["name"]), model["admin_url"], GROUP_ICONS.get(group, "settings"), request))
    if any(key.startswith(f"{STRIPE_APP}.") for key in models) and has_capability(request.user, STRIPE_CAPABILITY):
        link = reverse("admin:app_list", kwargs={"app_label": STRIPE_APP})
        groups["Billing"].append(_item("Stripe records", link, "credit_card", request))
    for page in SYSTEM_PAGES:
        link = _optional_link(page.url_name)
        if link is not None and _page_allowed(request, link):
            groups["System"].append(_item(page.title, link, page.icon, request))
    navigation = [{"title": "Back office", "separator": False, "items": back_office_items(request, models)}]
    navigation += [{"title": name, "separator": True, "items": items} for name, items in groups.items() if items]
    return navigation


def show_all_applications(request) -> bool:
    """The sidebar's "all applications" list repeats every model: only for Super Admin, who sees everything."""
    return has_capability(request.user, STRIPE_CAPABILITY)


def hides_stripe(request) -> bool:
    """dj-stripe's models are listed for Super Admin only (the index and the app lists)."""
    return not has_capability(request.user, STRIPE_CAPABILITY)
