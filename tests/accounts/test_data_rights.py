"""A trader's data rights: marketing consent (audited), the JSON export, and deleting the account."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.choices import ConsentSource, SecurityAction
from accounts.data_rights import account_erase, consent_set
from accounts.jwt import jwt_issue
from accounts.models import ConsentRecord, Deal, SecurityEvent, TradingAccount, User
from bonuses.choices import OperationKind, Trigger
from bonuses.models import Bonus, BonusOperation
from bonuses.services.operations import operation_create
from config.errors import Conflict, NotAllowed
from copytrading.models import CopyLink, OrderTemplate
from entitlements.models import PlanAssignment, SubscriptionStatus
from integrations.models import ContactSync
from mt5bridge.sync import account_sync
from tests.bonuses.conftest import make_campaign
from tests.personas import PASSWORD, SIM_PASSWORD, SIM_SERVER, UserFactory, api_client_for, next_login

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(owned_account):
    """The owner's account synced (snapshots, positions, deals), a copy link, a template, a bonus on its login."""
    from mt5bridge.simulated import create_account

    account_sync(account_id=owned_account.pk, trigger="manual")
    owner = owned_account.owner
    other = next_login()
    create_account(login=other, password=SIM_PASSWORD, server=SIM_SERVER, name="Test Trader")
    from accounts.services import trading_account_create

    slave = trading_account_create(owner=owner, login=other, password=SIM_PASSWORD, server=SIM_SERVER, sync_now=False)
    CopyLink.objects.create(master=owned_account, slave=slave, created_by=owner)
    OrderTemplate.objects.create(owner=owner, name="Quick buy", symbol="EURUSD", side="buy", volume=Decimal("0.1"))
    campaign = make_campaign(triggers=[], fixed_amount=Decimal("15"))
    bonus = Bonus.objects.create(
        campaign=campaign,
        login=owned_account.login,
        bonus_type=campaign.bonus_type,
        trigger=Trigger.MANUAL,
        idempotency_key=f"data-rights-{owned_account.login}",
        amount=Decimal("15"),
    )
    operation_create(bonus, OperationKind.CREDIT_IN, amount=Decimal("15"))
    return owned_account


# --- consent -------------------------------------------------------------------------------


def test_opting_in_and_out_in_settings_is_recorded_with_when_what_and_who(client, owner):
    client.force_login(owner)
    assert client.get(reverse("profile-privacy")).status_code == 200
    client.post(reverse("profile-privacy"), {"marketing_consent": "on"}, REMOTE_ADDR="203.0.113.7")
    client.post(reverse("profile-privacy"), {"marketing_consent": "on"})  # no change: no row
    client.post(reverse("profile-privacy"), {})
    owner.refresh_from_db()
    assert owner.marketing_consent is False and owner.marketing_consent_at is not None
    rows = list(ConsentRecord.objects.filter(user=owner).order_by("created_at", "id"))
    assert [(r.previous, r.granted, r.source) for r in rows] == [(False, True, "web"), (True, False, "web")]
    assert rows[0].actor == owner and rows[0].actor_label == owner.email
    assert rows[0].ip_address == "203.0.113.7"


def test_the_sign_up_box_is_an_opt_in_recorded_as_such(client):
    form = {"email": "kim@example.com", "password1": "a-long-pass-phrase-9", "password2": "a-long-pass-phrase-9"}
    client.post(reverse("signup"), {**form, "marketing_consent": "on"})
    kim = User.objects.get(email="kim@example.com")
    assert kim.marketing_consent is True
    assert ConsentRecord.objects.get(user=kim).source == ConsentSource.SIGNUP
    client.logout()
    client.post(reverse("signup"), {**form, "email": "lee@example.com"})
    lee = User.objects.get(email="lee@example.com")
    assert lee.marketing_consent is False and not ConsentRecord.objects.filter(user=lee).exists()


