"""Account sync against the simulated MT5: idempotent upserts, failures counted, pause and resume."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.choices import SyncOutcome, SyncStatus
from accounts.models import AccountSnapshot, Deal, Order, Position, SyncRun, TradingAccount
from mt5bridge import gateway as gw
from mt5bridge.sync import account_sync, accounts_due_for_sync
from mt5bridge.tasks import sync_due_accounts
from tests.personas import SIM_PASSWORD, SIM_SERVER

pytestmark = pytest.mark.django_db


class UnreachableGateway:
    """The simulated gateway with its network cable pulled: every call times out."""

    kind = "simulated"

    def __getattr__(self, name):
        def unreachable(*args, **kwargs):
            raise gw.GatewayUnavailable("connection to MetaSim-Demo timed out")

        return unreachable


def open_position(login: int, symbol: str = "BTCUSD", volume: str = "0.10") -> gw.OrderResult:
    # Crypto trades around the clock on the simulated server, so this runs on weekends too.
    gateway = gw.get_gateway("simulated")
    gateway.login(gw.Credentials(login=login, password=SIM_PASSWORD, server=SIM_SERVER))
    result = gateway.order_send(
        login, gw.OrderRequest(action=gw.TradeAction.DEAL, symbol=symbol, volume=Decimal(volume), type=gw.OrderType.BUY)
    )
    assert result.ok, result
    return result


def test_first_sync_stores_history_snapshot_and_figures(owned_account):
    result = account_sync(account_id=owned_account.pk, trigger="test")
    assert result.outcome == SyncOutcome.OK
    owned_account.refresh_from_db()
    server = gw.get_gateway("simulated")
    server.login(gw.Credentials(login=owned_account.login, password=SIM_PASSWORD, server=SIM_SERVER))
    info = server.account_info(owned_account.login)
    assert owned_account.balance == info.balance
    assert Deal.objects.filter(account=owned_account).count() == result.deals_added > 0
    assert AccountSnapshot.objects.filter(account=owned_account).count() == 1
    assert owned_account.sync_status == SyncStatus.OK and owned_account.last_sync_at is not None


def test_resyncing_adds_no_duplicate_deals(owned_account):
    account_sync(account_id=owned_account.pk)
    deals = Deal.objects.filter(account=owned_account).count()
    second = account_sync(account_id=owned_account.pk)
    assert second.deals_added == 0
    assert Deal.objects.filter(account=owned_account).count() == deals
    assert AccountSnapshot.objects.filter(account=owned_account).count() == 2


def test_a_new_trade_shows_up_and_a_closed_one_disappears(owned_account):
    account_sync(account_id=owned_account.pk)
    opened = open_position(owned_account.login)
    account_sync(account_id=owned_account.pk)
    position = Position.objects.get(account=owned_account)
    assert position.symbol == "BTCUSD" and position.volume == Decimal("0.10")

    gateway = gw.get_gateway("simulated")
    gateway.login(gw.Credentials(login=owned_account.login, password=SIM_PASSWORD, server=SIM_SERVER))
    closing = gateway.order_send(
        owned_account.login,
        gw.OrderRequest(
            action=gw.TradeAction.DEAL,
            symbol="BTCUSD",
            volume=Decimal("0.10"),
            type=gw.OrderType.SELL,
            position=position.ticket,
        ),
    )
    assert closing.ok, closing
    result = account_sync(account_id=owned_account.pk)
    assert result.deals_added == 1
    assert not Position.objects.filter(account=owned_account).exists()
    assert Deal.objects.filter(account=owned_account, ticket=closing.deal, position_id=position.identifier).exists()
    assert Deal.objects.filter(account=owned_account, ticket=opened.deal).exists()


def test_a_resync_updates_kept_positions_and_orders_and_drops_only_the_gone_ones(owned_account):
    first, second = open_position(owned_account.login), open_position(owned_account.login, volume="0.20")
    gateway = gw.get_gateway("simulated")
    gateway.login(gw.Credentials(login=owned_account.login, password=SIM_PASSWORD, server=SIM_SERVER))
    tick = gateway.tick("BTCUSD")
    pending = gateway.order_send(
        owned_account.login,
        gw.OrderRequest(
            action=gw.TradeAction.PENDING,
            symbol="BTCUSD",
            volume=Decimal("0.10"),
            type=gw.OrderType.BUY_LIMIT,
            price=(tick.ask * Decimal("0.9")).quantize(Decimal("0.01")),
        ),
    )
    assert pending.ok, pending
    account_sync(account_id=owned_account.pk)
    assert Position.objects.filter(account=owned_account).count() == 2
    assert Order.objects.filter(account=owned_account, ticket=pending.order).exists()

    kept = Position.objects.get(account=owned_account, volume=Decimal("0.20"))
    stop = (tick.bid * Decimal("0.5")).quantize(Decimal("0.01"))
    modified = gateway.order_send(
        owned_account.login,
        gw.OrderRequest(action=gw.TradeAction.SLTP, symbol="BTCUSD", position=kept.ticket, sl=stop),
    )
    assert modified.ok, modified
    gone = Position.objects.get(account=owned_account, volume=Decimal("0.10"))
    closed = gateway.order_send(
        owned_account.login,
        gw.OrderRequest(
            action=gw.TradeAction.DEAL,
            symbol="BTCUSD",
            volume=Decimal("0.10"),
            type=gw.OrderType.SELL,
            position=gone.ticket,
        ),
    )
    assert closed.ok, closed
    removed = gateway.order_send(
        owned_account.login, gw.OrderRequest(action=gw.TradeAction.REMOVE, order=pending.order)
    )
    assert removed.ok, removed

    account_sync(account_id=owned_account.pk)
    left = Position.objects.get(account=owned_account)
    assert (left.ticket, left.sl, left.pk) == (kept.ticket, stop, kept.pk)  # updated in place, not re-created
    assert not Order.objects.filter(account=owned_account).exists()
    assert {first.deal, second.deal, closed.deal} <= set(
        Deal.objects.filter(account=owned_account).values_list("ticket", flat=True)
    )


def test_an_unreachable_server_is_counted_and_keeps_what_is_stored(owned_account):
    account_sync(account_id=owned_account.pk)
    deals = Deal.objects.filter(account=owned_account).count()
    with pytest.raises(gw.GatewayUnavailable):
        account_sync(account_id=owned_account.pk, gateway=UnreachableGateway())
    owned_account.refresh_from_db()
    assert owned_account.sync_status == SyncStatus.ERROR
    assert owned_account.consecutive_errors == 1
    assert "unreachable" in owned_account.last_error
    assert Deal.objects.filter(account=owned_account).count() == deals
    assert owned_account.balance > 0


def test_five_failures_in_a_row_pause_the_account_and_resume_clears_it(owned_account):
    for _ in range(5):
        with pytest.raises(gw.GatewayUnavailable):
            account_sync(account_id=owned_account.pk, gateway=UnreachableGateway())
    owned_account.refresh_from_db()
    assert owned_account.sync_status == SyncStatus.PAUSED
    assert owned_account.last_error.startswith("Paused after 5 failed syncs")
    assert account_sync(account_id=owned_account.pk).outcome == "skipped"

    from accounts.services import trading_account_resume

    trading_account_resume(account=owned_account, sync_now=False)
    assert account_sync(account_id=owned_account.pk).outcome == SyncOutcome.OK
    owned_account.refresh_from_db()
    assert owned_account.consecutive_errors == 0 and owned_account.sync_status == SyncStatus.OK


def test_a_changed_password_gives_a_clear_status(owned_account):
    from accounts import vault

    TradingAccount.objects.filter(pk=owned_account.pk).update(password_encrypted=vault.encrypt("changed-elsewhere"))
    result = account_sync(account_id=owned_account.pk)
    assert result.outcome == SyncOutcome.AUTH_FAILED
    owned_account.refresh_from_db()
    assert owned_account.sync_status == SyncStatus.AUTH_FAILED
    assert "refused" in owned_account.last_error


def test_success_rate_counts_each_sync(owned_account):
    from accounts.selectors import sync_success_rate

    account_sync(account_id=owned_account.pk)
    with pytest.raises(gw.GatewayUnavailable):
        account_sync(account_id=owned_account.pk, gateway=UnreachableGateway())
    stats = sync_success_rate()
    assert stats["total"] == 2 and stats["succeeded"] == 1 and stats["rate"] == 0.5
    assert SyncRun.objects.filter(account=owned_account, outcome="unavailable").count() == 1


def test_beat_queues_only_accounts_that_are_due(owned_account, settings):
    assert list(accounts_due_for_sync()) == [owned_account]
    account_sync(account_id=owned_account.pk)
    assert list(accounts_due_for_sync()) == []
    later = timezone.now() + timezone.timedelta(minutes=settings.SYNC_INTERVAL_MINUTES + 1)
    assert list(accounts_due_for_sync(later)) == [owned_account]
    TradingAccount.objects.filter(pk=owned_account.pk).update(last_sync_at=None)
    assert sync_due_accounts() == 1  # runs the sync eagerly in tests
    assert SyncRun.objects.filter(account=owned_account).count() == 2


def test_no_password_reaches_the_logs_while_adding_and_syncing(owner, sim_login, caplog):
    from accounts.services import trading_account_create

    caplog.set_level(logging.DEBUG)
    account = trading_account_create(
        owner=owner, login=sim_login, password=SIM_PASSWORD, server=SIM_SERVER, sync_now=False
    )
    account_sync(account_id=account.pk)
    with pytest.raises(gw.GatewayUnavailable):
        account_sync(account_id=account.pk, gateway=UnreachableGateway())
    try:
        trading_account_create(
            owner=owner, login=sim_login + 1, password="Wrong-" + SIM_PASSWORD, server=SIM_SERVER, sync_now=False
        )
    except Exception:
        pass
    assert caplog.records, "logging was not captured"
    assert SIM_PASSWORD not in caplog.text
