"""accounts reaches MT5 and the plans through ports the apps above it fill (accounts/ports.py)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from accounts import ports
from accounts.models import TradingAccount
from accounts.services import trading_account_create
from config.errors import NotAllowed
from tests.personas import SIM_PASSWORD, SIM_SERVER

pytestmark = pytest.mark.django_db


def test_installed_apps_fill_both_ports():
    assert ports.mt5() is not None
    assert ports._account_limit is not None


def test_an_account_the_plan_port_refuses_is_not_stored(owner, sim_login, monkeypatch):
    def no_more(user, *, active):
        raise NotAllowed(f"{user.username} has {active} accounts, the most allowed", code="plan_limit")

    monkeypatch.setattr(ports, "_account_limit", no_more)
    with pytest.raises(NotAllowed) as refused:
        trading_account_create(owner=owner, login=sim_login, password=SIM_PASSWORD, server=SIM_SERVER)
    assert refused.value.code == "plan_limit"
    assert not TradingAccount.objects.filter(owner=owner).exists()


def test_without_an_mt5_port_connecting_names_the_missing_app(owner, sim_login, monkeypatch):
    monkeypatch.setattr(ports, "_mt5", None)
    with pytest.raises(ImproperlyConfigured, match="mt5bridge"):
        trading_account_create(owner=owner, login=sim_login, password=SIM_PASSWORD, server=SIM_SERVER)
    assert not TradingAccount.objects.filter(owner=owner).exists()


def test_the_mt5_port_logs_in_and_returns_the_figures_by_field_name(sim_login):
    login = ports.mt5().login(login=sim_login, password=SIM_PASSWORD, server=SIM_SERVER, gateway_kind="simulated")
    assert set(login.figures) == {
        "balance",
        "credit",
        "equity",
        "margin",
        "margin_free",
        "margin_level",
        "floating_profit",
    }
    assert login.figures["balance"] > 0
