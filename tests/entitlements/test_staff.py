"""Staff are never held to a trader's plan: with Stripe keys set, staff without a subscription are on Free."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.choices import Role
from accounts.jwt import jwt_issue
from entitlements import gates
from entitlements.models import FEATURES
from entitlements.selectors import plan_for_user
from tests.personas import staff_user

STAFF = [Role.SUPER_ADMIN, Role.CAMPAIGN_MANAGER, Role.SUPPORT_AGENT, Role.READ_ONLY]


def bearer_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {jwt_issue(user=user)['access']}")
    return client


def test_super_admin_calling_the_deposit_trigger_with_a_token_is_not_refused_by_the_api_access_gate(stripe_mode):
    user = staff_user(Role.SUPER_ADMIN)
    assert plan_for_user(user).slug == "free"  # no subscription, Stripe keys set: a trader would be refused
    response = bearer_client(user).post("/api/triggers/deposit", {"login": 999, "amount": "100"}, format="json")
    assert response.status_code != 403, response.content
    assert response.status_code < 500


@pytest.mark.parametrize(
    ("role", "method", "url", "body"),
    [
        (Role.CAMPAIGN_MANAGER, "post", "/api/campaigns", {}),  # invalid body: 400 from the view, not 403
        (Role.CAMPAIGN_MANAGER, "get", "/api/campaigns", None),
        (Role.SUPPORT_AGENT, "get", "/api/bonuses", None),
    ],
)
def test_staff_with_a_token_reach_their_roles_endpoints_in_stripe_mode(stripe_mode, role, method, url, body):
    response = getattr(bearer_client(staff_user(role)), method)(url, body, format="json")
    assert response.status_code in (200, 201, 400), response.content


@pytest.mark.parametrize("role", STAFF)
def test_staff_with_a_token_reach_what_their_role_allows(stripe_mode, role):
    # /api/auth/me is every signed-in person's; the plan gate must not stand in front of it for staff.
    assert bearer_client(staff_user(role)).get("/api/auth/me").status_code == 200


def test_a_trader_on_free_with_a_token_is_still_refused_naming_pro(stripe_mode, owner):
    response = bearer_client(owner).get("/api/auth/me")
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "plan_required"
    assert error["details"]["required_plan"] == "pro"


@pytest.mark.parametrize("role", STAFF)
def test_no_feature_or_limit_gate_refuses_staff(stripe_mode, role):
    user = staff_user(role)
    for feature in FEATURES:
        assert gates.has_feature(user, feature)
        assert gates.feature_gate(user, feature)["allowed"]
        gates.require_feature(user, feature)
    gates.require_limit(user, "copy_links", 10_000)
    assert gates.history_start(user.pk, viewer=user) is None
