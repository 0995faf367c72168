"""Browser test fixtures: the ASGI app (HTTP + WebSockets) under uvicorn in a thread, and headless Chromium.

pytest-django's live_server speaks no WebSocket, so the app runs under uvicorn in a thread of the
test process: it sees the same test database (committed data, hence ``transactional_db``), the
same simulated-MT5 clock and the same eager Celery.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def app_server(transactional_db, monkeypatch):
    """Base URL of the whole app (config.asgi) served on a free loopback port.

    Each request's database connection is closed when the request ends (``CONN_MAX_AGE`` 0 while the server
    runs): a sync view runs in a thread of its own, whose kept connection nobody can close once the thread is
    gone (the web process proper returns it to its pool; the test settings have none). Kept, they piled up over
    the browser tests (56 sessions on one test database at the end of a CI run)."""
    import uvicorn
    from django.db import connections

    from config.asgi import application

    # The servers' threads make their connections from this same settings dictionary.
    monkeypatch.setitem(connections["default"].settings_dict, "CONN_MAX_AGE", 0)

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning", lifespan="off", ws="websockets")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (scripts/test.sh installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def screenshot_dir() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
