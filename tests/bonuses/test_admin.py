"""The back office in the Django admin, page by page and role by role."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from django.test import Client

from bonuses.choices import BonusStatus, BonusType, CampaignStatus
from bonuses.models import AuditLog, Bonus, Campaign, Mt5Scan
from bonuses.services.monitored import monitoring_register
from bonuses.services.triggers import trigger_deposit
from mt5bridge.simulated import deposit

from .conftest import account, make_account, make_campaign

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def world(db):
    login = make_account(balance="0", leverage=500, country="DE")
    campaign = make_campaign(bonus_type=BonusType.DYNAMIC_LEVERAGE)
    deposit(login, D("100"))
    (result,) = trigger_deposit(login=login, amount=D("100"))
    monitoring_register(actor="test", login=login)
    return {"login": login, "campaign": campaign, "bonus": result.bonus}


def _pages(w) -> dict[str, str]:
    return {
        "dashboard": "/admin/bonuses/bonus/dashboard/",
        "campaigns": "/admin/bonuses/campaign/",
        "campaign": f"/admin/bonuses/campaign/{w['campaign'].pk}/change/",
        "monitor": "/admin/bonuses/bonus/",
        "bonus": f"/admin/bonuses/bonus/{w['bonus'].pk}/change/",
        "assign": "/admin/bonuses/bonus/assign/",
        "lookup": f"/admin/bonuses/bonus/lookup/?login={w['login']}",
        "reports": "/admin/bonuses/bonus/reports/?report=summary",
        "export": "/admin/bonuses/bonus/reports/export/?report=summary&format=xlsx",
        "monitoring": "/admin/bonuses/bonus/monitoring/",
        "audit": "/admin/bonuses/auditlog/",
        "accounts": "/admin/bonuses/monitoredaccount/",
        "leverage": f"/admin/bonuses/bonus/{w['bonus'].pk}/override-leverage/",
    }


# The bonus back office's role table (Super Admin full; Campaign Manager campaigns + monitor; Support Agent
# lookup, read-only bonuses, manual assign; Read-Only campaigns, monitor and reports).
ALLOWED = {
    "super_admin": {"dashboard", "campaigns", "campaign", "monitor", "bonus", "assign", "lookup", "reports", "export",
                    "monitoring", "audit", "accounts", "leverage"},
    "campaign_manager": {"dashboard", "campaigns", "campaign", "monitor", "bonus", "monitoring", "accounts"},
    "support_agent": {"dashboard", "monitor", "bonus", "assign", "lookup", "monitoring", "accounts"},
    "read_only": {"dashboard", "campaigns", "campaign", "monitor", "bonus", "reports", "export", "monitoring",
                  "accounts"},
}  # fmt: skip


@pytest.mark.parametrize("role", list(ALLOWED))
def test_each_role_sees_exactly_its_pages(role, request, world):
    client = _client(request.getfixturevalue(role))
    for name, url in _pages(world).items():
        response = client.get(url)
        expected = 200 if name in ALLOWED[role] else 403
        assert response.status_code == expected, (role, name, response.status_code)


def test_an_outsider_trader_is_kept_out_of_the_back_office(world, outsider):
    client = _client(outsider)
    for url in _pages(world).values():
        assert client.get(url).status_code in (302, 403)


def test_lookup_shows_figures_bonus_history_and_audit(world, support_agent):
    page = _client(support_agent).get(f"/admin/bonuses/bonus/lookup/?login={world['login']}").content.decode()
    assert "1:250" in page and "100.00" in page and "credit_posted" in page


def test_assign_shows_a_red_confirmation_then_override_assigns(world, support_agent):
    client = _client(support_agent)
    campaign = make_campaign(name="FR only", target_countries=["FR"], triggers=[], fixed_amount=D("15"))
    form_key = client.get("/admin/bonuses/bonus/assign/").context["form"].initial["idempotency_key"]
    body = {"login": world["login"], "campaign": campaign.pk, "amount": "15", "idempotency_key": form_key}
    page = client.post("/admin/bonuses/bonus/assign/", body)
    text = page.content.decode()
    assert page.status_code == 200 and "Override &amp; assign" in text and "country_mismatch" in text
    assert not Bonus.objects.filter(campaign=campaign).exists()
    key = page.context["form"].initial["idempotency_key"]
    assert key == form_key  # the confirmation carries the key the form was rendered with
    done = client.post("/admin/bonuses/bonus/assign/", {**body, "override": "1", "idempotency_key": key})
    assert done.status_code == 302
    bonus = Bonus.objects.get(campaign=campaign)
    assert bonus.overridden_checks == ["country_mismatch"] and bonus.assigned_by == support_agent
    # Submitting the confirmation twice does not give a second bonus.
    client.post("/admin/bonuses/bonus/assign/", {**body, "override": "1", "idempotency_key": key})
    assert Bonus.objects.filter(campaign=campaign).count() == 1


def test_assign_is_blocked_without_an_override_button_for_a_paused_campaign(world, super_admin):
    campaign = make_campaign(name="paused", status=CampaignStatus.PAUSED, triggers=[], fixed_amount=D("5"))
    page = _client(super_admin).post(
        "/admin/bonuses/bonus/assign/",
        {"login": world["login"], "campaign": campaign.pk, "amount": "5", "idempotency_key": "form-1"},
    )
    assert "cannot be overridden" in page.content.decode() and "Override &amp; assign" not in page.content.decode()


def test_cancel_action_removes_the_credit_and_restores_leverage(world, super_admin):
    response = _client(super_admin).post(
        "/admin/bonuses/bonus/", {"action": "cancel", "_selected_action": [world["bonus"].pk]}
    )
    assert response.status_code == 302
    assert Bonus.objects.get(pk=world["bonus"].pk).status == BonusStatus.CANCELLED
    info = account(world["login"])
    assert info.credit == D("0.00") and info.leverage == 500


def test_read_only_cannot_run_actions(world, read_only):
    _client(read_only).post("/admin/bonuses/bonus/", {"action": "cancel", "_selected_action": [world["bonus"].pk]})
    assert Bonus.objects.get(pk=world["bonus"].pk).status == BonusStatus.ACTIVE


def test_override_leverage_page_sets_leverage(world, super_admin):
    response = _client(super_admin).post(f"/admin/bonuses/bonus/{world['bonus'].pk}/override-leverage/",
                                              {"leverage": "100"})  # fmt: skip
    assert response.status_code == 302 and account(world["login"]).leverage == 100


def test_campaign_actions_duplicate_and_archive(world, campaign_manager):
    client = _client(campaign_manager)
    pk = world["campaign"].pk
    client.post("/admin/bonuses/campaign/", {"action": "duplicate", "_selected_action": [pk]})
    assert Campaign.objects.filter(name__endswith="(copy)", status=CampaignStatus.DRAFT).exists()
    client.post("/admin/bonuses/campaign/", {"action": "archive", "_selected_action": [pk]})
    assert Campaign.objects.get(pk=pk).status == CampaignStatus.ARCHIVED


def test_creating_a_campaign_in_the_admin_writes_the_audit_row(campaign_manager):
    response = _client(campaign_manager).post("/admin/bonuses/campaign/add/", {
        "name": "Admin made", "description": "", "bonus_type": "B", "bonus_percent": "25", "min_deposit": "0",
        "starts_at_0": "2026-01-01", "starts_at_1": "00:00:00", "target_groups": "[]", "target_countries": '["DE"]',
        "agent_codes": "[]", "promo_codes": "[]", "triggers": ["auto_deposit"], "one_per_account": "on",
        "max_concurrent": "1", "lots_per_unit": "0.1", "unit_amount": "1", "counting_symbols": "[]", "min_lot": "0.01",
    })  # fmt: skip
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    campaign = Campaign.objects.get(name="Admin made")
    assert campaign.target_countries == ["DE"] and campaign.status == CampaignStatus.DRAFT
    assert AuditLog.objects.filter(campaign=campaign, action="campaign_created", actor=campaign_manager).exists()


def test_scan_mt5_refreshes_groups_and_countries(world, campaign_manager, read_only):
    assert _client(read_only).post("/admin/bonuses/campaign/scan/").status_code == 403
    assert _client(campaign_manager).post("/admin/bonuses/campaign/scan/").status_code == 302
    scan = Mt5Scan.objects.get()
    assert "DE" in scan.countries and scan.groups


def test_the_audit_log_is_read_only_even_for_a_super_admin(world, super_admin):
    row = AuditLog.objects.first()
    client = _client(super_admin)
    page = client.get(f"/admin/bonuses/auditlog/{row.pk}/change/").content.decode()
    assert "Save" not in page or 'name="_save"' not in page
    assert client.post(f"/admin/bonuses/auditlog/{row.pk}/delete/").status_code == 403
