"""Stripe webhooks at /api/webhooks/stripe: signatures, tolerance, replays, order, and subscription states."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from djstripe.models import Customer, Event, WebhookEventTrigger

from entitlements.models import PlanAssignment, PlanChange
from entitlements.selectors import plan_for_user

from .conftest import WEBHOOK_SECRET, deliver, event_payload, make_account


@pytest.fixture
def customer(owner, fake_stripe):
    """The owner's Stripe customer, created through dj-stripe (POST /v1/customers on the fake)."""
    return Customer.get_or_create(subscriber=owner)[0]


@pytest.fixture
def client() -> Client:
    return Client()


def subscribe(fake_stripe, customer, price, **kwargs) -> dict:
    return fake_stripe.subscription(customer=customer.id, price=price, **kwargs)


def test_a_signed_subscription_event_puts_the_user_on_the_subscribed_plan(
    client, owner, customer, fake_stripe, priced_plans
):
    sub = subscribe(fake_stripe, customer, priced_plans["pro"]["year"])
    response = deliver(client, event_payload("customer.subscription.created", sub))
    assert response.status_code == 200, response.content
    assert plan_for_user(owner).slug == "pro"
    assignment = PlanAssignment.objects.get(user=owner)
    assert (assignment.subscription_id, assignment.subscription_status, assignment.interval) == (
        sub["id"],
        "active",
        "year",
    )
    change = PlanChange.objects.get(user=owner)
    assert (change.from_plan, change.to_plan.slug, change.reason) == (None, "pro", "stripe")
    assert change.stripe_event_id == response.json()["event"]
    # dj-stripe re-read the subscription from Stripe before syncing it.
    assert fake_stripe.requests_to("GET", f"/v1/subscriptions/{sub['id']}")


def test_a_wrong_secret_is_refused_and_nothing_changes(client, owner, customer, fake_stripe, priced_plans):
    sub = subscribe(fake_stripe, customer, priced_plans["pro"]["month"])
    response = deliver(client, event_payload("customer.subscription.created", sub), secret="whsec_not_ours")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "signature_invalid"
    assert plan_for_user(owner).slug == "free"
    assert not Event.objects.exists()
    assert WebhookEventTrigger.objects.get().valid is False  # the delivery is kept for inspection


def test_a_timestamp_older_than_the_tolerance_is_refused(client, owner, customer, fake_stripe, priced_plans, settings):
    settings.BILLING_WEBHOOK_TOLERANCE = 300
    sub = subscribe(fake_stripe, customer, priced_plans["pro"]["month"])
    payload = event_payload("customer.subscription.created", sub)
    stale = deliver(client, payload, timestamp=int(time.time()) - 301)
    assert stale.status_code == 400
    assert plan_for_user(owner).slug == "free"
    fresh = deliver(client, payload, timestamp=int(time.time()) - 200)
    assert fresh.status_code == 200
    assert plan_for_user(owner).slug == "pro"


