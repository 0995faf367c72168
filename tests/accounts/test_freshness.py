"""Stale data is never shown as current: "stale since" in the web app, the API and the admin (accounts/freshness.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.freshness import account_data_age, data_age
from accounts.models import TradingAccount
from mt5bridge.ea import store
from mt5bridge.ea.models import EAConnection
from tests.personas import api_client_for, next_login

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
LIMIT = 1800


def account(owner, *, synced_ago: timedelta | None, name: str) -> TradingAccount:
    return TradingAccount.objects.create(
        owner=owner,
        login=next_login(),
        server="MetaSim-Demo",
        name=name,
        password_encrypted=b"x",
        sync_status="ok",
        last_sync_at=None if synced_ago is None else timezone.now() - synced_ago,
    )


@pytest.fixture
def stale(owner, settings):
    settings.ACCOUNT_STALE_SECONDS = LIMIT
    return account(owner, synced_ago=timedelta(hours=3), name="Old data")


@pytest.fixture
def fresh(owner, settings):
    settings.ACCOUNT_STALE_SECONDS = LIMIT
    return account(owner, synced_ago=timedelta(minutes=5), name="New data")


# --- the rule ------------------------------------------------------------------------------------------------


def test_data_older_than_the_threshold_is_stale_since_its_last_refresh():
    synced = NOW - timedelta(seconds=LIMIT + 1)
    age = data_age(last_sync_at=synced, last_beat_at=None, now=NOW, threshold=LIMIT)
    assert (age.stale, age.stale_since, age.source) == (True, synced, "sync")
    assert age.label.startswith("stale since ")


def test_data_within_the_threshold_is_current():
    age = data_age(last_sync_at=NOW - timedelta(seconds=LIMIT), last_beat_at=None, now=NOW, threshold=LIMIT)
    assert (age.stale, age.stale_since, age.label) == (False, None, "")


def test_a_recent_ea_beat_keeps_an_account_current_whose_sync_is_old():
    beat = NOW - timedelta(seconds=2)
    age = data_age(last_sync_at=NOW - timedelta(days=1), last_beat_at=beat, now=NOW, threshold=LIMIT)
    assert (age.stale, age.as_of, age.source) == (False, beat, "ea")


def test_an_account_never_synced_and_never_beaten_has_no_data_yet():
    age = data_age(last_sync_at=None, last_beat_at=None, now=NOW, threshold=LIMIT)
    assert (age.stale, age.stale_since, age.label) == (True, None, "no data yet")


def test_the_ea_beat_is_read_from_the_database_and_from_redis(stale):
    assert account_data_age(stale).stale
    EAConnection.objects.create(account=stale, last_seen_at=timezone.now() - timedelta(seconds=30))
    assert account_data_age(stale).source == "ea" and not account_data_age(stale).stale
    EAConnection.objects.filter(account=stale).update(last_seen_at=timezone.now() - timedelta(hours=2))
    assert account_data_age(stale).stale
    # The heartbeat in Redis is newer than the one persisted (written at most every EA_PERSIST_SECONDS).
    store.client().hset(store.meta_key(stale.pk), "seen", timezone.now().timestamp())
    assert not account_data_age(stale).stale


# --- the web app ---------------------------------------------------------------------------------------------


def test_account_list_says_stale_since_for_old_data_only(client, owner, stale, fresh):
    client.force_login(owner)
    page = client.get(reverse("web-account-list")).content.decode()
    assert f'data-stale="{stale.pk}"' in page
    assert f'data-stale="{fresh.pk}"' not in page
    assert page.count("stale since ") == 1


def test_account_page_says_stale_since_for_old_data(client, owner, stale, fresh):
    client.force_login(owner)
    page = client.get(reverse("web-account-detail", args=[stale.pk])).content.decode()
    assert 'id="data-stale"' in page and "stale since " in page
    page = client.get(reverse("web-account-detail", args=[fresh.pk])).content.decode()
    assert 'id="data-stale"' not in page and "stale since " not in page


def test_dashboard_says_stale_since_for_old_data_only(client, owner, stale, fresh):
    client.force_login(owner)
    page = client.get(reverse("dashboard")).content.decode()
    assert f'data-stale="{stale.pk}"' in page
    assert f'data-stale="{fresh.pk}"' not in page


# --- the API -------------------------------------------------------------------------------------------------


def test_api_accounts_carry_their_data_age(owner, stale, fresh):
    client = api_client_for(owner)
    rows = {row["id"]: row["data_age"] for row in client.get("/api/accounts").json()["results"]}
    assert rows[str(stale.pk)]["stale"] is True
    assert rows[str(stale.pk)]["stale_since"] == rows[str(stale.pk)]["as_of"] is not None
    assert rows[str(fresh.pk)]["stale"] is False and rows[str(fresh.pk)]["stale_since"] is None
    one = client.get(f"/api/accounts/{stale.pk}").json()["data_age"]
    assert one["stale"] is True and one["source"] == "sync" and one["age_seconds"] >= 3 * 3600 - 5


def test_dashboard_api_rows_say_stale_since(owner, stale, fresh):
    rows = {row["id"]: row for row in api_client_for(owner).get("/api/dashboard/summary").json()["accounts"]}
    assert rows[str(stale.pk)]["stale_since"] is not None and rows[str(stale.pk)]["stale_label"]
    assert rows[str(fresh.pk)]["stale_since"] is None and rows[str(fresh.pk)]["stale_label"] == ""


def test_the_openapi_schema_documents_data_age(anon_client):
    schema = anon_client.get("/api/schema/", {"format": "json"}).json()
    account = schema["components"]["schemas"]["TradingAccount"]["properties"]
    assert account["data_age"]["allOf"] == [{"$ref": "#/components/schemas/DataAge"}]
    assert {"as_of", "stale", "stale_since"} <= set(schema["components"]["schemas"]["DataAge"]["properties"])


# --- the admin -----------------------------------------------------------------------------------------------


def test_admin_account_list_says_stale_since_for_old_data_only(client, super_admin, stale, fresh):
    client.force_login(super_admin)
    page = client.get(reverse("admin:accounts_tradingaccount_changelist")).content.decode()
    assert page.count("stale since ") == 1
    assert "current" in page
