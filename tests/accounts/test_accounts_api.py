"""/api/accounts: add (credentials checked first), list, edit, delete, sync, resume — and who may."""

from __future__ import annotations

import pytest
from guardian.shortcuts import assign_perm

from accounts.choices import SyncStatus
from accounts.models import AccountSnapshot, Deal, SyncRun, TradingAccount
from tests.personas import SIM_PASSWORD, SIM_SERVER, api_client_for

pytestmark = pytest.mark.django_db


def url(account=None, action=None):
    if account is None:
        return "/api/accounts"
    return f"/api/accounts/{account.pk}" + (f"/{action}" if action else "")


def test_adding_an_account_checks_credentials_and_never_returns_the_password(owner_client, sim_login):
    response = owner_client.post(
        url(),
        {"login": sim_login, "password": SIM_PASSWORD, "server": SIM_SERVER, "category": "funded", "name": "Prop"},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["login"] == sim_login and body["category"] == "funded"
    assert "password" not in response.content.decode().lower()
    assert SIM_PASSWORD not in response.content.decode()
    assert TradingAccount.objects.get(pk=body["id"]).balance > 0  # figures from the server


def test_a_wrong_password_is_a_clear_4xx_and_nothing_is_stored(owner_client, sim_login):
    response = owner_client.post(url(), {"login": sim_login, "password": "wrong", "server": SIM_SERVER}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "credentials_refused"
    assert "refused" in response.json()["error"]["message"]
    assert not TradingAccount.objects.exists()


def test_connecting_the_same_account_twice_is_a_conflict(owner_client, owned_account):
    response = owner_client.post(
        url(), {"login": owned_account.login, "password": SIM_PASSWORD, "server": SIM_SERVER}, format="json"
    )
    assert response.status_code == 409
    assert TradingAccount.objects.count() == 1


@pytest.mark.parametrize(
    "payload",
    [
        {"login": "abc", "password": "x", "server": SIM_SERVER},
        {"login": -5, "password": "x", "server": SIM_SERVER},
        {"login": 2**70, "password": "x", "server": SIM_SERVER},
        {"password": "x", "server": SIM_SERVER},
        {"login": 1, "password": "x", "server": SIM_SERVER, "category": "vip"},
    ],
)
def test_bad_input_is_a_json_400(owner_client, payload):
    response = owner_client.post(url(), payload, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_malformed_json_is_a_json_400(owner_client):
    response = owner_client.generic("POST", url(), "{not json", content_type="application/json")
    assert response.status_code == 400
    assert "error" in response.json()


def test_without_credentials_the_api_answers_401_in_json(anon_client, owned_account):
    for response in (anon_client.get(url()), anon_client.get(url(owned_account))):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "not_authenticated"


def test_an_unknown_id_is_a_json_404(owner_client):
    response = owner_client.get("/api/accounts/00000000-0000-4000-8000-000000000000")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_the_owner_lists_edits_and_deletes_their_account(owner_client, owned_account):
    assert [a["id"] for a in owner_client.get(url()).json()["results"]] == [str(owned_account.pk)]
    response = owner_client.patch(url(owned_account), {"name": "Renamed", "category": "challenge"}, format="json")
    assert response.status_code == 200 and response.json()["name"] == "Renamed"
    assert owner_client.delete(url(owned_account)).status_code == 204
    assert not TradingAccount.objects.exists()


def test_editing_with_a_wrong_new_password_keeps_the_old_one(owner_client, owned_account):
    before = bytes(owned_account.password_encrypted)
    response = owner_client.patch(url(owned_account), {"password": "not-it"}, format="json")
    assert response.status_code == 400
    owned_account.refresh_from_db()
    assert bytes(owned_account.password_encrypted) == before


def test_an_outsider_can_neither_see_nor_touch_the_account(outsider_client, owned_account):
    assert outsider_client.get(url()).json()["results"] == []
    assert outsider_client.get(url(owned_account)).status_code == 404
    assert outsider_client.patch(url(owned_account), {"name": "x"}, format="json").status_code == 404
    assert outsider_client.post(url(owned_account, "sync")).status_code == 404
    assert outsider_client.post(url(owned_account, "resume")).status_code == 404
    assert outsider_client.delete(url(owned_account)).status_code == 404
    owned_account.refresh_from_db()
    assert owned_account.name == "Main"


def test_an_account_shared_read_only_can_be_seen_but_not_changed(outsider, owned_account):
    assign_perm("accounts.view_tradingaccount", outsider, owned_account)
    client = api_client_for(outsider)
    assert client.get(url(owned_account)).status_code == 200
    assert client.patch(url(owned_account), {"name": "x"}, format="json").status_code == 403
    assert client.delete(url(owned_account)).status_code == 403
    assert TradingAccount.objects.filter(pk=owned_account.pk, name="Main").exists()


def test_a_support_agent_sees_every_account_but_cannot_delete(support_agent, owned_account):
    client = api_client_for(support_agent)
    assert [a["id"] for a in client.get(url()).json()["results"]] == [str(owned_account.pk)]
    assert client.delete(url(owned_account)).status_code == 403


def test_sync_now_pulls_deals_positions_and_a_snapshot(owner_client, owned_account, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(url(owned_account, "sync"))
    assert response.status_code == 202
    owned_account.refresh_from_db()
    assert owned_account.sync_status == SyncStatus.OK
    assert Deal.objects.filter(account=owned_account).count() > 20
    assert AccountSnapshot.objects.filter(account=owned_account).count() == 1
    assert SyncRun.objects.get(account=owned_account).outcome == "ok"


def test_a_paused_account_must_be_resumed_before_syncing(
    owner_client, owned_account, django_capture_on_commit_callbacks
):
    TradingAccount.objects.filter(pk=owned_account.pk).update(sync_status=SyncStatus.PAUSED, consecutive_errors=5)
    assert owner_client.post(url(owned_account, "sync")).status_code == 409
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(url(owned_account, "resume"))
    assert response.status_code == 200
    owned_account.refresh_from_db()
    assert owned_account.consecutive_errors == 0
    assert owned_account.sync_status == SyncStatus.OK  # resumed and synced


def test_the_api_token_login_locks_out_after_repeated_failures(owner, anon_client):
    for _ in range(5):
        response = anon_client.post("/api/auth/login", {"email": owner.email, "password": "nope"}, format="json")
        assert response.status_code in (401, 429)
    from tests.personas import PASSWORD

    response = anon_client.post("/api/auth/login", {"email": owner.email, "password": PASSWORD}, format="json")
    assert response.status_code == 429
    assert response.json()["error"]["code"] in ("locked_out", "throttled")


def test_a_bearer_access_token_authenticates_requests(owner, anon_client, owned_account):
    from tests.personas import PASSWORD

    access = anon_client.post("/api/auth/login", {"email": owner.email, "password": PASSWORD}, format="json").json()[
        "access"
    ]
    anon_client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    assert anon_client.get(url()).json()["count"] == 1
    assert anon_client.get("/api/auth/me").json()["email"] == owner.email