def test_a_missing_signature_is_refused_without_storing_anything(client, fake_stripe):
    response = client.post("/api/webhooks/stripe", data="{}", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "signature_missing"
    assert not WebhookEventTrigger.objects.exists()


def test_without_a_webhook_secret_webhooks_are_off(client, settings):
    settings.DJSTRIPE_WEBHOOK_SECRET = ""
    payload = event_payload("customer.subscription.created", {"id": "sub_x", "object": "subscription"})
    response = deliver(client, payload)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "webhook_not_configured"


def test_the_debug_secret_override_header_is_ignored(client, owner, customer, fake_stripe, priced_plans, settings):
    settings.DEBUG = True  # dj-stripe accepts X-Djstripe-Webhook-Secret in DEBUG; the public endpoint must not
    sub = subscribe(fake_stripe, customer, priced_plans["pro"]["month"])
    response = deliver(
        client,
        event_payload("customer.subscription.created", sub),
        secret="whsec_attacker",
        headers={"HTTP_X_DJSTRIPE_WEBHOOK_SECRET": "whsec_attacker"},
    )
    assert response.status_code == 400
    assert plan_for_user(owner).slug == "free"


def test_a_replayed_event_is_processed_once(client, owner, customer, fake_stripe, priced_plans):
    sub = subscribe(fake_stripe, customer, priced_plans["basic"]["month"])
    payload = event_payload("customer.subscription.created", sub, event_id="evt_replayed_once")
    assert deliver(client, payload).status_code == 200
    gets = len(fake_stripe.requests_to("GET", f"/v1/subscriptions/{sub['id']}"))
    assert deliver(client, payload).status_code == 200
    assert WebhookEventTrigger.objects.filter(valid=True).count() == 2  # both deliveries are recorded...
    assert Event.objects.filter(id="evt_replayed_once").count() == 1  # ...but the event exists once
    assert PlanChange.objects.filter(user=owner).count() == 1
    assert len(fake_stripe.requests_to("GET", f"/v1/subscriptions/{sub['id']}")) == gets  # no handler ran again


def test_events_out_of_order_converge_on_stripes_current_state(client, owner, customer, fake_stripe, priced_plans):
    sub = subscribe(fake_stripe, customer, priced_plans["pro"]["month"])
    created = event_payload("customer.subscription.created", dict(sub), created=int(time.time()) - 60)
    fake_stripe.set_status(sub["id"], "canceled", canceled_at=int(time.time()))
    deleted = event_payload("customer.subscription.deleted", dict(fake_stripe.objects[sub["id"]]))
    # The cancellation arrives first, then the older "created" event.
    assert deliver(client, deleted).status_code == 200
    assert deliver(client, created).status_code == 200
    assert plan_for_user(owner).slug == "free"
    assert PlanAssignment.objects.get(user=owner).subscription_status == "canceled"


@pytest.mark.parametrize(
    ("status", "plan"),
    [
        ("trialing", "pro"),
        ("active", "pro"),
        ("past_due", "pro"),
        ("canceled", "free"),
        ("incomplete", "free"),
        ("unpaid", "free"),
    ],
)
def test_subscription_states_drive_the_gates(client, owner, customer, fake_stripe, priced_plans, status, plan):
    trial_end = int(time.time()) + 14 * 86400 if status == "trialing" else None
    sub = subscribe(fake_stripe, customer, priced_plans["pro"]["month"], status=status, trial_end=trial_end)
    assert deliver(client, event_payload("customer.subscription.updated", sub)).status_code == 200
    assert plan_for_user(owner).slug == plan


def test_past_due_keeps_the_plan_during_the_grace_period_then_the_schedule_downgrades(
    client, owner, customer, fake_stripe, priced_plans, settings
):
    from entitlements.services import plan_limits_enforce_all

    settings.BILLING_PAST_DUE_GRACE_DAYS = 7
    accounts = [make_account(owner) for _ in range(3)]
    sub = subscribe(fake_stripe, customer, priced_plans["pro"]["month"])
    deliver(client, event_payload("customer.subscription.created", sub))
    fake_stripe.set_status(sub["id"], "past_due")
    deliver(client, event_payload("customer.subscription.updated", fake_stripe.objects[sub["id"]]))
    assignment = PlanAssignment.objects.get(user=owner)
    assert assignment.past_due_since is not None
    assert plan_for_user(owner).slug == "pro"
    assert plan_limits_enforce_all(now=timezone.now() + timedelta(days=6)) == 0
    assert plan_limits_enforce_all(now=timezone.now() + timedelta(days=8)) == 1
    assert PlanAssignment.objects.get(user=owner).effective_plan.slug == "free"
    # Free allows one account: the oldest stays active, the others are paused, none deleted.
    states = {a.pk: a.is_active for a in type(accounts[0]).objects.filter(owner=owner)}
    assert states == {accounts[0].pk: True, accounts[1].pk: False, accounts[2].pk: False}


def test_checkout_completed_fetches_the_subscription_at_once(client, owner, customer, fake_stripe, priced_plans):
    sub = subscribe(
        fake_stripe, customer, priced_plans["basic"]["month"], status="trialing", trial_end=int(time.time()) + 7 * 86400
    )
    session = fake_stripe.put(
        {
            "id": "cs_test_done",
            "object": "checkout.session",
            "mode": "subscription",
            "customer": customer.id,
            "subscription": sub["id"],
            "status": "complete",
            "payment_status": "no_payment_required",
            "livemode": False,
            "client_reference_id": str(owner.pk),
            "metadata": {},
            "created": int(time.time()),
        }
    )
    assert deliver(client, event_payload("checkout.session.completed", session)).status_code == 200
    assert plan_for_user(owner).slug == "basic"
    assert PlanAssignment.objects.get(user=owner).trial_used is True


def test_an_upgrade_through_checkout_cancels_the_subscription_it_replaces(
    client, owner, customer, fake_stripe, priced_plans
):
    basic = subscribe(fake_stripe, customer, priced_plans["basic"]["month"])
    deliver(client, event_payload("customer.subscription.created", basic))
    pro = subscribe(fake_stripe, customer, priced_plans["pro"]["month"], metadata={"replaces": basic["id"]})
    deliver(client, event_payload("customer.subscription.created", pro))
    assert plan_for_user(owner).slug == "pro"
    assert fake_stripe.requests_to("DELETE", f"/v1/subscriptions/{basic['id']}")
    assert fake_stripe.objects[basic["id"]]["status"] == "canceled"


def test_a_processing_failure_answers_500_so_stripe_retries_and_the_retry_succeeds(
    client, owner, customer, fake_stripe, priced_plans
):
    sub = subscribe(fake_stripe, customer, priced_plans["pro"]["month"])
    payload = event_payload("customer.subscription.created", sub, event_id="evt_retry_me")
    fake_stripe.fail_next = (500, {"error": {"type": "api_error", "message": "Stripe is having a bad day"}})
    # The stripe library retries 5xx itself; make every attempt fail.
    import stripe

    previous = stripe.max_network_retries
    stripe.max_network_retries = 0
    try:
        failed = deliver(client, payload)
    finally:
        stripe.max_network_retries = previous
    assert failed.status_code == 500
    assert failed.json()["error"]["code"] == "processing_failed"
    assert not Event.objects.filter(id="evt_retry_me").exists()
    assert deliver(client, payload).status_code == 200
    assert plan_for_user(owner).slug == "pro"


def test_the_webhook_endpoint_row_follows_the_settings(client, fake_stripe, settings):
    from billing.webhooks import local_endpoint

    settings.BILLING_WEBHOOK_TOLERANCE = 120
    endpoint = local_endpoint()
    assert (endpoint.secret, endpoint.djstripe_tolerance) == (WEBHOOK_SECRET, 120)
    settings.DJSTRIPE_WEBHOOK_SECRET = "whsec_rotated"
    assert local_endpoint().secret == "whsec_rotated"


def test_a_cancellation_from_pro_with_five_accounts_pauses_four_and_resubscribing_resumes_them(
    client, owner, customer, fake_stripe, priced_plans
):
    from accounts.models import TradingAccount
    from entitlements.tasks import enforce_plans

    accounts = [make_account(owner) for _ in range(5)]
    sub = subscribe(fake_stripe, customer, priced_plans["pro"]["month"])
    deliver(client, event_payload("customer.subscription.created", sub))
    fake_stripe.set_status(sub["id"], "canceled")
    deliver(client, event_payload("customer.subscription.deleted", fake_stripe.objects[sub["id"]]))
    assert PlanChange.objects.filter(user=owner).first().accounts_paused == 4
    assert TradingAccount.objects.filter(owner=owner).count() == 5  # nothing deleted
    assert list(TradingAccount.objects.filter(owner=owner, is_active=True)) == [accounts[0]]
    assert enforce_plans.delay().get() == 0  # the hourly job finds nothing more to do
    again = subscribe(fake_stripe, customer, priced_plans["basic"]["month"])
    deliver(client, event_payload("customer.subscription.created", again))
    assert plan_for_user(owner).slug == "basic"
    assert TradingAccount.objects.filter(owner=owner, is_active=True).count() == 3
