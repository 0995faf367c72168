"""Billing pages and the UI gate: disabled controls with an upgrade link, local-mode banner, account choice."""

from __future__ import annotations

import pytest
from django.template import Context, Template
from django.test import Client, RequestFactory

from entitlements.models import BillingPause
from tests.entitlements.test_gates import UNLOCKS

from .conftest import make_account, on_plan


@pytest.fixture
def web(owner) -> Client:
    client = Client()
    client.force_login(owner)
    return client


def render_gate(user, feature: str) -> str:
    request = RequestFactory().get("/")
    request.user = user
    template = Template('{% load billing %}{% gated_control feature "Open" "/go/" %}')
    return template.render(Context({"request": request, "feature": feature}))


@pytest.mark.parametrize(("feature", "plan"), sorted(UNLOCKS.items()))
def test_a_gated_control_is_disabled_with_an_upgrade_link_naming_the_plan(owner, stripe_mode, feature, plan):
    html = render_gate(owner, feature)
    assert "disabled" in html
    assert f"Upgrade to {plan.capitalize()}" in html
    assert 'href="/billing/pricing/"' in html
    assert 'href="/go/"' not in html
    on_plan(owner, plan)
    html = render_gate(owner, feature)
    assert 'href="/go/"' in html and "disabled" not in html


def test_pages_need_a_login(client):
    for url in ["/billing/", "/billing/pricing/", "/billing/accounts/"]:
        response = client.get(url)
        assert response.status_code == 302 and "login" in response["Location"]


def test_local_mode_is_clearly_shown_and_plan_buttons_are_disabled(web, local_mode):
    overview = web.get("/billing/")
    assert overview.status_code == 200
    assert "Billing: local mode." in overview.content.decode()
    assert "My plan: Pro" in overview.content.decode()
    pricing = web.get("/billing/pricing/").content.decode()
    assert "Billing: local mode." in pricing
    assert "Staff change plans in the admin." in pricing


def test_with_stripe_the_pricing_page_offers_checkout_and_no_local_banner(web, fake_stripe, priced_plans):
    page = web.get("/billing/pricing/").content.decode()
    assert "local mode" not in page
    assert "/billing/checkout/pro/month/" in page and "/billing/checkout/enterprise/year/" in page


def test_the_upgrade_button_redirects_to_stripe_checkout(web, fake_stripe, priced_plans):
    response = web.post("/billing/checkout/basic/month/")
    assert response.status_code == 302
    assert response["Location"].startswith("https://checkout.stripe.test/")


def test_an_upgrade_in_local_mode_shows_a_message_instead_of_an_error(web, local_mode):
    response = web.post("/billing/checkout/basic/month/", follow=True)
    assert response.status_code == 200
    assert "local mode" in response.content.decode()


def test_the_portal_button_redirects_to_the_stripe_portal(web, owner, fake_stripe):
    from djstripe.models import Customer

    Customer.get_or_create(subscriber=owner)
    response = web.post("/billing/portal/")
    assert response.status_code == 302
    assert response["Location"].startswith("https://billing.stripe.test/")


def test_the_trader_picks_active_accounts_on_the_page(web, owner, stripe_mode):
    keep, other = make_account(owner, active=False, name="Keep me"), make_account(owner, name="Other")
    page = web.get("/billing/accounts/").content.decode()
    assert "Keep me" in page and "allows 1 active account" in page
    response = web.post("/billing/accounts/", {"account": [str(keep.pk)]})
    assert response.status_code == 302
    keep.refresh_from_db(), other.refresh_from_db()
    assert keep.is_active and not other.is_active
    assert BillingPause.objects.filter(account=other).exists()


def test_picking_too_many_accounts_shows_the_plan_that_allows_them(web, owner, stripe_mode):
    accounts = [make_account(owner), make_account(owner, active=False)]
    response = web.post("/billing/accounts/", {"account": [str(a.pk) for a in accounts]}, follow=True)
    assert response.status_code == 200
    assert "Basic" in response.content.decode()
    assert not accounts[1].__class__.objects.get(pk=accounts[1].pk).is_active


def test_an_outsider_cannot_pick_someone_elses_accounts(owner, outsider, stripe_mode):
    theirs = make_account(owner, active=False)
    client = Client()
    client.force_login(outsider)
    response = client.post("/billing/accounts/", {"account": [str(theirs.pk)]}, follow=True)
    assert "not yours" in response.content.decode()
    theirs.refresh_from_db()
    assert not theirs.is_active
