"""A sync's one-statement write (sql.account_sync_write) stores exactly what the ORM path stores, and stays safe to
repeat: same deals, positions, orders, snapshot, account figures and sync status, one audit row per sync."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection

from accounts.choices import SyncOutcome, SyncStatus
from accounts.figures import FIGURES
from accounts.models import AccountSnapshot, Deal, Order, Position, SyncRun, TradingAccount
from mt5bridge import gateway as gw
from mt5bridge import sync
from mt5bridge.sync import account_sync
from tests.mt5bridge.test_sync import open_position
from tests.personas import SIM_PASSWORD, SIM_SERVER

pytestmark = pytest.mark.django_db

# What follows the simulated market's live prices, which move between the two syncs compared.
MOVING = {"price_current", "profit", "equity", "margin", "margin_free", "margin_level", "floating_profit"}
STEADY_FIGURES = [name for name in FIGURES if name not in MOVING]
DEAL_COLUMNS = [f.name for f in Deal._meta.concrete_fields if f.name not in ("id", "account")]
POSITION_COLUMNS = [
    f.name for f in Position._meta.concrete_fields if f.name not in ("id", "account", "updated_at", *MOVING)
]
ORDER_COLUMNS = [f.name for f in Order._meta.concrete_fields if f.name not in ("id", "account", *MOVING)]
ACCOUNT_COLUMNS = [*STEADY_FIGURES, "leverage", "currency", "broker", "is_hedging", "sync_status", "consecutive_errors"]
ACCOUNT_COLUMNS += ["last_error", "paused_at", "last_deal_time"]


def _place_pending_order(login: int) -> None:
    gateway = gw.get_gateway("simulated")
    gateway.login(gw.Credentials(login=login, password=SIM_PASSWORD, server=SIM_SERVER))
    tick = gateway.tick("BTCUSD")
    request = gw.OrderRequest(
        action=gw.TradeAction.PENDING,
        symbol="BTCUSD",
        volume=Decimal("0.10"),
        type=gw.OrderType.BUY_LIMIT,
        price=(tick.ask * Decimal("0.9")).quantize(Decimal("0.01")),
    )
    assert gateway.order_send(login, request).ok


def _stored(account: TradingAccount) -> dict:
    snapshot = AccountSnapshot.objects.filter(account=account).values(*STEADY_FIGURES).get()
    return {
        "deals": list(Deal.objects.filter(account=account).order_by("ticket").values_list(*DEAL_COLUMNS)),
        "positions": list(Position.objects.filter(account=account).order_by("ticket").values_list(*POSITION_COLUMNS)),
        "orders": list(Order.objects.filter(account=account).order_by("ticket").values_list(*ORDER_COLUMNS)),
        "snapshot": snapshot,
        "account": TradingAccount.objects.filter(pk=account.pk).values(*ACCOUNT_COLUMNS).get(),
    }


def _forget(account: TradingAccount) -> None:
    for model in (Deal, Position, Order, AccountSnapshot, SyncRun):
        model.objects.filter(account=account).delete()
    TradingAccount.objects.filter(pk=account.pk).update(
        last_deal_time=None, sync_status=SyncStatus.PENDING, leverage=1, broker="", is_hedging=False
    )


def test_the_one_statement_stores_what_the_orm_path_stores(owned_account, monkeypatch):
    open_position(owned_account.login)
    open_position(owned_account.login, symbol="ETHUSD", volume="0.20")
    _place_pending_order(owned_account.login)

    assert account_sync(account_id=owned_account.pk, trigger="test").outcome == SyncOutcome.OK
    one_statement = _stored(owned_account)
    _forget(owned_account)
    with monkeypatch.context() as m:
        m.setattr(connection, "vendor", "other")  # the ORM path, on the same tables
        assert account_sync(account_id=owned_account.pk, trigger="test").outcome == SyncOutcome.OK
    orm = _stored(owned_account)

    assert one_statement == orm
    assert len(orm["deals"]) > 100 and len(orm["positions"]) == 2 and len(orm["orders"]) == 1
    assert orm["account"]["sync_status"] == SyncStatus.OK and orm["account"]["last_deal_time"] is not None


def test_a_repeated_sync_adds_nothing_but_its_snapshot_and_audit_row(owned_account):
    first = account_sync(account_id=owned_account.pk, trigger="test")
    stored = _stored(owned_account)
    AccountSnapshot.objects.filter(account=owned_account).delete()  # _stored reads the one snapshot
    again = account_sync(account_id=owned_account.pk, trigger="test")
    assert first.deals_added == len(stored["deals"]) > 0 and again.deals_added == 0
    assert _stored(owned_account)["deals"] == stored["deals"]
    runs = list(
        SyncRun.objects.filter(account=owned_account).order_by("started_at").values_list("deals_added", "outcome")
    )
    assert runs == [(first.deals_added, SyncOutcome.OK), (0, SyncOutcome.OK)]


def test_the_newest_deal_time_never_moves_back(owned_account):
    account_sync(account_id=owned_account.pk)
    newest = TradingAccount.objects.get(pk=owned_account.pk).last_deal_time
    later = newest.replace(year=newest.year + 1)
    # Another sync stored a later deal after this one read the account: this one must not undo it.
    original_start = sync.history_start

    def racing_start(account, now):
        TradingAccount.objects.filter(pk=account.pk).update(last_deal_time=later)
        return original_start(account, now)

    with pytest.MonkeyPatch.context() as m:
        m.setattr(sync, "history_start", racing_start)
        account_sync(account_id=owned_account.pk)
    assert TradingAccount.objects.get(pk=owned_account.pk).last_deal_time == later
