"""The one permission path: every API view, web view and admin page asks the matrix and `restrict`.

Who may do what is declared once, in `accounts.roles.MATRIX` (role × capability, scope ALL or OWN).
- API views declare ``capabilities`` (one capability, or one per HTTP method / viewset action);
  `MatrixPermission`, DRF's default permission class, refuses a request whose user holds none of
  them, and refuses every request to a view that declares nothing.
- Custom admin pages are wrapped in `capability_required`; admin changelists, change views and
  actions use the Django permissions the matrix gives each role group.
- Rows: `restrict` gives staff roles holding the model permission (scope ALL) every row, and
  everyone else the rows they own plus rows shared with them per object (django-guardian), for
  exactly the permission that was shared.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.contrib.postgres.expressions import ArraySubquery
from django.core.exceptions import PermissionDenied
from django.db import connections
from django.db.models import OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL
from guardian.shortcuts import get_objects_for_user
from rest_framework import exceptions
from rest_framework.permissions import BasePermission

from config.caches import Memo

from .models import TradingAccount
from .roles import CAPABILITIES, EA, PSEUDO_CAPABILITIES, PUBLIC, SIGNED_IN, STAFF_ROLE_NAMES, Scope, scope_for_roles

OWNER_FIELD = {"accounts.tradingaccount": "owner"}


def roles_of(user) -> frozenset[str]:
    """The role names a person holds (cached on the user object for the request; a user loaded through
    `with_roles` brings them from its own statement)."""
    if not getattr(user, "is_authenticated", False) or not hasattr(user, "groups") or not user.is_active:
        return frozenset()
    cached = getattr(user, "_role_names_cache", None)
    if cached is None:
        cached = frozenset(user.groups.values_list("name", flat=True))
        user._role_names_cache = cached
    return cached


def with_roles(users: QuerySet) -> QuerySet:
    """``users`` with each person's role names read in the same statement (PostgreSQL: an array subquery), for
    `take_roles` to keep: a signed-in request then loads its person and roles in one round trip, not two."""
    if connections[users.db].vendor != "postgresql":
        return users
    return users.annotate(_roles_held=ArraySubquery(Group.objects.filter(user=OuterRef("pk")).values("name")))


def take_roles(user):
    """Keep the role names a `with_roles` statement brought as what `roles_of` answers for this request."""
    held = user.__dict__.pop("_roles_held", None)
    if held is not None:
        user._role_names_cache = frozenset(held)
    return user


def capability_scope(user, capability: str) -> Scope | None:
    """ALL, OWN or None: what ``user`` may do with ``capability`` according to the matrix."""
    if not getattr(user, "is_authenticated", False) or not hasattr(user, "groups") or not user.is_active:
        return None
    if user.is_superuser:
        return Scope.ALL
    roles = roles_of(user)
    if not user.is_staff:
        # A staff role's grants need the staff flag too (the admin's own rule), so a group
        # given to a trader by mistake opens nothing.
        roles = roles - set(STAFF_ROLE_NAMES)
    scope = scope_for_roles(roles, capability)
    if scope is None and user.is_staff:
        # A group the broker made: it grants a capability when it holds every permission the
        # capability stands for (the default roles never widen).
        perms = CAPABILITIES[capability].perms
        if perms and "*" not in "".join(perms) and user.has_perms(perms):
            scope = Scope.ALL
    return scope


def has_capability(user, capability: str) -> bool:
    return capability_scope(user, capability) is not None


def declared_capability(view, request) -> str | None:
    """The capability a view declares for this request (None when it declares none)."""
    declared = getattr(view, "capabilities", None)
    if declared is None or isinstance(declared, str):
        return declared
    action = getattr(view, "action", None)
    if action and action in declared:
        return declared[action]
    method = "GET" if request.method in ("HEAD", "OPTIONS") else request.method
    if method in declared:
        return declared[method]
    if request.method == "OPTIONS" and declared:
        return next(iter(declared.values()))
    return None


def _has_handler(view, request) -> bool:
    if getattr(view, "action_map", None) is not None:
        return getattr(view, "action", None) is not None
    return request.method.lower() in view.http_method_names and hasattr(view, request.method.lower())


class MatrixPermission(BasePermission):
    """DRF's default permission: the view's declared capability, looked up in the role matrix.

    Object-level checks follow: querysets come from `restrict`, writes on one object ask `can`.
    """

    message = "Your role does not allow this."
    # Writes on one object need the matching permission on it (reads are limited by `restrict`).
    write_perms = {"PUT": "change", "PATCH": "change", "DELETE": "delete", "POST": "change"}

    def has_permission(self, request, view) -> bool:
        capability = declared_capability(view, request)
        if capability is None:
            # No handler: let the view answer 405. A handler without a declaration is refused.
            return not _has_handler(view, request)
        if capability == PUBLIC:
            return True
        user = request.user
        if capability == EA:
            if not getattr(user, "is_ea_client", False):
                raise exceptions.NotAuthenticated("An EA token is required (Authorization: Bearer <token>).")
            return True
        if getattr(user, "is_ea_client", False) or not getattr(user, "is_authenticated", False):
            return False
        if capability == SIGNED_IN:
            return True
        return has_capability(user, capability)

    def has_object_permission(self, request, view, obj) -> bool:
        action = getattr(view, "object_perm_action", None) or self.write_perms.get(request.method)
        if action is None:
            return True
        meta = obj._meta
        return can(request.user, f"{meta.app_label}.{action}_{meta.model_name}", obj)


def capability_required(capability: str) -> Callable:
    """Decorator for custom admin pages and web views: 403 unless the matrix grants ``capability``.

    The capability is recorded on the view (``view.capability``) so the permission test can read it.
    """
    if capability not in CAPABILITIES and capability not in PSEUDO_CAPABILITIES:
        raise ValueError(f"unknown capability {capability!r}: add it to accounts.roles.MATRIX")

    def decorate(view_func):
        @wraps(view_func)
        def wrapped(*args, **kwargs):
            request = args[1] if len(args) > 1 and hasattr(args[1], "user") else args[0]
            if capability != PUBLIC and not (capability == SIGNED_IN and request.user.is_authenticated):
                if not has_capability(request.user, capability):
                    raise PermissionDenied
            return view_func(*args, **kwargs)

        wrapped.capability = capability  # type: ignore[attr-defined]  # read by the permission tests
        return wrapped

    return decorate


def is_staff_role(user) -> bool:
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    return bool(user.is_staff and roles_of(user) & set(STAFF_ROLE_NAMES))


def restrict(user, perm: str, queryset: QuerySet, *, owner_path: str | None = None) -> QuerySet:
    """The rows of ``queryset`` that ``user`` holds ``perm`` ("app.codename") on.

    ``owner_path`` names the lookup from the queryset's model to the owning user for models
    reached through an account (``account__owner``); defaults to the model's owner field.
    """
    if not user or not user.is_authenticated or not user.is_active or not hasattr(user, "groups"):
        return queryset.none()
    if user.is_superuser:
        return queryset
    if is_staff_role(user) and user.has_perm(perm):
        return queryset
    model = queryset.model
    label = model._meta.label_lower
    if owner_path is None:
        owner_path = OWNER_FIELD.get(label) or ("account__owner" if _has_field(model, "account") else None)
    if owner_path is None:
        return queryset.none()  # rows nobody owns (campaigns, audit): staff with scope ALL only
    owned = Q(**{owner_path: user.pk})
    # Object permissions are held on trading accounts; rows reached through an account follow it.
    if label == "accounts.tradingaccount":
        account_path = "pk"
    elif "__" in owner_path and _leads_to_account(model, owner_path.rsplit("__", 1)[0]):
        account_path = owner_path.rsplit("__", 1)[0]
    else:
        return queryset.filter(owned)  # rows owned by a person, not through an account: never shared
    # Rows reached through an account follow the account: reading them needs "view" on it, anything else
    # "change" on it (the account's own permissions, sync and delete included, are taken as they are).
    account_perm = perm if label == "accounts.tradingaccount" else _account_permission(perm)
    return queryset.filter(owned | Q(**{f"{account_path}__in": shared_accounts(user, account_perm)}))


def _codename(perm: str) -> tuple[str, str]:
    app_label, codename = perm.split(".", 1)
    return app_label, codename


# The "shared with this user" subquery is the same SQL for every user but for the user's id: it is built
# by django-guardian once per permission and process (with a user id no one has), then reused with the
# real id. Building it anew costs milliseconds of ORM work on every request.
_PROBE_USER_ID = -7_000_000_001
SHARED_SQL: Memo[tuple[str, tuple] | None] = Memo("accounts.shared_sql", size=64)


def _shared_sql_for(account_perm: str) -> tuple[str, tuple] | None:
    probe = get_user_model()(pk=_PROBE_USER_ID, is_active=True)
    sql, params = _guardian_shared(probe, account_perm).query.sql_with_params()
    # Usable only if the probe id is a parameter (never spelled into the SQL itself).
    usable = _PROBE_USER_ID in params and str(_PROBE_USER_ID) not in sql
    return (sql, params) if usable else None


def _guardian_shared(user, account_perm: str) -> QuerySet:
    return get_objects_for_user(
        user, account_perm, klass=TradingAccount, with_superuser=False, accept_global_perms=False
    ).values("pk")


def shared_accounts(user, account_perm: str):
    """The ids of the trading accounts shared with ``user`` for ``account_perm`` (a subquery)."""
    # The content type's id is in the SQL too; it changes only when a test database is flushed.
    key = (account_perm, ContentType.objects.get_for_model(TradingAccount).pk)
    cached = SHARED_SQL.get_or_build(key, lambda: _shared_sql_for(account_perm))
    if cached is None:
        return _guardian_shared(user, account_perm)
    sql, params = cached
    return RawSQL(sql, tuple(user.pk if p == _PROBE_USER_ID else p for p in params))


def _account_permission(perm: str) -> str:
    codename = _codename(perm)[1]
    return "accounts.view_tradingaccount" if codename.startswith("view_") else "accounts.change_tradingaccount"


def _leads_to_account(model, path: str) -> bool:
    """Whether the lookup ``path`` from ``model`` ends at a trading account (``slave``, ``account``...)."""
    for name in path.split("__"):
        try:
            field = model._meta.get_field(name)
        except Exception:  # FieldDoesNotExist
            return False
        model = field.related_model
        if model is None:
            return False
    return model is TradingAccount


def _has_field(model, name: str) -> bool:
    try:
        model._meta.get_field(name)
    except Exception:  # FieldDoesNotExist
        return False
    return True


def can(user, perm: str, obj) -> bool:
    """Whether ``user`` holds ``perm`` on one object (goes through `restrict`)."""
    return restrict(user, perm, type(obj)._default_manager.filter(pk=obj.pk)).exists()
