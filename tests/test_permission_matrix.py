"""Every API endpoint and every admin page, for every persona, against the role matrix (accounts.roles).

Generated from the URL configuration and the admin registry, so a new endpoint, admin page or admin
action joins these tests by itself, and fails them until it declares a capability of the matrix.
The hand-written seed-table tests at the end state the bonus back office's roles in plain
expectations that do not come from the matrix, so a wrong matrix fails too.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from fnmatch import fnmatchcase

import pytest
from django.contrib import admin
from django.contrib.auth import get_permission_codename
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from guardian.shortcuts import assign_perm
from rest_framework.test import APIClient

from accounts.choices import Role
from accounts.permissions import MatrixPermission, declared_capability
from accounts.roles import CAPABILITIES, EA, MATRIX, PSEUDO_CAPABILITIES, PUBLIC, SIGNED_IN, Scope, role_permissions
from tests.personas import UserFactory, api_client_for, staff_user

SAFE = ("GET", "HEAD", "OPTIONS")
DOC_VIEWS = ("SpectacularAPIView", "SpectacularSwaggerView", "SpectacularSwaggerSplitView")  # public by design
ADMIN_SITE_VIEWS = {
    "index",
    "login",
    "logout",
    "password_change",
    "password_change_done",
    "jsi18n",
    "app_list",
    "autocomplete",
    "view_on_site",
}
STANDARD_MODEL_VIEWS = ("changelist", "add", "history", "delete", "change")
OUR_APPS = ("accounts", "entitlements", "mt5bridge", "copytrading", "bonuses", "billing", "integrations", "config")


# --- The routes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    name: str
    pattern: str
    view_class: type
    actions: dict | None  # viewset: method -> action

    @property
    def kwargs(self) -> tuple[str, ...]:
        import re

        return tuple(re.findall(r"\(\?P<(\w+)>", self.pattern)) + tuple(re.findall(r"<(?:\w+:)?(\w+)>", self.pattern))

    def methods(self) -> list[str]:
        if self.actions is not None:
            return sorted(m.upper() for m in self.actions if m not in ("head", "options"))
        names = getattr(self.view_class, "http_method_names", [])
        return sorted(m.upper() for m in names if m not in ("head", "options", "trace") and hasattr(self.view_class, m))

    def __str__(self) -> str:
        return self.name


def _walk(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry


def api_routes() -> list[Route]:
    routes = []
    for pattern, entry in _walk(get_resolver().url_patterns):
        if not pattern.lstrip("^").startswith("api/"):
            continue
        callback = entry.callback
        view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
        if view_class is not None and view_class.__name__ in DOC_VIEWS:
            continue
        routes.append(Route(entry.name, pattern, view_class or callback, getattr(callback, "actions", None)))
    return routes


ROUTES = api_routes()
ROUTE_METHODS = [(route, method) for route in ROUTES for method in route.methods()]


def capability_of(route: Route, method: str) -> str | None:
    """What the view declares for this method (or viewset action)."""
    view_class = route.view_class
    if not isinstance(view_class, type):  # a plain Django view function
        return getattr(view_class, "capability", None)

    class _Request:
        pass

    request = _Request()
    request.method = method
    view = view_class()
    view.action = route.actions.get(method.lower()) if route.actions else None
    view.action_map = route.actions
    return declared_capability(view, request)


# --- Personas --------------------------------------------------------------------------------

STAFF = {
    "super_admin": Role.SUPER_ADMIN,
    "campaign_manager": Role.CAMPAIGN_MANAGER,
    "support_agent": Role.SUPPORT_AGENT,
    "read_only": Role.READ_ONLY,
}
# Order matters: people who must be refused go first, the owner last (their writes may delete things).
PERSONAS = ("anonymous", "ea", "read_only", "campaign_manager", "support_agent", "outsider", "shared", "super_admin",
            "owner")  # fmt: skip


def role_of(persona: str) -> str | None:
    if persona in STAFF:
        return STAFF[persona]
    if persona in ("owner", "outsider", "shared"):
        return Role.TRADER
    return None


def matrix_scope(persona: str, capability: str) -> Scope | None:
    role = role_of(persona)
    return CAPABILITIES[capability].scope(role) if role else None


def role_has_perm(role: str, perm: str) -> bool:
    return any(fnmatchcase(perm, pattern) for pattern in role_permissions(role))


@pytest.fixture
def bare_account(owner):
    """An owner's account on the simulated server, without history (what is checked here is who may ask)."""
    from decimal import Decimal

    from accounts.services import trading_account_create
    from mt5bridge.simulated import create_account
    from tests.personas import SIM_PASSWORD, SIM_SERVER, next_login

    login = next_login()
    create_account(login=login, password=SIM_PASSWORD, server=SIM_SERVER, balance=Decimal("1000"), name="Matrix")
    return trading_account_create(
        owner=owner, login=login, password=SIM_PASSWORD, server=SIM_SERVER, name="Main", sync_now=False
    )


