"""Campaign targeting by MT5 group masks: who gets the bonus, and the form and API refusing a malformed mask."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from bonuses.eligibility import AccountFacts, check_eligibility
from bonuses.models import Bonus, Campaign
from bonuses.services.triggers import trigger_deposit
from mt5bridge.groups import group_matches
from mt5bridge.simulated import deposit
from tests.personas import api_client_for

from .conftest import make_account, make_campaign

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
part = st.text(alphabet="abAB", min_size=1, max_size=3)
groups = st.lists(part, min_size=1, max_size=3).map("\\".join)
patterns = st.lists(st.text(alphabet="abAB*", min_size=1, max_size=4), min_size=1, max_size=3).map("\\".join)
signed = st.tuples(st.booleans(), patterns).map(lambda p: f"!{p[1]}" if p[0] else p[1])


def _group_failure(group: str, targets: list[str]) -> bool:
    failures = check_eligibility(
        status="active", starts_at=NOW - timedelta(days=1), ends_at=None, target_groups=targets, target_countries=[],
        min_deposit=D("0"), max_deposit=None, one_per_account=True, max_concurrent=1,
        account=AccountFacts(group=group, country="DE", previous_bonuses=0, open_bonuses=0), deposit=None, now=NOW,
    )  # fmt: skip
    return any(f.check == "group_mismatch" for f in failures)


@given(groups, st.lists(signed, max_size=4))
def test_eligibility_targets_exactly_the_groups_the_shared_reading_selects(group, targets):
    expected_mismatch = bool(targets) and not group_matches(group, targets)
    assert _group_failure(group, targets) == expected_mismatch


def test_targets_written_as_mt5_writes_them():
    assert not _group_failure("REAL\\Pro", ["real\\*"])
    assert _group_failure("real\\test1", ["real\\*", "!real\\test*"])
    assert not _group_failure("real\\pro", ["real\\*,!real\\test*"])
    assert not _group_failure("real\\pro", ["!demo*"]) and _group_failure("demo\\std", ["!demo*"])
    assert not _group_failure("anything", [])


@pytest.mark.django_db
def test_a_deposit_gets_the_bonus_only_in_a_targeted_group():
    campaign = make_campaign(target_groups=["real\\*", "!real\\test*"])
    logins = {
        "real\\pro": make_account(balance="0", group="real\\pro"),
        "real\\test2": make_account(balance="0", group="real\\test2"),
        "demo\\std": make_account(balance="0", group="demo\\std"),
    }
    for login in logins.values():
        deposit(login, D("100"))
        trigger_deposit(login=login, amount=D("100"))
    given_to = {group for group, login in logins.items() if Bonus.objects.filter(campaign=campaign, login=login)}
    assert given_to == {"real\\pro"}


def _admin_post(user, target_groups: str):
    client = Client()
    client.force_login(user)
    return client.post("/admin/bonuses/campaign/add/", {
        "name": f"Masks {target_groups}", "description": "", "bonus_type": "B", "bonus_percent": "25",
        "min_deposit": "0", "starts_at_0": "2026-01-01", "starts_at_1": "00:00:00", "target_groups": target_groups,
        "target_countries": "[]", "agent_codes": "[]", "promo_codes": "[]", "triggers": ["auto_deposit"],
        "one_per_account": "on", "max_concurrent": "1", "lots_per_unit": "0.1", "unit_amount": "1",
        "counting_symbols": "[]", "min_lot": "0.01",
    })  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("target_groups", "words"),
    [('["real/*"]', "backslash"), ('["real\\\\*", ""]', "empty"), ('["!"]', "must be followed")],
)
def test_the_campaign_form_shows_what_is_wrong_with_a_mask(campaign_manager, target_groups, words):
    response = _admin_post(campaign_manager, target_groups)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert words in " ".join(errors["target_groups"])
    assert not Campaign.objects.filter(name__startswith="Masks").exists()


@pytest.mark.django_db
def test_the_campaign_form_keeps_a_well_formed_mask(campaign_manager):
    response = _admin_post(campaign_manager, '["real\\\\*,!real\\\\test*", "!demo*"]')
    assert response.status_code == 302
    assert Campaign.objects.get(name__startswith="Masks").target_groups == ["real\\*,!real\\test*", "!demo*"]


@pytest.mark.django_db
def test_the_api_refuses_a_malformed_mask_with_a_400(super_admin):
    client = api_client_for(super_admin)
    body = {"name": "Masks", "bonus_type": "B", "bonus_percent": "10", "target_groups": ["real\\*", "demo/*"]}
    response = client.post("/api/campaigns", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid_group_mask"
    assert "backslash" in response.json()["error"]["message"]
    body["target_groups"] = ["real\\*", "!real\\test*"]
    assert client.post("/api/campaigns", body, format="json").status_code == 201
