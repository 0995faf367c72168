"""Email confirmation at sign-up: the signed, expiring link, what an unconfirmed person cannot do, resending."""

from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.urls import reverse

from accounts.choices import Role, SecurityAction
from accounts.models import SecurityEvent, TradingAccount, User
from accounts.services import trading_account_create
from accounts.verification import LINK_VALID_HOURS, EmailUnverified, verification_token
from tests.personas import SIM_PASSWORD, SIM_SERVER, UserFactory, api_client_for

pytestmark = pytest.mark.django_db

SIGNUP = {"email": "Nia@Example.com", "display_name": "Nia", "password1": "a-long-pass-phrase-9"}


def sign_up(client, **extra) -> User:
    response = client.post(reverse("signup"), {**SIGNUP, "password2": SIGNUP["password1"], **extra})
    assert response.status_code == 302
    return User.objects.get(email="nia@example.com")


def link_in(message) -> str:
    (url,) = re.findall(r"https?://\S+/email/verify/\S+/", message.body)
    return urlsplit(url).path


@pytest.fixture
def unconfirmed(db) -> User:
    return UserFactory(email_verified_at=None, roles=[Role.TRADER])


def test_sign_up_emails_a_link_and_leaves_the_address_unconfirmed(client):
    user = sign_up(client)
    assert user.email_verified_at is None
    (message,) = mail.outbox
    assert message.to == ["nia@example.com"]
    assert "/email/verify/" in message.body


def test_the_link_confirms_the_address_once_and_is_recorded(client):
    user = sign_up(client)
    path = link_in(mail.outbox[0])
    response = client.get(path)
    assert response.status_code == 200 and "Email confirmed" in response.content.decode()
    user.refresh_from_db()
    first = user.email_verified_at
    assert first is not None
    assert client.get(path).status_code == 200  # opened twice: still fine, nothing changes
    user.refresh_from_db()
    assert user.email_verified_at == first
    assert SecurityEvent.objects.filter(actor=user, action=SecurityAction.EMAIL_VERIFIED).count() == 1


def test_a_tampered_link_is_refused(client, unconfirmed):
    token = verification_token(unconfirmed)
    response = client.get(reverse("email-verify", args=[token[:-2] + "xx"]))
    assert response.status_code == 400 and "not valid" in response.content.decode()
    unconfirmed.refresh_from_db()
    assert unconfirmed.email_verified_at is None


def test_an_expired_link_is_refused(client, unconfirmed, monkeypatch):
    token = verification_token(unconfirmed)
    later = time.time() + (LINK_VALID_HOURS + 1) * 3600
    monkeypatch.setattr("django.core.signing.time.time", lambda: later)
    response = client.get(reverse("email-verify", args=[token]))
    monkeypatch.undo()
    assert response.status_code == 400 and "expired" in response.content.decode()
    unconfirmed.refresh_from_db()
    assert unconfirmed.email_verified_at is None


def test_a_link_sent_to_an_old_address_confirms_nothing(client, unconfirmed):
    token = verification_token(unconfirmed)
    User.objects.filter(pk=unconfirmed.pk).update(email="new-address@example.com")
    assert client.get(reverse("email-verify", args=[token])).status_code == 400
    unconfirmed.refresh_from_db()
    assert unconfirmed.email_verified_at is None


def test_an_unconfirmed_person_cannot_connect_an_account_in_the_web_app(client, unconfirmed, sim_login):
    client.force_login(unconfirmed)
    page = client.get(reverse("web-account-add"))
    assert 'id="email-unverified"' in page.content.decode()
    response = client.post(
        reverse("web-account-add"),
        {
            "login": sim_login,
            "password": SIM_PASSWORD,
            "server": SIM_SERVER,
            "category": "demo",
            "password_kind": "master",
        },
    )
    assert response.status_code == 200 and "Confirm your email address first" in response.content.decode()
    assert not TradingAccount.objects.filter(owner=unconfirmed).exists()


def test_an_unconfirmed_person_cannot_connect_an_account_through_the_api(unconfirmed, sim_login):
    response = api_client_for(unconfirmed).post(
        "/api/accounts/", {"login": sim_login, "password": SIM_PASSWORD, "server": SIM_SERVER}, format="json"
    )
    assert response.status_code == 403 and response.json()["error"]["code"] == "email_unverified"
    assert not TradingAccount.objects.filter(owner=unconfirmed).exists()


