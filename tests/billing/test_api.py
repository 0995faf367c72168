"""/api/billing/*: plans, subscription, usage, Checkout, Portal, active accounts; owner, outsider, anonymous."""

from __future__ import annotations

import pytest
from djstripe.models import Customer

from entitlements.models import BillingPause
from entitlements.selectors import plan_for_user

from .conftest import make_account, on_plan

PRIVATE = ["/api/billing/subscription", "/api/billing/usage", "/api/billing/active-accounts"]


def test_plans_are_public_with_limits_features_and_trials(anon_client):
    response = anon_client.get("/api/billing/plans")
    assert response.status_code == 200
    plans = {p["slug"]: p for p in response.json()}
    assert list(plans) == ["free", "basic", "pro", "enterprise"]
    assert plans["free"]["limits"] == {"accounts": 1, "history_days": 30, "copy_links": 0, "slaves_per_master": 0}
    assert plans["pro"]["limits"]["accounts"] is None
    assert plans["pro"]["price_monthly"] == "15.00"
    assert plans["enterprise"]["features"]["systeme_sync"] is True
    assert plans["basic"]["trial_days"] == 7
    assert plans["basic"]["purchasable"] == {"month": False, "year": False}


@pytest.mark.parametrize("url", PRIVATE)
def test_private_endpoints_need_a_login(anon_client, url):
    response = anon_client.get(url)
    assert response.status_code in (401, 403)
    assert "error" in response.json()


@pytest.mark.parametrize("url", ["/api/billing/checkout", "/api/billing/portal", "/api/billing/active-accounts"])
def test_private_actions_need_a_login(anon_client, url):
    assert anon_client.post(url, {}, format="json").status_code in (401, 403)


def test_subscription_in_local_mode_says_so(owner_client, local_mode):
    body = owner_client.get("/api/billing/subscription").json()
    assert body["local_mode"] is True
    assert body["plan"]["slug"] == "pro"
    assert body["reason"] == "local_mode"


def test_usage_counts_accounts_against_the_limit(owner, owner_client, stripe_mode):
    make_account(owner)
    make_account(owner, active=False)
    owner_client.get("/api/billing/plans")
    body = owner_client.get("/api/billing/usage").json()
    assert body["plan"] == "free"
    assert body["accounts"] == {"used": 1, "paused": 1, "limit": 1}
    assert body["history_days"] == {"limit": 30}
    assert body["api_calls_today"] >= 1


def test_checkout_in_local_mode_is_a_409_that_says_staff_change_plans(owner_client, local_mode):
    response = owner_client.post("/api/billing/checkout", {"plan": "pro"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "billing_local_mode"


def test_checkout_creates_a_stripe_session_with_the_plans_price_and_trial(
    owner, owner_client, fake_stripe, priced_plans
):
    response = owner_client.post("/api/billing/checkout", {"plan": "pro", "interval": "year"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["url"].startswith("https://checkout.stripe.test/")
    assert body["trial_days"] == 14
    session = fake_stripe.objects[body["id"]]
    assert session["line_items_sent"] == [{"price": priced_plans["pro"]["year"]["id"], "quantity": "1"}]
    assert session["subscription_data_sent"]["trial_period_days"] == "14"
    assert session["customer"] == Customer.objects.get(subscriber=owner).id
    assert session["client_reference_id"] == str(owner.pk)


def test_checkout_refuses_unknown_plans_unpriced_plans_and_bad_intervals(owner_client, fake_stripe, priced_plans):
    assert owner_client.post("/api/billing/checkout", {"plan": "platinum"}, format="json").status_code == 400
    assert (
        owner_client.post("/api/billing/checkout", {"plan": "pro", "interval": "week"}, format="json").status_code
        == 400
    )
    assert owner_client.post("/api/billing/checkout", {"plan": "free"}, format="json").json()["error"]["code"] == (
        "plan_not_for_sale"
    )


def test_checkout_when_stripe_fails_is_a_502_not_a_500(owner_client, fake_stripe, priced_plans):
    import stripe

    previous, stripe.max_network_retries = stripe.max_network_retries, 0
    fake_stripe.fail_next = (400, {"error": {"type": "invalid_request_error", "message": "No such price"}})
    try:
        response = owner_client.post("/api/billing/checkout", {"plan": "basic"}, format="json")
    finally:
        stripe.max_network_retries = previous
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "stripe_error"


def test_portal_needs_a_customer_then_returns_the_portal_url(owner, owner_client, fake_stripe):
    assert owner_client.post("/api/billing/portal").json()["error"]["code"] == "no_customer"
    Customer.get_or_create(subscriber=owner)
    response = owner_client.post("/api/billing/portal")
    assert response.status_code == 201
    assert response.json()["url"].startswith("https://billing.stripe.test/p/session/")


def test_the_trader_chooses_which_accounts_stay_active_under_the_limit(owner, owner_client, stripe_mode):
    first, second, third = make_account(owner), make_account(owner, active=False), make_account(owner, active=False)
    response = owner_client.post("/api/billing/active-accounts", {"account_ids": [str(third.pk)]}, format="json")
    assert response.status_code == 200, response.json()
    first.refresh_from_db(), third.refresh_from_db()
    assert (first.is_active, third.is_active) == (False, True)
    assert BillingPause.objects.filter(account=first).exists()
    listed = owner_client.get("/api/billing/active-accounts").json()
    assert listed["limit"] == 1
    assert [a["is_active"] for a in listed["accounts"]] == [False, False, True]
    assert second.pk  # untouched, still stored


def test_choosing_more_accounts_than_the_plan_allows_is_a_403_naming_the_plan(owner, owner_client, stripe_mode):
    accounts = [make_account(owner), make_account(owner, active=False)]
    response = owner_client.post(
        "/api/billing/active-accounts", {"account_ids": [str(a.pk) for a in accounts]}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["error"]["details"]["required_plan"] == "basic"


def test_an_outsider_cannot_activate_someone_elses_account(owner, outsider_client, stripe_mode):
    theirs = make_account(owner, active=False)
    response = outsider_client.post("/api/billing/active-accounts", {"account_ids": [str(theirs.pk)]}, format="json")
    assert response.status_code == 403
    theirs.refresh_from_db()
    assert theirs.is_active is False


def test_an_outsider_sees_only_their_own_plan_and_usage(owner, outsider_client, stripe_mode):
    on_plan(owner, "enterprise")
    make_account(owner)
    assert outsider_client.get("/api/billing/subscription").json()["plan"]["slug"] == "free"
    assert outsider_client.get("/api/billing/usage").json()["accounts"]["used"] == 0
    assert outsider_client.get("/api/billing/active-accounts").json()["accounts"] == []
    assert plan_for_user(owner).slug == "enterprise"


def test_bad_active_accounts_input_is_a_400(owner_client):
    assert (
        owner_client.post("/api/billing/active-accounts", {"account_ids": ["nope"]}, format="json").status_code == 400
    )


def test_bearer_token_access_needs_a_plan_with_api_access(owner, stripe_mode):
    from rest_framework.test import APIClient

    from accounts.jwt import jwt_issue

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {jwt_issue(user=owner)['access']}")
    response = client.get("/api/billing/usage")
    assert response.status_code == 403
    assert response.json()["error"]["details"]["required_plan"] == "pro"
    on_plan(owner, "pro")
    assert client.get("/api/billing/usage").status_code == 200
