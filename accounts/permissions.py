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
    shared = get_objects_for_user(
        user, account_perm, klass=_account_model(), with_superuser=False, accept_global_perms=False
    ).values("pk")
    return queryset.filter(owned | Q(**{f"{account_path}__in": shared}))


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
