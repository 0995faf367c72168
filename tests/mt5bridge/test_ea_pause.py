"""Pause and resume: a paused EA opens nothing (closing goes on), says so in its heartbeat, and the server keeps it."""

from __future__ import annotations

import pytest
from django.urls import reverse

from mt5bridge import commands as cq
from mt5bridge.ea.models import EAConnection
from mt5bridge.ea.services import ea_state_latest
from mt5bridge.ea_client import ReferenceEA
from mt5bridge.gateway import Retcode
from tests.mt5bridge.ea_helpers import ea_token, wsgi_http  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db

BUY = {"symbol": "BTCUSD", "side": "buy", "volume": "0.10"}


def _enqueue(capture, account, kind, params=None):
    with capture(execute=True):
        return cq.command_enqueue(account_id=account.pk, kind=kind, params=params or {}, origin="web_terminal")


def test_a_paused_reference_ea_opens_nothing_closes_and_reports_paused(
    owned_account,
    ea_token,  # noqa: F811
    client,
    owner,
    django_capture_on_commit_callbacks,
):
    capture = django_capture_on_commit_callbacks
    ea = ReferenceEA(base_url="http://testserver", token=ea_token, login=owned_account.login, http=wsgi_http())
    opened = _enqueue(capture, owned_account, "open_market", BUY)
    ea.beat()
    ea.beat()
    opened.refresh_from_db()
    assert opened.status == "executed"

    pause = _enqueue(capture, owned_account, "pause")
    ea.beat()  # receives and obeys the pause
    refused = _enqueue(capture, owned_account, "open_market", BUY)
    pending = _enqueue(
        capture, owned_account, "place_pending", {"symbol": "BTCUSD", "type": 2, "volume": "0.10", "price": "1000"}
    )
    close = _enqueue(capture, owned_account, "close", {"ticket": opened.result["position"]})
    ea.beat()  # executes what arrived, reports the pause's result and "paused": true
    ea.beat()  # reports the others
    for command in (pause, refused, pending, close):
        command.refresh_from_db()
    assert pause.status == "executed"
    assert refused.status == "failed" and refused.retcode == int(Retcode.TRADE_DISABLED)
    assert pending.status == "failed" and "paused" in pending.message
    assert close.status == "executed"  # closing is allowed while paused
    assert ea_state_latest(owned_account.pk).paused
    assert EAConnection.objects.get(account=owned_account).ea_paused

    client.force_login(owner)
    page = client.get(reverse("web-account-detail", args=[owned_account.pk]))
    assert b'id="ea-paused"' in page.content

    _enqueue(capture, owned_account, "resume")
    ea.beat()
    reopened = _enqueue(capture, owned_account, "open_market", BUY)
    ea.beat()
    ea.beat()
    reopened.refresh_from_db()
    assert reopened.status == "executed"
    assert not ea_state_latest(owned_account.pk).paused
    assert not EAConnection.objects.get(account=owned_account).ea_paused
    assert b'id="ea-paused"' not in client.get(reverse("web-account-detail", args=[owned_account.pk])).content


def test_paused_is_optional_in_the_heartbeat(owned_account, ea_token):  # noqa: F811
    from tests.mt5bridge.ea_helpers import beat_body, ea_client

    for body in (beat_body(owned_account.login), beat_body(owned_account.login, paused=False)):
        response = ea_client(ea_token).post("/api/ea/heartbeat", data=body, format="json")
        assert response.status_code == 200
    bad = ea_client(ea_token).post(
        "/api/ea/heartbeat", data=beat_body(owned_account.login, paused="yes"), format="json"
    )
    assert bad.status_code == 400 and bad.json()["error"]["details"]["field"] == "paused"
