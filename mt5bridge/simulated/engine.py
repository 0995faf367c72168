"""The simulated broker's write paths: trade requests, balance operations, leverage and the market loop.

Every change happens inside ``transaction.atomic()`` with the account row locked
(``select_for_update``), so web processes, workers and the market loop can share one database.
Triggers (pending orders, SL/TP, expirations) are found lazily: whoever reads or trades an
account first replays the price path since ``checked_at`` and fills what crossed, at the instant
and price it crossed; ``process_market`` does the same for every account on a loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.db import transaction

from mt5bridge.gateway.types import DealType, GatewayError, OrderRequest, OrderResult, OrderType, Retcode, TradeAction

from . import clock, trade_requests, triggers
from .accounting import BUY, money
from .book import Book
from .models import SimAccount, SimOrder, SimPosition
from .trade_rules import BALANCE_TYPES, CREDIT_TYPES, MAX_BALANCE_OPERATION, OperationRefused

_ADVANCE_CHECKED_AFTER = timedelta(seconds=60)


# --- Settling -----------------------------------------------------------------------


def settle(login: int, now: datetime) -> Book:
    """Fill what crossed and apply stop-out for one account, under its lock; returns the settled book."""
    with transaction.atomic():
        book = Book.lock(login, now)
        triggers.settle(book)
        book.flush()
    return book


# --- Write paths ----------------------------------------------------------------------


def order_send(login: int, request: OrderRequest, now: datetime) -> OrderResult:
    """Execute one trade request with MT5's checks and return codes (never raises for a refusal)."""
    with transaction.atomic():
        book = Book.lock(login, now)
        triggers.settle(book)
        result = trade_requests.execute(book, request)
        book.flush()
    return result


def close_all_positions(login: int, now: datetime) -> list[OrderResult]:
    """Close every open position at market, one request each, as a dealer would."""
    with transaction.atomic():
        book = Book.lock(login, now)
        triggers.settle(book)
        results = []
        for pos in list(book.positions):
            request = OrderRequest(
                action=TradeAction.DEAL,
                symbol=pos.symbol,
                volume=pos.volume,
                type=OrderType.SELL if pos.type == BUY else OrderType.BUY,
                position=pos.ticket,
                comment="close all",
            )
            results.append(trade_requests.execute(book, request))
        book.flush()
    return results


def balance_operation(
    login: int, amount, deal_type: int, comment: str, now: datetime, *, check_margin: bool = True
) -> int:
    """Post a balance, credit, bonus, charge or correction deal; returns its ticket.

    Refused with retcode 10019 (no money): taking the balance or the credit below zero, and, with
    ``check_margin`` on (the Manager API's default), taking more than the free margin. A correction
    (deal type 5) is never checked: it is how a dealer fixes an account, negative balance included.
    """
    try:
        deal_type = DealType(int(deal_type))
    except ValueError:
        raise GatewayError(f"deal type {deal_type} is not a balance operation") from None
    if deal_type not in BALANCE_TYPES:
        raise GatewayError(f"deal type {deal_type.name} is not a balance operation")
    try:
        amount = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    except (InvalidOperation, ValueError):
        raise GatewayError(f"invalid amount {amount!r}") from None
    if not amount.is_finite() or amount == 0 or abs(amount) > MAX_BALANCE_OPERATION:
        raise GatewayError(f"invalid amount {amount}")
    amount = money(amount)
    with transaction.atomic():
        book = Book.lock(login, now)
        triggers.settle(book)
        account = book.account
        if amount < 0 and deal_type != DealType.CORRECTION:
            held = account.credit if deal_type in CREDIT_TYPES else account.balance
            if held + amount < 0:
                raise OperationRefused(Retcode.NO_MONEY, "no money")
            if check_margin and book.figures(book.t).margin_free + amount < 0:
                raise OperationRefused(Retcode.NO_MONEY, "no money")
        deal = book.add_deal(at=now, type=deal_type, profit=amount, comment=comment)
        book.flush()
    return deal.ticket


def set_leverage(login: int, leverage: int, now: datetime) -> None:
    if not isinstance(leverage, int) or not 1 <= leverage <= 1000:
        raise GatewayError(f"leverage must be between 1 and 1000, not {leverage}")
    with transaction.atomic():
        book = Book.lock(login, now)
        triggers.settle(book)
        book.account.leverage = leverage
        book.changed = True
        book.flush()


# --- The market loop ------------------------------------------------------------------


@dataclass(frozen=True)
class MarketRun:
    accounts_checked: int
    accounts_settled: int


def process_market(now: datetime | None = None) -> MarketRun:
    """Fill crossed pending orders and SL/TP and apply stop-out for every account with exposure.

    Reads everything in three queries, settles (under lock) only the accounts where something
    is due, and moves ``checked_at`` on for the rest so the next pass replays a short stretch.
    """
    now = now or clock.now()
    held: dict[int, list[SimPosition]] = {}
    for pos in SimPosition.objects.order_by("time", "ticket"):
        held.setdefault(pos.account_id, []).append(pos)
    pending: dict[int, list[SimOrder]] = {}
    for order in SimOrder.objects.filter(state=SimOrder.PLACED).order_by("time_setup", "ticket"):
        pending.setdefault(order.account_id, []).append(order)
    logins = set(held) | set(pending)
    settled = 0
    quiet = []
    for account in SimAccount.objects.filter(login__in=logins).select_related("group"):
        book = Book(account, held.get(account.login, []), pending.get(account.login, []), now)
        if triggers.needs_settling(book):
            settle(account.login, now)
            settled += 1
        elif now - account.checked_at > _ADVANCE_CHECKED_AFTER:
            quiet.append(account.pk)
    if quiet:
        SimAccount.objects.filter(pk__in=quiet, checked_at__lt=now).update(checked_at=now)
    return MarketRun(len(logins), settled)
