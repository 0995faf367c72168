"""The bonus API per role: Super Admin, Campaign Manager, Support Agent, Read-Only, an outsider, no auth."""

from __future__ import annotations

import io
from decimal import Decimal as D

import pytest
from openpyxl import load_workbook

from bonuses.choices import BonusStatus, BonusType, CampaignStatus
from bonuses.models import AuditLog, Bonus, MonitoredAccount
from bonuses.services.monitored import monitoring_register
from bonuses.services.triggers import trigger_deposit
from mt5bridge.simulated import deposit
from tests.personas import api_client_for

from .conftest import account, credit_deals, make_account, make_campaign

pytestmark = pytest.mark.django_db

ROLES = ["super_admin", "campaign_manager", "support_agent", "read_only"]
KEY = {"Idempotency-Key": "assign-1"}  # manual assignment needs one (tests/bonuses/test_money_safety.py)


@pytest.fixture
def world(db):
    login = make_account(balance="0", leverage=500, country="DE")
    campaign = make_campaign(bonus_type=BonusType.DYNAMIC_LEVERAGE)
    deposit(login, D("100"))
    (result,) = trigger_deposit(login=login, amount=D("100"))
    monitoring_register(actor="test", login=login)
    return {"login": login, "campaign": campaign, "bonus": result.bonus}


def _endpoints(w) -> list[tuple[str, str, dict | None]]:
    login, cid, bid = w["login"], w["campaign"].pk, w["bonus"].pk
    return [
        ("get", "/api/campaigns", None), ("post", "/api/campaigns", {"name": "x", "bonus_percent": "10"}),
        ("get", f"/api/campaigns/{cid}", None), ("put", f"/api/campaigns/{cid}", {"name": "y", "bonus_percent": "5"}),
        ("post", f"/api/campaigns/{cid}/duplicate", None),
        ("patch", f"/api/campaigns/{cid}/status", {"status": "paused"}),
        ("get", "/api/bonuses", None), ("get", f"/api/bonuses/{bid}", None),
        ("post", "/api/bonuses/check-eligibility", {"login": login, "campaign_id": cid}),
        ("post", "/api/bonuses/assign", {"login": login, "campaign_id": cid, "amount": "5"}),
        ("post", f"/api/bonuses/{bid}/cancel", None), ("post", f"/api/bonuses/{bid}/force-convert", None),
        ("post", f"/api/bonuses/{bid}/override-leverage", {"leverage": 100}),
        ("post", "/api/triggers/deposit", {"login": login, "amount": "100"}),
        ("post", "/api/triggers/registration", {"login": login}),
        ("post", "/api/triggers/promo-code", {"login": login, "promo_code": "X"}),
        ("get", "/api/accounts/mt5-metadata", None), ("get", f"/api/accounts/{login}", None),
        ("get", "/api/monitoring/status", None), ("get", "/api/monitoring/accounts", None),
        ("post", f"/api/monitoring/accounts/{login}/register", None),
        ("post", f"/api/monitoring/accounts/{login}/reset-errors", None),
        ("post", f"/api/monitoring/accounts/{login}/test-deposit", {"amount": "10"}),
        ("post", f"/api/monitoring/accounts/{login}/test-withdraw", {"amount": "10"}),
        ("get", "/api/reports/summary", None), ("get", "/api/reports/conversions", None),
        ("get", "/api/reports/cancellations", None), ("get", "/api/reports/leverage", None),
        ("get", "/api/reports/export", None), ("get", "/api/audit", None),
    ]  # fmt: skip


def test_every_endpoint_refuses_an_outsider_trader(world, outsider_client):
    for method, url, body in _endpoints(world):
        response = getattr(outsider_client, method)(url, body, format="json")
        assert response.status_code == 403, (method, url, response.status_code)
        assert response.json()["error"]["code"]


def test_every_endpoint_needs_authentication(world, anon_client):
    for method, url, body in _endpoints(world):
        response = getattr(anon_client, method)(url, body, format="json")
        assert response.status_code == 401, (method, url)
    assert Bonus.objects.count() == 1


def test_read_only_reads_campaigns_monitor_and_reports_and_changes_nothing(world, read_only):
    """The back office's table: Read-Only views campaigns, the monitor and reports only (no lookup, no audit)."""
    client = api_client_for(read_only)
    for method, url, body in _endpoints(world):
        response = getattr(client, method)(url, body, format="json")
        reads = method == "get" and not url.startswith(("/api/audit", f"/api/accounts/{world['login']}"))
        assert (response.status_code != 403) == reads, (method, url, response.status_code)
    assert Bonus.objects.get(pk=world["bonus"].pk).status == BonusStatus.ACTIVE


