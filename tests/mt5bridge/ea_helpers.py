"""Shared helpers for the EA protocol tests: heartbeat bodies, EA HTTP clients and a reference EA in-process."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest
from rest_framework.test import APIClient

from mt5bridge import events
from mt5bridge.ea.services import ea_token_issue
from tests.mt5bridge.ea_test_hooks import Recorder

_LOOP: asyncio.AbstractEventLoop | None = None


def in_server_loop(coroutine):
    """Run ``coroutine`` on one long-lived event loop, as an ASGI server process does.

    The wake-up subscription and the asyncio Redis pool belong to their loop and live as long as it; a new loop
    per request would open and tear them down on every call, which no server does. The thread is a daemon and
    the loop is never closed, so the tests never wait on that teardown.
    """
    global _LOOP
    if _LOOP is None:
        _LOOP = asyncio.new_event_loop()
        threading.Thread(target=_LOOP.run_forever, name="asgi-loop", daemon=True).start()
    return asyncio.run_coroutine_threadsafe(coroutine, _LOOP).result(timeout=60)


def beat_body(login: int, **overrides) -> dict:
    body = {
        "v": 1,
        "ea_version": "test",
        "login": login,
        "server_time": int(time.time()),
        "account": {
            "balance": "10000.00",
            "credit": "0",
            "equity": "10012.50",
            "margin": "100",
            "margin_free": "9912.50",
            "leverage": 100,
        },
        "positions": [
            {
                "ticket": 501,
                "symbol": "BTCUSD",
                "type": 0,
                "volume": "0.10",
                "price_open": "65000.5",
                "sl": "0",
                "tp": "0",
                "magic": 7,
                "comment": "",
                "profit": "12.5",
                "time": int(time.time()) - 60,
                "identifier": 501,
            }
        ],
        "orders": [],
        "terminal": {"build": 4755, "connected": True},
        "results": [],
    }
    body.update(overrides)
    return body


def ea_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def wsgi_http() -> httpx.Client:
    """An httpx client that calls the Django app in-process (the reference EA speaks real HTTP semantics)."""
    from django.core import signals
    from django.core.wsgi import get_wsgi_application
    from django.db import close_old_connections

    handler = get_wsgi_application()

    def app(environ, start_response):
        # Like Django's test client: keep the test's database connection (and its transaction) open.
        signals.request_started.disconnect(close_old_connections)
        signals.request_finished.disconnect(close_old_connections)
        try:
            response = handler(environ, start_response)
            body = b"".join(response)
            response.close()
            return [body]
        finally:
            signals.request_started.connect(close_old_connections)
            signals.request_finished.connect(close_old_connections)

    return httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://testserver")


@pytest.fixture
def ea_hooks():
    """A ``Recorder`` registered as a bridge listener for the test (next to copy trading's own)."""
    with events.listening(Recorder()) as recorder:
        yield recorder


@pytest.fixture
def ea_token(owned_account) -> str:
    return ea_token_issue(account=owned_account)
