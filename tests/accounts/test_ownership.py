"""Connecting an MT5 account shows it is the trader's: MT5 accepts the credentials, and for an investor (read-only)
password the holder's name and currency the trader typed match what MT5 reports for the login."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest
from django.urls import reverse

from accounts import ports
from accounts.choices import OwnershipProof, PasswordKind
from accounts.models import TradingAccount
from accounts.services import OwnershipNotShown, trading_account_create
from mt5bridge.gateway.terminal_rows import account_of
from tests.personas import SIM_PASSWORD, SIM_SERVER

pytestmark = pytest.mark.django_db

HOLDER = "Test Trader"  # the name the sim_login fixture opens the simulated account under


def connect(client, sim_login, **extra):
    body = {"login": sim_login, "password": SIM_PASSWORD, "server": SIM_SERVER, **extra}
    return client.post("/api/accounts/", body, format="json")


def test_a_password_mt5_lets_trade_proves_ownership(owner_client, sim_login):
    response = connect(owner_client, sim_login)
    assert response.status_code == 201, response.content
    assert response.json()["access"] == "master"
    assert response.json()["ownership_proof"] == OwnershipProof.TRADING_LOGIN


def test_a_password_mt5_refuses_stores_nothing(owner_client, sim_login):
    response = owner_client.post(
        "/api/accounts/", {"login": sim_login, "password": "wrong-one", "server": SIM_SERVER}, format="json"
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "credentials_refused"
    assert not TradingAccount.objects.exists()


def test_an_investor_password_needs_the_holder_and_currency(owner_client, sim_login):
    response = connect(owner_client, sim_login, access="investor")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "ownership_details_required"
    assert error["details"] == {"fields": ["holder_name", "currency"]}
    assert not TradingAccount.objects.exists()


def test_an_investor_password_with_matching_details_connects(owner_client, sim_login):
    response = connect(owner_client, sim_login, access="investor", holder_name="  test   TRADER ", currency="usd")
    assert response.status_code == 201, response.content
    account = TradingAccount.objects.get(login=sim_login)
    assert account.password_kind == PasswordKind.INVESTOR
    assert account.ownership_proof == OwnershipProof.INVESTOR_DETAILS


def test_an_investor_password_with_another_name_is_refused_without_telling_the_real_one(owner_client, sim_login):
    response = connect(owner_client, sim_login, access="investor", holder_name="Someone Else", currency="USD")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "ownership_mismatch" and error["details"] == {"fields": ["holder_name"]}
    assert HOLDER not in error["message"] and "holder's name" in error["message"]
    assert not TradingAccount.objects.exists()


def test_an_investor_password_with_another_currency_is_refused(owner_client, sim_login):
    response = connect(owner_client, sim_login, access="investor", holder_name=HOLDER, currency="EUR")
    assert response.status_code == 400 and response.json()["error"]["details"] == {"fields": ["currency"]}


def test_a_login_mt5_says_cannot_trade_is_checked_as_investor_whatever_was_picked(owner, sim_login, monkeypatch):
    real = ports.mt5()

    class ReadOnlySessions:
        """MT5 as a terminal reports an investor login: the real login, with trade_allowed False."""

        def login(self, **kwargs):
            return replace(real.login(**kwargs), trade_allowed=False)

        def sync_request(self, account, *, trigger):
            real.sync_request(account, trigger=trigger)

    monkeypatch.setattr(ports, "_mt5", ReadOnlySessions())
    with pytest.raises(OwnershipNotShown) as refused:
        trading_account_create(owner=owner, login=sim_login, password=SIM_PASSWORD, server=SIM_SERVER, sync_now=False)
    assert refused.value.code == "ownership_details_required"
    account = trading_account_create(
        owner=owner,
        login=sim_login,
        password=SIM_PASSWORD,
        server=SIM_SERVER,
        sync_now=False,
        holder_name=HOLDER,
        currency="USD",
    )
    assert (account.password_kind, account.ownership_proof) == (PasswordKind.INVESTOR, OwnershipProof.INVESTOR_DETAILS)


def test_the_terminal_gateway_reads_trade_allowed_from_account_info():
    row = SimpleNamespace(
        login=5, server="S", name="N", company="C", currency="USD", leverage=100, balance=1.0, credit=0.0,
        equity=1.0, margin=0.0, margin_free=1.0, margin_level=0.0, profit=0.0, margin_so_call=100, margin_so_so=50,
    )  # fmt: skip
    assert account_of(row).trade_allowed is None  # an older build without the field: unknown
    assert account_of(SimpleNamespace(**vars(row), trade_allowed=False)).trade_allowed is False
    assert account_of(SimpleNamespace(**vars(row), trade_allowed=True)).trade_allowed is True


def test_the_web_form_puts_the_mismatch_on_the_field(client, owner, sim_login):
    client.force_login(owner)
    response = client.post(
        reverse("web-account-add"),
        {
            "login": sim_login,
            "password": SIM_PASSWORD,
            "server": SIM_SERVER,
            "category": "demo",
            "password_kind": "investor",
            "holder_name": "Someone Else",
            "currency": "USD",
        },
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors["holder_name"] == ["Does not match the MT5 account."]
    assert "currency" not in form.errors
    assert "cannot be connected with an investor password" in response.content.decode()
    assert not TradingAccount.objects.exists()


def test_the_schema_documents_the_ownership_fields(anon_client):
    schema = anon_client.get("/api/schema/", {"format": "json"}).json()
    create = schema["components"]["schemas"]["TradingAccountCreateRequest"]["properties"]
    assert {"access", "holder_name", "currency"} <= set(create)
