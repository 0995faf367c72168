"""Fixtures of the bonus tests: simulated MT5 accounts, campaigns, and gateway doubles at the edge."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from bonuses.choices import BonusType, CampaignStatus, Trigger
from bonuses.services.campaigns import campaign_create
from mt5bridge import gateway as gw
from mt5bridge.simulated import OperationRefused
from tests.personas import next_login

SIM_PASSWORD = "mt5-Secret-pass-42"


def make_account(*, balance="1000", leverage=500, country="DE", lead_source="", group=None, credit="0") -> int:
    from mt5bridge.simulated import create_account

    login = next_login() + 100000
    create_account(login=login, password=SIM_PASSWORD, balance=Decimal(balance), leverage=leverage,
                   country=country, lead_source=lead_source, group=group, credit=Decimal(credit))  # fmt: skip
    return login


def make_campaign(**overrides):
    values = {
        "name": "Welcome 100%", "bonus_type": BonusType.FIXED_LEVERAGE, "bonus_percent": Decimal("100"),
        "triggers": [Trigger.AUTO_DEPOSIT], "starts_at": timezone.now() - timezone.timedelta(days=1),
        "one_per_account": True, "max_concurrent": 3,
    }  # fmt: skip
    values.update(overrides)
    status = values.pop("status", CampaignStatus.ACTIVE)
    campaign = campaign_create(actor="test", **values)
    if status != CampaignStatus.DRAFT:
        campaign.status = status
        campaign.save(update_fields=["status"])
    return campaign


def credit_deals(login: int) -> list:
    from mt5bridge.simulated.models import SimDeal

    return list(SimDeal.objects.filter(account_id=login, type=int(gw.DealType.CREDIT)).order_by("ticket"))


def account(login: int):
    return gw.get_gateway("simulated").accounts_info([login])[login]


class TimesOutAfterPosting:
    """The simulated gateway, except that the next posting's answer is lost (it is done, then times out)."""

    def __init__(self, inner=None, *, times: int = 1):
        self.inner = inner or gw.get_gateway("simulated")
        self.kind = self.inner.kind
        self.times = times
        self.posted = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def balance_operation(self, *args, **kwargs):
        ticket = self.inner.balance_operation(*args, **kwargs)
        self.posted += 1
        if self.times > 0:
            self.times -= 1
            raise gw.GatewayUnavailable("MT5 manager: read timed out")
        return ticket


class Outage:
    """The simulated gateway behind a switch: while ``down`` every call fails as unreachable."""

    def __init__(self, inner=None):
        self.inner = inner or gw.get_gateway("simulated")
        self.kind = self.inner.kind
        self.down = False

    def __getattr__(self, name):
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            if self.down:
                raise gw.GatewayUnavailable("MT5 manager unreachable")
            return attr(*args, **kwargs)

        return call


@pytest.fixture
def sim_account(db) -> int:
    return make_account()


class RefusesCreditRemoval:
    """The simulated gateway, except that MT5 answers "no money" to every credit removal (margin held)."""

    def __init__(self):
        self.inner = gw.get_gateway("simulated")
        self.kind = self.inner.kind
        self.refused = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def balance_operation(self, login, amount, deal_type, comment, *, check_margin=True):
        if amount < 0 and deal_type == gw.DealType.CREDIT:
            self.refused += 1
            raise OperationRefused(gw.Retcode.NO_MONEY, "no money")
        return self.inner.balance_operation(login, amount, deal_type, comment, check_margin=check_margin)
