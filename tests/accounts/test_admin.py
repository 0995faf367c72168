"""The admin back office: every page renders for staff, roles see what they may, no secrets shown."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import AccountSnapshot, Deal, Order, Position, SyncRun, TradingAccount, User
from mt5bridge.sync import account_sync
from tests.personas import SIM_PASSWORD, SIM_SERVER

pytestmark = pytest.mark.django_db

MODELS = [User, TradingAccount, AccountSnapshot, Position, Order, Deal, SyncRun]


@pytest.fixture
def synced_account(owned_account):
    account_sync(account_id=owned_account.pk)
    return owned_account


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_changelist_renders_for_a_super_admin(client, super_admin, synced_account, model):
    client.force_login(super_admin)
    opts = model._meta
    response = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    assert response.status_code == 200


def test_account_detail_never_shows_the_password(client, super_admin, synced_account):
    client.force_login(super_admin)
    response = client.get(reverse("admin:accounts_tradingaccount_change", args=[synced_account.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert SIM_PASSWORD not in html and "password_encrypted" not in html


def test_search_by_login_finds_the_account_and_junk_search_is_harmless(client, super_admin, synced_account):
    client.force_login(super_admin)
    changelist = reverse("admin:accounts_tradingaccount_changelist")
    assert str(synced_account.login) in client.get(changelist, {"q": str(synced_account.login)}).content.decode()
    assert client.get(changelist, {"q": "not-a-number"}).status_code == 200


def test_adding_an_account_in_the_admin_checks_the_password(client, super_admin, owner, sim_login):
    client.force_login(super_admin)
    add = reverse("admin:accounts_tradingaccount_add")
    form = {
        "owner": owner.pk,
        "login": sim_login,
        "server": SIM_SERVER,
        "password": "wrong",
        "gateway_kind": "simulated",
        "name": "Desk",
        "category": "real",
    }
    response = client.post(add, form)
    assert response.status_code == 200 and "refused" in response.content.decode()
    assert not TradingAccount.objects.exists()
    response = client.post(add, {**form, "password": SIM_PASSWORD})
    assert response.status_code == 302
    assert TradingAccount.objects.get().owner == owner


def test_sync_now_and_resume_actions_report_what_they_did(
    client, super_admin, owned_account, django_capture_on_commit_callbacks
):
    client.force_login(super_admin)
    changelist = reverse("admin:accounts_tradingaccount_changelist")
    TradingAccount.objects.filter(pk=owned_account.pk).update(sync_status="paused", consecutive_errors=5)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(changelist, {"action": "resume", "_selected_action": [owned_account.pk]}, follow=True)
    assert "Resumed 1 account" in response.content.decode()
    owned_account.refresh_from_db()
    assert owned_account.sync_status == "ok"
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(changelist, {"action": "sync_now", "_selected_action": [owned_account.pk]}, follow=True)
    assert "Queued a sync for 1 account" in response.content.decode()
    assert SyncRun.objects.filter(account=owned_account).count() == 2


def test_read_only_staff_do_not_see_traders_accounts_and_cannot_change_them(client, read_only, synced_account):
    """Read-Only is the bonus back office's viewer (campaigns, monitor, reports): no account lookup."""
    client.force_login(read_only)
    assert client.get(reverse("admin:accounts_tradingaccount_changelist")).status_code == 403
    change = reverse("admin:accounts_tradingaccount_change", args=[synced_account.pk])
    response = client.post(change, {"name": "hijacked", "category": "real", "is_active": "on"})
    assert response.status_code == 403
    synced_account.refresh_from_db()
    assert synced_account.name == "Main"


def test_a_trader_cannot_enter_the_admin(client, owner):
    client.force_login(owner)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302 and "login" in response["Location"]
