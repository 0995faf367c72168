"""Billing fixtures: a fake Stripe on loopback, Stripe mode on/off, signed webhook deliveries."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
import stripe

from billing.models import Plan
from billing.selectors import forget_user_plan

from .fake_stripe import FakeStripe

WEBHOOK_SECRET = "whsec_test_secret_for_billing"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    """Personas hash a password each; the slow default hasher is not what these tests check."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _seeded_plans(db):
    """The four plans of the data migration (also when the suite runs without migrations)."""
    if not Plan.objects.exists():
        from importlib import import_module

        from django.apps import apps

        import_module("billing.migrations.0002_seed_plans").seed(apps, None)


@pytest.fixture
def fake_stripe(settings):
    """Stripe mode against the fake server: a secret key, and the stripe library pointed at 127.0.0.1."""
    fake = FakeStripe().start()
    previous = stripe.api_base
    stripe.api_base = fake.url
    settings.STRIPE_TEST_SECRET_KEY = "sk_test_FakeKeyForBillingTests42"
    settings.STRIPE_LIVE_MODE = False
    settings.DJSTRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    yield fake
    stripe.api_base = previous
    fake.stop()


@pytest.fixture
def local_mode(settings):
    settings.STRIPE_TEST_SECRET_KEY = ""
    settings.STRIPE_LIVE_SECRET_KEY = ""
    settings.BILLING_DEFAULT_PLAN = "pro"


@pytest.fixture
def priced_plans(fake_stripe, db) -> dict[str, dict]:
    """Stripe prices for Basic, Pro and Enterprise on the fake, written into the plans like staff would."""
    prices = {}
    for plan in Plan.objects.exclude(slug="free"):
        product = fake_stripe.product(plan.name)
        monthly = fake_stripe.price(product, int(plan.price_monthly * 100), "month")
        yearly = fake_stripe.price(product, int(plan.price_yearly * 100), "year")
        plan.stripe_price_monthly, plan.stripe_price_yearly = monthly["id"], yearly["id"]
        plan.save()
        prices[plan.slug] = {"month": monthly, "year": yearly}
    return prices


def sign(payload: str, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """The Stripe-Signature header: HMAC-SHA256 of "{t}.{payload}" (stripe.WebhookSignature's scheme)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={signature}"


def event_payload(event_type: str, obj: dict, *, event_id: str | None = None, created: int | None = None) -> str:
    return json.dumps(
        {
            "id": event_id or f"evt_{obj['id']}_{event_type}_{time.time_ns()}",
            "object": "event",
            "api_version": "2026-05-27.dahlia",
            "created": created or int(time.time()),
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
            "data": {"object": obj},
        }
    )


def deliver(client, payload: str, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None, headers=None):
    return client.post(
        "/api/webhooks/stripe",
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(payload, secret, timestamp),
        **(headers or {}),
    )


def on_plan(user, slug: str, *, actor=None):
    """Staff put ``user`` on ``slug`` (the admin's path)."""
    from billing.services import plan_assign_manual

    plan_assign_manual(user=user, plan=Plan.objects.get(slug=slug), actor=actor)
    forget_user_plan(user.pk)


@pytest.fixture
def stripe_mode(settings):
    """Stripe keys set (no server needed): users without a subscription are on Free."""
    settings.STRIPE_TEST_SECRET_KEY = "sk_test_FakeKeyForBillingTests42"
    settings.STRIPE_LIVE_MODE = False


_logins = iter(range(910001, 999999))


def make_account(owner, *, active: bool = True, name: str = ""):
    """A trading account row without the MT5 round trip (billing only counts and pauses them)."""
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
