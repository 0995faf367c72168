"""Type A leverage: the leverage an account should have for its open dynamic-leverage bonuses."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Sum

from .. import formulas
from ..choices import (
    OPEN_BONUS_STATUSES,
    BonusType,
    OperationKind,
)
from ..formulas import ZERO
from ..models import Bonus, BonusOperation, MonitoredAccount
from .operations import operation_create


def leverage_plan(account: MonitoredAccount, *, balance: Decimal, exclude: set[int] = frozenset()) -> int | None:
    """The leverage the account should have for its open type A bonuses (None: nothing to do)."""
    if account.original_leverage is None:
        return None
    open_a = Bonus.objects.filter(
        login=account.login, bonus_type=BonusType.DYNAMIC_LEVERAGE, status__in=OPEN_BONUS_STATUSES
    ).exclude(pk__in=exclude)
    credit = open_a.aggregate(s=Sum("credit_outstanding"))["s"] or ZERO
    if not open_a.exists():
        return account.original_leverage
    return formulas.type_a_leverage_for(account.original_leverage, credit, balance)


def leverage_operation(account: MonitoredAccount, bonus: Bonus, target: int | None) -> BonusOperation | None:
    if target is None or target == account.leverage:
        return None
    return operation_create(bonus, OperationKind.LEVERAGE, leverage=target)
