"""The billing gate in the EA protocol: a heartbeat over the limit or without copy trading is denied, no commands."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from .conftest import make_account, on_plan

ea_services = pytest.importorskip("mt5bridge.ea.services")

BEAT = json.dumps({"v": 1, "account": {"balance": "1000.00", "equity": "1000.00"}, "positions": [], "orders": []})


@pytest.fixture(autouse=True)
def _no_gate_cache(settings):
    settings.EA_GATE_CACHE_SECONDS = 0


def heartbeat(account) -> dict:
    token = ea_services.ea_token_issue(account=account)
    client = APIClient()
    response = client.post(
        "/api/ea/heartbeat", data=BEAT, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code == 200, response.content
    return response.json()


def test_a_heartbeat_on_a_plan_without_copy_trading_is_denied_naming_basic(owner, stripe_mode):
    reply = heartbeat(make_account(owner))
    assert reply["status"] == "denied"
    assert reply["commands"] == []
    assert "Basic" in reply["reason"]


def test_a_heartbeat_for_an_account_over_the_limit_is_denied_and_within_it_is_ok(owner, stripe_mode):
    on_plan(owner, "basic")
    accounts = [make_account(owner) for _ in range(4)]
    assert heartbeat(accounts[0])["status"] == "ok"
    reply = heartbeat(accounts[3])
    assert reply["status"] == "denied" and reply["reason"].startswith("plan_limit")


def test_a_heartbeat_in_local_mode_on_the_default_plan_is_ok(owner, local_mode):
    assert heartbeat(make_account(owner))["status"] == "ok"


def _beat(token: str) -> dict:
    response = APIClient().post(
        "/api/ea/heartbeat", data=BEAT, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code == 200, response.content
    return response.json()


def test_a_plan_change_reaches_the_cached_gate_answer_at_once(owner, stripe_mode, settings):
    settings.EA_GATE_CACHE_SECONDS = 300  # the answer is cached; the change must not wait for it to age out
    token = ea_services.ea_token_issue(account=make_account(owner))
    assert _beat(token)["status"] == "denied"
    on_plan(owner, "basic")
    assert _beat(token)["status"] == "ok"
    on_plan(owner, "free")
    assert _beat(token)["status"] == "denied"


def test_pausing_another_account_of_the_owner_reaches_the_cached_gate_answer_at_once(owner, stripe_mode, settings):
    settings.EA_GATE_CACHE_SECONDS = 300
    on_plan(owner, "basic")
    accounts = [make_account(owner) for _ in range(4)]
    token = ea_services.ea_token_issue(account=accounts[3])
    assert _beat(token)["reason"].startswith("plan_limit")
    accounts[0].is_active = False
    accounts[0].save(update_fields=["is_active"])
    assert _beat(token)["status"] == "ok"
