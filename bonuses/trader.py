"""The trader's view of their bonuses: per account, each bonus's terms, credit, leverage and lot progress, and a
withdrawal preview. Read-only; the accounts come from the caller, already limited by ``accounts.permissions.restrict``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings

from config.errors import ServiceError
from mt5bridge import gateway as gw

from .choices import OPEN_BONUS_STATUSES, BonusStatus, BonusType
from .models import Bonus, MonitoredAccount
from .preview import Holding, WithdrawalPreview, withdrawal_preview
from .services.operations import movable_credit

RECENT_ENDED = 20


@dataclass
class AccountBonuses:
    account: object  # accounts.models.TradingAccount
    balance: Decimal
    credit: Decimal
    leverage: int | None
    original_leverage: int | None
    live: bool  # figures read from MT5 now (False: the last figures stored)
    open: list[Bonus] = field(default_factory=list)
    ended: list[Bonus] = field(default_factory=list)
    preview: WithdrawalPreview | None = None

    @property
    def credit_outstanding(self) -> Decimal:
        return sum((b.credit_outstanding for b in self.open), Decimal("0"))

    @property
    def has_type_a(self) -> bool:
        return any(b.bonus_type == BonusType.DYNAMIC_LEVERAGE for b in self.open)


def bonus_engine_serves(account) -> bool:
    """Whether the broker's bonus engine covers this account's server (BONUS_MT5_SERVER; empty: every server)."""
    return not settings.BONUS_MT5_SERVER or settings.BONUS_MT5_SERVER == account.server


def _figures(accounts, gateway) -> dict[int, gw.AccountInfo]:
    logins = [a.login for a in accounts]
    if not logins or gateway is None:
        return {}
    try:
        return gateway.accounts_info(logins)
    except gw.GatewayError:
        return {}  # MT5 out of reach: the page shows the last figures stored


def accounts_bonuses(accounts, *, gateway=None) -> list[AccountBonuses]:
    """Each account's open and recently ended bonuses with its figures (live from MT5 when it answers)."""
    accounts = [a for a in accounts if bonus_engine_serves(a)]
    logins = [a.login for a in accounts]
    monitored = {m.login: m for m in MonitoredAccount.objects.filter(login__in=logins)}
    bonuses: dict[int, list[Bonus]] = {}
    rows = Bonus.objects.filter(login__in=logins).exclude(status=BonusStatus.FAILED).select_related("campaign")
    for bonus in rows.order_by("-created_at", "-id")[:500]:
        bonuses.setdefault(bonus.login, []).append(bonus)
    infos = _figures(accounts, gateway)
    result = []
    for account in accounts:
        info, snap = infos.get(account.login), monitored.get(account.login)
        if info is not None:
            balance, credit, leverage = info.balance, info.credit, info.leverage
        elif snap is not None and snap.balance is not None:
            balance, credit, leverage = snap.balance, snap.credit or Decimal("0"), snap.leverage
        else:
            balance, credit, leverage = account.balance, account.credit, account.leverage
        own = bonuses.get(account.login, [])
        result.append(
            AccountBonuses(
                account=account,
                balance=balance,
                credit=credit,
                leverage=leverage,
                original_leverage=snap.original_leverage if snap else None,
                live=info is not None,
                open=[b for b in own if b.status in OPEN_BONUS_STATUSES],
                ended=[b for b in own if b.status not in OPEN_BONUS_STATUSES][:RECENT_ENDED],
            )
        )
    return result


def preview_for(row: AccountBonuses, amount: Decimal) -> WithdrawalPreview:
    """What withdrawing ``amount`` would do (400 when it is not a withdrawal the account can make)."""
    if amount <= 0:
        raise ServiceError("The withdrawal amount must be positive.", code="invalid_amount")
    if amount > row.balance:
        raise ServiceError(
            f"The balance is {row.balance}: a withdrawal cannot be larger.",
            code="amount_above_balance",
            details={"balance": str(row.balance)},
        )
    holdings = [
        Holding(
            bonus_id=b.pk,
            bonus_type=b.bonus_type,
            credit_outstanding=b.credit_outstanding,
            movable=movable_credit(b),
            percent=b.campaign.bonus_percent,
            active=b.status == BonusStatus.ACTIVE,
        )
        for b in sorted(row.open, key=lambda b: b.pk)
    ]
    row.preview = withdrawal_preview(
        amount=amount,
        balance=row.balance,
        holdings=holdings,
        original_leverage=row.original_leverage,
        leverage_now=row.leverage,
    )
    return row.preview