@pytest.mark.parametrize(
    ("role", "expected"),
    [("super_admin", 201), ("campaign_manager", 201), ("support_agent", 403), ("read_only", 403)],
)
def test_creating_a_campaign_per_role(role, expected, request):
    client = api_client_for(request.getfixturevalue(role))
    response = client.post("/api/campaigns", {"name": "Spring", "bonus_type": "C", "bonus_percent": "30",
                                              "triggers": ["auto_deposit"], "target_countries": ["DE"]},
                           format="json")  # fmt: skip
    assert response.status_code == expected, response.content
    if expected == 201:
        assert response.json()["status"] == CampaignStatus.DRAFT
        assert AuditLog.objects.filter(campaign_id=response.json()["id"], action="campaign_created").exists()


# Campaign Manager: no manual-assign limit is declared for the role (bonuses/limits.py), so it cannot grant.
@pytest.mark.parametrize(("role", "expected"), [("super_admin", 201), ("campaign_manager", 403),
                                                ("support_agent", 201), ("read_only", 403)])  # fmt: skip
def test_manual_assign_per_role(role, expected, request, world):
    client = api_client_for(request.getfixturevalue(role))
    campaign = make_campaign(name="manual", triggers=[], max_concurrent=5, fixed_amount=D("20"))
    response = client.post("/api/bonuses/assign", {"login": world["login"], "campaign_id": campaign.pk,
                                                   "amount": "20"}, format="json", headers=KEY)  # fmt: skip
    assert response.status_code == expected, response.content


@pytest.mark.parametrize(("role", "expected"), [("super_admin", 200), ("campaign_manager", 403),
                                                ("support_agent", 403), ("read_only", 403)])  # fmt: skip
def test_cancel_per_role(role, expected, request, world):
    client = api_client_for(request.getfixturevalue(role))
    response = client.post(f"/api/bonuses/{world['bonus'].pk}/cancel")
    assert response.status_code == expected
    if expected == 200:
        assert response.json()["status"] == BonusStatus.CANCELLED
        assert account(world["login"]).credit == D("0.00")


def test_assign_answers_409_with_every_failure_then_override_assigns(world, support_agent):
    client = api_client_for(support_agent)
    campaign = make_campaign(name="FR only", target_countries=["FR"], min_deposit=D("1000"), triggers=[])
    body = {"login": world["login"], "campaign_id": campaign.pk, "deposit_amount": "100"}
    check = client.post("/api/bonuses/check-eligibility", body, format="json").json()
    assert check["eligible"] is False and check["can_override"] is True
    response = client.post("/api/bonuses/assign", body, format="json", headers=KEY)
    assert response.status_code == 409
    failures = response.json()["error"]["details"]["failures"]
    assert {f["check"] for f in failures} == {"country_mismatch", "deposit_below_min"}
    assert all(f["overridable"] for f in failures)
    response = client.post("/api/bonuses/assign", {**body, "override_eligibility": True}, format="json", headers=KEY)
    assert response.status_code == 201
    assert response.json()["overridden_checks"] == ["country_mismatch", "deposit_below_min"]


def test_override_cannot_assign_from_a_paused_campaign(world, super_admin):
    client = api_client_for(super_admin)
    campaign = make_campaign(name="paused", status=CampaignStatus.PAUSED, triggers=[], fixed_amount=D("5"))
    response = client.post(
        "/api/bonuses/assign",
        {"login": world["login"], "campaign_id": campaign.pk, "amount": "5", "override_eligibility": True},
        format="json",
        headers=KEY,
    )
    assert response.status_code == 409
    assert [f["check"] for f in response.json()["error"]["details"]["failures"]] == ["campaign_status"]


def test_deposit_trigger_endpoint_is_idempotent(world, super_admin):
    client = api_client_for(super_admin)
    for _ in range(3):
        response = client.post("/api/triggers/deposit", {"login": world["login"], "amount": "100"}, format="json")
        assert response.status_code == 200
        assert response.json()["results"][0]["bonus"]["id"] == world["bonus"].pk
    assert len(credit_deals(world["login"])) == 1


def test_campaign_status_rejects_a_forbidden_transition(world, campaign_manager):
    client = api_client_for(campaign_manager)
    url = f"/api/campaigns/{world['campaign'].pk}/status"
    assert client.patch(url, {"status": "draft"}, format="json").status_code == 409
    assert client.patch(url, {"status": "nonsense"}, format="json").status_code == 400
    assert client.patch(url, {"status": "paused"}, format="json").json()["status"] == "paused"


def test_bad_input_is_a_4xx_json_error(world, super_admin):
    client = api_client_for(super_admin)
    bad = [
        ("/api/campaigns", {"name": "x", "bonus_percent": "-5"}),
        ("/api/campaigns", {"name": "x", "bonus_percent": "5", "min_deposit": "100", "max_deposit": "10"}),
        ("/api/bonuses/assign", {"login": "abc", "campaign_id": 1}),
        ("/api/bonuses/assign", {"login": world["login"], "campaign_id": 999999}),
        ("/api/triggers/deposit", {"login": world["login"], "amount": "1e999"}),
        ("/api/triggers/deposit", {"login": world["login"], "amount": "12345"}),
        (f"/api/bonuses/{world['bonus'].pk}/override-leverage", {"leverage": 0}),
    ]
    for url, body in bad:
        response = client.post(url, body, format="json")
        assert 400 <= response.status_code < 500, (url, response.status_code)
        assert "error" in response.json()
    assert client.get("/api/bonuses?login=xyz").status_code == 400
    assert client.get("/api/bonuses?offset=9223372036854775808").status_code == 400  # was a 500 (the OFFSET)
    assert client.get("/api/accounts/99999999999").status_code == 404


