"""Account 360 for support: one search, the whole account, admin links; only through the lookup capability."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from accounts.choices import Role
from accounts.models import Deal
from copytrading.models import CopyEvent, CopyLink
from mt5bridge.ea.models import EAConnection
from tests.personas import UserFactory

pytestmark = pytest.mark.django_db
URL = "/admin/bonuses/bonus/lookup/"


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def world(owner, owned_account):
    other = UserFactory(roles=[Role.TRADER])
    from accounts.models import TradingAccount

    master = TradingAccount.objects.create(owner=other, login=990001, server="MetaSim-Demo", name="Signal")
    link = CopyLink.objects.create(master=master, slave=owned_account, created_by=owner)
    CopyEvent.objects.create(
        link=link, master_account=master, slave_account=owned_account, intent="open", status="failed",
        reason_code="no_money", reason="Not enough money on the slave", symbol="EURUSD",
    )  # fmt: skip
    EAConnection.objects.create(account=owned_account, last_seen_at=timezone.now())
    Deal.objects.create(
        account=owned_account, ticket=123456789, time=datetime(2026, 1, 5, tzinfo=UTC), deal_type=2,
        profit=Decimal("500.00"), comment="Deposit via card",
    )  # fmt: skip
    return {"link": link, "master": master}


def test_support_agent_finds_the_account_by_email_and_sees_all_of_it(support_agent, owner, owned_account, world):
    page = _client(support_agent).get(URL, {"q": owner.email}).content.decode()
    assert f"Account {owned_account.login}" in page
    assert owner.email in page and "Plan" in page
    assert 'data-ea-status="online"' in page
    assert f"/admin/copytrading/copylink/{world['link'].pk}/change/" in page  # the copy link, with its admin page
    assert "Not enough money on the slave" in page  # the copy failure
    assert "Deposit via card" in page  # a balance operation
    assert f"/admin/accounts/tradingaccount/{owned_account.pk}/change/" in page  # read-only in the admin for support
    assert 'data-action="assign"' in page and 'data-action="cancel"' not in page  # only what the role may do


def test_search_by_login_and_by_name(support_agent, owner, owned_account, world):
    client = _client(support_agent)
    assert f"Account {owned_account.login}" in client.get(URL, {"q": str(owned_account.login)}).content.decode()
    by_name = client.get(URL, {"q": owner.display_name.split()[0]}).content.decode()
    assert str(owned_account.login) in by_name
    assert "No account matches" in client.get(URL, {"q": "nobody-at-all"}).content.decode()


def test_the_master_side_shows_the_link_the_other_way(support_agent, world):
    page = _client(support_agent).get(URL, {"q": "990001"}).content.decode()
    assert "master of" in page


def test_traders_and_roles_without_the_lookup_capability_get_no_page(owner, read_only, campaign_manager, world):
    for user in (owner, read_only, campaign_manager):
        response = _client(user).get(URL, {"q": "990001"})
        assert response.status_code in (302, 403)
        assert "Not enough money" not in response.content.decode()


def test_super_admin_sees_the_action_controls(super_admin, owned_account, world):
    page = _client(super_admin).get(URL, {"q": str(owned_account.login)}).content.decode()
    assert 'data-action="assign"' in page
    deposit = _client(super_admin).get(URL, {"q": str(owned_account.login)})
    assert deposit.status_code == 200
