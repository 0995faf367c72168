"""What the monitor detects, turned into bonus changes: deposits, withdrawals, drawdown, closed trades."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from mt5bridge import gateway as gw

from .. import formulas
from ..choices import (
    OPEN_BONUS_STATUSES,
    AuditAction,
    BonusStatus,
    BonusType,
    CancelReason,
    OperationKind,
)
from ..formulas import ZERO
from ..models import AccountEvent, Bonus, BonusOperation, Campaign
from .assignment import Assignment
from .audit import MONITOR, audit_write, bonus_state
from .ending import bonus_convert, bonuses_end
from .leverage import leverage_operation, leverage_plan
from .monitored import account_ensure, account_lock, default_gateway
from .operations import UNFINISHED, movable_credit, operation_create, operations_run
from .triggers import deposit_campaigns


def _record_event(login: int, deal: gw.Deal, kind: str, balance_after: Decimal | None = None) -> bool:
    """Remember a deal was acted on; False when it already was (another worker, a retried cycle)."""
    _, created = AccountEvent.objects.get_or_create(
        login=login,
        deal_ticket=deal.ticket,
        defaults={"kind": kind, "amount": deal.profit, "volume": deal.volume, "balance_after": balance_after},
    )
    return created


def account_deposit_detected(*, login: int, deal: gw.Deal, actor=MONITOR, gateway=None) -> list[Assignment]:
    gateway = gateway or default_gateway()
    with transaction.atomic():
        if not _record_event(login, deal, AccountEvent.DEPOSIT):
            return []
    return deposit_campaigns(login=login, deal=deal, actor=actor, gateway=gateway)


def account_withdrawal_detected(
    *, login: int, deal: gw.Deal, balance_after: Decimal, actor=MONITOR, gateway=None
) -> list[BonusOperation] | None:
    """A withdrawal took a share of the balance: the same share of each open bonus's credit goes.

    Type C bonuses lose all their unconverted credit; a full withdrawal ends everything; type A
    leverage follows the new credit/balance ratio.
    """
    gateway = gateway or default_gateway()
    withdrawn = -deal.profit
    with transaction.atomic():
        account_ensure(login=login)
        account = account_lock(login)
        if not _record_event(login, deal, AccountEvent.WITHDRAWAL, balance_after):
            return None
        fraction = formulas.withdrawal_fraction(withdrawn, balance_after + withdrawn)
        bonuses = list(Bonus.objects.select_for_update().filter(login=login, status=BonusStatus.ACTIVE).order_by("id"))
        ending = [b for b in bonuses if fraction >= 1 or b.bonus_type == BonusType.CONVERTIBLE]
        operations = bonuses_end(
            login=login,
            bonuses=ending,
            status=BonusStatus.CANCELLED,
            reason=CancelReason.WITHDRAWAL,
            actor=actor,
            gateway=gateway,
            balance=balance_after,
        )
        ended = {b.pk for b in ending}
        remaining_a: Bonus | None = None
        credit_after: dict[int, Decimal] = {}
        for bonus in bonuses:
            if bonus.pk in ended:
                continue
            removal = formulas.proportional_credit_removal(movable_credit(bonus), fraction)
            if removal > 0:
                operations.append(operation_create(bonus, OperationKind.CREDIT_OUT, amount=removal))
            credit_after[bonus.pk] = bonus.credit_outstanding - removal
            if bonus.bonus_type == BonusType.DYNAMIC_LEVERAGE:
                remaining_a = bonus
        if remaining_a is not None:
            # The same rule as the grant: the ratio of the credit left to the balance left.
            target = leverage_plan(account, balance=balance_after, exclude=ended, credit_after=credit_after)
            op = leverage_operation(account, remaining_a, target)
            if op:
                operations.append(op)
    operations_run(operations, actor=actor, gateway=gateway)
    return operations


def account_drawdown_protect(*, login: int, actor=MONITOR, gateway=None) -> bool:
    """Equity fell to the credit: close every position, cancel every bonus, take the credit back.

    The credit goes whatever the free margin (``check_margin`` off: the positions are closed and
    the credit is the broker's), so the account ends with no bonus credit in MT5. A balance left
    negative is then corrected to zero (``BONUS_NEGATIVE_BALANCE_POLICY`` "correct") or left
    ("leave"). Returns True when this call found a drawdown to act on (bonuses to end): a
    drawdown is one event however many times the monitor sees the account below its credit.
    """
    gateway = gateway or default_gateway()
    if not Bonus.objects.filter(login=login, status__in=OPEN_BONUS_STATUSES).exists():
        return False
    results = gateway.close_all_positions(login)
    with transaction.atomic():
        account_ensure(login=login)
        account_lock(login)
        open_bonuses = list(
            Bonus.objects.select_for_update().filter(login=login, status__in=OPEN_BONUS_STATUSES).order_by("id")
        )
        if not open_bonuses:
            return False  # ended meanwhile by a withdrawal, a cancel or another worker
        operations = bonuses_end(
            login=login,
            bonuses=open_bonuses,
            status=BonusStatus.CANCELLED,
            reason=CancelReason.DRAWDOWN,
            actor=actor,
            gateway=gateway,
            check_margin=False,
        )
        if settings.BONUS_NEGATIVE_BALANCE_POLICY == "correct":
            # After the credit: the balance the closed positions left is known by then.
            operations.append(operation_create(open_bonuses[-1], OperationKind.BALANCE_CORRECTION, check_margin=False))
        audit_write(
            actor=actor,
            action=AuditAction.DRAWDOWN,
            login=login,
            after={
                "closed_positions": len(results),
                "bonuses": [b.pk for b in open_bonuses],
                "negative_balance_policy": settings.BONUS_NEGATIVE_BALANCE_POLICY,
            },
        )
    operations_run(operations, actor=actor, gateway=gateway)
    return True


_CLOSING = (gw.DealEntry.OUT, gw.DealEntry.INOUT, gw.DealEntry.OUT_BY)


def _counts(campaign: Campaign, bonus: Bonus, deal: gw.Deal) -> bool:
    if deal.type not in (gw.DealType.BUY, gw.DealType.SELL) or deal.entry not in _CLOSING:
        return False
    if deal.volume < campaign.min_lot:
        return False
    if campaign.only_after_bonus and deal.time < bonus.created_at:
        return False
    symbols = [s.upper() for s in campaign.counting_symbols or []]
    # Broker suffixes (EURUSD.pro, EURUSDm) count for the plain name.
    return not symbols or any(deal.symbol.upper().startswith(s) for s in symbols)


def account_trades_detected(*, login: int, deals: list[gw.Deal], actor=MONITOR, gateway=None) -> int:
    """Closed deals add lots to open type C bonuses; each lot converts its share of credit. Returns steps posted."""
    gateway = gateway or default_gateway()
    operations: list[BonusOperation] = []
    with transaction.atomic():
        bonuses = list(
            Bonus.objects.select_for_update()
            .select_related("campaign")
            .filter(login=login, status=BonusStatus.ACTIVE, bonus_type=BonusType.CONVERTIBLE)
        )
        fresh = [d for d in deals if _record_event(login, d, AccountEvent.TRADE)]
        for bonus in bonuses:
            lots = sum((d.volume for d in fresh if _counts(bonus.campaign, bonus, d)), Decimal(0))
            if not lots:
                continue
            before = bonus_state(bonus)
            bonus.lots_traded += lots
            bonus.save(update_fields=["lots_traded"])
            audit_write(
                actor=actor,
                action=AuditAction.CONVERTED,
                bonus=bonus,
                before=before,
                after=bonus_state(bonus),
                message=f"{lots} lots traded",
            )
            pending = (
                BonusOperation.objects.filter(
                    bonus=bonus, kind=OperationKind.BALANCE_IN, status__in=UNFINISHED
                ).aggregate(s=Sum("amount"))["s"]
                or ZERO
            )
            step = formulas.type_c_step(
                bonus.amount - bonus.removed_amount,
                bonus.converted_amount + pending,
                bonus.lots_traded,
                bonus.lots_required,
            )
            if step > 0:
                operations += bonus_convert(actor=actor, bonus=bonus, amount=step, gateway=gateway)
    operations_run(operations, actor=actor, gateway=gateway)
    return len(operations) // 2


_TRADES = (gw.DealType.BUY, gw.DealType.SELL)


@dataclass
class DealsReviewed:
    """What one read of an account's deal history found (counted into the monitor's cycle figures)."""

    deposits: int = 0
    withdrawals: int = 0
    conversions: int = 0
    latest: datetime | None = None  # the newest deal's time: the next read starts there


def account_deals_review(
    *, login: int, balance: Decimal, since: datetime, actor=MONITOR, gateway=None
) -> DealsReviewed:
    """Read the deals since ``since`` and act on each once: deposits, withdrawals, closed trades.

    Inclusive of the last deal's instant; a deal seen twice is recognised by its ticket
    (``AccountEvent``). ``balance`` is the balance MT5 reports now: a withdrawal's share is taken
    of the balance it left, counting the withdrawals after it.
    """
    gateway = gateway or default_gateway()
    seen = DealsReviewed()
    deals = gateway.deals(login, since, timezone.now() + timedelta(days=1))
    own = [d for d in deals if d.type == gw.DealType.BALANCE and not d.comment.startswith("BONUS ")]
    withdrawals = [d for d in own if d.profit < 0]
    for deal in own:
        if deal.profit > 0:
            if account_deposit_detected(login=login, deal=deal, actor=actor, gateway=gateway):
                seen.deposits += 1
        else:
            later = sum((-w.profit for w in withdrawals if w.ticket > deal.ticket), Decimal(0))
            found = account_withdrawal_detected(
                login=login, deal=deal, balance_after=balance + later, actor=actor, gateway=gateway
            )
            if found is not None:
                seen.withdrawals += 1
    trades = [d for d in deals if d.type in _TRADES]
    if trades:
        seen.conversions = account_trades_detected(login=login, deals=trades, actor=actor, gateway=gateway)
    if deals:
        seen.latest = max(d.time for d in deals)
    return seen
