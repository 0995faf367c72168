"""Price-driven updates between syncs: simulated accounts' moved equity is stored and published."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from accounts.models import TradingAccount
from mt5bridge.live_prices import live_prices_pass

pytestmark = pytest.mark.django_db


def _open_btc_position(login: int):
    from mt5bridge import gateway as gw

    gateway = gw.get_gateway("simulated", server="MetaSim-Demo")
    symbol = next(s.name for s in gateway.symbols(login) if s.name.startswith("BTCUSD"))
    result = gateway.order_send(
        login, gw.OrderRequest(action=gw.TradeAction.DEAL, symbol=symbol, volume=Decimal("1"), type=gw.OrderType.BUY)
    )
    assert result.retcode == gw.Retcode.DONE, result


def test_price_moves_update_stored_equity_and_are_published(owned_account):
    from mt5bridge.simulated import clock
    from mt5bridge.sync import account_sync

    clock.set_now(datetime(2026, 11, 21, 12, 0, tzinfo=UTC))  # a Saturday: only crypto trades
    try:
        _open_btc_position(owned_account.login)
        account_sync(account_id=owned_account.pk, trigger="test")
        before = TradingAccount.objects.get(pk=owned_account.pk).equity
        assert live_prices_pass() == 0  # nothing moved yet
        clock.advance(600)
        assert live_prices_pass() == 1
        after = TradingAccount.objects.get(pk=owned_account.pk)
        assert after.equity != before
        assert after.positions.get().profit == after.floating_profit
    finally:
        clock.set_now(None)


def test_run_live_prices_command_stores_moved_equity(owned_account, monkeypatch):
    from django.core.management import call_command

    from mt5bridge.management.commands import run_live_prices

    # The loop drops stale connections between passes; here that would be the test's transaction.
    monkeypatch.setattr(run_live_prices, "close_old_connections", lambda: None)

    from mt5bridge.simulated import clock
    from mt5bridge.sync import account_sync

    clock.set_now(datetime(2026, 11, 21, 12, 0, tzinfo=UTC))
    try:
        _open_btc_position(owned_account.login)
        account_sync(account_id=owned_account.pk, trigger="test")
        before = TradingAccount.objects.get(pk=owned_account.pk).equity
        clock.advance(900)
        call_command("run_live_prices", "--once")
        assert TradingAccount.objects.get(pk=owned_account.pk).equity != before
    finally:
        clock.set_now(None)
