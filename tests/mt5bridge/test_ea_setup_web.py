"""The trader's EA setup page: the token shown once, rotation, connection status, downloads, other people's accounts."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from mt5bridge.ea.models import EAToken
from mt5bridge.ea.services import ea_authenticate, token_hash

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _issued_token(html: str) -> str:
    match = re.search(r'<code id="ea-token" data-token>([0-9a-f-]{36})</code>', html)
    assert match, "no token on the page"
    return match.group(1)


def test_the_account_page_links_to_the_ea_setup_page(owner, owned_account):
    page = _client(owner).get(f"/accounts/{owned_account.pk}/").content.decode()
    assert f'href="/accounts/{owned_account.pk}/ea/"' in page


def test_creating_a_token_shows_it_once_with_this_accounts_install_values(owner, owned_account):
    client = _client(owner)
    url = f"/accounts/{owned_account.pk}/ea/"
    response = client.post(url, {"action": "issue"})
    assert response.status_code == 200
    html = response.content.decode()
    token = _issued_token(html)
    assert EAToken.objects.get(account=owned_account).token_hash == token_hash(token)
    assert 'data-copy="#ea-token"' in html
    assert "http://testserver" in html and str(owned_account.login) in html  # WebRequest URL and login filled in
    assert "no-cache" in response["Cache-Control"] or "no-store" in response["Cache-Control"]
    again = client.get(url).content.decode()
    assert token not in again and token[:8] in again  # later: only the hint


def test_rotating_makes_the_old_token_stop_working(owner, owned_account):
    client = _client(owner)
    url = f"/accounts/{owned_account.pk}/ea/"
    old = _issued_token(client.post(url, {"action": "issue"}).content.decode())
    assert ea_authenticate(old) is not None
    new = _issued_token(client.post(url, {"action": "issue"}).content.decode())
    assert new != old
    assert ea_authenticate(old) is None
    assert ea_authenticate(new).account_id == str(owned_account.pk)


def test_revoking_refuses_the_ea(owner, owned_account):
    client = _client(owner)
    url = f"/accounts/{owned_account.pk}/ea/"
    token = _issued_token(client.post(url, {"action": "issue"}).content.decode())
    assert client.post(url, {"action": "revoke"}).status_code == 302
    assert ea_authenticate(token) is None
    assert "revoked" in client.get(url).content.decode()


def test_connection_panel_says_offline_before_any_beat_and_online_after_one(owner, owned_account):
    from django.utils import timezone

    from mt5bridge.ea.models import EAConnection

    client = _client(owner)
    status_url = f"/accounts/{owned_account.pk}/ea/status/"
    assert 'data-ea-status="offline"' in client.get(status_url).content.decode()
    EAConnection.objects.create(account=owned_account, last_seen_at=timezone.now(), ea_version="py-1.0")
    html = client.get(status_url).content.decode()
    assert 'data-ea-status="online"' in html and "py-1.0" in html and "never" not in html


def test_both_eas_can_be_downloaded(owner, owned_account):
    client = _client(owner)
    mql5 = client.get(f"/accounts/{owned_account.pk}/ea/download/mql5/")
    assert mql5.status_code == 200 and "attachment" in mql5["Content-Disposition"]
    assert b"InpServerUrl" in b"".join(mql5.streaming_content)
    python = client.get(f"/accounts/{owned_account.pk}/ea/download/python/")
    assert python.status_code == 200 and b"class ReferenceEA" in b"".join(python.streaming_content)
    assert client.get(f"/accounts/{owned_account.pk}/ea/download/settings/").status_code == 404


def test_other_peoples_accounts_are_404_and_get_no_token(outsider, owned_account):
    client = _client(outsider)
    base = f"/accounts/{owned_account.pk}/ea/"
    for response in (
        client.get(base),
        client.post(base, {"action": "issue"}),
        client.get(base + "status/"),
        client.get(base + "download/mql5/"),
    ):
        assert response.status_code == 404
    assert not EAToken.objects.filter(account=owned_account).exists()


def test_an_unknown_action_is_a_400_not_a_500(owner, owned_account):
    response = _client(owner).post(f"/accounts/{owned_account.pk}/ea/", {"action": "explode"})
    assert response.status_code == 400
