"""Inbound Systeme.io webhooks: signature over the raw body, replays processed once, events handled."""

from __future__ import annotations

import hashlib
import hmac
import json

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
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


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


def test_the_delivery_id_header_identifies_replays(anon_client, owner):
    first, second = tag_added(owner.email, "a"), tag_added(owner.email, "b")
    post(anon_client, first, sign(first), HTTP_X_WEBHOOK_ID="evt-1")
    assert post(anon_client, second, sign(second), HTTP_X_WEBHOOK_ID="evt-1").json()["status"] == "duplicate"


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
