"""Marketing sync and consent: under the default legal basis only traders who opted in reach Systeme.io (contacts
and rule tags); under "contract" every trader does; the admin and the stats show which basis is in force."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.choices import ConsentSource
from accounts.data_rights import consent_set
from integrations.choices import RuleCondition
from integrations.models import AutomationRule, ContactSync
from integrations.selectors import legal_basis as stored_legal_basis
from integrations.services.contacts import systeme_settings_update, systeme_sync
from integrations.services.rules import rules_evaluate
from mt5bridge.sync import account_sync
from tests.personas import api_client_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _stored_basis(monkeypatch):
    # The stored setting decides here (conftest makes every trader a contact for the sync's own tests).
    monkeypatch.setattr("integrations.selectors.legal_basis", stored_legal_basis)


def set_basis(basis: str) -> None:
    systeme_settings_update(legal_basis=basis)


@pytest.fixture
def synced_account(owned_account):
    account_sync(account_id=owned_account.pk, trigger="manual")
    owned_account.refresh_from_db()
    return owned_account


def opt(user, granted: bool) -> None:
    consent_set(user=user, granted=granted, source=ConsentSource.WEB, actor=user)


def test_a_trader_who_did_not_opt_in_is_not_pushed(fake_systeme, synced_account):
    assert systeme_sync()["synced"] == 0
    assert fake_systeme.contacts == {} and not ContactSync.objects.exists()


def test_opting_in_starts_the_push_and_opting_out_stops_it(fake_systeme, synced_account):
    owner = synced_account.owner
    opt(owner, True)
    assert systeme_sync()["synced"] == 1
    assert fake_systeme.contact_by_email(owner.email) is not None
    seen = len(fake_systeme.requests)
    opt(owner, False)
    assert systeme_sync()["synced"] == 0
    # Nothing about the contact was sent again (only the field list the sync reads first).
    assert [r["path"] for r in fake_systeme.requests[seen:] if r["path"].startswith("/api/contacts")] == []


def test_rule_tags_follow_consent_too(fake_systeme, synced_account):
    owner = synced_account.owner
    opt(owner, True)
    systeme_sync()
    AutomationRule.objects.update(enabled=False)
    AutomationRule.objects.create(
        name="Low equity",
        slug="low-equity",
        condition=RuleCondition.EQUITY_BELOW,
        threshold=synced_account.equity + 1,
        tag="mt5-low-equity",
    )
    opt(owner, False)
    assert rules_evaluate()["fired"] == 0
    contact_id = int(ContactSync.objects.get(user=owner).contact_id)
    assert fake_systeme.contacts[contact_id]["tags"] == []
    opt(owner, True)
    assert rules_evaluate()["fired"] == 1


def test_under_contract_every_trader_is_pushed(fake_systeme, synced_account):
    set_basis("contract")
    assert systeme_sync()["synced"] == 1
    assert synced_account.owner.marketing_consent is False


def test_the_admin_sets_the_legal_basis_and_traders_and_stats_show_it(client, super_admin, owner):
    super_admin.is_superuser = True
    super_admin.save()
    client.force_login(super_admin)
    from integrations.models import SystemeSettings

    row = SystemeSettings.load()
    url = reverse("admin:integrations_systemesettings_change", args=[row.pk])
    page = client.get(url).content.decode()
    assert "Legal basis for marketing sync" in page and "Consent: only traders who opted in" in page
    assert api_client_for(super_admin).get("/api/systeme/stats").json()["legal_basis"] == "consent"
    response = client.post(
        url, {"enabled": "on", "sync_all_traders": "on", "legal_basis": "contract", "locale": "en", "api_key": ""}
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert SystemeSettings.load().legal_basis == "contract"
    assert api_client_for(super_admin).get("/api/systeme/stats").json()["legal_basis"] == "contract"
    assert api_client_for(owner).get("/api/me/consent").json()["legal_basis"] == "contract"
