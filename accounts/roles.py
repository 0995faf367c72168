"""The role × capability matrix: the one place that says who may do what.

Every permission in the product comes from here: the Django permissions each role group holds
(and so every admin changelist, change view and action), the capability each API view and each
custom admin page declares, and the table in docs/security.md (``manage.py role_matrix``).

A capability is granted to a role with a scope:
- ``ALL``: every row (staff roles; the capability's Django permissions go to the role's group);
- ``OWN``: the rows the person owns, plus rows shared with them per object (django-guardian).

The bonus roles follow the bonus back office's table: Super Admin has full access (users, roles,
plans, system configuration); Campaign Manager creates and edits campaigns and views the bonus
monitor; Support Agent looks up accounts (the account 360 page: copy links read-only too), views
bonuses read-only and assigns them manually; Read-Only views campaigns, the monitor and reports, and changes nothing. A broker who wants a
wider role creates a Django group of their own; the defaults never widen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from fnmatch import fnmatchcase

from django.apps import apps as global_apps

from .choices import Role


class Scope(StrEnum):
    ALL = "all"
    OWN = "own"


ALL, OWN = Scope.ALL, Scope.OWN
SA, CM, SUP, RO, TR = Role.SUPER_ADMIN, Role.CAMPAIGN_MANAGER, Role.SUPPORT_AGENT, Role.READ_ONLY, Role.TRADER
STAFF_ROLE_NAMES = (SA, CM, SUP, RO)
ROLE_NAMES = (*STAFF_ROLE_NAMES, TR)

# Pseudo-capabilities for endpoints that are not about a role.
PUBLIC = "public"  # anyone, signed in or not (login, the plan list, signed webhooks)
SIGNED_IN = "signed-in"  # any signed-in person (who am I, log out)
EA = "ea"  # an EA with its account's token (/api/ea/*)
PSEUDO_CAPABILITIES = {
    PUBLIC: "Anyone (the request itself is checked: credentials, a webhook signature)",
    SIGNED_IN: "Any signed-in person, about themselves",
    EA: "An Expert Advisor holding its account's EA token",
}


@dataclass(frozen=True)
class Capability:
    name: str
    label: str
    grants: dict[str, Scope]
    # Django permissions ("app_label.codename") a role with scope ALL holds for this capability.
    perms: tuple[str, ...] = field(default=())

    def scope(self, role: str) -> Scope | None:
        return self.grants.get(role)


def _model_perms(app_model: str, *actions: str) -> tuple[str, ...]:
    app_label, model = app_model.split(".")
    return tuple(f"{app_label}.{action}_{model}" for action in actions)


CRUD = ("view", "add", "change", "delete")

# fmt: off
MATRIX: tuple[Capability, ...] = (
    # --- Bonus back office -----------------------------------------------------------------
    Capability("campaigns.view", "View campaigns and the MT5 groups and countries scanned for them",
               {SA: ALL, CM: ALL, RO: ALL},
               ("bonuses.view_campaign", "bonuses.view_mt5scan")),
    Capability("campaigns.manage", "Create, edit, duplicate, activate, pause, end and archive campaigns; Scan MT5",
               {SA: ALL, CM: ALL},
               (*_model_perms("bonuses.campaign", "add", "change", "delete"), "bonuses.add_mt5scan")),
    Capability("bonuses.view", "View bonuses and the bonus monitor (monitored accounts, cycles, shards, postings)",
               {SA: ALL, CM: ALL, SUP: ALL, RO: ALL},
               ("bonuses.view_bonus", "bonuses.view_monitoredaccount", "bonuses.view_monitorcycle",
                "bonuses.view_monitorshard", "bonuses.view_bonusoperation", "bonuses.view_grantapproval",
                "bonuses.view_abusesignal")),
    Capability("bonuses.assign", "Assign a bonus manually, with eligibility override, up to the role's limit",
               {SA: ALL, SUP: ALL},
               ("bonuses.assign_bonus",)),
    Capability("bonuses.manage", "Cancel and force-convert bonuses; override type A leverage",
               {SA: ALL},
               ("bonuses.change_bonus", "bonuses.override_leverage", "bonuses.resolve_bonusoperation")),
    Capability("bonuses.approve", "Approve or reject a grant above the approval threshold that another staff member "
               "asked for (maker-checker); mark abuse signals reviewed",
               {SA: ALL},
               ("bonuses.approve_grantapproval", "bonuses.review_abusesignal")),
    Capability("bonuses.own", "A trader's own bonuses: terms, credit outstanding, leverage, lot progress, "
               "withdrawal preview",
               {SA: ALL, SUP: ALL, TR: OWN}),
    Capability("bonuses.trigger", "Fire deposit, registration and promo-code triggers",
               {SA: ALL},
               ("bonuses.fire_trigger",)),
    Capability("monitor.manage", "Register accounts for monitoring, reset their errors, test deposits and withdrawals",
               {SA: ALL},
               ("bonuses.change_monitoredaccount",)),
    Capability("accounts.lookup", "Account lookup by MT5 login: figures, bonus history, audit trail",
               {SA: ALL, SUP: ALL},
               ("bonuses.lookup_account",)),
    Capability("reports.view", "Bonus reports and their CSV/Excel export",
               {SA: ALL, RO: ALL},
               ("bonuses.view_reports",)),
    Capability("audit.view", "The bonus audit log",
               {SA: ALL},
               ("bonuses.view_auditlog",)),
    Capability("reconciliation.view", "Bonus reconciliation: its runs and the mismatches with MT5's credit deals",
               {SA: ALL, RO: ALL},
               ("bonuses.view_reconciliationmismatch", "bonuses.view_reconciliationrun")),
    Capability("reconciliation.manage", "Run the bonus reconciliation now; mark its mismatches reviewed with a note",
               {SA: ALL},
               ("bonuses.run_reconciliationmismatch", "bonuses.review_reconciliationmismatch")),
    # --- MT5 accounts ------------------------------------------------------------------------
    Capability("accounts.view", "View MT5 accounts with their snapshots, positions, orders, deals and analytics",
               {SA: ALL, SUP: ALL, TR: OWN},
               (*_model_perms("accounts.tradingaccount", "view"), "accounts.view_accountsnapshot",
                "accounts.view_position", "accounts.view_order", "accounts.view_deal", "accounts.view_syncrun",
                "accounts.view_statementimport")),
    Capability("accounts.connect", "Connect an MT5 account",
               {SA: ALL, TR: OWN},
               ("accounts.add_tradingaccount",)),
    Capability("accounts.manage", "Rename, sync, pause, remove an account; import statements; EA token; pre-flight",
               {SA: ALL, TR: OWN},
               (*_model_perms("accounts.tradingaccount", "change", "delete", "sync"),
                *_model_perms("mt5bridge.eatoken", *CRUD), *_model_perms("mt5bridge.eaconnection", *CRUD),
                *_model_perms("mt5bridge.command", *CRUD), *_model_perms("integrations.preflightresult", *CRUD))),
    Capability("accounts.password", "Download the start-up .ini with the account's MT5 password, after re-entering "
               "one's own login password (owner only; every attempt is recorded)",
               {TR: OWN}),
    # --- Copy trading ------------------------------------------------------------------------
    Capability("copy.view", "View copy links, copied positions, copy events, rules, templates, terminal orders, "
               "signals followed and published, their fees",
               {SA: ALL, SUP: ALL, TR: OWN},
               tuple(f"copytrading.view_{m}" for m in ("copylink", "copiedposition", "copyevent",
                                                        "accountcopystate", "rule", "rulehit", "ordertemplate",
                                                        "tradingsignal", "signalsubscription", "signalfee",
                                                        "signalaudit"))),
    Capability("copy.manage", "Create, change and remove copy links, rules and templates; trade from the web terminal; "
               "publish, follow and stop following signals",
               {SA: ALL, TR: OWN},
               tuple(f"copytrading.{a}_{m}" for m in ("copylink", "copiedposition", "copyevent", "accountcopystate",
                                                       "rule", "rulehit", "ordertemplate", "tradingsignal",
                                                       "signalsubscription")
                     for a in ("add", "change", "delete"))),
    # --- Billing -----------------------------------------------------------------------------
    Capability("billing.own", "Own plan: subscription, usage, checkout, portal, which accounts are active",
               {SA: ALL, TR: OWN}),
    Capability("plans.manage", "Plans, plan assignments, billing pauses and the Stripe records",
               {SA: ALL},
               ("entitlements.*", "djstripe.*")),
    # --- People and system -------------------------------------------------------------------
    Capability("users.manage", "Users, roles, per-object sharing, login lockouts, two-factor devices, security log",
               {SA: ALL},
               ("accounts.*_user", "accounts.*_securityevent", "auth.*", "guardian.*", "axes.*", "otp_totp.*", "otp_static.*",
                "token_blacklist.*", "admin.*")),
    Capability("system.config", "Integrations (Systeme.io, webhooks, pre-flight defaults) and periodic tasks",
               {SA: ALL},
               ("integrations.*", "django_celery_beat.*")),
    Capability("system.health", "System health: PostgreSQL, Redis, Celery workers and beat, bonus monitor shards",
               {SA: ALL, CM: ALL, SUP: ALL, RO: ALL}),
)
# fmt: on

CAPABILITIES: dict[str, Capability] = {c.name: c for c in MATRIX}
assert len(CAPABILITIES) == len(MATRIX), "capability names must be unique"


def role_permissions(role: str) -> tuple[str, ...]:
    """Patterns over "app_label.codename" that the role's group holds (Super Admin: every permission)."""
    if role == SA:
        return ("*",)
    return tuple(perm for cap in MATRIX if cap.scope(role) == ALL for perm in cap.perms)


def permissions_for(role: str, available: list[str]) -> list[str]:
    patterns = role_permissions(role)
    return [perm for perm in available if any(fnmatchcase(perm, pattern) for pattern in patterns)]


def scope_for_roles(roles, capability: str) -> Scope | None:
    """The widest scope any of ``roles`` holds on ``capability`` (None: not granted)."""
    cap = CAPABILITIES[capability]
    scopes = {cap.scope(role) for role in roles}
    if ALL in scopes:
        return ALL
    if OWN in scopes:
        return OWN
    return None


def sync_roles(apps=None, **_kwargs) -> None:
    """Create the role groups and give each exactly the permissions of the matrix (idempotent)."""
    if apps is None:
        apps = global_apps
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    perms = {
        f"{app_label}.{codename}": pk
        for pk, app_label, codename in Permission.objects.values_list("pk", "content_type__app_label", "codename")
    }
    for role in ROLE_NAMES:
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set([perms[name] for name in permissions_for(role, list(perms))])
