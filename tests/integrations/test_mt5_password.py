"""No decrypted MT5 password in any response, but the owner's start-up .ini after re-entering their login password.

Before: GET .../preflight/startup.ini?include_password=1 gave the decrypted MT5 password to anyone holding the
change permission on the account: staff roles and users it was shared with included. The sweep at the end reads
every page and endpoint that shows an account, as the owner, a user it is shared with and a super admin.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.urls import reverse
from guardian.shortcuts import assign_perm

from accounts.choices import SecurityAction
from accounts.models import SecurityEvent
from accounts.services import trading_account_create
from integrations.models import PreflightResult, WebhookDelivery
from integrations.services.preflight import preflight_run
from integrations.services.webhooks import webhook_endpoint_create
from mt5bridge.simulated import create_account
from tests.personas import PASSWORD as LOGIN_PASSWORD
from tests.personas import api_client_for, next_login

pytestmark = pytest.mark.django_db
MT5_PASSWORD = "Mt5-Secret-Never-Shown-91"


@pytest.fixture
def account(owner):
    """An owner's account on the simulated server, with a successful pre-flight (so a .ini exists)."""
    login = next_login()
    create_account(login=login, password=MT5_PASSWORD, server="MetaSim-Live", balance=Decimal("5000"))
    account = trading_account_create(
        owner=owner, login=login, password=MT5_PASSWORD, server="MetaSim-Live", sync_now=False
    )
    preflight_run(account=account)
    return account


@pytest.fixture
def shared_user(outsider, account):
    """A user the account is shared with, every object permission included."""
    for perm in ("view", "change", "sync", "delete"):
        assign_perm(f"accounts.{perm}_tradingaccount", outsider, account)
    return outsider


def ini_url(account) -> str:
    return f"/api/accounts/{account.pk}/preflight/startup.ini"


def ask_for_password(user, account, login_password: str = LOGIN_PASSWORD, **extra):
    return api_client_for(user).post(ini_url(account), {"password": login_password}, format="json", **extra)


# --- the .ini: a placeholder by default, the password for the owner who re-enters their login password ----


def test_the_ini_carries_a_placeholder_password_line(owner, account):
    """Guards the default download: a Password= line the owner fills in, never the stored password."""
    response = api_client_for(owner).get(ini_url(account))
    assert response.status_code == 200
    text = response.content.decode()
    assert "Password=<your MT5 password>\r\n" in text and MT5_PASSWORD not in text
    assert text.index("Login=") < text.index("Password=") < text.index("Server=")


@pytest.mark.parametrize("value", ["1", "true", "yes"])
def test_include_password_on_a_get_is_refused_for_everyone(owner, shared_user, super_admin, account, value):
    """Guards the fault itself: ?include_password=1 gave the password to staff and to users it was shared with."""
    for user in (owner, shared_user, super_admin):
        response = api_client_for(user).get(f"{ini_url(account)}?include_password={value}")
        assert response.status_code == 400, user
        assert response.json()["error"]["code"] == "password_needs_confirmation"
        assert MT5_PASSWORD not in response.content.decode()


def test_the_owner_gets_the_password_after_re_entering_their_login_password(owner, account):
    """Guards the one way out: the owner, their own login password, an audit row with who, what, when, where."""
    response = ask_for_password(owner, account, REMOTE_ADDR="203.0.113.7", HTTP_USER_AGENT="MT5 setup script")
    assert response.status_code == 200
    assert f"Login={account.login}\r\nPassword={MT5_PASSWORD}\r\n".encode() in response.content
    assert response["Cache-Control"] == "no-store"
    assert response["Content-Disposition"] == f'attachment; filename="{account.login}-startup.ini"'
    event = SecurityEvent.objects.get()
    assert (event.action, event.actor, event.actor_label) == (SecurityAction.MT5_PASSWORD_REVEALED, owner, owner.email)
    assert (event.account, event.account_login) == (account, account.login)
    assert (event.ip_address, event.user_agent) == ("203.0.113.7", "MT5 setup script")
    assert event.created_at is not None


def test_a_wrong_login_password_is_refused_and_audited(owner, account):
    """Guards the re-authentication: a stolen session alone does not get the MT5 password."""
    response = ask_for_password(owner, account, login_password="not-my-password")
    assert response.status_code == 403
    assert response.json()["error"] == {"code": "wrong_password", "message": "Your login password is not correct."}
    assert MT5_PASSWORD not in response.content.decode()
    event = SecurityEvent.objects.get()
    assert (event.action, event.actor, event.detail) == (
        SecurityAction.MT5_PASSWORD_REFUSED,
        owner,
        "wrong login password",
    )


@pytest.mark.parametrize("who", ["shared_user", "super_admin", "support_agent", "campaign_manager", "read_only"])
def test_nobody_but_the_owner_gets_the_password_even_with_their_own_correct_login_password(who, account, request):
    """Guards owner-only: staff roles and a user the account is shared with (every permission) are refused."""
    user = request.getfixturevalue(who)
    response = ask_for_password(user, account)
    assert response.status_code in (403, 404)  # 404: a role that cannot see the account at all
    assert MT5_PASSWORD not in response.content.decode()
    if response.status_code == 403:
        assert response.json()["error"]["code"] in ("owner_only", "forbidden", "permission_denied")
    assert not SecurityEvent.objects.filter(action=SecurityAction.MT5_PASSWORD_REVEALED).exists()