def test_the_api_reads_and_changes_consent(owner_client, owner):
    assert owner_client.get("/api/me/consent").json()["marketing"] is False
    response = owner_client.put("/api/me/consent", {"marketing": True}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["marketing"] is True and body["legal_basis"] == "consent"
    assert [row["source"] for row in body["history"]] == ["api"]
    assert owner_client.put("/api/me/consent", {"marketing": "maybe"}, format="json").status_code == 400


# --- export --------------------------------------------------------------------------------


def test_the_export_holds_every_part_and_no_credential(owner_client, history):
    owner = history.owner
    consent_set(user=owner, granted=True, source=ConsentSource.WEB, actor=owner)
    response = owner_client.get("/api/me/export")
    assert response.status_code == 200 and response["Content-Disposition"].startswith("attachment;")
    text = response.content.decode()
    data = json.loads(text)
    assert data["profile"]["email"] == owner.email and data["profile"]["marketing_consent"] is True
    assert [row["granted"] for row in data["consent"]] == [True]
    (main,) = [a for a in data["trading_accounts"] if a["account"]["login"] == history.login]
    assert "password_encrypted" not in main["account"]
    assert len(main["deals"]) == Deal.objects.filter(account=history).count() > 0
    assert main["snapshots"] and "positions" in main and "orders" in main
    assert len(data["copy_trading"]["links"]) == 1 and data["copy_trading"]["order_templates"][0]["name"] == "Quick buy"
    (bonus,) = data["bonuses"]
    assert bonus["login"] == history.login and bonus["amount"] == "15.00" and len(bonus["operations"]) == 1
    assert "plan" in data["billing"] and "invoices" in data["billing"]
    assert SIM_PASSWORD not in text and owner.password not in text  # no MT5 password, no password hash
    assert SecurityEvent.objects.filter(actor=owner, action=SecurityAction.DATA_EXPORTED).count() == 1


def test_the_settings_page_downloads_the_same_export(client, owner):
    client.force_login(owner)
    response = client.get(reverse("profile-privacy-export"))
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert json.loads(response.content)["profile"]["id"] == owner.pk


def test_export_and_delete_are_only_about_oneself(anon_client):
    assert anon_client.get("/api/me/export").status_code == 401
    assert anon_client.post("/api/me/delete", {"password": "x"}, format="json").status_code == 401


# --- deletion ------------------------------------------------------------------------------


def test_a_wrong_password_deletes_nothing_and_is_recorded(owner_client, history):
    response = owner_client.post("/api/me/delete", {"password": "not-mine"}, format="json")
    assert response.status_code == 403 and response.json()["error"]["code"] == "wrong_password"
    owner = User.objects.get(pk=history.owner_id)
    assert owner.is_active and owner.erased_at is None and TradingAccount.objects.filter(owner=owner).count() == 2
    assert SecurityEvent.objects.filter(actor=owner, action=SecurityAction.ERASE_REFUSED).count() == 1


def test_deleting_erases_credentials_and_history_and_keeps_money_records_under_a_pseudonym(history):
    owner = history.owner
    old_email, login = owner.email, history.login
    consent_set(user=owner, granted=True, source=ConsentSource.WEB, actor=owner, ip_address="203.0.113.7")
    ContactSync.objects.create(user=owner, email=old_email, contact_id="77")
    refresh = jwt_issue(user=owner)["refresh"]

    response = api_client_for(owner).post("/api/me/delete", {"password": PASSWORD}, format="json")
    assert response.status_code == 204

    owner.refresh_from_db()
    assert owner.email.startswith("erased-") and owner.email.endswith("@erased.invalid")
    assert owner.display_name == "" and not owner.has_usable_password() and not owner.is_active
    assert owner.erased_at is not None and owner.marketing_consent is False
    assert not User.objects.filter(email=old_email).exists()
    # History and credentials: gone.
    assert not TradingAccount.objects.filter(owner=owner).exists() and not Deal.objects.filter(account=history).exists()
    assert not CopyLink.objects.exists() and not OrderTemplate.objects.exists()
    assert not ContactSync.objects.filter(user=owner).exists()
    # Money records: kept, naming the MT5 login only.
    assert Bonus.objects.filter(login=login).count() == 1 and BonusOperation.objects.filter(login=login).count() == 1
    # Consent records: kept (the consent relied on), pseudonymised, the IP address cleared.
    records = ConsentRecord.objects.filter(user=owner).order_by("created_at", "id")
    assert [(r.granted, r.source) for r in records] == [(True, "web"), (False, "erasure")]
    assert {r.ip_address for r in records} == {None} and old_email not in {r.actor_label for r in records}
    # The audit row, and no address of the person left in the security log.
    assert SecurityEvent.objects.filter(actor=owner, action=SecurityAction.ACCOUNT_ERASED).count() == 1
    assert not SecurityEvent.objects.filter(actor_label=old_email).exists()
    # Logged out everywhere: the refresh token is gone, the password no longer logs in.
    assert api_client_for(None).post("/api/auth/refresh", {"refresh": refresh}, format="json").status_code == 401
    login_response = api_client_for(None).post(
        "/api/auth/login", {"email": old_email, "password": PASSWORD}, format="json"
    )
    assert login_response.status_code == 401


def test_deleting_twice_changes_nothing_the_second_time(owner):
    assert account_erase(user=owner, password=PASSWORD) is True
    owner.refresh_from_db()
    pseudonym = owner.email
    assert account_erase(user=owner, password=PASSWORD) is False
    owner.refresh_from_db()
    assert owner.email == pseudonym
    assert SecurityEvent.objects.filter(actor=owner, action=SecurityAction.ACCOUNT_ERASED).count() == 1


def test_with_two_factor_on_the_code_is_needed_too(owner):
    device = TOTPDevice.objects.create(user=owner, name="Authenticator app", confirmed=True)
    with pytest.raises(NotAllowed) as refused:
        account_erase(user=owner, password=PASSWORD)
    assert refused.value.code == "otp_required"
    code = f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=device.drift):06d}"
    with pytest.raises(NotAllowed) as refused:
        account_erase(user=owner, password=PASSWORD, otp_code=f"{(int(code) + 1) % 1_000_000:06d}")
    assert refused.value.code == "otp_invalid"
    TOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_timestamp=None, throttling_failure_count=0)
    assert account_erase(user=owner, password=PASSWORD, otp_code=code) is True
    assert not TOTPDevice.objects.filter(user=owner).exists()


