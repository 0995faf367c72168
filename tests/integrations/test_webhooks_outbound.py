"""Outbound webhooks: signed deliveries, retries with backoff, disabling, the staff API."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
from datetime import timedelta

import httpx
import pytest
from django.core import mail
from django.utils import timezone

from config import net
from config.errors import ServiceError
from integrations.choices import DeliveryStatus
from integrations.models import WebhookDelivery, WebhookEndpoint
from integrations.selectors import webhook_event_wanted
from integrations.services.delivery import backoff_seconds, webhook_deliveries_due, webhook_delivery_attempt
from integrations.services.webhooks import webhook_emit, webhook_endpoint_create, webhook_endpoint_update
from mt5bridge.sync import account_sync
from tests.personas import api_client_for

pytestmark = pytest.mark.django_db
SECRET = "endpoint-secret"


@pytest.fixture
def endpoint(receiver, super_admin):
    endpoint, _ = webhook_endpoint_create(
        url=receiver.url + "/hook", events=["rule.hit", "account.synced"], secret=SECRET, created_by=super_admin
    )
    return endpoint


def test_backoff_doubles_and_is_capped():
    assert [backoff_seconds(n, base=30, cap=300) for n in (1, 2, 3, 4, 5)] == [30, 60, 120, 240, 300]


def test_emitted_event_is_delivered_signed_over_timestamp_and_body(
    endpoint, receiver, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        webhook_emit("rule.hit", {"rule": "x", "amount": __import__("decimal").Decimal("1.50")})
    request = receiver.requests[0]
    headers, body = request["headers"], request["body"]
    timestamp = headers["X-MT5BO-Timestamp"]
    expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert headers["X-MT5BO-Signature"] == f"v1={expected}"
    envelope = json.loads(body)
    assert envelope["event"] == "rule.hit" and envelope["data"] == {"rule": "x", "amount": "1.50"}
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.last_status_code == 200
    assert delivery.log[0]["status_code"] == 200


def test_events_an_endpoint_did_not_choose_are_not_sent(endpoint):
    assert webhook_emit("bonus.granted", {}) == []


def test_failed_delivery_is_retried_later_with_backoff(
    endpoint, receiver, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_BACKOFF_SECONDS = 60
    receiver.status = 503
    with django_capture_on_commit_callbacks(execute=True):
        webhook_emit("rule.hit", {})
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == 1
    assert delivery.last_status_code == 503
    assert timedelta(seconds=55) < delivery.next_attempt_at - timezone.now() <= timedelta(seconds=60)
    assert webhook_deliveries_due() == []  # not due yet

    receiver.status = 200
    WebhookDelivery.objects.update(next_attempt_at=timezone.now())
    from integrations.tasks import deliver_due_webhooks

    assert deliver_due_webhooks() == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.attempts == 2


def test_delivery_gives_up_after_the_maximum_attempts(endpoint, receiver, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    receiver.status = 500
    (delivery,) = webhook_emit("rule.hit", {})
    webhook_delivery_attempt(delivery_id=delivery.pk)
    webhook_delivery_attempt(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and len(delivery.log) == 2
    assert webhook_delivery_attempt(delivery_id=delivery.pk) is None  # nothing more to do


def test_endpoint_is_disabled_after_repeated_failures_and_staff_are_emailed(
    endpoint, receiver, settings, super_admin, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 3
    receiver.status = 500
    for _ in range(3):
        (delivery,) = webhook_emit("rule.hit", {})
        with django_capture_on_commit_callbacks(execute=True):
            webhook_delivery_attempt(delivery_id=delivery.pk)
    endpoint.refresh_from_db()
    assert endpoint.is_active is False and "3 failed deliveries" in endpoint.disabled_reason
    assert len(mail.outbox) == 1 and super_admin.email in mail.outbox[0].to
    assert webhook_emit("rule.hit", {}) == []


def test_unreachable_endpoint_counts_as_a_failure(super_admin, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    endpoint, _ = webhook_endpoint_create(url="http://127.0.0.1:9/x", events=["*"], created_by=super_admin)
    (delivery,) = webhook_emit("anything.new", {})
    delivery = webhook_delivery_attempt(delivery_id=delivery.pk)
    assert delivery.last_status_code is None and "ConnectError" in delivery.last_error


def test_successful_sync_emits_account_synced(endpoint, owned_account, receiver, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        account_sync(account_id=owned_account.pk, trigger="manual")
    events = [json.loads(r["body"])["event"] for r in receiver.requests]
    assert events == ["account.synced"]
    assert json.loads(receiver.requests[0]["body"])["data"]["login"] == owned_account.login


def test_private_urls_are_refused_unless_allowed(settings, super_admin):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    with pytest.raises(ServiceError, match="private or loopback"):
        webhook_endpoint_create(url="http://127.0.0.1:8000/x", events=["*"])


# --- API ---


def test_staff_register_an_endpoint_and_get_the_secret_once(super_admin, receiver):
    client = api_client_for(super_admin)
    response = client.post(
        "/api/webhooks/endpoints", {"url": receiver.url, "events": ["preflight.done"]}, format="json"
    )
    assert response.status_code == 201, response.content
    assert len(response.json()["secret"]) > 20
    listed = client.get("/api/webhooks/endpoints").json()["results"]
    assert listed[0]["url"] == receiver.url and "secret" not in listed[0]


def test_unknown_event_is_a_400(super_admin, receiver):
    response = api_client_for(super_admin).post(
        "/api/webhooks/endpoints", {"url": receiver.url, "events": ["nope"]}, format="json"
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid"


def test_ping_is_delivered(super_admin, endpoint, receiver, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client_for(super_admin).post(f"/api/webhooks/endpoints/{endpoint.pk}/ping")
    assert response.status_code == 202
    assert receiver.requests[0]["headers"]["X-MT5BO-Event"] == "ping"


def test_re_enabling_resets_failures(super_admin, endpoint):
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(is_active=False, consecutive_failures=9)
    response = api_client_for(super_admin).patch(
        f"/api/webhooks/endpoints/{endpoint.pk}", {"is_active": True}, format="json"
    )
    assert response.status_code == 200 and response.json()["consecutive_failures"] == 0


def test_deliveries_are_listed_for_staff_and_can_be_retried(super_admin, endpoint, receiver):
    receiver.status = 500
    (delivery,) = webhook_emit("rule.hit", {})
    webhook_delivery_attempt(delivery_id=delivery.pk)
    client = api_client_for(super_admin)
    rows = client.get("/api/webhooks/deliveries").json()["results"]
    assert rows[0]["last_status_code"] == 500
    assert client.post(f"/api/webhooks/deliveries/{delivery.pk}/retry").status_code == 202


@pytest.mark.parametrize("path", ["/api/webhooks/endpoints", "/api/webhooks/deliveries", "/api/webhooks/status"])
def test_traders_are_refused_and_anonymous_must_log_in(path, outsider_client, anon_client):
    assert outsider_client.get(path).status_code == 403
    assert anon_client.get(path).status_code == 401


def test_trader_cannot_register_an_endpoint(outsider_client, receiver):
    response = outsider_client.post("/api/webhooks/endpoints", {"url": receiver.url, "events": ["*"]}, format="json")
    assert response.status_code == 403 and not WebhookEndpoint.objects.exists()


def test_read_only_staff_neither_see_nor_create_endpoints(read_only, receiver):
    """Webhook endpoints carry signing secrets and are system configuration: Super Admin's alone."""
    client = api_client_for(read_only)
    assert client.get("/api/webhooks/endpoints").status_code == 403
    assert (
        client.post("/api/webhooks/endpoints", {"url": receiver.url, "events": ["*"]}, format="json").status_code == 403
    )