def test_a_refused_non_owner_leaves_an_audit_row(shared_user, account):
    """Guards the audit of refusals: who tried, on which account."""
    assert ask_for_password(shared_user, account).status_code == 403
    event = SecurityEvent.objects.get()
    assert (event.action, event.actor, event.account, event.detail) == (
        SecurityAction.MT5_PASSWORD_REFUSED,
        shared_user,
        account,
        "not the account's owner",
    )


def test_an_outsider_and_anonymous_get_nothing(outsider, account, anon_client):
    """Guards visibility: an account one cannot see is a 404 (no audit row), anonymous a 401."""
    assert ask_for_password(outsider, account).status_code == 404
    assert anon_client.post(ini_url(account), {"password": LOGIN_PASSWORD}, format="json").status_code == 401
    assert not SecurityEvent.objects.exists()


def test_the_password_post_is_throttled_like_a_login(owner, account, monkeypatch):
    """Guards against guessing the login password through this endpoint: the "auth" rate applies."""
    from rest_framework.throttling import ScopedRateThrottle

    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {**ScopedRateThrottle.THROTTLE_RATES, "auth": "3/min"})
    codes = [ask_for_password(owner, account, login_password=f"guess-{n}").status_code for n in range(4)]
    assert codes == [403, 403, 403, 429]
    assert ask_for_password(owner, account).status_code == 429  # the right password too, until the minute is over


def test_the_template_has_no_post(owner, account):
    response = api_client_for(owner).post(
        f"/api/accounts/{account.pk}/preflight/template.tpl", {"password": LOGIN_PASSWORD}, format="json"
    )
    assert response.status_code == 405
    assert not SecurityEvent.objects.exists()


# --- the sweep: no response anywhere carries the decrypted password -------------------------------------


def _bodies(client, urls) -> dict[str, str]:
    bodies = {}
    for url in urls:
        response = client.get(url)
        assert response.status_code in (200, 302, 403, 404), (url, response.status_code)
        bodies[url] = response.content.decode(errors="replace")
    return bodies


def test_no_api_response_carries_the_mt5_password(owner, shared_user, super_admin, account):
    """Guards every API read of an account (serializers, pre-flight JSON, the files) for each persona."""
    urls = [
        "/api/accounts/",
        f"/api/accounts/{account.pk}/",
        f"/api/accounts/{account.pk}/preflight",
        f"/api/accounts/{account.pk}/preflight/template.tpl",
        ini_url(account),
        f"/api/accounts/{account.pk}/snapshots",
        f"/api/accounts/{account.pk}/positions",
        f"/api/accounts/{account.pk}/deals",
        "/api/dashboard/summary",
        "/api/auth/me",
    ]
    for user in (owner, shared_user, super_admin):
        for url, body in _bodies(api_client_for(user), urls).items():
            assert MT5_PASSWORD not in body, (user, url)


def test_no_web_page_carries_the_mt5_password(client, owner, shared_user, account):
    """Guards the trader web app: the account pages and forms never render the stored password."""
    urls = [
        reverse("dashboard"),
        reverse("web-account-list"),
        reverse("web-account-detail", args=[account.pk]),
        reverse("web-account-edit", args=[account.pk]),
        reverse("web-account-import", args=[account.pk]),
    ]
    for user in (owner, shared_user):
        client.force_login(user)
        for url, body in _bodies(client, urls).items():
            assert MT5_PASSWORD not in body, (user, url)


def test_no_admin_page_carries_the_mt5_password(client, super_admin, owner, account):
    """Guards the back office: the account, the pre-flight result and its downloads, the audit, the webhooks."""
    ask_for_password(owner, account)  # one audit row to show
    result = PreflightResult.objects.get(account=account)
    urls = [
        reverse("admin:accounts_tradingaccount_changelist"),
        reverse("admin:accounts_tradingaccount_change", args=[account.pk]),
        reverse("admin:integrations_preflightresult_changelist"),
        reverse("admin:integrations_preflightresult_change", args=[result.pk]),
        reverse("admin:integrations_preflight_file", args=[result.pk, "ini"]),
        reverse("admin:integrations_preflight_file", args=[result.pk, "json"]),
        reverse("admin:accounts_securityevent_changelist"),
        reverse("admin:accounts_securityevent_change", args=[SecurityEvent.objects.get().pk]),
    ]
    client.force_login(super_admin)
    bodies = _bodies(client, urls)
    for url, body in bodies.items():
        assert MT5_PASSWORD not in body, url
    assert "Password=<your MT5 password>" in bodies[urls[4]]  # the admin's .ini download


def test_no_webhook_carries_the_mt5_password(account, receiver, settings):
    """Guards the outbound side: the symbols webhook and the preflight.done event carry no password."""
    settings.PREFLIGHT_WEBHOOK_URL = receiver.url + "/mt5/symbols"
    webhook_endpoint_create(url=receiver.url, events=["preflight.done"])
    preflight_run(account=account)
    sent = [request["body"].decode() for request in receiver.requests]
    queued = [delivery.payload for delivery in WebhookDelivery.objects.all()]
    assert sent and queued
    assert MT5_PASSWORD not in json.dumps(sent) and MT5_PASSWORD not in json.dumps(queued)
