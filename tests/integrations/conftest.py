"""Fixtures of the integration tests: the fake Systeme.io server, a webhook receiver, moto's S3 server."""

from __future__ import annotations

import pytest

from tests.integrations.fakes import FakeSysteme, WebhookReceiver

SYSTEME_KEY = "test-systeme-key"
WEBHOOK_SECRET = "inbound-secret-for-tests"


@pytest.fixture(autouse=True)
def _plan_with_systeme_sync(settings):
    """Systeme.io sync is an Enterprise feature (entitlements.gates.systeme_contacts): local mode puts everyone on
    Enterprise here, so the traders these tests create are the sync's contacts."""
    settings.BILLING_DEFAULT_PLAN = "enterprise"


@pytest.fixture(autouse=True)
def _traders_synced_under_contract(monkeypatch):
    """These tests are about the sync itself: every trader is a contact, as under a broker whose terms cover it.
    test_consent.py uses the stored setting (default: consent, opted-in traders only) where it tests that."""
    monkeypatch.setattr("integrations.selectors.legal_basis", lambda: "contract")


@pytest.fixture
def fake_systeme(settings):
    server = FakeSysteme(api_key=SYSTEME_KEY).start()
    settings.SYSTEME_API_URL = server.url
    settings.SYSTEME_API_KEY = SYSTEME_KEY
    settings.SYSTEME_RETRY_MAX_WAIT = 0  # retries in tests do not sleep
    server.field_slugs = ["mt5_balance", "mt5_equity", "mt5_gain_month", "mt5_drawdown", "mt5_open_trades"]
    yield server
    server.stop()


@pytest.fixture
def receiver(settings):
    """A webhook receiver on 127.0.0.1: deliveries to it need loopback targets allowed, which they are not by
    default (WEBHOOK_ALLOW_PRIVATE_URLS)."""
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    server = WebhookReceiver().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_server():
    """moto in server mode: a real S3-compatible HTTP endpoint on 127.0.0.1."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_credentials(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def no_aws_credentials(monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    # No shared files and no instance metadata lookups (only 127.0.0.1 network in tests).
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