def test_webhook_status_counts_inbound_and_outbound(super_admin, endpoint):
    data = api_client_for(super_admin).get("/api/webhooks/status").json()
    assert data["outbound"]["endpoints_active"] == 1 and "inbound" in data


# --- where deliveries may go: checked and pinned when each one is sent ---

PUBLIC = "93.184.216.34"
HOST = "hooks.example.com"


@pytest.fixture
def dns(monkeypatch):
    """A resolver stub for HOST: ``dns.answers`` are given in turn (the last one repeats); ``dns.asked`` counts the
    look-ups. Every other name (the IP literals httpx connects to) goes to the real resolver."""
    real = socket.getaddrinfo

    class Stub:
        answers: list[str] = [PUBLIC]
        asked = 0

        def __call__(self, host, port, *args, **kwargs):
            if host != HOST:
                return real(host, port, *args, **kwargs)
            answer = self.answers[min(self.asked, len(self.answers) - 1)]
            self.asked += 1
            if answer is None:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            if ":" in answer:
                return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (answer, port or 0, 0, 0))]
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answer, port or 0))]

    stub = Stub()
    monkeypatch.setattr(socket, "getaddrinfo", stub)
    return stub


class Recording(httpx.BaseTransport):
    """The edge of the world: records where a request would have been sent and answers 200."""

    def __init__(self):
        self.requests: list[httpx.Request] = []

    def handle_request(self, request):
        self.requests.append(request)
        return httpx.Response(200)


def test_loopback_targets_are_refused_by_default(super_admin):
    """Guards the default of WEBHOOK_ALLOW_PRIVATE_URLS: off, in development (DEBUG) too."""
    from django.conf import settings as live

    assert live.WEBHOOK_ALLOW_PRIVATE_URLS is False
    with pytest.raises(ServiceError, match="loopback"):
        webhook_endpoint_create(url="http://127.0.0.1:8000/x", events=["*"])