def test_account_lookup_by_integer_login_leaves_uuid_routes_to_traders(world, support_agent, owned_account):
    data = api_client_for(support_agent).get(f"/api/accounts/{world['login']}").json()
    assert data["leverage"] == 250 and data["credit"] == "100.00"
    assert data["bonuses"][0]["id"] == world["bonus"].pk
    assert any(a["action"] == "credit_posted" for a in data["audit"])
    mine = api_client_for(owned_account.owner).get(f"/api/accounts/{owned_account.pk}/")
    assert mine.status_code == 200 and mine.json()["id"] == str(owned_account.pk)


def test_metadata_lists_groups_countries_and_accounts(world, read_only):
    data = api_client_for(read_only).get("/api/accounts/mt5-metadata").json()
    assert "DE" in data["countries"] and world["login"] in data["accounts"] and data["groups"]


def test_reset_errors_resumes_a_paused_account(world, super_admin):
    MonitoredAccount.objects.filter(login=world["login"]).update(status="paused", consecutive_errors=5)
    response = api_client_for(super_admin).post(f"/api/monitoring/accounts/{world['login']}/reset-errors")
    assert response.status_code == 200
    assert response.json()["status"] == "active" and response.json()["consecutive_errors"] == 0
    assert api_client_for(super_admin).post("/api/monitoring/accounts/42/reset-errors").status_code == 404


def test_test_deposit_and_withdraw_move_money_on_the_simulated_server(world, super_admin):
    client = api_client_for(super_admin)
    before = account(world["login"]).balance
    assert client.post(f"/api/monitoring/accounts/{world['login']}/test-deposit", {"amount": "50"},
                       format="json").status_code == 200  # fmt: skip
    assert client.post(f"/api/monitoring/accounts/{world['login']}/test-withdraw", {"amount": "20"},
                       format="json").status_code == 200  # fmt: skip
    assert account(world["login"]).balance == before + 30
    assert client.post(f"/api/monitoring/accounts/{world['login']}/test-withdraw", {"amount": "99999"},
                       format="json").status_code == 409  # fmt: skip


def test_test_deposit_is_refused_on_a_real_gateway(world, super_admin, settings):
    settings.BONUS_MT5_GATEWAY = "manager"
    response = api_client_for(super_admin).post(f"/api/monitoring/accounts/{world['login']}/test-deposit",
                                                {"amount": "50"}, format="json")  # fmt: skip
    assert response.status_code == 403 and response.json()["error"]["code"] == "simulated_only"


def test_reports_and_exports(world, read_only):
    client = api_client_for(read_only)
    summary = client.get("/api/reports/summary").json()["rows"]
    assert summary[0]["given"] == "100.00" and summary[0]["active"] == 1
    assert client.get("/api/reports/leverage").json()["rows"][0]["leverage"] == 250
    csv = client.get("/api/reports/export?report=summary&format=csv")
    assert csv.status_code == 200 and csv["Content-Type"] == "text/csv"
    assert b"campaign_id" in csv.content and b"100.00" in csv.content
    xlsx = client.get("/api/reports/export?report=leverage&format=xlsx")
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert [c.value for c in sheet[1]][:2] == ["bonus_id", "login"]
    assert client.get("/api/reports/export?format=pdf").status_code == 400


def test_audit_query_filters_by_login(world, super_admin):
    rows = api_client_for(super_admin).get(f"/api/audit?login={world['login']}").json()["results"]
    assert rows and all(r["login"] == world["login"] for r in rows)
    assert {"before", "after", "actor_label"} <= set(rows[0])


def test_monitoring_status_and_accounts(world, read_only):
    client = api_client_for(read_only)
    status = client.get("/api/monitoring/status").json()
    assert status["accounts"]["total"] >= 1 and "shards" in status
    listed = client.get("/api/monitoring/accounts").json()["results"]
    assert any(row["login"] == world["login"] for row in listed)


def test_action_routes_answer_only_their_own_method(world, support_agent):
    client = api_client_for(support_agent)
    cid = world["campaign"].pk
    assert client.put(f"/api/campaigns/{cid}/duplicate", {"name": "z", "bonus_percent": "1"}).status_code == 405
    assert client.get(f"/api/bonuses/{world['bonus'].pk}/cancel").status_code == 405
    assert Bonus.objects.get(pk=world["bonus"].pk).status == BonusStatus.ACTIVE