@pytest.fixture
def world(bare_account):
    """One owner's account, a trader it is shared with (view only), an outsider and one user per staff role."""
    from integrations.models import PreflightResult
    from mt5bridge.ea.services import ea_token_issue

    owned_account = bare_account
    owner = owned_account.owner
    PreflightResult.objects.create(account=owned_account, status="ok", template="<chart>", startup_ini="[Common]")
    shared = UserFactory(roles=[Role.TRADER])
    assign_perm("accounts.view_tradingaccount", shared, owned_account)
    people = {
        "owner": owner,
        "shared": shared,
        "outsider": UserFactory(roles=[Role.TRADER]),
        **{name: staff_user(role) for name, role in STAFF.items()},
    }
    return {"account": owned_account, "people": people, "ea_token": ea_token_issue(account=owned_account)}


def as_persona(client: APIClient, world, persona: str) -> APIClient:
    """One client for every persona (a client loads the middleware once; building one per persona is slow)."""
    client.force_authenticate(world["people"].get(persona))
    client.credentials(**({"HTTP_AUTHORIZATION": f"Bearer {world['ea_token']}"} if persona == "ea" else {}))
    return client


def url_for(route: Route, account) -> tuple[str, bool]:
    """The route's URL with the owner's account where it takes one; unknown ids elsewhere."""
    kwargs = {}
    on_account = False
    for name in route.kwargs:
        if name == "account_id":
            kwargs[name] = str(account.pk)
            on_account = True
        elif name == "login":
            kwargs[name] = account.login
        elif name == "pk" and "delivery" in route.name:
            kwargs[name] = str(uuid.uuid4())
        elif name == "pk":
            kwargs[name] = 987654321
        else:
            raise AssertionError(f"{route}: no test value for URL argument {name!r}")
    if route.name == "account-detail" or (route.name or "").startswith("account-") and "pk" in kwargs:
        kwargs["pk"] = str(account.pk)
        on_account = True
    return reverse(route.name, kwargs=kwargs), on_account


def expected(persona: str, capability: str, method: str, on_account: bool) -> str:
    """public | allowed | refused (401) | forbidden (403) | hidden (403 or 404)."""
    if capability == PUBLIC:
        return "public"  # the permission layer passes; the request's own credentials (login, signature) decide
    if persona == "anonymous":
        return "refused"
    if capability == EA:
        return "allowed" if persona == "ea" else "refused"
    if persona == "ea":
        return "refused"
    if capability == SIGNED_IN:
        return "allowed"
    scope = matrix_scope(persona, capability)
    if scope is None:
        return "forbidden"
    if scope == Scope.ALL or not on_account:
        return "allowed"
    if persona == "owner" or (persona == "shared" and method in SAFE):
        return "allowed"
    return "hidden"


def check(status: int, outcome: str, method: str, on_account: bool) -> bool:
    if status >= 500:
        return False
    if outcome == "public":
        return True
    if outcome == "refused":
        return status == 401
    if outcome == "forbidden":
        return status == 403
    if outcome == "hidden":
        return status in (403, 404, 405)
    # Allowed: the permission check passed; the request may still be invalid (400), conflict (409)...
    if status in (401, 403):
        return False
    return not (on_account and method in SAFE and status == 404)


# --- API: every view declares a capability of the matrix -------------------------------------


def test_the_api_has_routes_to_check():
    assert len(ROUTE_METHODS) > 60


@pytest.mark.parametrize(("route", "method"), ROUTE_METHODS, ids=[f"{r}-{m}" for r, m in ROUTE_METHODS])
def test_every_api_endpoint_declares_a_capability_of_the_matrix(route, method):
    capability = capability_of(route, method)
    assert capability is not None, f"{route.pattern} {method} declares no capability (accounts.roles.MATRIX)"
    assert capability in CAPABILITIES or capability in PSEUDO_CAPABILITIES, f"{route}: unknown {capability!r}"
    if isinstance(route.view_class, type):
        assert MatrixPermission in route.view_class.permission_classes, f"{route} bypasses MatrixPermission"


