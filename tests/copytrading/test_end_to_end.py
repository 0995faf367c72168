"""Copying through the real EA protocol: master beat over HTTP, slave beat gets the command, its result links it."""

from __future__ import annotations

import json
import time

import pytest
from rest_framework.test import APIClient

from copytrading.choices import CopyStatus
from copytrading.models import CopiedPosition
from copytrading.services import copy_link_create
from mt5bridge.ea.services import ea_token_issue

pytestmark = pytest.mark.django_db


def beat(token: str, login: int, positions=(), results=()):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    body = {
        "v": 1,
        "ea_version": "test",
        "login": login,
        "server_time": int(time.time()),
        "account": {
            "balance": "10000",
            "credit": "0",
            "equity": "10000",
            "margin": "0",
            "margin_free": "10000",
            "leverage": 100,
        },
        "positions": list(positions),
        "orders": [],
        "terminal": {},
        "results": list(results),
    }
    response = client.post("/api/ea/heartbeat", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 200, response.content
    return response.json()


def position(ticket: int, symbol: str, volume: str = "0.50"):
    return {
        "ticket": ticket,
        "symbol": symbol,
        "type": 0,
        "volume": volume,
        "price_open": "65000",
        "sl": "0",
        "tp": "0",
        "magic": 0,
        "comment": "",
        "profit": "0",
        "time": int(time.time()) - 1,
        "identifier": ticket,
    }


def test_master_trade_reaches_the_slave_ea_and_its_result_links_the_copy(
    owner, master, slave, django_capture_on_commit_callbacks
):
    copy_link_create(user=owner, master_id=master.pk, slave_id=slave.pk, max_delay_seconds=60)
    master_token, slave_token = ea_token_issue(account=master), ea_token_issue(account=slave)
    with django_capture_on_commit_callbacks(execute=True):
        beat(master_token, master.login)
        beat(master_token, master.login, [position(7001, "BTCUSD.pro")])
    reply = beat(slave_token, slave.login)
    [command] = reply["commands"]
    assert command["kind"] == "open_market" and command["params"]["symbol"] == "BTCUSD"
    result = {
        "id": command["id"],
        "status": "executed",
        "retcode": 10009,
        "message": "done",
        "result": {"order": 8001, "deal": 9001, "position": 8001, "volume": "0.5"},
    }
    with django_capture_on_commit_callbacks(execute=True):
        beat(slave_token, slave.login, [position(8001, "BTCUSD")], results=[result])
    row = CopiedPosition.objects.get()
    assert (row.status, row.slave_ticket) == (CopyStatus.OPEN, 8001)
    # The master closes: the slave's next beat carries the close of exactly that ticket.
    with django_capture_on_commit_callbacks(execute=True):
        beat(master_token, master.login)
    closes = [c for c in beat(slave_token, slave.login, [position(8001, "BTCUSD")])["commands"] if c["kind"] == "close"]
    assert [c["params"] for c in closes] == [{"ticket": 8001}]
