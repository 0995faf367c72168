"""Copying through the EA's lean ASGI path, as served in production: a master whose beats take the steady path
still has its trades copied, and the slave's beat on that path carries the command."""

from __future__ import annotations

import json

import httpx
import pytest

from copytrading.services import copy_link_create
from mt5bridge.ea import edge
from mt5bridge.ea.services import ea_token_issue
from tests.mt5bridge.ea_helpers import in_server_loop

from .test_end_to_end import position

# The fast path runs the services in its own threads, so the test's rows must be committed.
pytestmark = pytest.mark.django_db(transaction=True)


def beat(token: str, login: int, positions=()) -> dict:
    from config.asgi import application

    body = {
        "v": 1,
        "login": login,
        "account": {"balance": "10000", "equity": "10000", "margin": "0", "margin_free": "10000", "leverage": 100},
        "positions": list(positions),
    }

    async def call():
        transport = httpx.ASGITransport(app=application, client=("127.0.0.9", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.post(
                "/api/ea/heartbeat", content=json.dumps(body), headers={"Authorization": f"Bearer {token}"}
            )

    response = in_server_loop(call())
    assert response.status_code == 200, response.text
    return response.json()


def test_a_master_trade_on_the_steady_path_reaches_the_slave(owner, master, slave, monkeypatch):
    copy_link_create(user=owner, master_id=master.pk, slave_id=slave.pk, max_delay_seconds=60)
    master_token, slave_token = ea_token_issue(account=master), ea_token_issue(account=slave)
    full = []
    real_beat = edge.beat
    monkeypatch.setattr(edge, "beat", lambda *args: full.append(args) or real_beat(*args))
    beat(master_token, master.login)
    beat(slave_token, slave.login)
    beat(master_token, master.login)
    beat(master_token, master.login, [position(7001, "BTCUSD.pro")])
    assert len(full) == 2  # only each token's first beat went the full way
    [command] = beat(slave_token, slave.login)["commands"]
    assert command["kind"] == "open_market" and command["params"]["symbol"] == "BTCUSD"
    assert beat(slave_token, slave.login)["commands"] == []
