"""Broker financial controls: campaign budget caps, maker-checker approval of large grants, the abuse signal."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from django.test import Client

from accounts.choices import Role
from bonuses.choices import AbuseKind, ApprovalStatus, AuditAction, BonusStatus
from bonuses.models import AbuseSignal, AuditLog, Bonus, GrantApproval
from bonuses.services.controls import approval_approve
from bonuses.services.triggers import trigger_deposit
from config.errors import NotAllowed
from mt5bridge.simulated import deposit
from tests.personas import api_client_for, next_login, staff_user

from .conftest import SIM_PASSWORD, account, make_account, make_campaign

pytestmark = pytest.mark.django_db


def _deposit(login: int, amount: str):
    deposit(login, D(amount))
    return trigger_deposit(login=login, amount=D(amount))


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- budget caps ------------------------------------------------------------------------------


def test_a_grant_past_the_campaign_budget_is_refused_audited_and_posts_nothing(super_admin):
    campaign = make_campaign(bonus_percent=D("10"), budget_total=D("150"))
    first, second = make_account(balance="0"), make_account(balance="0")
    (granted,) = _deposit(first, "1000")
    assert granted.bonus.amount == D("100.00")
    (refused,) = _deposit(second, "1000")
    assert refused.bonus is None and [f.check for f in refused.failures] == ["budget_total"]
    assert not Bonus.objects.filter(login=second).exists() and account(second).credit == D("0.00")
    (row,) = AuditLog.objects.filter(action=AuditAction.GRANT_REFUSED)
    assert row.login == second and row.campaign_id == campaign.pk
    assert row.after["check"] == "budget_total" and row.after["amount"] == "100.00" and "50.00 left" in row.message
    page = _client(super_admin).get("/admin/bonuses/bonus/").content.decode()
    assert "1 grant(s) refused by a campaign budget cap" in page
    # What fits the rest of the budget is still granted.
    (fits,) = _deposit(second, "500")
    assert fits.bonus.amount == D("50.00")


def test_the_per_client_cap_counts_every_bonus_the_login_got_from_the_campaign():
    make_campaign(bonus_percent=D("10"), client_credit_cap=D("150"), one_per_account=False, max_concurrent=10)
    login, other = make_account(balance="0"), make_account(balance="0")
    assert _deposit(login, "1000")[0].bonus is not None
    (refused,) = _deposit(login, "1000")
    assert refused.bonus is None and refused.failures[0].check == "client_credit_cap"
    assert _deposit(login, "400")[0].bonus.amount == D("40.00")  # 140 of 150
    assert _deposit(other, "1000")[0].bonus is not None  # another client has their own cap


def test_a_manual_grant_over_the_budget_answers_409_and_is_audited(super_admin):
    login = make_account(balance="1000")
    campaign = make_campaign(triggers=[], fixed_amount=D("80"), budget_total=D("50"))
    response = api_client_for(super_admin).post(
        "/api/bonuses/assign", {"login": login, "campaign_id": campaign.pk}, format="json",
        headers={"Idempotency-Key": "budget-1"},
    )  # fmt: skip
    assert response.status_code == 409 and response.json()["error"]["code"] == "budget_exceeded"
    assert AuditLog.objects.filter(action=AuditAction.GRANT_REFUSED, login=login, actor=super_admin).exists()


def test_a_budget_cap_must_be_positive(super_admin):
    client = api_client_for(super_admin)
    body = {
        "name": "capped",
        "bonus_type": "B",
        "bonus_percent": "10",
        "budget_total": "500",
        "client_credit_cap": "50",
    }
    created = client.post("/api/campaigns", body, format="json")
    assert created.status_code == 201 and created.json()["budget_total"] == "500.00"
    refused = client.post("/api/campaigns", {**body, "budget_total": "0"}, format="json")
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_budget"


# --- maker-checker ----------------------------------------------------------------------------


@pytest.fixture
def threshold(settings):
    settings.BONUS_APPROVAL_THRESHOLD = D("100")


def _assign(user, login, campaign, amount, key):
    return api_client_for(user).post(
        "/api/bonuses/assign", {"login": login, "campaign_id": campaign.pk, "amount": amount}, format="json",
        headers={"Idempotency-Key": key},
    )  # fmt: skip


def test_a_grant_above_the_threshold_waits_and_a_second_person_approves_it(threshold, support_agent, super_admin):
    login = make_account(balance="1000")
    campaign = make_campaign(triggers=[], fixed_amount=D("500"), one_per_account=False)
    response = _assign(support_agent, login, campaign, "150", "mc-1")
    assert response.status_code == 202 and response.json()["status"] == ApprovalStatus.PENDING
    approval = GrantApproval.objects.get(pk=response.json()["id"])
    assert not Bonus.objects.filter(login=login).exists() and account(login).credit == D("0.00")
    assert AuditLog.objects.filter(action=AuditAction.APPROVAL_REQUESTED, actor=support_agent).exists()
    # The same request again is the same approval; below the threshold a grant is made at once.
    assert _assign(support_agent, login, campaign, "150", "mc-1").json()["id"] == approval.pk
    assert _assign(support_agent, login, campaign, "100", "mc-2").status_code == 201

    # The bonus monitor page says grants wait; the approve action makes the grant.
    admin = _client(super_admin)
    assert "1 grant(s) wait for approval" in admin.get("/admin/bonuses/bonus/").content.decode()
    admin.post("/admin/bonuses/grantapproval/", {"action": "approve", "_selected_action": [approval.pk]})
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.APPROVED and approval.decided_by == super_admin
    assert approval.bonus.amount == D("150.00") and approval.bonus.assigned_by == support_agent
    assert account(login).credit == D("250.00")
    assert AuditLog.objects.filter(action=AuditAction.APPROVAL_APPROVED, actor=super_admin).exists()
    # The maker's key now answers with the bonus; approving again changes nothing.
    repeat = _assign(support_agent, login, campaign, "150", "mc-1")
    assert repeat.status_code == 200 and repeat.json()["id"] == approval.bonus_id
    admin.post("/admin/bonuses/grantapproval/", {"action": "approve", "_selected_action": [approval.pk]})
    assert Bonus.objects.filter(login=login).count() == 2 and account(login).credit == D("250.00")


def test_the_maker_cannot_approve_their_own_grant_and_a_reject_posts_nothing(threshold, super_admin):
    login = make_account(balance="1000")
    campaign = make_campaign(triggers=[], fixed_amount=D("500"), one_per_account=False)
    approval = GrantApproval.objects.get(pk=_assign(super_admin, login, campaign, "300", "mc-3").json()["id"])
    with pytest.raises(NotAllowed):
        approval_approve(actor=super_admin, approval=approval)
    other = staff_user(Role.SUPER_ADMIN)
    _client(other).post("/admin/bonuses/grantapproval/", {"action": "reject", "_selected_action": [approval.pk]})
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.REJECTED and approval.bonus is None
    assert account(login).credit == D("0.00")
    assert AuditLog.objects.filter(action=AuditAction.APPROVAL_REJECTED, actor=other).exists()


def test_an_overridden_grant_above_the_threshold_waits_too(threshold, support_agent):
    login = make_account(balance="1000", country="FR")
    campaign = make_campaign(triggers=[], fixed_amount=D("500"), target_countries=["DE"])
    blocked = _assign(support_agent, login, campaign, "200", "mc-4")
    assert blocked.status_code == 409 and blocked.json()["error"]["code"] == "not_eligible"
    response = api_client_for(support_agent).post(
        "/api/bonuses/assign",
        {"login": login, "campaign_id": campaign.pk, "amount": "200", "override_eligibility": True},
        format="json", headers={"Idempotency-Key": "mc-5"},
    )  # fmt: skip
    assert response.status_code == 202 and response.json()["overridden_checks"] == ["country_mismatch"]


def test_only_super_admin_is_offered_the_approve_action(threshold, support_agent, read_only):
    login = make_account(balance="1000")
    campaign = make_campaign(triggers=[], fixed_amount=D("500"), one_per_account=False)
    approval = GrantApproval.objects.get(pk=_assign(support_agent, login, campaign, "300", "mc-6").json()["id"])
    for person in (support_agent, read_only):
        _client(person).post("/admin/bonuses/grantapproval/", {"action": "approve", "_selected_action": [approval.pk]})
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.PENDING


# --- abuse signal -----------------------------------------------------------------------------


def _client_account(*, email: str = "", lead_source: str = "") -> int:
    from mt5bridge.simulated import create_account

    login = next_login() + 200000
    create_account(login=login, password=SIM_PASSWORD, balance=D("0"), email=email, lead_source=lead_source)
    return login


def test_three_accounts_of_one_email_domain_on_a_campaign_are_listed_for_review(settings, super_admin):
    settings.BONUS_ABUSE_MIN_ACCOUNTS = 3
    campaign = make_campaign(bonus_percent=D("10"))
    logins = [_client_account(email=f"user{n}@farm.example") for n in range(3)]
    common = [_client_account(email=f"user{n}@gmail.com") for n in range(3)]
    for login in logins[:2] + common:
        _deposit(login, "100")
    assert not AbuseSignal.objects.exists()  # two accounts; a mail provider everyone uses says nothing
    _deposit(logins[2], "100")
    (signal,) = AbuseSignal.objects.all()
    assert (signal.kind, signal.value, signal.accounts) == (AbuseKind.EMAIL_DOMAIN, "farm.example", 3)
    assert sorted(signal.logins) == sorted(logins) and signal.campaign == campaign
    assert AuditLog.objects.filter(action=AuditAction.ABUSE_FLAGGED, campaign=campaign).count() == 1
    admin = _client(super_admin)
    assert "1 abuse signal(s) to review" in admin.get("/admin/bonuses/bonus/").content.decode()
    admin.post("/admin/bonuses/abusesignal/", {"action": "mark_reviewed", "_selected_action": [signal.pk]})
    signal.refresh_from_db()
    assert signal.reviewed_by == super_admin and signal.reviewed_at is not None
    # A fourth account joining raises it again.
    _deposit(_client_account(email="user9@FARM.example"), "100")
    signal.refresh_from_db()
    assert signal.accounts == 4 and signal.reviewed_at is None


def test_a_shared_lead_source_or_ip_raises_a_signal_but_an_agent_codes_own_lead_source_does_not(settings, super_admin):
    settings.BONUS_ABUSE_MIN_ACCOUNTS = 3
    make_campaign(name="open", bonus_percent=D("10"))
    by_lead = [_client_account(lead_source="AFF-7") for _ in range(3)]
    for login in by_lead:
        _deposit(login, "100")
    assert AbuseSignal.objects.filter(kind=AbuseKind.LEAD_SOURCE, value="AFF-7", accounts=3).exists()

    agent = make_campaign(name="agent", bonus_percent=D("10"), agent_codes=["AGENT-1"], triggers=["agent_code"])
    for _ in range(3):
        _deposit(_client_account(lead_source="AGENT-1"), "100")
    assert Bonus.objects.filter(campaign=agent).count() == 3
    assert not AbuseSignal.objects.filter(campaign=agent).exists()

    client = api_client_for(super_admin)
    for _ in range(3):
        login = _client_account()
        client.post(f"/api/monitoring/accounts/{login}/register")
        deposit(login, D("100"))
        response = client.post("/api/triggers/deposit", {"login": login, "amount": "100", "client_ip": "203.0.113.9"},
                               format="json")  # fmt: skip
        assert response.status_code == 200 and response.json()["results"]
    assert AbuseSignal.objects.filter(kind=AbuseKind.IP, value="203.0.113.9", accounts=3).exists()
    bad = client.post("/api/triggers/deposit", {"login": login, "amount": "100", "client_ip": "nope"}, format="json")
    assert bad.status_code == 400


def test_failed_bonuses_do_not_count_toward_the_budget():
    campaign = make_campaign(bonus_percent=D("10"), budget_total=D("100"))
    login = make_account(balance="0")
    Bonus.objects.create(
        campaign=campaign, login=login, bonus_type="B", trigger="manual", idempotency_key="failed-1",
        amount=D("100"), status=BonusStatus.FAILED,
    )  # fmt: skip
    assert _deposit(login, "1000")[0].bonus.amount == D("100.00")
