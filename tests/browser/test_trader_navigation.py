"""The trader web app in headless Chromium, clicks only: from the home page a trader reaches every page of the
role through links (no typed URL), every page keeps the main navigation (no dead end) and none offers a control
the role cannot use. A support agent finds an account's 360 page by searching. Screenshots of the main trader
pages go to docs/screenshots/trader-*.png."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest

from tests.personas import PASSWORD, SIM_PASSWORD, SIM_SERVER, UserFactory, next_login

pytestmark = pytest.mark.browser

DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: Every page a trader has, as a path pattern (an account's id as <id>).
TRADER_PAGES = {
    "/dashboard/", "/accounts/", "/accounts/add/", "/accounts/<id>/", "/accounts/<id>/edit/",
    "/accounts/<id>/deals/", "/accounts/<id>/analytics/", "/accounts/<id>/import/", "/accounts/<id>/ea/",
    "/copy/", "/copy/history/", "/copy/rules/", "/copy/templates/", "/copy/terminal/",
    "/billing/", "/billing/pricing/", "/billing/accounts/",
    "/profile/", "/profile/api-tokens/", "/profile/two-factor/", "/password/change/",
}  # fmt: skip
MAIN_NAV = ("Dashboard", "Accounts", "Copy trading", "Plan", "Settings")
SCREENSHOTS = {
    "/dashboard/": "trader-dashboard.png",
    "/accounts/<id>/": "trader-account.png",
    "/accounts/<id>/ea/": "trader-ea-setup.png",
    "/copy/": "trader-copy-trading.png",
    "/billing/": "trader-plan.png",
    "/profile/": "trader-settings.png",
}
# Links that leave the pages being walked: the API, downloads, sign-out, deleting the account.
SKIP = re.compile(r"^/(api/|static/|admin/|logout/)|/download/|/delete/")


@pytest.fixture
def server(transactional_db, monkeypatch):
    """The whole app (config.asgi) under uvicorn on a port of this worker's range (18500-18599)."""
    import socket

    import uvicorn

    from config.asgi import application

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    for port in range(18550, 18600):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                break
    config = uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def _trader_with_account():
    from decimal import Decimal

    from accounts.choices import Role
    from accounts.services import trading_account_create
    from mt5bridge.simulated import create_account, generate_history

    login = next_login()
    create_account(login=login, password=SIM_PASSWORD, server=SIM_SERVER, balance=Decimal("10000"), name="Nav Trader",
                   country="DE", lead_source="test")  # fmt: skip
    generate_history(login, days=5, trades_per_day=3, seed=login)
    trader = UserFactory(roles=[Role.TRADER])
    account = trading_account_create(
        owner=trader, login=login, password=SIM_PASSWORD, server=SIM_SERVER, name="Main", sync_now=False
    )
    return trader, account


def _log_in(page, base: str, email: str) -> None:
    page.goto(base + "/")  # the one typed address: the home page
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def _pattern(path: str) -> str:
    return UUID.sub("<id>", path)


def _links(page, base: str) -> list[str]:
    hrefs = page.eval_on_selector_all(
        "a[href]:not([download])", "els => els.filter(e => e.offsetParent !== null).map(e => e.getAttribute('href'))"
    )
    found = []
    for href in hrefs:
        if href.startswith(base):
            href = href[len(base) :]
        if not href.startswith("/") or "?" in href or "#" in href or SKIP.search(href):
            continue
        found.append(href)
    return list(dict.fromkeys(found))


def _assert_page_is_usable(page, path: str) -> None:
    nav = page.locator("header nav[aria-label=Main]")
    texts = nav.locator("a").all_inner_texts()
    for label in MAIN_NAV:
        assert label in texts, f"{path}: the main navigation lacks {label!r} (a dead end)"
    assert "Admin" not in texts, f"{path}: a trader is offered the admin"
    assert page.locator("a[href^='/admin/']").count() == 0, f"{path}: a link to the admin"


def test_trader_reaches_every_page_by_clicking(server, browser):
    trader, _account = _trader_with_account()
    DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    _log_in(page, server, trader.email)
    seen: dict[str, str] = {}

    def visit(path: str) -> None:
        pattern = _pattern(path)
        seen[pattern] = path
        _assert_page_is_usable(page, path)
        if pattern in SCREENSHOTS:
            page.screenshot(path=str(DOCS_SCREENSHOTS / SCREENSHOTS[pattern]))
        for href in _links(page, server):
            if _pattern(href) in seen:
                continue
            with page.expect_navigation() as navigation:
                page.locator(f"a[href='{href}']:visible").first.click()
            assert navigation.value.status == 200, f"{href} (from {path}) answered {navigation.value.status}"
            visit(href)
            page.go_back()
            page.wait_for_load_state()

    visit(page.url[len(server) :])
    missing = TRADER_PAGES - set(seen)
    assert not missing, f"pages no link leads to: {sorted(missing)}"
    context.close()


def test_support_agent_finds_an_account_360_by_searching(server, browser):
    from accounts.choices import Role
    from tests.personas import staff_user

    trader, account = _trader_with_account()
    agent = staff_user(Role.SUPPORT_AGENT)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(server + "/")
    page.fill("input[name=username]", agent.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    page.get_by_role("link", name="Admin").click()  # the trader app's header offers staff the admin
    page.wait_for_load_state()
    page.locator("a", has_text="Account lookup").first.click()
    page.wait_for_load_state()
    page.fill("input[name=q]", trader.email)
    page.press("input[name=q]", "Enter")
    page.wait_for_load_state()
    assert page.locator(".account360-owner").get_by_text(f"Account {account.login}").count() == 1
    assert page.locator(".account360-copy").count() == 1 and page.locator(".account360-bonuses").count() == 1
    assert page.locator("[data-action=cancel], [data-action=force-convert]").count() == 0
    context.close()