@pytest.mark.django_db
@pytest.mark.parametrize(("route", "method"), ROUTE_METHODS, ids=[f"{r}-{m}" for r, m in ROUTE_METHODS])
def test_every_api_endpoint_answers_each_persona_as_the_matrix_says(route, method, world):
    capability = capability_of(route, method)
    assert capability is not None
    url, on_account = url_for(route, world["account"])
    failures = []
    client = APIClient()
    for persona in PERSONAS:
        response = as_persona(client, world, persona).generic(method, url, data="{}", content_type="application/json")
        outcome = expected(persona, capability, method, on_account)
        if not check(response.status_code, outcome, method, on_account):
            failures.append(f"{persona}: {response.status_code}, expected {outcome} ({capability})")
    assert not failures, f"{method} {url}: " + "; ".join(failures)


# --- Invariants that do not depend on any declaration ----------------------------------------


@pytest.mark.django_db
def test_read_only_writes_nothing_through_the_api(world):
    client = as_persona(APIClient(), world, "read_only")
    written = []
    for route, method in ROUTE_METHODS:
        if method in SAFE or capability_of(route, method) in (PUBLIC, SIGNED_IN):
            continue  # logging in and out, about oneself
        url, _ = url_for(route, world["account"])
        status = client.generic(method, url, data="{}", content_type="application/json").status_code
        if status not in (401, 403, 405):
            written.append(f"{method} {url} -> {status}")
    assert not written


def test_read_only_holds_only_view_permissions_and_none_on_secrets():
    perms = [p for cap in MATRIX if cap.scope(Role.READ_ONLY) == Scope.ALL for p in cap.perms]
    assert perms and all(p.split(".", 1)[1].startswith("view_") for p in perms)
    assert not any(
        app in p for p in perms for app in ("mt5bridge.", "accounts.", "auth.", "integrations.", "entitlements.")
    )


def test_only_super_admin_manages_users_roles_plans_and_system_configuration():
    for name in ("users.manage", "plans.manage", "system.config"):
        assert CAPABILITIES[name].grants == {Role.SUPER_ADMIN: Scope.ALL}


# --- Admin: changelists, add and change views, custom pages, actions --------------------------


def registered_admins():
    from django.apps import apps

    return [
        (model, admin.site.get_model_admin(model)) for model in apps.get_models() if admin.site.is_registered(model)
    ]


ADMINS = registered_admins()


@pytest.fixture
def admin_people(db):
    people = {name: staff_user(role) for name, role in STAFF.items()}
    people["trader"] = UserFactory(roles=[Role.TRADER])
    return people


def _admin_client(client, user):
    if user is not None:
        client.force_login(user)
    return client


def _missing_pk(model) -> str:
    field = model._meta.pk
    if field.get_internal_type() == "UUIDField":
        return str(uuid.uuid4())
    if field.get_internal_type() in ("AutoField", "BigAutoField", "IntegerField", "PositiveIntegerField",
                                     "OneToOneField", "ForeignKey", "BigIntegerField"):  # fmt: skip
        return "987654321"
    return "no-such-object"


def _perm(model, action: str) -> str:
    return f"{model._meta.app_label}.{get_permission_codename(action, model._meta)}"


@pytest.mark.parametrize(("model", "model_admin"), ADMINS, ids=[m._meta.label_lower for m, _ in ADMINS])
def test_every_admin_page_answers_each_role_as_the_matrix_says(model, model_admin, admin_people, client, rf):
    opts = model._meta
    base = f"admin:{opts.app_label}_{opts.model_name}"
    superuser = UserFactory(is_staff=True, is_superuser=True)
    pages = {
        "changelist": (reverse(f"{base}_changelist"), ("view", "change")),
        "add": (reverse(f"{base}_add"), ("add",)),
        "change": (reverse(f"{base}_change", args=[_missing_pk(model)]), ("view", "change")),
    }
    failures = []
    for page, (url, actions) in pages.items():
        request = rf.get(url)
        request.user = superuser
        # What the admin allows at all (read-only admins refuse "add" even to a superuser).
        possible = {
            "changelist": model_admin.has_view_or_change_permission(request),
            "add": model_admin.has_add_permission(request),
            "change": model_admin.has_view_or_change_permission(request),
        }[page]
        for name, user in {**admin_people, "anonymous": None}.items():
            client.logout()
            status = _admin_client(client, user).get(url).status_code
            if name in ("trader", "anonymous"):
                ok = status == 302  # to the admin login
            else:
                granted = possible and any(role_has_perm(STAFF[name], _perm(model, a)) for a in actions)
                ok = status in ((200, 302) if granted else (403,))
                if page == "changelist" and granted:
                    ok = status == 200
            if not ok:
                failures.append(f"{page} {name}: {status}")
    assert not failures, f"{opts.label}: " + "; ".join(failures)