@pytest.mark.parametrize("address", ["100.64.1.1", "100.127.255.254", "::ffff:127.0.0.1", "::ffff:10.0.0.1"])
def test_cgnat_and_ipv4_mapped_addresses_are_refused_when_saved(address, dns, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    dns.answers = [address]
    with pytest.raises(ServiceError, match="private or loopback"):
        webhook_endpoint_create(url=f"https://{HOST}/hook", events=["*"])
    assert not WebhookEndpoint.objects.exists()


def test_a_name_that_rebinds_to_loopback_after_the_check_is_not_delivered(
    dns, receiver, settings, super_admin, django_capture_on_commit_callbacks
):
    """Guards the send-time check (DNS rebinding): the name was public when the endpoint was saved and answers
    127.0.0.1 when a delivery goes out; the local receiver on that address gets nothing, and the delivery fails at
    once with the reason (no retries)."""
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    port = receiver.httpd.server_address[1]
    dns.answers = [PUBLIC, "127.0.0.1"]
    webhook_endpoint_create(url=f"http://{HOST}:{port}/hook", events=["*"], secret=SECRET)
    with django_capture_on_commit_callbacks(execute=True):
        (delivery,) = webhook_emit("rule.hit", {})
    delivery.refresh_from_db()
    assert receiver.requests == []
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == 1
    assert "127.0.0.1" in delivery.last_error and "loopback" in delivery.last_error
    assert delivery.last_status_code is None and delivery.log[0]["error"] == delivery.last_error
    assert webhook_deliveries_due() == []


@pytest.mark.parametrize(
    "address, reason",
    [
        ("127.0.0.1", "loopback"),
        ("100.64.1.1", "CGNAT"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.1.10", "private"),
        ("172.16.0.1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("fd00::1", "private"),
        ("224.0.0.251", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("2002:7f00:1::", "loopback"),  # 6to4 around 127.0.0.1
    ],
)
def test_a_delivery_to_a_non_public_address_is_refused_when_sent(address, reason, dns, settings, super_admin):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    dns.answers = [PUBLIC, address]
    endpoint, _ = webhook_endpoint_create(url=f"https://{HOST}/hook", events=["*"], created_by=super_admin)
    (delivery,) = webhook_emit("rule.hit", {})
    inner = Recording()
    delivery = webhook_delivery_attempt(delivery_id=delivery.pk, transport=inner)
    assert inner.requests == []
    assert delivery.status == DeliveryStatus.FAILED
    assert address in delivery.last_error and reason in delivery.last_error
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 1


def test_the_connection_goes_to_the_vetted_address_with_the_original_host_and_sni(dns, settings, super_admin):
    """Guards the pinning: the address checked at send time is the one connected to (a second look-up, which a
    rebinding name would answer with 127.0.0.1, never happens); the Host header and the TLS name stay the URL's."""
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    dns.answers = [PUBLIC, PUBLIC, "127.0.0.1"]
    webhook_endpoint_create(url=f"https://{HOST}/hook", events=["*"], secret=SECRET, created_by=super_admin)
    (delivery,) = webhook_emit("rule.hit", {})
    inner = Recording()
    delivery = webhook_delivery_attempt(delivery_id=delivery.pk, transport=inner)
    assert delivery.status == DeliveryStatus.SUCCEEDED
    [sent] = inner.requests
    assert sent.url.host == PUBLIC and sent.url.scheme == "https" and sent.url.path == "/hook"
    assert sent.headers["host"] == HOST
    assert sent.extensions["sni_hostname"] == HOST
    assert dns.asked == 2  # when saved, when sent


def test_a_name_that_does_not_resolve_when_sent_is_retried_later(dns, settings, super_admin):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    dns.answers = [PUBLIC, None]
    webhook_endpoint_create(url=f"https://{HOST}/hook", events=["*"], created_by=super_admin)
    (delivery,) = webhook_emit("rule.hit", {})
    delivery = webhook_delivery_attempt(delivery_id=delivery.pk, transport=Recording())
    assert delivery.status == DeliveryStatus.PENDING and "does not resolve" in delivery.last_error


def test_a_refused_ping_from_the_api_is_a_failed_delivery_not_a_500(
    dns, settings, super_admin, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False
    dns.answers = [PUBLIC, "100.64.1.1"]
    endpoint, _ = webhook_endpoint_create(url=f"https://{HOST}/hook", events=["*"], created_by=super_admin)
    client = api_client_for(super_admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/webhooks/endpoints/{endpoint.pk}/ping")
    assert response.status_code == 202
    row = client.get(f"/api/webhooks/deliveries/{response.json()['id']}").json()
    assert row["status"] == DeliveryStatus.FAILED and "100.64.1.1" in row["last_error"]


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:93.184.216.34"])
def test_public_addresses_pass_the_vetting(address):
    assert net.refused_because(address) is None


def test_who_wants_an_event_follows_endpoint_changes_at_once(super_admin, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    assert not webhook_event_wanted("account.synced")  # remembered: nobody
    endpoint, _ = webhook_endpoint_create(url="http://127.0.0.1:9/x", events=["account.synced"])
    assert webhook_event_wanted("account.synced") and not webhook_event_wanted("rule.hit")
    webhook_endpoint_update(endpoint=endpoint, events=["*"])
    assert webhook_event_wanted("rule.hit")
    webhook_endpoint_update(endpoint=endpoint, is_active=False)
    assert not webhook_event_wanted("rule.hit")
    webhook_endpoint_update(endpoint=endpoint, is_active=True)
    endpoint.delete()
    assert not webhook_event_wanted("account.synced")