def test_once_confirmed_the_same_person_connects_the_account(client, sim_login):
    user = sign_up(client)
    client.get(link_in(mail.outbox[0]))
    response = client.post(
        reverse("web-account-add"),
        {
            "login": sim_login,
            "password": SIM_PASSWORD,
            "server": SIM_SERVER,
            "category": "demo",
            "password_kind": "master",
        },
    )
    assert response.status_code == 302
    assert TradingAccount.objects.filter(owner=user, login=sim_login).exists()


def test_an_unconfirmed_person_cannot_start_a_copy_link(owner, sim_login, settings):
    from mt5bridge.simulated import create_account
    from tests.personas import next_login

    settings.BILLING_DEFAULT_PLAN = "enterprise"
    master = trading_account_create(
        owner=owner, login=sim_login, password=SIM_PASSWORD, server=SIM_SERVER, sync_now=False
    )
    second = next_login()
    create_account(login=second, password=SIM_PASSWORD, server=SIM_SERVER, name="Test Trader")
    slave = trading_account_create(owner=owner, login=second, password=SIM_PASSWORD, server=SIM_SERVER, sync_now=False)
    User.objects.filter(pk=owner.pk).update(email_verified_at=None)  # e.g. after changing the address
    owner.refresh_from_db()
    response = api_client_for(owner).post(
        "/api/copy/links", {"master": str(master.pk), "slave": str(slave.pk)}, format="json"
    )
    assert response.status_code == 403 and response.json()["error"]["code"] == "email_unverified"
    from copytrading.models import CopyLink

    assert not CopyLink.objects.exists()
    with pytest.raises(EmailUnverified):  # whichever path makes the link
        CopyLink.objects.create(master=master, slave=slave, created_by=owner)
    User.objects.filter(pk=owner.pk).update(email_verified_at=master.created_at)
    owner.refresh_from_db()
    response = api_client_for(owner).post(
        "/api/copy/links", {"master": str(master.pk), "slave": str(slave.pk)}, format="json"
    )
    assert response.status_code == 201, response.content


def test_resending_sends_a_new_link_at_most_once_a_minute(client, unconfirmed):
    client.force_login(unconfirmed)
    client.post(reverse("email-verify-resend"))
    client.post(reverse("email-verify-resend"))
    assert len(mail.outbox) == 1
    client.get(link_in(mail.outbox[0]))
    unconfirmed.refresh_from_db()
    assert unconfirmed.email_verified_at is not None


def test_the_api_confirms_with_the_token_and_resends(unconfirmed):
    client = api_client_for(unconfirmed)
    response = client.post("/api/auth/verify-email/resend")
    assert response.status_code == 202 and response.json() == {"sent": True, "email_verified": False}
    token = link_in(mail.outbox[0]).rstrip("/").rsplit("/", 1)[1]
    response = api_client_for(None).post("/api/auth/verify-email", {"token": token}, format="json")
    assert response.status_code == 200 and response.json()["email_verified_at"]
    assert api_client_for(None).post("/api/auth/verify-email", {"token": "nope"}, format="json").status_code == 400
    unconfirmed.refresh_from_db()
    assert api_client_for(unconfirmed).get("/api/auth/me").json()["email_verified"] is True


def test_changing_the_address_asks_to_confirm_the_new_one(client, owner):
    client.force_login(owner)
    client.post(reverse("profile"), {"display_name": "Ada", "email": "ada@example.com"})
    owner.refresh_from_db()
    assert owner.email_verified_at is None
    assert mail.outbox[-1].to == ["ada@example.com"]


def test_people_created_by_staff_or_commands_are_confirmed(client, super_admin):
    assert User.objects.create_user(email="made@example.com", password="x").email_verified_at is not None
    super_admin.is_superuser = True
    super_admin.save()
    client.force_login(super_admin)
    response = client.post(
        reverse("admin:accounts_user_add"),
        {"email": "staff-made@example.com", "password1": "a-long-pass-phrase-9", "password2": "a-long-pass-phrase-9"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert User.objects.get(email="staff-made@example.com").email_verified_at is not None
