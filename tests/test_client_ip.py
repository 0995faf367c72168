"""The client IP behind trusted proxies (NUM_PROXIES), and the login limits built on it: the API and admin logins
cannot be bypassed with a made-up X-Forwarded-For, nor used to lock someone else out."""

from __future__ import annotations

import pytest

from config.net import client_ip, client_ip_from, scope_client_ip
from tests.personas import PASSWORD

LOGIN = "/api/auth/login"
ADMIN_LOGIN = "/admin/login/"
PROXY = "10.0.0.2"


@pytest.fixture
def proxies(settings):
    """Set the number of trusted proxies the way the environment does: for config.net and for DRF's throttles."""

    def set_to(count: int) -> None:
        settings.NUM_PROXIES = count
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": count}

    return set_to


# --- the rule --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "num_proxies, forwarded_for, expected",
    [
        (0, None, "198.51.100.7"),
        (0, "1.2.3.4", "198.51.100.7"),  # no trusted proxy: the header is anyone's to write
        (1, None, "198.51.100.7"),
        (1, "203.0.113.9", "203.0.113.9"),
        (1, "6.6.6.6, 203.0.113.9", "203.0.113.9"),  # the proxy appended the right-most entry
        (2, "6.6.6.6, 203.0.113.9, 10.0.0.1", "203.0.113.9"),
        (2, "203.0.113.9", "203.0.113.9"),  # fewer entries than proxies: as DRF, the left-most
        (1, "6.6.6.6, not-an-ip", "198.51.100.7"),
        (1, "2001:db8::5", "2001:db8::5"),
    ],
)
def test_the_client_ip_is_counted_from_the_right_by_the_trusted_proxies(num_proxies, forwarded_for, expected):
    assert client_ip_from("198.51.100.7", forwarded_for, num_proxies) == expected


def test_requests_and_asgi_scopes_follow_the_same_rule(rf, proxies):
    proxies(1)
    request = rf.get("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9")
    assert client_ip(request) == "203.0.113.9"
    scope = {
        "client": (PROXY, 5000),
        "headers": [(b"x-forwarded-for", b"6.6.6.6"), (b"X-Forwarded-For", b"203.0.113.9")],  # joined, in order
    }
    assert scope_client_ip(scope) == "203.0.113.9"
    proxies(0)
    assert client_ip(request) == PROXY and scope_client_ip(scope) == PROXY


# --- the API login throttle ------------------------------------------------------------------


def _fail(client, n: int, **extra):
    return client.post(LOGIN, {"email": f"nobody{n}@example.com", "password": "wrong"}, format="json", **extra)


@pytest.mark.django_db
def test_a_made_up_forwarded_for_does_not_escape_the_login_throttle(anon_client):
    """Guards the throttle's client identity with NUM_PROXIES=0 (the default): each attempt claims another
    X-Forwarded-For, all come from one address, and the 11th within the minute (THROTTLE_AUTH 10/min) is 429."""
    from django.conf import settings

    assert settings.NUM_PROXIES == 0 and settings.REST_FRAMEWORK["NUM_PROXIES"] == 0  # the defaults, untouched
    codes = [
        _fail(anon_client, n, REMOTE_ADDR="198.51.100.7", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code
        for n in range(11)
    ]
    assert codes[:10] == [401] * 10 and codes[10] == 429


@pytest.mark.django_db
def test_behind_one_proxy_the_right_most_forwarded_address_is_throttled(anon_client, proxies):
    """Guards NUM_PROXIES=1: everything arrives from the proxy; the address it appended (the right-most) is the
    client, so a client varying the left part of the header is still throttled, and another client is not."""
    proxies(1)
    codes = [
        _fail(anon_client, n, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=f"6.6.6.{n}, 203.0.113.9").status_code
        for n in range(11)
    ]
    assert codes[:10] == [401] * 10 and codes[10] == 429
    other = _fail(anon_client, 99, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="6.6.6.1, 203.0.113.10")
    assert other.status_code == 401


# --- lockouts ----------------------------------------------------------------------------------


def test_five_bad_logins_from_one_address_do_not_lock_the_account_elsewhere(anon_client, super_admin):
    """The lockout is by username and IP: a stranger failing five times on an admin's email locks that pair only;
    the admin still logs in from their own address."""
    for _ in range(5):
        response = anon_client.post(
            LOGIN, {"email": super_admin.email, "password": "wrong"}, format="json", REMOTE_ADDR="203.0.113.66"
        )
        assert response.status_code in (401, 429)  # the fifth failure is already answered as a lockout
    locked = anon_client.post(
        LOGIN, {"email": super_admin.email, "password": PASSWORD}, format="json", REMOTE_ADDR="203.0.113.66"
    )
    assert locked.status_code == 429
    elsewhere = anon_client.post(
        LOGIN, {"email": super_admin.email, "password": PASSWORD}, format="json", REMOTE_ADDR="198.51.100.20"
    )
    assert elsewhere.status_code == 200, elsewhere.content


def test_five_bad_admin_logins_from_one_address_leave_the_admin_login_open_elsewhere(client, super_admin):
    for _ in range(5):
        client.post(ADMIN_LOGIN, {"username": super_admin.email, "password": "wrong"}, REMOTE_ADDR="203.0.113.66")
    form = {"username": super_admin.email, "password": PASSWORD, "next": "/admin/"}
    assert client.post(ADMIN_LOGIN, form, REMOTE_ADDR="203.0.113.66").status_code == 429
    assert client.post(ADMIN_LOGIN, form, REMOTE_ADDR="198.51.100.20").status_code == 302


def test_an_address_failing_across_many_usernames_is_refused_at_every_login(client, anon_client, super_admin, settings):
    """Guards the per-IP limit (LOGIN_FAILURES_PER_IP): one address guessing at many usernames is refused once it
    reaches the limit, at the admin and the API login alike, even with a right password; others are not."""
    settings.LOGIN_FAILURES_PER_IP = 4
    for n in range(4):
        response = client.post(
            ADMIN_LOGIN, {"username": f"guess{n}@example.com", "password": "x"}, REMOTE_ADDR="203.0.113.5"
        )
        assert response.status_code == 200  # the form again, with its error
    form = {"username": super_admin.email, "password": PASSWORD, "next": "/admin/"}
    assert client.post(ADMIN_LOGIN, form, REMOTE_ADDR="203.0.113.5").status_code == 429
    api = anon_client.post(
        LOGIN, {"email": super_admin.email, "password": PASSWORD}, format="json", REMOTE_ADDR="203.0.113.5"
    )
    assert api.status_code == 429 and api.json()["error"]["code"] == "locked_out"
    assert client.post(ADMIN_LOGIN, form, REMOTE_ADDR="198.51.100.20").status_code == 302


def test_the_per_ip_count_cannot_be_dodged_with_forwarded_for(client, super_admin, settings, proxies):
    proxies(0)
    settings.LOGIN_FAILURES_PER_IP = 3
    for n in range(3):
        client.post(
            ADMIN_LOGIN,
            {"username": f"guess{n}@example.com", "password": "x"},
            REMOTE_ADDR="203.0.113.5",
            HTTP_X_FORWARDED_FOR=f"192.0.2.{n}",
        )
    form = {"username": super_admin.email, "password": PASSWORD, "next": "/admin/"}
    refused = client.post(ADMIN_LOGIN, form, REMOTE_ADDR="203.0.113.5", HTTP_X_FORWARDED_FOR="192.0.2.200")
    assert refused.status_code == 429
