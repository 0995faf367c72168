"""Settings: API tokens (create shown once, list, revoke) and two-factor login (enrol with a code, backup codes,
the web login then asks for the code)."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from tests.personas import PASSWORD

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _code(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):0{device.digits}d}"


def test_settings_pages_link_each_other(owner):
    page = _client(owner).get("/profile/").content.decode()
    assert 'href="/profile/api-tokens/"' in page and 'href="/profile/two-factor/"' in page


def test_a_created_api_token_is_shown_once_works_and_can_be_revoked(owner):
    client = _client(owner)
    html = client.post("/profile/api-tokens/", {"action": "create"}).content.decode()
    refresh = re.search(r'<code id="api-refresh">([^<]+)</code>', html).group(1)
    access = re.search(r'<code id="api-access">([^<]+)</code>', html).group(1)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    assert api.get("/api/auth/me").status_code == 200
    listing = client.get("/profile/api-tokens/").content.decode()
    assert refresh not in listing
    token_id = re.search(r'data-token-id="(\d+)"', listing).group(1)
    assert client.post("/profile/api-tokens/", {"action": "revoke", "token": token_id}).status_code == 302
    assert APIClient().post("/api/auth/refresh", {"refresh": refresh}, format="json").status_code == 401
    assert f'data-token-id="{token_id}"' not in client.get("/profile/api-tokens/").content.decode()


def test_nobody_revokes_another_persons_token(owner, outsider):
    _client(owner).post("/profile/api-tokens/", {"action": "create"})
    from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

    theirs = OutstandingToken.objects.get(user=owner)
    response = _client(outsider).post("/profile/api-tokens/", {"action": "revoke", "token": str(theirs.pk)})
    assert response.status_code == 404
    assert not hasattr(OutstandingToken.objects.get(pk=theirs.pk), "blacklistedtoken")
    assert _client(outsider).post("/profile/api-tokens/", {"action": "revoke", "token": "x1"}).status_code == 404


def test_two_factor_enrolment_with_the_apps_code_turns_it_on_and_shows_backup_codes(owner):
    client = _client(owner)
    page = client.get("/profile/two-factor/").content.decode()
    assert "<svg" in page  # the QR code
    device = TOTPDevice.objects.get(user=owner, confirmed=False)
    wrong = client.post("/profile/two-factor/", {"action": "confirm", "device": device.pk, "code": "000000"})
    assert wrong.status_code == 400 and not TOTPDevice.objects.filter(user=owner, confirmed=True).exists()
    device.refresh_from_db()
    device.throttling_failure_count, device.throttling_failure_timestamp = 0, None
    device.save()
    done = client.post("/profile/two-factor/", {"action": "confirm", "device": device.pk, "code": _code(device)})
    html = done.content.decode()
    assert done.status_code == 200 and "Two-factor login is on" in html
    assert len(re.findall(r"<li><code>[a-z0-9]+</code></li>", html)) == 10
    assert TOTPDevice.objects.filter(user=owner, confirmed=True).count() == 1


def test_once_on_the_web_login_asks_for_the_code(owner):
    client = _client(owner)
    client.get("/profile/two-factor/")
    device = TOTPDevice.objects.get(user=owner, confirmed=False)
    html = client.post("/profile/two-factor/", {"action": "confirm", "device": device.pk, "code": _code(device)})
    backup = re.findall(r"<li><code>([a-z0-9]+)</code></li>", html.content.decode())[0]
    fresh = Client()
    refused = fresh.post("/login/", {"username": owner.email, "password": PASSWORD})
    assert refused.status_code == 200 and "_auth_user_id" not in fresh.session
    assert "two-factor login is on" in refused.content.decode()
    # The app's code of this time step was spent on the enrolment (django-otp refuses a replay): a backup code.
    signed_in = fresh.post("/login/", {"username": owner.email, "password": PASSWORD, "otp_token": backup})
    assert signed_in.status_code == 302 and "_auth_user_id" in fresh.session


def test_without_two_factor_the_password_alone_signs_in(owner):
    fresh = Client()
    assert fresh.post("/login/", {"username": owner.email, "password": PASSWORD}).status_code == 302