@pytest.mark.parametrize(("model", "model_admin"), ADMINS, ids=[m._meta.label_lower for m, _ in ADMINS])
def test_every_admin_action_declares_its_permission_and_follows_the_matrix(model, model_admin, admin_people, rf):
    def actions_for(user):
        request = rf.get("/")
        request.user = user
        return model_admin.get_actions(request)

    every = actions_for(UserFactory(is_staff=True, is_superuser=True))
    ours = model._meta.app_label in OUR_APPS
    failures = []
    for name, (func, _, _) in every.items():
        func = getattr(func, "__func__", func)
        permissions = getattr(func, "allowed_permissions", None)
        if ours and (not permissions or getattr(func, "permissions_defaulted", False)):
            failures.append(f"{name} declares no permissions=")
            continue
        permissions = permissions or ("change",)  # a library's action: whoever may change the model
        for person, role in STAFF.items():
            codenames = [
                _perm(model, p)
                if p in ("view", "add", "change", "delete")
                else f"{model._meta.app_label}.{p}_{model._meta.model_name}"
                for p in permissions
            ]
            granted = all(role_has_perm(role, c) for c in codenames)
            request = rf.get("/")
            request.user = admin_people[person]
            # Offered: in the action menu of a changelist the person can open.
            offered = name in actions_for(admin_people[person]) and model_admin.has_view_or_change_permission(request)
            if offered != granted:
                failures.append(f"{name} for {person}: offered={offered}, matrix={granted}")
    assert not failures, f"{model._meta.label}: " + "; ".join(failures)


def custom_admin_pages():
    pages = []
    for pattern, entry in _walk(admin.site.get_urls()):
        name = entry.name or ""
        if name in ADMIN_SITE_VIEWS or name.endswith(tuple(f"_{v}" for v in STANDARD_MODEL_VIEWS)):
            continue
        if "(?P<app_label>" in pattern or "<path:object_id>" in pattern or "<url>" in pattern:
            continue
        pages.append((name, pattern, entry.callback))
    return pages


CUSTOM_PAGES = custom_admin_pages()


def test_there_are_custom_admin_pages_to_check():
    assert len(CUSTOM_PAGES) >= 8


@pytest.mark.parametrize(("name", "pattern", "callback"), CUSTOM_PAGES, ids=[p[0] for p in CUSTOM_PAGES])
def test_every_custom_admin_page_declares_a_capability_and_follows_it(name, pattern, callback, admin_people, client):
    import re

    capability = getattr(callback, "capability", None)
    third_party = callback.__module__.split(".")[0] not in OUR_APPS and not name.startswith(OUR_APPS)
    if capability is None and third_party:
        capability = "users.manage"  # a library's page (dj-stripe, django-otp): Super Admin's, like its models
    assert capability in CAPABILITIES or capability == SIGNED_IN, (
        f"admin page {name} ({pattern}) declares no capability"
    )

    args = ["987654321" if "int:" in arg else "template" for arg in re.findall(r"<([^>]+)>", pattern)]
    url = reverse(f"admin:{name}", args=args)
    failures = []
    for person, role in STAFF.items():
        if third_party and person == "super_admin":
            continue  # placeholder arguments can upset a library's page; what matters is who else gets in
        client.logout()
        status = _admin_client(client, admin_people[person]).get(url).status_code
        granted = capability == SIGNED_IN or CAPABILITIES[capability].scope(role) is not None
        refused = status == 403 or (third_party and status in (302, 404))
        if status >= 500 or refused == granted:
            failures.append(f"{person}: {status} (matrix grants: {granted})")
    assert not failures, f"{url}: " + "; ".join(failures)


# --- The bonus back office's role table, written out (not derived from the matrix) ----------

