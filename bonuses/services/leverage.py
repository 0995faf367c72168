"""Type A leverage: the leverage an account should have for its open dynamic-leverage bonuses."""

from __future__ import annotations

from decimal import Decimal

from .. import formulas
from ..choices import OPEN_BONUS_STATUSES, BonusType, OperationKind
from ..models import Bonus, BonusOperation, MonitoredAccount
from .operations import operation_create


def leverage_plan(
    account: MonitoredAccount,
    *,
    balance: Decimal,
    exclude: set[int] = frozenset(),
    credit_after: dict[int, Decimal] | None = None,
) -> int | None:
    """The leverage the account should have for its open type A bonuses (None: nothing to do).

    One rule for the grant and every later change (``formulas.type_a_leverage_for``): the
    account's type A credit over its balance, bounded by the largest percent of their
    campaigns; with no type A bonus left, the original leverage. ``credit_after`` gives the
    credit a bonus will hold once planned postings land (a new grant, a withdrawal's removal);
    ``exclude`` the bonuses that are ending.
    """
    if account.original_leverage is None:
        return None
    credit_after = credit_after or {}
    open_a = list(
        Bonus.objects.filter(login=account.login, bonus_type=BonusType.DYNAMIC_LEVERAGE, status__in=OPEN_BONUS_STATUSES)
        .exclude(pk__in=exclude)
        .select_related("campaign")
    )
    if not open_a:
        return account.original_leverage
    credit = sum((credit_after.get(b.pk, b.credit_outstanding) for b in open_a), formulas.ZERO)
    percent = max(b.campaign.bonus_percent for b in open_a)
    return formulas.type_a_leverage_for(account.original_leverage, credit, balance, max_percent=percent)


def leverage_operation(account: MonitoredAccount, bonus: Bonus, target: int | None) -> BonusOperation | None:
    if target is None or target == account.leverage:
        return None
    return operation_create(bonus, OperationKind.LEVERAGE, leverage=target)
