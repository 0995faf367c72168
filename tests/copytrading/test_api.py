"""Copy trading API: the owner's flows, gates, and no access for outsiders or anonymous callers."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from guardian.shortcuts import assign_perm

from copytrading.models import CopyEvent, CopyLink, OrderTemplate, Rule, RuleHit
from mt5bridge.ea.models import Command
from tests.personas import UserFactory, api_client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def link(owner, master, slave):
    from copytrading.services import copy_link_create

    return copy_link_create(user=owner, master_id=master.pk, slave_id=slave.pk)


@pytest.fixture
def rule(slave):
    return Rule.objects.create(account=slave, kind="equity_stop", threshold=D("100"))


@pytest.fixture
def template(owner):
    return OrderTemplate.objects.create(owner=owner, name="BTC scalp", symbol="BTCUSD", side="buy", volume=D("0.1"))


@pytest.fixture
def history(link, rule):
    CopyEvent.objects.create(
        link=link,
        master_account=link.master,
        slave_account=link.slave,
        intent="open",
        reason_code="too_late",
        reason="late",
    )
    RuleHit.objects.create(rule=rule, account=rule.account, kind=rule.kind, action=rule.action, detail="hit")


def endpoints(link, rule, template, slave):
    return [
        ("get", "/api/copy/links", None),
        ("post", "/api/copy/links", {"master": str(link.master_id), "slave": str(slave.pk)}),
        ("get", f"/api/copy/links/{link.pk}", None),
        ("patch", f"/api/copy/links/{link.pk}", {"active": False}),
        ("delete", f"/api/copy/links/{link.pk}", None),
        ("get", "/api/copy/events", None),
        ("get", "/api/copy/positions", None),
        ("get", "/api/copy/rules", None),
        ("post", "/api/copy/rules", {"account": str(slave.pk), "kind": "equity_stop", "threshold": "5"}),
        ("get", f"/api/copy/rules/{rule.pk}", None),
        ("patch", f"/api/copy/rules/{rule.pk}", {"threshold": "50"}),
        ("delete", f"/api/copy/rules/{rule.pk}", None),
        ("get", "/api/copy/rule-hits", None),
        ("get", f"/api/copy/accounts/{slave.pk}/mode", None),
        ("put", f"/api/copy/accounts/{slave.pk}/mode", {"mode": "normal"}),
        ("get", "/api/copy/templates", None),
        ("get", f"/api/copy/templates/{template.pk}", None),
        ("patch", f"/api/copy/templates/{template.pk}", {"volume": "0.2"}),
        ("delete", f"/api/copy/templates/{template.pk}", None),
        ("post", f"/api/copy/templates/{template.pk}/place", {"accounts": [str(slave.pk)]}),
        ("post", "/api/copy/terminal/orders", {"account": str(slave.pk), "kind": "close_all"}),
        ("get", "/api/copy/terminal/commands", None),
    ]


def test_every_endpoint_refuses_anonymous_callers(anon_client, link, rule, template, slave):
    for method, url, body in endpoints(link, rule, template, slave):
        response = getattr(anon_client, method)(url, body, format="json")
        assert response.status_code == 401, (method, url)


def test_outsider_sees_nothing_and_changes_nothing(outsider_client, link, rule, template, slave, history):
    for method, url, body in endpoints(link, rule, template, slave):
        response = getattr(outsider_client, method)(url, body, format="json")
        if method == "get" and not url.rstrip("/").split("/")[-1].isdigit() and "/mode" not in url:
            assert response.status_code == 200, (method, url)
            payload = response.json()
            rows = payload["results"] if isinstance(payload, dict) else payload
            assert rows == [], (method, url)
        else:
            assert response.status_code == 404, (method, url, response.status_code)
    assert CopyLink.objects.get(pk=link.pk).active and Rule.objects.filter(pk=rule.pk).exists()
    assert OrderTemplate.objects.filter(pk=template.pk).exists() and not Command.objects.exists()


def test_owner_creates_updates_and_deletes_a_link(owner_client, master, slave):
    response = owner_client.post(
        "/api/copy/links",
        {"master": str(master.pk), "slave": str(slave.pk), "sizing_mode": "balance_ratio", "reverse": True},
        format="json",
    )
    assert response.status_code == 201, response.json()
    pk = response.json()["id"]
    assert (
        owner_client.post(
            "/api/copy/links", {"master": str(master.pk), "slave": str(slave.pk)}, format="json"
        ).status_code
        == 409
    )
    response = owner_client.patch(
        f"/api/copy/links/{pk}", {"multiplier": "1.5", "min_volume": "0.5", "max_volume": "0.1"}, format="json"
    )
    assert response.status_code == 400
    response = owner_client.patch(f"/api/copy/links/{pk}", {"multiplier": "1.5"}, format="json")
    assert response.json()["multiplier"] == "1.5000"
    assert owner_client.delete(f"/api/copy/links/{pk}").status_code == 204


def test_a_trader_may_copy_a_master_shared_with_them_but_not_an_unshared_one(master, slave):
    follower = UserFactory()
    from .conftest import make_account

    own = make_account(follower, "MetaSim-Demo")
    client = api_client_for(follower)
    body = {"master": str(master.pk), "slave": str(own.pk)}
    assert client.post("/api/copy/links", body, format="json").status_code == 404
    assign_perm("accounts.view_tradingaccount", follower, master)
    assert client.post("/api/copy/links", body, format="json").status_code == 201
    # Shared for viewing only: it can never become the follower's slave.
    assert (
        client.post("/api/copy/links", {"master": str(own.pk), "slave": str(master.pk)}, format="json").status_code
        == 404
    )


def test_an_account_cannot_copy_itself(owner_client, slave):
    response = owner_client.post("/api/copy/links", {"master": str(slave.pk), "slave": str(slave.pk)}, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "same_account"


def test_gates_refuse_links_beyond_the_plan(owner_client, master, slave, monkeypatch):
    from config.errors import NotAllowed
    from entitlements import gates

    def no_more(user, limit, current):
        if limit == "copy_links" and current >= 0:
            raise NotAllowed("Your plan allows no more copy links.", code="plan_limit")

    monkeypatch.setattr(gates, "require_limit", no_more)
    monkeypatch.setattr("copytrading.services.require_limit", no_more)
    response = owner_client.post("/api/copy/links", {"master": str(master.pk), "slave": str(slave.pk)}, format="json")
    assert response.status_code == 403 and response.json()["error"]["code"] == "plan_limit"


def test_gates_refuse_copy_trading_without_the_feature(owner_client, master, slave, monkeypatch):
    from config.errors import NotAllowed

    def locked(user, feature):
        raise NotAllowed(f"{feature} needs the Pro plan.", code="feature_locked")

    monkeypatch.setattr("copytrading.services.require_feature", locked)
    response = owner_client.post("/api/copy/links", {"master": str(master.pk), "slave": str(slave.pk)}, format="json")
    assert response.status_code == 403
    response = owner_client.post(
        "/api/copy/terminal/orders", {"account": str(slave.pk), "kind": "close_all"}, format="json"
    )
    assert response.status_code == 403


def test_bad_input_is_a_clear_400(owner_client, master, slave):
    bad = [
        {"master": "nope", "slave": str(slave.pk)},
        {"master": str(master.pk), "slave": str(slave.pk), "multiplier": "NaN"},
        {"master": str(master.pk), "slave": str(slave.pk), "symbols_include": "BTCUSD"},
        {"master": str(master.pk), "slave": str(slave.pk), "magics_include": [-1]},
    ]
    for body in bad:
        response = owner_client.post("/api/copy/links", body, format="json")
        assert response.status_code == 400, body
        assert "error" in response.json()
    assert owner_client.get("/api/copy/events?link=abc").status_code == 400
    assert owner_client.get("/api/copy/links/99999999999999999").status_code == 404


def test_history_lists_skips_with_reasons(owner_client, history, slave):
    rows = owner_client.get(f"/api/copy/events?account={slave.pk}").json()["results"]
    assert [r["reason"] for r in rows] == ["late"]
    assert owner_client.get("/api/copy/rule-hits").json()["results"][0]["detail"] == "hit"


def test_rule_needs_its_values(owner_client, slave):
    response = owner_client.post("/api/copy/rules", {"account": str(slave.pk), "kind": "trading_hours"}, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_rule"
    response = owner_client.post(
        "/api/copy/rules",
        {
            "account": str(slave.pk),
            "kind": "trading_hours",
            "hours_start": "08:00",
            "hours_end": "17:00",
            "timezone": "Mars/Olympus",
        },
        format="json",
    )
    assert response.status_code == 400


def test_web_terminal_order_becomes_a_command_with_live_status(owner_client, slave):
    body = {
        "account": str(slave.pk),
        "kind": "open_market",
        "symbol": "BTCUSD",
        "side": "buy",
        "volume": "0.1",
        "sl": "40000",
        "client_key": "k1",
    }
    response = owner_client.post("/api/copy/terminal/orders", body, format="json")
    assert response.status_code == 201, response.json()
    command = Command.objects.get()
    assert (command.kind, command.origin, command.params["symbol"], command.params["volume"]) == (
        "open_market",
        "web_terminal",
        "BTCUSD",
        "0.1",
    )
    # Same client key: the double click does not trade twice.
    assert owner_client.post("/api/copy/terminal/orders", body, format="json").json()["id"] == str(command.id)
    listed = owner_client.get(f"/api/copy/terminal/commands?account={slave.pk}").json()
    assert [c["status"] for c in listed] == ["pending"]
    missing = owner_client.post("/api/copy/terminal/orders", {"account": str(slave.pk), "kind": "close"}, format="json")
    assert missing.status_code == 400


def test_paused_account_refuses_new_terminal_orders_but_closes(owner_client, slave):
    owner_client.put(f"/api/copy/accounts/{slave.pk}/mode", {"mode": "paused"}, format="json")
    opening = {"account": str(slave.pk), "kind": "open_market", "symbol": "BTCUSD", "side": "buy", "volume": "0.1"}
    assert owner_client.post("/api/copy/terminal/orders", opening, format="json").status_code == 409
    closing = {"account": str(slave.pk), "kind": "close", "ticket": 5}
    assert owner_client.post("/api/copy/terminal/orders", closing, format="json").status_code == 201


def test_template_places_on_many_accounts_with_each_brokers_symbol(owner_client, owner, master, slave, netting_slave):
    template = OrderTemplate.objects.create(
        owner=owner,
        name="BTC",
        symbol="BTCUSD",
        side="sell",
        volume=D("0.2"),
        sl_points=100000,
        tp_points=50000,
        comment="tpl",
    )
    accounts = [str(master.pk), str(slave.pk), str(netting_slave.pk)]
    response = owner_client.post(f"/api/copy/templates/{template.pk}/place", {"accounts": accounts}, format="json")
    assert response.status_code == 201, response.json()
    by_account = {str(c.account_id): c for c in Command.objects.filter(origin="template")}
    assert {a: c.params["symbol"] for a, c in by_account.items()} == {
        str(master.pk): "BTCUSD.pro",
        str(slave.pk): "BTCUSD",
        str(netting_slave.pk): "BTCUSDm",
    }
    command = by_account[str(slave.pk)]
    # Sell: SL 100,000 points (1,000.00) above the bid, TP 500.00 below it.
    assert D(command.params["sl"]) - D(command.params["tp"]) == D("1500.00")
    assert command.params["side"] == "sell" and D(command.params["volume"]) == D("0.2")


def test_template_with_risk_percent_sizes_per_account(owner_client, owner, slave):
    template = OrderTemplate.objects.create(
        owner=owner, name="risk", symbol="BTCUSD", side="buy", risk_percent=D("1"), sl_points=100000
    )
    owner_client.post(f"/api/copy/templates/{template.pk}/place", {"accounts": [str(slave.pk)]}, format="json")
    # 1 % of 5,000 = 50; SL 1,000.00 x contract 1 -> 0.05 lots
    assert D(Command.objects.get().params["volume"]) == D("0.05")


def test_template_needs_volume_or_risk(owner_client):
    response = owner_client.post("/api/copy/templates", {"name": "x", "symbol": "BTCUSD", "side": "buy"}, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_template"
