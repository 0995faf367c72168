"""The one permission path: every API view, web view and admin queryset asks `restrict`.

Rules:
- superusers and the Super Admin role see everything;
- staff roles with the model-level permission (e.g. Support Agent, Read-Only holding
  ``accounts.view_tradingaccount``) see every row for that permission;
- everyone else sees the rows they own, plus rows shared with them per object
  (django-guardian), for exactly the permission that was shared.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.db.models.expressions import RawSQL
from guardian.shortcuts import get_objects_for_user
from rest_framework.permissions import BasePermission

from .choices import Role

# Staff roles whose model-level permissions apply to every row.
STAFF_ROLES = (Role.SUPER_ADMIN, Role.CAMPAIGN_MANAGER, Role.SUPPORT_AGENT, Role.READ_ONLY)
OWNER_FIELD = {"accounts.tradingaccount": "owner"}


def _codename(perm: str) -> tuple[str, str]:
    app_label, codename = perm.split(".", 1)
    return app_label, codename


def is_staff_role(user) -> bool:
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    cache = getattr(user, "_staff_role_cache", None)
    if cache is None:
        cache = user.is_staff and user.groups.filter(name__in=STAFF_ROLES).exists()
        user._staff_role_cache = cache
    return cache


def restrict(user, perm: str, queryset: QuerySet, *, owner_path: str | None = None) -> QuerySet:
    """The rows of ``queryset`` that ``user`` holds ``perm`` ("app.codename") on.

    ``owner_path`` names the lookup from the queryset's model to the owning user for models
    reached through an account (``account__owner``); defaults to the model's owner field.
    """
    if not user or not user.is_authenticated or not user.is_active:
        return queryset.none()
    if user.is_superuser:
        return queryset
    if is_staff_role(user) and user.has_perm(perm):
        return queryset
    model = queryset.model
    label = model._meta.label_lower
    if owner_path is None:
        owner_path = OWNER_FIELD.get(label, "account__owner")
    owned = Q(**{owner_path: user})
    # Object permissions are held on trading accounts; related rows follow their account.
    account_path = "pk" if label == "accounts.tradingaccount" else owner_path.rsplit("__", 1)[0]
    app_label, codename = _codename(perm)
    account_perm = "accounts.view_tradingaccount" if codename.startswith("view_") else f"accounts.{codename}"
    if label == "accounts.tradingaccount":
        account_perm = perm
    return queryset.filter(owned | Q(**{f"{account_path}__in": shared_accounts(user, account_perm)}))


# The "shared with this user" subquery is the same SQL for every user but for the user's id: it is built
# by django-guardian once per permission and process (with a user id no one has), then reused with the
# real id. Building it anew costs milliseconds of ORM work on every request.
_PROBE_USER_ID = -7_000_000_001
_shared_sql: dict[tuple[str, int], tuple[str, tuple] | None] = {}


def _guardian_shared(user, account_perm: str) -> QuerySet:
    return get_objects_for_user(
        user, account_perm, klass=_account_model(), with_superuser=False, accept_global_perms=False
    ).values("pk")


def shared_accounts(user, account_perm: str):
    """The ids of the trading accounts shared with ``user`` for ``account_perm`` (a subquery)."""
    from django.contrib.auth import get_user_model
    from django.contrib.contenttypes.models import ContentType

    # The content type's id is in the SQL too; it changes only when a test database is flushed.
    key = (account_perm, ContentType.objects.get_for_model(_account_model()).pk)
    if key not in _shared_sql:
        probe = get_user_model()(pk=_PROBE_USER_ID, is_active=True)
        sql, params = _guardian_shared(probe, account_perm).query.sql_with_params()
        # Usable only if the probe id is a parameter (never spelled into the SQL itself).
        usable = _PROBE_USER_ID in params and str(_PROBE_USER_ID) not in sql
        _shared_sql[key] = (sql, params) if usable else None
    cached = _shared_sql[key]
    if cached is None:
        return _guardian_shared(user, account_perm)
    sql, params = cached
    return RawSQL(sql, tuple(user.pk if p == _PROBE_USER_ID else p for p in params))


def _account_model():
    from .models import TradingAccount

    return TradingAccount


def can(user, perm: str, obj) -> bool:
    """Whether ``user`` holds ``perm`` on one object (goes through `restrict`)."""
    return restrict(user, perm, type(obj)._default_manager.filter(pk=obj.pk)).exists()


class RestrictedPermission(BasePermission):
    """DRF permission: writes need the change/delete/sync permission on the object.

    Reads are already limited by the view's queryset, which comes from `restrict`.
    """

    write_perms = {
        "PUT": "change",
        "PATCH": "change",
        "DELETE": "delete",
        "POST": "change",
    }

    def has_object_permission(self, request, view, obj) -> bool:
        action = getattr(view, "object_perm_action", None) or self.write_perms.get(request.method)
        if action is None:
            return True
        meta = obj._meta
        return can(request.user, f"{meta.app_label}.{action}_{meta.model_name}", obj)
