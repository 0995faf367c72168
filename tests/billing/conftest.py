"""Billing fixtures: a fake Stripe on loopback and signed webhook deliveries (plan fixtures: tests/entitlements)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
import stripe

from entitlements.models import Plan
from tests.entitlements.conftest import (  # noqa: F401  (fixtures and helpers shared with the plan tests)
    _fast_passwords,
    _seeded_plans,
    local_mode,
    make_account,
    on_plan,
    stripe_mode,
)

from .fake_stripe import FakeStripe

WEBHOOK_SECRET = "whsec_test_secret_for_billing"


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