SEED_TABLE = [
    # (role, method, route name, kwargs, allowed)
    (Role.CAMPAIGN_MANAGER, "POST", "bonus-campaigns", {}, True),
    (Role.CAMPAIGN_MANAGER, "GET", "bonus-list", {}, True),
    (Role.CAMPAIGN_MANAGER, "GET", "bonus-monitoring-status", {}, True),
    (Role.CAMPAIGN_MANAGER, "POST", "bonus-assign", {}, False),
    (Role.CAMPAIGN_MANAGER, "POST", "bonus-cancel", {"pk": 1}, False),
    (Role.CAMPAIGN_MANAGER, "POST", "bonus-force-convert", {"pk": 1}, False),
    (Role.CAMPAIGN_MANAGER, "POST", "bonus-override-leverage", {"pk": 1}, False),
    (Role.CAMPAIGN_MANAGER, "POST", "bonus-trigger-deposit", {}, False),
    (Role.CAMPAIGN_MANAGER, "GET", "bonus-audit", {}, False),
    (Role.SUPPORT_AGENT, "GET", "bonus-account-lookup", {"login": 1}, True),
    (Role.SUPPORT_AGENT, "GET", "bonus-list", {}, True),
    (Role.SUPPORT_AGENT, "POST", "bonus-assign", {}, True),
    (Role.SUPPORT_AGENT, "POST", "bonus-trigger-deposit", {}, False),
    (Role.SUPPORT_AGENT, "POST", "bonus-campaigns", {}, False),
    (Role.SUPPORT_AGENT, "POST", "bonus-cancel", {"pk": 1}, False),
    (Role.SUPPORT_AGENT, "GET", "bonus-audit", {}, False),
    (Role.READ_ONLY, "GET", "bonus-campaigns", {}, True),
    (Role.READ_ONLY, "GET", "bonus-list", {}, True),
    (Role.READ_ONLY, "GET", "bonus-monitoring-status", {}, True),
    (Role.READ_ONLY, "GET", "bonus-report-summary", {}, True),
    (Role.READ_ONLY, "GET", "bonus-account-lookup", {"login": 1}, False),
    (Role.READ_ONLY, "GET", "bonus-audit", {}, False),
    (Role.READ_ONLY, "POST", "bonus-campaigns", {}, False),
    (Role.READ_ONLY, "POST", "bonus-assign", {}, False),
    (Role.READ_ONLY, "GET", "account-list", {}, False),
    (Role.SUPER_ADMIN, "POST", "bonus-trigger-deposit", {}, True),
    (Role.SUPER_ADMIN, "GET", "bonus-audit", {}, True),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("role", "method", "name", "kwargs", "allowed"), SEED_TABLE,
                         ids=[f"{r}-{m}-{n}" for r, m, n, _, a in SEED_TABLE])  # fmt: skip
def test_the_bonus_roles_are_the_seed_table(role, method, name, kwargs, allowed):
    client = api_client_for(staff_user(role))
    status = client.generic(method, reverse(name, kwargs=kwargs), data="{}", content_type="application/json")
    assert (status.status_code != 403) == allowed, status.status_code
    assert status.status_code < 500


@pytest.mark.django_db
def test_read_only_sees_no_token_and_no_secret_in_the_admin(client):
    client.force_login(staff_user(Role.READ_ONLY))
    for url in ("admin:mt5bridge_eatoken_changelist", "admin:accounts_user_changelist",
                "admin:integrations_systemesettings_changelist", "admin:integrations_webhookendpoint_changelist",
                "admin:accounts_tradingaccount_changelist"):  # fmt: skip
        assert client.get(reverse(url)).status_code == 403, url
    assert client.get("/admin/authtoken/tokenproxy/").status_code == 404


@pytest.mark.django_db
def test_read_only_is_offered_no_admin_action_anywhere(rf):
    user = staff_user(Role.READ_ONLY)
    offered = []
    for model, model_admin in ADMINS:
        request = rf.get("/")
        request.user = user
        if model_admin.has_view_or_change_permission(request):
            offered += [f"{model._meta.label}.{a}" for a in model_admin.get_actions(request)]
    assert not offered


@pytest.mark.django_db
def test_a_group_the_broker_creates_grants_a_capability_when_it_holds_its_permissions():
    """Wider roles are the broker's own groups: a "CRM" group holding fire_trigger may fire triggers, nothing else."""
    from django.contrib.auth.models import Group, Permission

    crm = Group.objects.create(name="CRM integration")
    crm.permissions.add(Permission.objects.get(codename="fire_trigger", content_type__app_label="bonuses"))
    user = UserFactory(is_staff=True)
    user.groups.add(crm)
    client = api_client_for(user)
    trigger = client.post(reverse("bonus-trigger-deposit"), {}, format="json")
    assert trigger.status_code not in (401, 403) and trigger.status_code < 500
    assert client.get(reverse("bonus-list")).status_code == 403
    assert client.post(reverse("bonus-assign"), {}, format="json").status_code == 403
    user.is_staff = False  # the same group on a non-staff account opens nothing
    user.save()
    assert api_client_for(user).post(reverse("bonus-trigger-deposit"), {}, format="json").status_code == 403


def test_the_security_page_shows_the_matrix_as_the_code_declares_it():
    from pathlib import Path

    from accounts.management.commands.role_matrix import matrix_markdown

    page = (Path(__file__).resolve().parent.parent / "docs" / "security.md").read_text()
    assert matrix_markdown() in page, "docs/security.md is out of date: paste `manage.py role_matrix` into it"
