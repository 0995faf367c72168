"""A trader in real headless Chromium: signs up, connects an account, sees it, watches equity move live,
imports a statement and opens the analytics page. Screenshots land in var/screenshots/."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from tests.accounts.fixtures.make_reports import LOGIN as REPORT_LOGIN

pytestmark = pytest.mark.browser

FIXTURES = Path(__file__).resolve().parents[1] / "accounts" / "fixtures"
SIM_PASSWORD = "browser-Pass-42"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def market(monkeypatch):
    """A simulated MT5 account (the sample report's login) with history; the market clock fixed."""
    from mt5bridge.simulated import clock, create_account, generate_history

    # Playwright's sync API keeps an event loop in this thread; the ORM calls here are plain sync code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    clock.set_now(datetime.now(UTC).replace(second=0, microsecond=0))
    create_account(
        login=REPORT_LOGIN,
        password=SIM_PASSWORD,
        server="MetaSim-Demo",
        balance=Decimal("10000"),
        name="Browser Trader",
        country="DE",
        lead_source="test",
    )
    generate_history(REPORT_LOGIN, days=10, trades_per_day=4, seed=7)
    yield REPORT_LOGIN
    clock.set_now(None)


def _open_btc_position(login: int) -> None:
    from mt5bridge import gateway as gw

    gateway = gw.get_gateway("simulated", server="MetaSim-Demo")
    symbol = next(s.name for s in gateway.symbols(login) if s.name.startswith("BTCUSD"))
    result = gateway.order_send(
        login, gw.OrderRequest(action=gw.TradeAction.DEAL, symbol=symbol, volume=Decimal("2"), type=gw.OrderType.BUY)
    )
    assert result.retcode == gw.Retcode.DONE, result


def _move_market_until_equity_changes(account_id) -> str:
    from django.db import connection

    from accounts.models import TradingAccount
    from mt5bridge.live_prices import live_prices_pass
    from mt5bridge.simulated import clock

    try:
        for _ in range(20):
            clock.advance(300)
            if live_prices_pass():
                return str(TradingAccount.objects.get(pk=account_id).equity)
    finally:
        connection.close()
    raise AssertionError("the simulated BTCUSD price did not move in 100 minutes")


def test_trader_signs_up_connects_watches_live_imports_and_reads_analytics(app_server, browser, market, screenshot_dir):
    from accounts.models import TradingAccount
    from mt5bridge.sync import account_sync

    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(15_000)

    # Sign up.
    page.goto(f"{app_server}/signup/")
    page.fill("#id_email", "trader@example.com")
    page.fill("#id_display_name", "Tess Trader")
    page.fill("#id_password1", "a-long-pass-phrase-9")
    page.fill("#id_password2", "a-long-pass-phrase-9")
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(r"/accounts/add/$"))

    # Confirm the address with the emailed link (until then no MT5 account can be connected).
    from django.core import mail

    assert "Confirm your email address" in page.inner_text("#email-unverified")
    link = re.search(r"https?://\S+/email/verify/\S+/", mail.outbox[-1].body).group(0)
    page.goto(app_server + "/" + link.split("/", 3)[3])
    assert "Email confirmed" in page.inner_text("main")
    page.goto(f"{app_server}/accounts/add/")

    # A wrong MT5 password is a form error; the right one connects the account.
    page.fill("#id_name", "Crypto book")
    page.fill("#id_login", str(market))
    page.fill("#id_password", "not-the-password")
    page.fill("#id_server", "MetaSim-Demo")
    page.click("main button[type=submit]")
    assert "refused login" in page.inner_text(".errorlist")
    page.fill("#id_password", SIM_PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(r"/accounts/[0-9a-f-]{36}/$"))
    account = TradingAccount.objects.get(login=market)
    assert account.sync_status == "ok"

    # Its data: figures, the curve and the deal history (loaded by htmx).
    page.wait_for_selector("text=Page 1 of")
    assert page.locator("#equity-chart").is_visible()
    assert page.inner_text("#account-equity").replace(",", "") == f"{account.equity:.2f}"

    # The dashboard's equity moves without a reload when the market moves.
    _open_btc_position(market)
    account_sync(account_id=account.pk, trigger="test")
    page.goto(f"{app_server}/dashboard/")
    page.wait_for_selector("#live-status.on")
    page.evaluate("window.__sameDocument = true")
    cell = page.locator(f"[data-testid=equity-{account.pk}]")
    before = cell.inner_text()
    # Publishing uses async_to_sync, which cannot run in this thread (Playwright's loop lives here).
    with ThreadPoolExecutor(1) as pool:
        new_equity = pool.submit(_move_market_until_equity_changes, account.pk).result()
    expected = f"{Decimal(new_equity):,.2f}"
    page.wait_for_function(
        "([sel, text]) => document.querySelector(sel).textContent.trim() === text",
        arg=[f"[data-testid=equity-{account.pk}]", expected],
        timeout=3000,
    )
    assert cell.inner_text() != before
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
    page.screenshot(path=str(screenshot_dir / "dashboard-desktop.png"), full_page=True)

    # The account page, desktop and phone.
    page.goto(f"{app_server}/accounts/{account.pk}/")
    page.wait_for_selector("text=Page 1 of")
    page.wait_for_selector("[data-live-positions] tbody tr")
    page.screenshot(path=str(screenshot_dir / "account-desktop.png"), full_page=True)

    phone = browser.new_context(viewport=PHONE, storage_state=context.storage_state())
    small = phone.new_page()
    small.goto(f"{app_server}/dashboard/")
    small.wait_for_selector("#live-status.on")
    small.screenshot(path=str(screenshot_dir / "dashboard-phone.png"), full_page=True)
    small.goto(f"{app_server}/accounts/{account.pk}/")
    small.wait_for_selector("text=Page 1 of")
    small.screenshot(path=str(screenshot_dir / "account-phone.png"), full_page=True)
    phone.close()

    # Import a statement: new deals are imported, the rest skipped with reasons.
    page.goto(f"{app_server}/accounts/{account.pk}/import/")
    page.set_input_files("#id_report", str(FIXTURES / "mt5_report.html"))
    page.click("main button[type=submit]")
    page.wait_for_selector("#import-result >> text=Imported")
    imported = int(page.inner_text("[data-testid=imported]"))
    assert imported > 0
    page.set_input_files("#id_report", str(FIXTURES / "mt5_report.xlsx"))
    page.click("main button[type=submit]")
    page.wait_for_selector("text=already in this account")
    assert int(page.inner_text("[data-testid=imported]")) == 0

    # The analytics page with its charts.
    page.click("text=See the analytics")
    page.wait_for_selector("#monthly-chart")
    page.wait_for_selector("#all-statistics")
    assert page.locator("#symbol-chart").is_visible()
    page.screenshot(path=str(screenshot_dir / "analytics-desktop.png"), full_page=True)
    context.close()
