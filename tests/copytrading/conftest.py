"""Fixtures of the copytrading tests: a master and slaves on three simulated brokers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.models import TradingAccount
from copytrading import mapping, selectors
from tests.personas import next_login


@pytest.fixture(autouse=True)
def _fresh_copy_caches():
    mapping.clear_local_cache()
    selectors.clear_local_cache()
    selectors.clear_figures_cache()
    yield
    mapping.clear_local_cache()
    selectors.clear_local_cache()


def make_account(owner, server: str, *, hedging: bool = True, balance: str = "10000", name: str = "") -> TradingAccount:
    from mt5bridge.simulated import create_account

    login = next_login()
    create_account(login=login, password="Sim-pass-123", server=server, balance=Decimal(balance), hedging=hedging)
    return TradingAccount.objects.create(
        owner=owner,
        login=login,
        server=server,
        name=name or f"{server} {login}",
        is_hedging=hedging,
        password_encrypted=b"-",
        balance=Decimal(balance),
        equity=Decimal(balance),
        margin_free=Decimal(balance),
    )


@pytest.fixture
def master(owner):
    return make_account(owner, "MetaSim-Live", balance="100000", name="Master")


@pytest.fixture
def slave(owner):
    return make_account(owner, "MetaSim-Demo", balance="5000", name="Slave")


@pytest.fixture
def netting_slave(owner):
    return make_account(owner, "OtherFX-Server", hedging=False, balance="20000", name="Netting slave")
