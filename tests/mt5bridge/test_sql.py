"""The bridge's named SQL (mt5bridge/sql.py) stores exactly what the ORM path stores, and keeps its guarantees."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from accounts.models import AccountSnapshot, Position, TradingAccount
from mt5bridge import sql
from mt5bridge.ea.models import EAConnection
from mt5bridge.ea.persist import StateWrite, states_write
from mt5bridge.ea.protocol import decode_heartbeat
from mt5bridge.ea.services import EAClient
from mt5bridge.ea.state import state_fingerprint
from mt5bridge.sync import replace_account_rows

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _position(ticket: int, volume: str = "0.10", comment: str = "") -> dict:
    return {
        "ticket": ticket,
        "symbol": "EURUSD",
        "side": 0,
        "volume": Decimal(volume),
        "price_open": Decimal("1.1"),
        "price_current": Decimal("1.1"),
        "sl": Decimal(0),
        "tp": Decimal(0),
        "swap": Decimal(0),
        "profit": Decimal("1.5"),
        "magic": 7,
        "comment": comment,
        "identifier": ticket,
        "opened_at": T0,
        "updated_at": T0,
    }


def _stored(account) -> list[tuple]:
    return sorted(Position.objects.filter(account=account).values_list("ticket", "volume", "comment"))


def test_account_rows_write_replaces_an_accounts_rows_as_the_orm_path_does(owned_account, monkeypatch):
    other = TradingAccount.objects.create(
        owner=owned_account.owner, login=owned_account.login + 1, server="MetaSim-Demo", password_encrypted=b"x"
    )
    first = [_position(1), _position(2, comment="a, comma")]
    second = [_position(2, "0.30", "kept, changed"), _position(3)]
    replace_account_rows(Position, owned_account.pk, first, ("volume", "comment"))
    replace_account_rows(Position, owned_account.pk, second, ("volume", "comment"))
    with monkeypatch.context() as m:
        m.setattr(connection, "vendor", "other")  # the ORM path, on the same tables
        replace_account_rows(Position, other.pk, first, ("volume", "comment"))
        replace_account_rows(Position, other.pk, second, ("volume", "comment"))
    assert _stored(owned_account) == _stored(other) == [(2, Decimal("0.30"), "kept, changed"), (3, Decimal("0.10"), "")]
    assert sql.account_rows_write(Position, owned_account.pk, [], replace=True) == 0
    assert _stored(owned_account) == []


def _write(account, at: datetime, equity: str, *, changed: bool) -> None:
    body = b'{"v":1,"login":%d,"account":{"balance":"1000","equity":"%s","margin":"10","margin_free":"990"}}' % (
        account.login,
        equity.encode(),
    )
    beat = decode_heartbeat(body, account_id=str(account.pk), login=account.login, received_at=at)
    client = EAClient(str(account.pk), account.login, account.owner_id)
    states_write([StateWrite(client, beat, state_fingerprint(beat.state), 1, "", changed=changed)])


def test_ea_states_upsert_never_lets_a_late_write_replace_a_newer_state(owned_account):
    _write(owned_account, T0 + timedelta(seconds=10), "1010", changed=True)
    _write(owned_account, T0, "990", changed=False)  # a batch that was late
    conn = EAConnection.objects.get(account=owned_account)
    assert conn.persisted_at == T0 + timedelta(seconds=10) and conn.first_seen_at == T0 + timedelta(seconds=10)
    assert '"1010"' in conn.state["json"] or "1010" in conn.state["json"]
    assert AccountSnapshot.objects.filter(account=owned_account).count() == 1  # only the changed state's
