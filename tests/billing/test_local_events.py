"""Local billing events: signed Stripe-shaped events applied without Stripe when BILLING_LOCAL_WEBHOOK_SECRET is set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from billing.management.commands.billing_send_event import build_event, is_loopback
from billing.models import LocalBillingEvent
from entitlements.models import PlanAssignment, PlanChange
from entitlements.resolution import PlanState, resolve_plan
from entitlements.selectors import plan_for_user

from .conftest import make_account, on_plan, sign

LOCAL_SECRET = "whsec_local_secret_for_tests"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def local_events(settings, db):
    """Local mode (no Stripe key) with the local billing events secret."""
    settings.STRIPE_TEST_SECRET_KEY = ""
    settings.STRIPE_LIVE_SECRET_KEY = ""
    settings.DJSTRIPE_WEBHOOK_SECRET = ""
    settings.BILLING_DEFAULT_PLAN = "pro"
    settings.BILLING_LOCAL_WEBHOOK_SECRET = LOCAL_SECRET
    settings.BILLING_WEBHOOK_TOLERANCE = 300


@pytest.fixture
def client() -> Client:
    return Client()


def send(client, event, *, secret: str = LOCAL_SECRET, timestamp: int | None = None, raw: str | None = None):
    payload = raw if raw is not None else json.dumps(event)
    return client.post(
        "/api/webhooks/stripe",
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(payload, secret, timestamp),
    )


def test_a_signed_event_puts_the_user_on_the_plan_with_an_audit_row(client, owner, local_events):
    assert plan_for_user(owner).slug == "pro"  # local mode's default
    event = build_event("subscription.created", email=owner.email, plan="basic")
    response = send(client, event)
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["outcome"], body["plan"], body["plan_changed"]) == ("applied", "basic", True)
    assert plan_for_user(owner).slug == "basic"  # wins over BILLING_DEFAULT_PLAN
    change = PlanChange.objects.get(user=owner, stripe_event_id=event["id"])
    assert (change.to_plan.slug, change.reason) == ("basic", "stripe")
    assignment = PlanAssignment.objects.get(user=owner)
    assert assignment.subscription_id.startswith("local:sub_local_")
    assert (assignment.subscription_status, assignment.interval) == ("active", "month")


def test_the_person_can_be_named_by_user_id_and_the_plan_by_metadata(client, owner, local_events):
    event = build_event("subscription.updated", user_id=str(owner.pk), plan="enterprise")
    event["data"]["object"]["items"]["data"][0]["price"]["lookup_key"] = None
    response = send(client, event)
    assert response.status_code == 200, response.content
    assert plan_for_user(owner).slug == "enterprise"


def test_a_repeated_event_id_changes_nothing(client, owner, local_events):
    first = build_event("subscription.updated", email=owner.email, plan="basic", event_id="evt_local_once")
    assert send(client, first).json()["outcome"] == "applied"
    assert send(client, build_event("subscription.deleted", email=owner.email, plan="basic")).status_code == 200
    assert plan_for_user(owner).slug == "free"
    changes = PlanChange.objects.filter(user=owner).count()

    replay = send(client, first)
    assert replay.status_code == 200
    assert replay.json()["outcome"] == "duplicate"
    assert plan_for_user(owner).slug == "free"
    assert PlanChange.objects.filter(user=owner).count() == changes
    assert LocalBillingEvent.objects.filter(id="evt_local_once").count() == 1


def test_deleted_cancels_to_free_and_pauses_extra_accounts_without_deleting(client, owner, local_events):
    accounts = [make_account(owner) for _ in range(3)]
    send(client, build_event("subscription.created", email=owner.email, plan="pro"))
    response = send(client, build_event("subscription.deleted", email=owner.email, plan="pro"))
    assert response.json()["status"] == "canceled"
    assert plan_for_user(owner).slug == "free"
    change = PlanChange.objects.filter(user=owner).latest("pk")
    assert (change.to_plan.slug, change.accounts_paused) == ("free", 2)
    assert sum(a.__class__.objects.get(pk=a.pk).is_active for a in accounts) == 1


@pytest.mark.parametrize("status,plan", [("trialing", "basic"), ("past_due", "basic"), ("unpaid", "free")])
def test_subscription_statuses_follow_the_stripe_rules(client, owner, local_events, status, plan):
    send(client, build_event("subscription.updated", email=owner.email, plan="basic", status=status))
    assert plan_for_user(owner).slug == plan


def test_an_older_event_about_the_same_subscription_does_not_undo_a_newer_one(client, owner, local_events):
    now = int(time.time())
    send(client, build_event("subscription.updated", email=owner.email, plan="enterprise", now=now))
    late = send(client, build_event("subscription.updated", email=owner.email, plan="basic", now=now - 60))
    assert late.json()["outcome"] == "stale"
    assert plan_for_user(owner).slug == "enterprise"


def test_a_staff_choice_still_wins(client, owner, local_events):
    on_plan(owner, "free")
    send(client, build_event("subscription.updated", email=owner.email, plan="enterprise"))
    assert plan_for_user(owner).slug == "free"


def test_a_wrong_secret_is_refused_and_nothing_changes(client, owner, local_events):
    response = send(client, build_event("subscription.updated", email=owner.email, plan="basic"), secret="whsec_x")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "signature_invalid"
    assert plan_for_user(owner).slug == "pro"
    assert not LocalBillingEvent.objects.exists()


@pytest.mark.parametrize("offset", [-301, 400])
def test_a_timestamp_outside_the_tolerance_is_refused(client, owner, local_events, offset):
    event = build_event("subscription.updated", email=owner.email, plan="basic")
    response = send(client, event, timestamp=int(time.time()) + offset)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "signature_invalid"
    assert plan_for_user(owner).slug == "pro"


def test_a_missing_signature_is_refused(client, local_events):
    response = client.post("/api/webhooks/stripe", data="{}", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "signature_missing"


def test_an_unknown_event_type_is_acknowledged_and_ignored(client, owner, local_events):
    event = {"id": "evt_local_invoice", "object": "event", "type": "invoice.paid", "data": {"object": {}}}
    response = send(client, event)
    assert response.status_code == 200
    assert response.json()["outcome"] == "ignored"
    assert not PlanChange.objects.filter(user=owner).exists()


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[1, 2]",
        '{"type": "customer.subscription.updated"}',
        '{"id": "evt_1", "type": "customer.subscription.updated", "data": {"object": "sub_1"}}',
        '{"id": "evt_2", "type": "customer.subscription.updated", "data": {"object": {"id": "sub_1", "items": []}}}',
        '{"id": "evt_3", "type": "customer.subscription.updated", "data": {"object": {"id": "sub_1", "status": "x"}}}',
        '{"id": {"a": 1}, "type": "customer.subscription.updated"}',
    ],
)
def test_a_malformed_body_is_a_400_never_a_500(client, local_events, raw):
    response = send(client, None, raw=raw)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "malformed_event"


def test_a_non_utf8_body_is_a_400(client, local_events):
    payload = b"\xff\xfe"
    response = client.post(
        "/api/webhooks/stripe",
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE="t=1,v1=00",
    )
    assert response.status_code == 400


def test_an_unknown_person_or_plan_is_a_422_and_can_be_sent_again(client, owner, local_events):
    event = build_event("subscription.updated", email="nobody@example.com", plan="basic")
    response = send(client, event)
    assert (response.status_code, response.json()["error"]["code"]) == (422, "unknown_user")
    assert not LocalBillingEvent.objects.exists()
    response = send(client, build_event("subscription.updated", email=owner.email, plan="platinum"))
    assert (response.status_code, response.json()["error"]["code"]) == (422, "unknown_plan")


def test_without_the_local_secret_the_endpoint_stays_off_in_local_mode(client, owner, local_events, settings):
    settings.BILLING_LOCAL_WEBHOOK_SECRET = ""
    response = send(client, build_event("subscription.updated", email=owner.email, plan="basic"))
    assert response.json()["error"]["code"] == "webhook_not_configured"
    assert plan_for_user(owner).slug == "pro"


def test_a_local_subscription_does_not_count_once_stripe_keys_are_set(client, owner, local_events, settings):
    send(client, build_event("subscription.updated", email=owner.email, plan="enterprise"))
    settings.BILLING_LOCAL_WEBHOOK_SECRET = ""
    settings.STRIPE_TEST_SECRET_KEY = "sk_test_FakeKeyForBillingTests42"
    assert plan_for_user(owner).slug == "free"


# --- Start-up ------------------------------------------------------------------------------------


def load_settings(**env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "import config.settings"],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("key", ["STRIPE_TEST_SECRET_KEY", "STRIPE_LIVE_SECRET_KEY"])
def test_start_up_refuses_the_local_secret_next_to_a_stripe_key(key):
    result = load_settings(DEBUG="true", BILLING_LOCAL_WEBHOOK_SECRET="whsec_local_x", **{key: "sk_own"})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "BILLING_LOCAL_WEBHOOK_SECRET is for local mode (no Stripe key) only" in result.stderr
    assert key in result.stderr


def test_start_up_accepts_the_local_secret_in_local_mode():
    result = load_settings(DEBUG="true", BILLING_LOCAL_WEBHOOK_SECRET="whsec_local_x")
    assert result.returncode == 0, result.stderr


# --- manage.py billing_send_event ----------------------------------------------------------------


class Recorder(BaseHTTPRequestHandler):
    """A loopback server that keeps what it is sent and answers like the back office."""

    received: list = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Recorder.received.append((self.path, dict(self.headers), body))
        reply = b'{"received": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


@pytest.fixture
def loopback():
    Recorder.received = []
    server = HTTPServer(("127.0.0.1", 0), Recorder)  # a free port: a fixed one may be taken
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/api/webhooks/stripe"
    server.shutdown()
    server.server_close()


def test_the_command_signs_an_event_that_the_endpoint_accepts(client, owner, local_events, loopback):
    call_command(
        "billing_send_event", "subscription.updated", "--email", owner.email, "--plan", "basic", "--url", loopback
    )
    ((path, headers, body),) = Recorder.received
    assert path == "/api/webhooks/stripe"
    event = json.loads(body)
    assert event["type"] == "customer.subscription.updated"
    # What the command sent, delivered as it was, is accepted and applied.
    response = client.post(
        "/api/webhooks/stripe",
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=headers["Stripe-Signature"],
    )
    assert response.status_code == 200, response.content
    assert plan_for_user(owner).slug == "basic"


def test_the_command_refuses_a_url_off_this_machine_and_a_missing_secret(local_events, settings, tmp_path):
    with pytest.raises(CommandError, match="not on this machine"):
        call_command("billing_send_event", "subscription.updated", "--email", "a@b.c", "--plan", "basic",
                     "--url", "https://example.com/api/webhooks/stripe")  # fmt: skip
    settings.BILLING_LOCAL_WEBHOOK_SECRET = ""
    settings.BASE_DIR = tmp_path
    with pytest.raises(CommandError, match="BILLING_LOCAL_WEBHOOK_SECRET is not set"):
        call_command("billing_send_event", "subscription.updated", "--email", "a@b.c", "--plan", "basic")


def test_the_command_reads_the_secret_run_sh_stored(client, owner, local_events, settings, tmp_path, loopback):
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "local-secrets.env").write_text(f"SECRET_KEY=x\nBILLING_LOCAL_WEBHOOK_SECRET={LOCAL_SECRET}\n")
    settings.BILLING_LOCAL_WEBHOOK_SECRET = ""
    settings.BASE_DIR = tmp_path
    call_command(
        "billing_send_event", "subscription.created", "--email", owner.email, "--plan", "pro", "--url", loopback
    )
    ((_path, headers, body),) = Recorder.received
    settings.BILLING_LOCAL_WEBHOOK_SECRET = LOCAL_SECRET
    response = client.post(
        "/api/webhooks/stripe",
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=headers["Stripe-Signature"],
    )
    assert response.status_code == 200, response.content


@pytest.mark.parametrize(
    "url,ok",
    [
        ("http://127.0.0.1:8000/x", True),
        ("http://localhost:8000/x", True),
        ("http://[::1]:8000/x", True),
        ("http://10.0.0.1/x", False),
        ("http://example.com/x", False),
        ("file:///etc/passwd", False),
    ],
)
def test_only_loopback_urls_are_accepted(url, ok):
    assert is_loopback(url) is ok


def test_a_user_id_that_is_not_an_id_is_a_422(client, local_events):
    response = send(client, build_event("subscription.updated", user_id="not-a-number", plan="basic"))
    assert (response.status_code, response.json()["error"]["code"]) == (422, "unknown_user")


# --- The resolution rule -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "subscription_id,local,expected",
    [
        ("local:sub_1", True, ("basic", "active")),  # a local subscription wins over the default in local mode
        ("sub_1", True, ("pro", "local_mode")),  # Stripe's mirrored state does not count in local mode
        ("local:sub_1", False, ("free", "no_subscription")),  # nor a local one with Stripe
        ("sub_1", False, ("basic", "active")),
    ],
)
def test_which_subscription_counts_in_which_mode(subscription_id, local, expected):
    state = PlanState(subscribed_slug="basic", status="active", subscription_id=subscription_id)
    now = datetime.now(tz=UTC)
    assert (
        resolve_plan(state, local_mode=local, default_slug="pro", free_slug="free", grace=timedelta(days=7), now=now)
        == expected
    )
