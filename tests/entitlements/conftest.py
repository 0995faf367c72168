"""Entitlements fixtures: the seeded plans, Stripe keys on/off (local mode), staff plan choices, accounts."""

from __future__ import annotations

import pytest

from entitlements.catalog import seed_plans
from entitlements.models import Plan
from entitlements.selectors import forget_user_plan
from entitlements.services import plan_assign_manual


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """Personas hash a password each; the slow default hasher is not what these tests check."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _seeded_plans(db):
    """The four plans (also when the suite runs without migrations)."""
    seed_plans(Plan.objects)


@pytest.fixture
def local_mode(settings):
    settings.STRIPE_TEST_SECRET_KEY = ""
    settings.STRIPE_LIVE_SECRET_KEY = ""
    settings.BILLING_DEFAULT_PLAN = "pro"


@pytest.fixture
def stripe_mode(settings):
    """Stripe keys set (no server needed): users without a subscription are on Free."""
    settings.STRIPE_TEST_SECRET_KEY = "sk_test_FakeKeyForBillingTests42"
    settings.STRIPE_LIVE_MODE = False


def on_plan(user, slug: str, *, actor=None):
    """Staff put ``user`` on ``slug`` (the admin's path)."""
    plan_assign_manual(user=user, plan=Plan.objects.get(slug=slug), actor=actor)
    forget_user_plan(user.pk)


_logins = iter(range(910001, 999999))


def make_account(owner, *, active: bool = True, name: str = ""):
    """A trading account row without the MT5 round trip (the plans only count and pause them)."""
    from accounts.models import TradingAccount

    login = next(_logins)
    return TradingAccount.objects.create(
        owner=owner,
        login=login,
        server="MetaSim-Demo",
        name=name or str(login),
        is_active=active,
        password_encrypted=b"not-a-real-secret",
    )
