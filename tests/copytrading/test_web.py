"""Trader pages and admin pages of copy trading: they render, write through services, and hide others' rows."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from django.test import Client

from copytrading.models import CopyEvent, CopyLink, OrderTemplate, Rule, RuleHit
from mt5bridge.ea.models import Command

pytestmark = pytest.mark.django_db
PAGES = ["/copy/", "/copy/history/", "/copy/rules/", "/copy/templates/", "/copy/terminal/", "/copy/terminal/commands/"]


def web_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def link(owner, master, slave):
    from copytrading.services import copy_link_create

    return copy_link_create(user=owner, master_id=master.pk, slave_id=slave.pk)


@pytest.fixture
def history(link):
    CopyEvent.objects.create(
        link=link,
        master_account=link.master,
        slave_account=link.slave,
        intent="open",
        reason_code="too_late",
        reason="older than max delay SECRET-REASON",
    )
    rule = Rule.objects.create(account=link.slave, kind="equity_stop", threshold=D("1"))
    RuleHit.objects.create(rule=rule, account=link.slave, kind=rule.kind, action=rule.action, detail="HIT-DETAIL")
    return rule


def test_pages_need_a_login():
    for url in PAGES:
        response = Client().get(url)
        assert response.status_code == 302 and "/login/" in response["Location"], url


def test_owner_sees_links_history_and_hits(owner, history):
    client = web_client(owner)
    for url in PAGES:
        assert client.get(url).status_code == 200, url
    assert b"SECRET-REASON" in client.get("/copy/history/").content
    assert b"HIT-DETAIL" in client.get("/copy/rules/").content


def test_outsider_sees_none_of_it_and_cannot_act(outsider, link, history, slave):
    client = web_client(outsider)
    assert b"SECRET-REASON" not in client.get("/copy/history/").content
    assert b"HIT-DETAIL" not in client.get("/copy/rules/").content
    assert client.post(f"/copy/links/{link.pk}/", {"action": "delete"}).status_code == 404
    assert client.post(f"/copy/rules/{history.pk}/delete/").status_code == 404
    assert client.post(f"/copy/accounts/{slave.pk}/mode/", {"mode": "paused"}).status_code == 404
    assert CopyLink.objects.filter(pk=link.pk).exists() and Rule.objects.filter(pk=history.pk).exists()


def test_create_link_from_the_page(owner, master, slave):
    client = web_client(owner)
    response = client.post(
        "/copy/",
        {
            "master": str(master.pk),
            "slave": str(slave.pk),
            "sizing_mode": "fixed",
            "multiplier": "1",
            "fixed_volume": "0.05",
            "risk_percent": "1",
            "no_sl": "skip",
            "default_sl_points": "0",
            "symbols_include": "BTCUSD.pro, ETHUSD.pro",
            "copy_sltp": "on",
            "max_delay_seconds": "10",
            "max_slippage_points": "20",
            "priority": "1",
        },
    )
    assert response.status_code == 302
    link = CopyLink.objects.get()
    assert link.symbols_include == ["BTCUSD.pro", "ETHUSD.pro"] and link.fixed_volume == D("0.05")


def test_terminal_page_sends_an_order_and_lists_its_status(owner, slave):
    client = web_client(owner)
    response = client.post(
        "/copy/terminal/",
        {"account": str(slave.pk), "kind": "open_market", "symbol": "BTCUSD", "side": "buy", "volume": "0.1"},
    )
    assert response.status_code == 302
    command = Command.objects.get()
    assert command.origin == "web_terminal"
    assert b"pending" in client.get("/copy/terminal/commands/").content
    bad = client.post("/copy/terminal/", {"account": str(slave.pk), "kind": "close"})
    assert bad.status_code == 200 and Command.objects.count() == 1


def test_template_placed_from_the_page_on_two_accounts(owner, slave, netting_slave):
    template = OrderTemplate.objects.create(owner=owner, name="b", symbol="BTCUSD", side="buy", volume=D("0.1"))
    client = web_client(owner)
    client.post(f"/copy/templates/{template.pk}/place/", {"accounts": [str(slave.pk), str(netting_slave.pk)]})
    assert Command.objects.filter(origin="template").count() == 2


def test_admin_pages_render_for_a_superuser(super_admin, history):
    client = web_client(super_admin)
    for model in ("copylink", "copiedposition", "copyevent", "rule", "rulehit", "accountcopystate", "ordertemplate"):
        assert client.get(f"/admin/copytrading/{model}/").status_code == 200, model
    assert (
        client.get(
            f"/admin/copytrading/copylink/{history.account_id and CopyLink.objects.get().pk}/change/"
        ).status_code
        == 200
    )


def test_seed_copy_demo_links_the_master_to_two_slaves_idempotently(db):
    from django.core.management import call_command

    from accounts.models import User
    from tests.copytrading.conftest import make_account

    bob = User.objects.create_user(email="bob@demo.local")  # as seed_demo makes them: confirmed
    alice = User.objects.create_user(email="alice@demo.local")
    for owner, login, server, hedging in [
        (bob, 5200001, "MetaSim-Live", True),
        (bob, 5200002, "MetaSim-Demo", True),
        (alice, 5100003, "OtherFX-Server", False),
    ]:
        account = make_account(owner, server, hedging=hedging)
        type(account).objects.filter(pk=account.pk).update(login=login)
    call_command("seed_copy_demo")
    call_command("seed_copy_demo")
    assert CopyLink.objects.count() == 2 and Rule.objects.count() == 2 and OrderTemplate.objects.count() == 1
    assert set(CopyLink.objects.values_list("slave__login", flat=True)) == {5200002, 5100003}


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example", "///evil.example", "https:evil.example", "\\\\evil.example"],
)
def test_the_mode_form_does_not_redirect_to_another_site(owner, slave, target):
    """Guards the open redirect of the copy-mode form's ``next``: another host goes to the links page."""
    response = web_client(owner).post(f"/copy/accounts/{slave.pk}/mode/", {"mode": "paused", "next": target})
    assert response.status_code == 302 and response["Location"] == "/copy/"


def test_the_mode_form_returns_to_a_page_of_this_site(owner, slave):
    response = web_client(owner).post(f"/copy/accounts/{slave.pk}/mode/", {"mode": "paused", "next": "/copy/history/"})
    assert response.status_code == 302 and response["Location"] == "/copy/history/"
