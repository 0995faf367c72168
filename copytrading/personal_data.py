"""Copy trading's part of a person's data export and account deletion (accounts.ports.provide_personal_data;
the module registers itself when accounts discovers it at start-up).

Export: the copy links on the person's accounts or made by them, the rules on their accounts and their order
templates. Deletion: links they made and their templates go (links and rules on their own accounts go with the
accounts); the engine's cached configuration is refreshed. Nothing here is a money record (docs/privacy.md).
"""

from __future__ import annotations

from django.db.models import Q

from accounts.ports import provide_personal_data

from .models import CopyLink, OrderTemplate, Rule
from .selectors import bump_config_version


def _rows(queryset) -> list[dict]:
    return list(queryset.values(*(f.attname for f in queryset.model._meta.concrete_fields)))


def _links(user):
    return CopyLink.objects.filter(Q(master__owner=user) | Q(slave__owner=user) | Q(created_by=user)).distinct()


def copy_data_export(user) -> dict:
    return {
        "links": _rows(_links(user).order_by("id")),
        "rules": _rows(Rule.objects.filter(account__owner=user).order_by("id")),
        "order_templates": _rows(OrderTemplate.objects.filter(owner=user).order_by("id")),
    }


def copy_data_erase(user, _pseudonym: str) -> None:
    removed, _ = _links(user).delete()
    removed += OrderTemplate.objects.filter(owner=user).delete()[0]
    if removed:
        bump_config_version()


provide_personal_data("copy_trading", copy_data_export, copy_data_erase)
