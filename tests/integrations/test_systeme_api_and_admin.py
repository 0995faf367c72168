"""Systeme.io stats and sync endpoints, and a smoke test per integrations admin page."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts import vault
from integrations.models import (
    AutomationRule,
    ContactSync,
    InboundWebhookEvent,
    PreflightResult,
    RuleFiring,
    SystemeSettings,
    WebhookDelivery,
    WebhookEndpoint,
)
from integrations.services.contacts import systeme_connection_check, systeme_settings_update, systeme_sync
from integrations.services.webhooks import webhook_endpoint_create
from mt5bridge.sync import account_sync
from tests.personas import api_client_for

pytestmark = pytest.mark.django_db


def test_stats_show_connection_and_last_sync(fake_systeme, owned_account, super_admin):
    account_sync(account_id=owned_account.pk, trigger="manual")
    systeme_sync()
    data = api_client_for(super_admin).get("/api/systeme/stats").json()
    assert data["configured"] is True and data["connection"]["ok"] is True
    assert data["last_sync"]["ok"] is True and data["last_sync"]["summary"]["synced"] == 1
    assert data["contacts"]["linked"] == 1 and data["rules"]["enabled"] == 3


def test_sync_endpoint_queues_a_sync_that_runs(
    fake_systeme, owned_account, super_admin, django_capture_on_commit_callbacks
):
    account_sync(account_id=owned_account.pk, trigger="manual")
    response = api_client_for(super_admin).post("/api/systeme/sync", {}, format="json")
    assert response.status_code == 202
    assert fake_systeme.contact_by_email(owned_account.owner.email) is not None


def test_sync_endpoint_for_chosen_users_only(fake_systeme, owned_account, super_admin):
    account_sync(account_id=owned_account.pk, trigger="manual")
    api_client_for(super_admin).post("/api/systeme/sync", {"user_ids": [owned_account.owner_id + 999]}, format="json")
    assert fake_systeme.contacts == {}


def test_sync_without_a_key_is_a_409(super_admin, settings):
    settings.SYSTEME_API_KEY = ""
    response = api_client_for(super_admin).post("/api/systeme/sync", {}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "systeme_not_configured"


def test_sync_rejects_bad_user_ids(super_admin):
    response = api_client_for(super_admin).post("/api/systeme/sync", {"user_ids": ["x"]}, format="json")
    assert response.status_code == 400


@pytest.mark.parametrize(("method", "path"), [("get", "/api/systeme/stats"), ("post", "/api/systeme/sync")])
def test_traders_are_refused_and_anonymous_must_log_in(method, path, outsider_client, anon_client):
    assert getattr(outsider_client, method)(path).status_code == 403
    assert getattr(anon_client, method)(path).status_code == 401


def test_systeme_is_system_configuration_read_only_staff_neither_see_stats_nor_sync(read_only, super_admin):
    client = api_client_for(read_only)
    assert client.get("/api/systeme/stats").status_code == 403
    assert client.post("/api/systeme/sync", {}, format="json").status_code == 403
    assert api_client_for(super_admin).get("/api/systeme/stats").status_code == 200


def test_api_key_entered_in_the_admin_is_stored_encrypted_and_used(fake_systeme, settings):
    settings.SYSTEME_API_KEY = ""
    systeme_settings_update(api_key="test-systeme-key")
    row = SystemeSettings.load()
    assert b"test-systeme-key" not in bytes(row.api_key_encrypted)
    assert vault.decrypt(row.api_key_encrypted) == "test-systeme-key"
    assert systeme_connection_check().connection_ok is True


def test_rotate_secrets_covers_the_integration_secrets():
    from accounts.management.commands.rotate_secrets import secret_fields

    assert (WebhookEndpoint, "secret_encrypted") in secret_fields()
    assert (SystemeSettings, "api_key_encrypted") in secret_fields()


# --- Admin ---


@pytest.fixture
def admin_client(client, super_admin):
    super_admin.is_superuser = True
    super_admin.save()
    client.force_login(super_admin)
    return client


@pytest.mark.parametrize(
    "model",
    [
        SystemeSettings,
        ContactSync,
        AutomationRule,
        RuleFiring,
        InboundWebhookEvent,
        WebhookEndpoint,
        WebhookDelivery,
        PreflightResult,
    ],
)
def test_admin_changelist_renders(admin_client, model):
    meta = model._meta
    response = admin_client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
    assert response.status_code == 200


def test_admin_rule_edit_page_renders(admin_client):
    rule = AutomationRule.objects.get(slug="profitable-trades")
    assert admin_client.get(reverse("admin:integrations_automationrule_change", args=[rule.pk])).status_code == 200


def test_admin_run_preflight_action_and_downloads(admin_client, owned_account):
    response = admin_client.post(
        reverse("admin:accounts_tradingaccount_changelist"),
        {"action": "run_preflight", "_selected_action": [str(owned_account.pk)]},
        follow=True,
    )
    assert response.status_code == 200
    result = PreflightResult.objects.get(account=owned_account)
    assert "symbols, chart BTCUSD" in response.content.decode()
    for kind, needle in (("template", b"<chart>"), ("ini", b"[StartUp]"), ("json", b'"broker_info"')):
        download = admin_client.get(reverse("admin:integrations_preflight_file", args=[result.pk, kind]))
        assert download.status_code == 200 and needle in download.content


def test_admin_shows_disabled_endpoints(admin_client, receiver):
    endpoint, _ = webhook_endpoint_create(url=receiver.url, events=["*"])
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        is_active=False, disabled_at="2026-01-01T00:00Z", disabled_reason="15 failed deliveries in a row"
    )
    response = admin_client.get(reverse("admin:integrations_webhookendpoint_changelist"))
    assert "Disabled after failures" in response.content.decode()


def test_admin_adds_an_endpoint_and_shows_the_generated_secret(admin_client, receiver):
    response = admin_client.post(
        reverse("admin:integrations_webhookendpoint_add"),
        {"url": receiver.url, "description": "", "events": ["rule.hit"], "is_active": "on", "secret": ""},
        follow=True,
    )
    assert response.status_code == 200
    assert "Signing secret (shown once)" in response.content.decode()
    assert WebhookEndpoint.objects.get().events == ["rule.hit"]


def test_admin_connection_test_action_reports_a_wrong_key(admin_client, fake_systeme, settings):
    settings.SYSTEME_API_KEY = "wrong"
    row = SystemeSettings.load()
    response = admin_client.post(
        reverse("admin:integrations_systemesettings_changelist"),
        {"action": "test_connection", "_selected_action": [row.pk]},
        follow=True,
    )
    assert "refused the API key" in response.content.decode()


def test_status_page_shows_connection_and_last_sync_to_staff(client, super_admin, fake_systeme, owned_account):
    account_sync(account_id=owned_account.pk, trigger="manual")
    systeme_sync()
    client.force_login(super_admin)
    page = client.get("/integrations/").content.decode()
    assert "Connection" in page and "OK" in page and "1 synced" in page


def test_status_page_is_refused_to_traders(client, outsider):
    client.force_login(outsider)
    assert client.get("/integrations/").status_code == 403
