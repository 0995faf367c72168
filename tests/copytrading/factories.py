"""Builders of EA states and copy-trading accounts for the copytrading tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from mt5bridge.ea.state import EAOrder, EAPosition, EAState

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
D = Decimal


def pos(ident, symbol="BTCUSD", type=0, volume="1.00", sl="0", tp="0", magic=0, price="50000", age=1, ticket=None):
    return EAPosition(
        ticket=ticket or ident,
        symbol=symbol,
        type=type,
        volume=D(volume),
        price_open=D(price),
        sl=D(sl),
        tp=D(tp),
        magic=magic,
        comment="",
        profit=D("0"),
        time=NOW - timedelta(seconds=age),
        identifier=ident,
    )


def order(ticket, symbol="BTCUSD", type=2, volume="1.00", price="49000", sl="0", tp="0", magic=0):
    return EAOrder(
        ticket=ticket,
        symbol=symbol,
        type=type,
        volume=D(volume),
        price_open=D(price),
        sl=D(sl),
        tp=D(tp),
        magic=magic,
        comment="",
        time_setup=NOW - timedelta(seconds=1),
    )


def state(
    account_id="a",
    positions=(),
    orders=(),
    balance="10000",
    equity=None,
    margin_free=None,
    login=1,
    received_at=NOW,
    server_time=NOW,
):
    equity = equity if equity is not None else balance
    return EAState(
        account_id=str(account_id),
        login=login,
        received_at=received_at,
        server_time=server_time,
        balance=D(balance),
        credit=D("0"),
        equity=D(equity),
        margin=D("0"),
        margin_free=D(margin_free if margin_free is not None else equity),
        leverage=100,
        positions=tuple(positions),
        orders=tuple(orders),
    )
