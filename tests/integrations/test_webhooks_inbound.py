"""Inbound Systeme.io webhooks: signature over the raw body, replays processed once, events handled."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest

from integrations.choices import InboundStatus
from integrations.models import ContactSync, InboundWebhookEvent
from tests.integrations.conftest import WEBHOOK_SECRET

pytestmark = pytest.mark.django_db
URL = "/api/webhooks/systeme"


@pytest.fixture(autouse=True)
def secret(settings):
    settings.SYSTEME_WEBHOOK_SECRET = WEBHOOK_SECRET


def sign(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    """Systeme.io's own form: hex HMAC-SHA256 of the raw body."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def sign_timestamped(body: bytes, timestamp: int | None = None, secret: str = WEBHOOK_SECRET) -> str:
    """The timestamped form: t=<unix>,v1=<hex HMAC-SHA256 of "{t}.{body}">."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def tag_added(email: str, tag: str = "vip") -> bytes:
    return json.dumps(
        {
            "contact": {"id": 4242, "email": email, "fields": [], "tags": [{"id": 7, "name": tag}]},
            "tag": {"id": 7, "name": tag},
        }
    ).encode()


def post(client, body: bytes, signature: str | None, event: str = "CONTACT_TAG_ADDED", **headers):
    if signature is not None:
        headers["HTTP_X_WEBHOOK_SIGNATURE"] = signature
    return client.post(URL, data=body, content_type="application/json", HTTP_X_WEBHOOK_EVENT=event, **headers)


def test_signed_tag_added_event_is_stored_and_updates_the_contact(anon_client, owner):
    body = tag_added(owner.email)
    response = post(anon_client, body, sign(body))
    assert response.status_code == 200, response.content
    assert response.json()["status"] == InboundStatus.PROCESSED
    record = ContactSync.objects.get(user=owner)
    assert record.contact_id == "4242" and record.tags == ["vip"]
    assert InboundWebhookEvent.objects.get().event_type == "CONTACT_TAG_ADDED"


def test_bad_signature_is_401_and_nothing_is_processed(anon_client, owner):
    body = tag_added(owner.email)
    response = post(anon_client, body, sign(body, "another-secret"))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_signature"
    assert not InboundWebhookEvent.objects.exists() and not ContactSync.objects.exists()


def test_missing_signature_is_401(anon_client, owner):
    assert post(anon_client, tag_added(owner.email), None).status_code == 401
    assert not InboundWebhookEvent.objects.exists()


def test_signature_of_another_body_is_refused(anon_client, owner):
    assert post(anon_client, tag_added(owner.email), sign(b"{}")).status_code == 401


def test_no_configured_secret_refuses_everything(anon_client, owner, settings):
    settings.SYSTEME_WEBHOOK_SECRET = ""
    body = tag_added(owner.email)
    assert post(anon_client, body, sign(body, "")).status_code == 401


def test_a_replay_is_processed_once(anon_client, owner):
    body = tag_added(owner.email)
    assert post(anon_client, body, sign(body)).json()["status"] == InboundStatus.PROCESSED
    ContactSync.objects.filter(user=owner).update(tags=[])  # would come back if the replay were processed
    again = post(anon_client, body, sign(body))
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert ContactSync.objects.get(user=owner).tags == []
    event = InboundWebhookEvent.objects.get()
    assert event.replays == 1


def test_a_replay_with_a_new_delivery_id_header_is_still_a_duplicate(anon_client, owner):
    """Guards the replay key: it comes from signed data (the body), not from an unsigned delivery-id header that a
    replayer can change at will."""
    body = tag_added(owner.email)
    assert post(anon_client, body, sign(body), HTTP_X_WEBHOOK_ID="evt-1").json()["status"] == InboundStatus.PROCESSED
    again = post(anon_client, body, sign(body), HTTP_X_WEBHOOK_ID="evt-2", HTTP_X_WEBHOOK_DELIVERY="other")
    assert again.json()["status"] == "duplicate"
    assert InboundWebhookEvent.objects.get().replays == 1


def test_two_bodies_sharing_a_delivery_id_header_are_two_events(anon_client, owner):
    """The unsigned header cannot make a new signed event look like a replay either."""
    first, second = tag_added(owner.email, "a"), tag_added(owner.email, "b")
    post(anon_client, first, sign(first), HTTP_X_WEBHOOK_ID="evt-1")
    assert (
        post(anon_client, second, sign(second), HTTP_X_WEBHOOK_ID="evt-1").json()["status"] == InboundStatus.PROCESSED
    )
    assert InboundWebhookEvent.objects.count() == 2


def test_a_replay_under_another_event_header_changes_nothing(anon_client, owner):
    """A captured TAG_ADDED body re-sent as TAG_REMOVED (the event header is not covered by Systeme.io's
    signature) is recognised by its signed body and does not take the tag off."""
    body = tag_added(owner.email)
    post(anon_client, body, sign(body))
    again = post(anon_client, body, sign(body), event="CONTACT_TAG_REMOVED")
    assert again.json()["status"] == "duplicate"
    assert ContactSync.objects.get(user=owner).tags == ["vip"]


def test_the_event_id_in_the_body_is_the_replay_key(anon_client, db):
    first = json.dumps({"id": "evt-42", "type": "contact.optin.completed", "data": {"email": "a@example.com"}})
    second = json.dumps({"id": "evt-42", "type": "contact.optin.completed", "data": {"email": "b@example.com"}})
    post(anon_client, first.encode(), sign(first.encode()), event="")
    assert post(anon_client, second.encode(), sign(second.encode()), event="").json()["status"] == "duplicate"
    assert InboundWebhookEvent.objects.get().key == "id:evt-42"


def test_tag_removed_takes_the_tag_off(anon_client, owner):
    ContactSync.objects.create(user=owner, email=owner.email, contact_id="4242", tags=["vip", "x"])
    body = json.dumps({"contact": {"id": 4242, "email": owner.email}, "tag": {"id": 7, "name": "vip"}}).encode()
    post(anon_client, body, sign(body), event="CONTACT_TAG_REMOVED")
    assert ContactSync.objects.get(user=owner).tags == ["x"]


def test_unknown_email_is_stored_but_ignored(anon_client, db):
    body = json.dumps({"type": "contact.optin.completed", "data": {"email": "stranger@example.com"}}).encode()
    response = post(anon_client, body, sign(body), event="")
    assert response.json()["status"] == InboundStatus.IGNORED
    assert InboundWebhookEvent.objects.get().event_type == "contact.optin.completed"


def test_signed_body_that_is_not_json_is_400(anon_client, db):
    body = b"not json"
    response = post(anon_client, body, sign(body))
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"


# --- the timestamped signature and malformed headers ---


def test_a_fresh_timestamped_signature_is_accepted(anon_client, owner):
    body = tag_added(owner.email)
    response = post(anon_client, body, sign_timestamped(body))
    assert response.status_code == 200, response.content
    assert response.json()["status"] == InboundStatus.PROCESSED
    assert ContactSync.objects.get(user=owner).tags == ["vip"]


def test_a_timestamp_within_five_minutes_either_way_is_accepted(anon_client, owner):
    first, second = tag_added(owner.email, "a"), tag_added(owner.email, "b")
    assert post(anon_client, first, sign_timestamped(first, int(time.time()) - 240)).status_code == 200
    assert post(anon_client, second, sign_timestamped(second, int(time.time()) + 240)).status_code == 200


@pytest.mark.parametrize("offset", [-360, -3600, 360])
def test_a_timestamp_more_than_five_minutes_off_is_401(anon_client, owner, offset):
    """Guards the tolerance: a captured timestamped request cannot be replayed later (or pre-dated)."""
    body = tag_added(owner.email)
    response = post(anon_client, body, sign_timestamped(body, int(time.time()) + offset))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_signature"
    assert not InboundWebhookEvent.objects.exists() and not ContactSync.objects.exists()


def test_the_timestamp_is_covered_by_the_signature(anon_client, owner):
    """An old signature with its t= moved to now does not match: the timestamp is part of the signed message."""
    body = tag_added(owner.email)
    old = int(time.time()) - 3600
    digest = sign_timestamped(body, old).split("v1=")[1]
    assert post(anon_client, body, f"t={int(time.time())},v1={digest}").status_code == 401
    assert not InboundWebhookEvent.objects.exists()


def test_one_of_several_v1_signatures_may_match(anon_client, owner):
    """During a secret rotation the sender can sign with both secrets."""
    body = tag_added(owner.email)
    now = int(time.time())
    other = sign_timestamped(body, now, "the-old-secret").split("v1=")[1]
    header = f"{sign_timestamped(body, now)},v1={other}"
    assert post(anon_client, body, header).status_code == 200


def test_body_only_signatures_can_be_refused(anon_client, owner, settings):
    settings.SYSTEME_WEBHOOK_REQUIRE_TIMESTAMP = True
    body = tag_added(owner.email)
    response = post(anon_client, body, sign(body))
    assert response.status_code == 401 and "timestamped" in response.json()["error"]["message"]
    assert post(anon_client, body, sign_timestamped(body)).status_code == 200


@pytest.mark.parametrize(
    "header",
    [
        "é" * 64,  # not ASCII (was a 500)
        "sha256=" + "ü" * 64,
        "abc123",  # too short
        "0" * 63 + "g",  # not hex
        "0" * 65,  # too long
        "t=12345",  # no v1
        "v1=" + "0" * 64,  # no t
        "t=abc,v1=" + "0" * 64,  # t not a number
        "t=1,t=2,v1=" + "0" * 64,  # two timestamps
        "t=" + "9" * 40 + ",v1=" + "0" * 64,  # absurd timestamp
        "t=1700000000,v1=xyz",  # v1 not hex
        ",,,=,=",
        "x" * 5000,
    ],
)
def test_a_malformed_signature_header_is_401_json(anon_client, owner, header):
    """Guards the parser: any malformed signature (non-ASCII, wrong length, missing parts) is a 401 with the
    JSON error body, never a 500."""
    body = tag_added(owner.email)
    response = post(anon_client, body, header)
    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == "invalid_signature"
    assert not InboundWebhookEvent.objects.exists()


def test_a_non_ascii_signature_through_asgi_is_401(owner, settings):
    """The same through the ASGI server path, where header bytes arrive raw (latin-1)."""
    import asyncio

    import httpx

    from config.asgi import application

    body = tag_added(owner.email)

    async def call():
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.post(
                URL,
                content=body,
                headers=[(b"content-type", b"application/json"), (b"x-webhook-signature", b"\xe9" * 64)],
            )

    response = asyncio.run(call())
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_signature"


def test_a_bare_id_that_may_be_the_contacts_is_not_a_replay_key(anon_client, owner):
    """Two events about one contact, shaped {"id": <contact>, ...} without an event type, are two events."""
    first = json.dumps({"id": 4242, "contact": {"email": owner.email, "tags": [{"name": "a"}]}}).encode()
    second = json.dumps({"id": 4242, "contact": {"email": owner.email, "tags": [{"name": "b"}]}}).encode()
    post(anon_client, first, sign(first))
    assert post(anon_client, second, sign(second)).json()["status"] == InboundStatus.PROCESSED
    assert ContactSync.objects.get(user=owner).tags == ["b"]
