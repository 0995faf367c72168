"""Billing admin: smoke test per page, staff change plans (audit, pausing), usage per user against limits."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from entitlements.models import Plan, PlanAssignment, PlanChange
from entitlements.selectors import plan_for_user

from .conftest import make_account


@pytest.fixture
def admin_client(super_admin) -> Client:
    client = Client()
    client.force_login(super_admin)
    return client


@pytest.mark.parametrize("model", ["plan", "planassignment", "planchange", "billingpause", "userusage"])
def test_every_billing_admin_list_renders(admin_client, owner, model):
    make_account(owner)
    assert admin_client.get(reverse(f"admin:entitlements_{model}_changelist")).status_code == 200


def test_djstripe_admin_for_customers_and_subscriptions_is_there(admin_client):
    assert admin_client.get(reverse("admin:djstripe_customer_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:djstripe_subscription_changelist")).status_code == 200


def test_usage_per_user_shows_accounts_against_the_limit(admin_client, owner, stripe_mode):
    make_account(owner), make_account(owner)
    page = admin_client.get(reverse("admin:entitlements_userusage_changelist")).content.decode()
    assert owner.email in page
    assert "2 / 1 (over)" in page


def test_staff_put_a_user_on_free_in_local_mode_and_extra_accounts_are_paused_not_deleted(
    admin_client, owner, super_admin, local_mode
):
    accounts = [make_account(owner) for _ in range(5)]
    free = Plan.objects.get(slug="free")
    response = admin_client.post(
        reverse("admin:entitlements_planassignment_add"),
        {"user": owner.pk, "manual_plan": free.pk, "manual_until_0": "", "manual_until_1": "", "note": "demo"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert plan_for_user(owner).slug == "free"
    change = PlanChange.objects.get(user=owner, to_plan=free)
    assert (change.actor, change.accounts_paused, change.reason) == (super_admin, 4, "staff")
    assert type(accounts[0]).objects.filter(owner=owner).count() == 5
    assert [a.is_active for a in type(accounts[0]).objects.filter(owner=owner).order_by("created_at")] == [
        True,
        False,
        False,
        False,
        False,
    ]
    # Back to the default plan: the paused accounts come back.
    assignment = PlanAssignment.objects.get(user=owner)
    response = admin_client.post(
        reverse("admin:entitlements_planassignment_change", args=[assignment.pk]),
        {"manual_plan": "", "manual_until_0": "", "manual_until_1": "", "note": ""},
    )
    assert response.status_code == 302
    assert type(accounts[0]).objects.filter(owner=owner, is_active=True).count() == 5


def test_plans_are_super_admin_business_read_only_staff_can_neither_see_nor_change_them(read_only):
    client = Client()
    client.force_login(read_only)
    assert client.get(reverse("admin:entitlements_plan_changelist")).status_code == 403
    plan = Plan.objects.get(slug="pro")
    response = client.post(reverse("admin:entitlements_plan_change", args=[plan.pk]), {"name": "Hacked"})
    assert response.status_code == 403
    assert Plan.objects.get(pk=plan.pk).name == "Pro"


def test_a_trader_cannot_open_the_billing_admin(owner):
    client = Client()
    client.force_login(owner)
    response = client.get(reverse("admin:entitlements_planassignment_changelist"))
    assert response.status_code == 302