def test_a_subscription_that_would_renew_must_be_cancelled_first(owner):
    PlanAssignment.objects.update_or_create(
        user=owner, defaults={"subscription_status": SubscriptionStatus.ACTIVE, "subscription_id": "sub_1"}
    )
    with pytest.raises(Conflict) as refused:
        account_erase(user=owner, password=PASSWORD)
    assert refused.value.code == "subscription_active"
    owner.refresh_from_db()
    assert owner.erased_at is None and owner.is_active


def test_staff_cannot_delete_themselves_here(support_agent):
    with pytest.raises(NotAllowed) as refused:
        account_erase(user=support_agent, password=PASSWORD)
    assert refused.value.code == "staff_account"


def test_the_settings_page_deletes_and_signs_out(client, owner):
    client.force_login(owner)
    page = client.post(reverse("profile-privacy-delete"), {"password": "wrong", "confirm": "on"})
    assert page.status_code == 403 and "Your password is not correct" in page.content.decode()
    response = client.post(reverse("profile-privacy-delete"), {"password": PASSWORD, "confirm": "on"})
    assert response.status_code == 302 and response["Location"] == reverse("login")
    assert client.get(reverse("dashboard")).status_code == 302  # signed out
    owner.refresh_from_db()
    assert owner.erased_at is not None


def test_an_erased_person_is_no_longer_a_contact_even_under_contract(history):
    from integrations.services.contacts import contacts_to_sync, systeme_settings_update

    systeme_settings_update(legal_basis="contract")
    UserFactory()  # someone else
    assert history.owner in contacts_to_sync()
    account_erase(user=history.owner, password=PASSWORD)
    assert history.owner not in contacts_to_sync()
