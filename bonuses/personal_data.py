"""The bonus app's part of a person's data export (accounts.ports.provide_personal_data; the module registers
itself when accounts discovers it at start-up).

Bonuses belong to MT5 logins on the broker's server; a trader's export lists those of the logins they connected,
with each bonus's operations (every credit posted or removed). Deletion changes nothing here: bonuses, their
operations and the bonus audit are the broker's money records, kept as the law requires; they name an MT5 login,
not the person (docs/privacy.md).
"""

from __future__ import annotations

from accounts.models import TradingAccount
from accounts.ports import provide_personal_data

from .models import Bonus, BonusOperation


def _rows(queryset) -> list[dict]:
    return list(queryset.values(*(f.attname for f in queryset.model._meta.concrete_fields)))


def bonus_data_export(user) -> list[dict]:
    logins = set(TradingAccount.objects.filter(owner=user).values_list("login", flat=True))
    if not logins:
        return []
    bonuses = _rows(Bonus.objects.filter(login__in=logins).order_by("created_at", "id"))
    operations: dict[int, list[dict]] = {}
    for row in _rows(BonusOperation.objects.filter(bonus_id__in=[b["id"] for b in bonuses]).order_by("id")):
        row.pop("claimed_until", None)
        operations.setdefault(row["bonus_id"], []).append(row)
    for bonus in bonuses:
        bonus.pop("request_hash", None)
        bonus["operations"] = operations.get(bonus["id"], [])
    return bonuses


provide_personal_data("bonuses", bonus_data_export)
