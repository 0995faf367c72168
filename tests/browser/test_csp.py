"""The Content-Security-Policy in real headless Chromium: the main pages (dashboard, account page with its charts,
analytics, copy pages, the admin's campaign form, the API docs) work under it with no violation, and names full
of markup (from MT5 or from traders) show up as text: no script runs, no element is injected."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.test import Client

from tests.personas import SIM_PASSWORD, SIM_SERVER, UserFactory, next_login, staff_user

pytestmark = pytest.mark.browser

GROUP = "<script>alert(1)</script>"
COUNTRY = '"><img src=x onerror=alert(1)>'
ACCOUNT_NAME = '<img src=x onerror=alert("name")>'
SYMBOL = "<svg onload=alert(2)>"
DISPLAY_NAME = '<script>alert("me")</script>'

# Installed before any page script: every policy violation the browser reports, and every markup injection.
WATCH = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`);
});
"""


@pytest.fixture
def world(monkeypatch):
    """A trader (with a hostile display name) whose synced account has history, a hostile-named account with
    hostile symbols, a copy link, and an MT5 scan with hostile group and country names."""
    from accounts.choices import Role
    from accounts.models import Position
    from accounts.services import trading_account_create
    from bonuses.models import Mt5Scan
    from copytrading.models import CopyEvent, CopyLink, OrderTemplate
    from mt5bridge.simulated import clock, create_account, generate_history
    from mt5bridge.sync import account_sync

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's loop lives in this thread
    clock.set_now(datetime.now(UTC).replace(second=0, microsecond=0))
    owner = UserFactory(display_name=DISPLAY_NAME)
    logins = []
    for name in ("Main book", ACCOUNT_NAME):
        login = next_login()
        create_account(login=login, password=SIM_PASSWORD, server=SIM_SERVER, balance=Decimal("10000"), name=name)
        generate_history(login, days=40, trades_per_day=4, seed=login)
        account = trading_account_create(
            owner=owner, login=login, password=SIM_PASSWORD, server=SIM_SERVER, name=name, sync_now=False
        )
        account_sync(account_id=account.pk, trigger="test")
        logins.append(account)
    main, hostile = logins
    now = datetime.now(UTC)
    Position.objects.create(
        account=hostile, ticket=99, symbol=SYMBOL, side=0, volume=Decimal("1"), price_open=Decimal("1.1"),
        price_current=Decimal("1.2"), profit=Decimal("5"), comment=GROUP, opened_at=now, updated_at=now,
    )  # fmt: skip
    link = CopyLink.objects.create(master=main, slave=hostile)
    CopyEvent.objects.create(link=link, master_account=main, slave_account=hostile, intent="open",
                             reason_code="symbol", reason=f"no {SYMBOL}", symbol=SYMBOL)  # fmt: skip
    OrderTemplate.objects.create(owner=owner, name=ACCOUNT_NAME[:80], symbol=SYMBOL, side="buy", volume=Decimal("1"))
    Mt5Scan.objects.create(groups=["real\\group", GROUP], countries=["DE", COUNTRY], accounts=2)
    yield {"owner": owner, "main": main, "hostile": hostile, "staff": staff_user(Role.SUPER_ADMIN)}
    clock.set_now(None)


def _signed_in(browser, app_server, user):
    """A browser context with the user's session (made by Django's test client on the same database and cache)."""
    client = Client()
    client.force_login(user, backend="accounts.backends.ModelBackend")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": app_server}])
    context.add_init_script(WATCH)
    return context


class Watcher:
    def __init__(self, page):
        self.page, self.console, self.dialogs = page, [], []
        page.on("console", lambda m: self.console.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.console.append(f"page error: {e}"))
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

    def visit(self, url: str, ready: str) -> None:
        self.page.goto(url)
        self.page.wait_for_selector(ready)
        self.page.wait_for_timeout(300)  # late scripts (charts, htmx swaps, the socket) have run

    def assert_clean(self, where: str) -> None:
        violations = self.page.evaluate("window.__violations")
        injected = self.page.evaluate(
            "document.querySelectorAll('main img[src=x], main svg[onload], [onerror], [onmouseover]').length"
        )
        assert violations == [], (where, violations)
        assert [m for m in self.console if "Content Security Policy" in m or "page error" in m] == [], (
            where,
            self.console,
        )
        assert self.dialogs == [], (where, self.dialogs)
        assert injected == 0, where


def test_main_pages_run_under_the_policy_with_no_violation_and_hostile_names_as_text(app_server, browser, world):
    context = _signed_in(browser, app_server, world["owner"])
    page = context.new_page()
    page.set_default_timeout(15_000)
    watch = Watcher(page)
    main, hostile = world["main"], world["hostile"]

    watch.visit(f"{app_server}/dashboard/", "#live-status.on")  # the live WebSocket connects (connect-src)
    assert DISPLAY_NAME in page.inner_text("header") and ACCOUNT_NAME in page.inner_text("main")
    watch.assert_clean("dashboard")

    watch.visit(f"{app_server}/accounts/{main.pk}/", "text=Page 1 of")  # htmx loaded the deals
    page.wait_for_selector("#live-status.on")
    assert page.evaluate("Chart.getChart('equity-chart') !== undefined")  # the chart drew
    watch.assert_clean("account page")

    watch.visit(f"{app_server}/accounts/{hostile.pk}/", "text=Page 1 of")
    assert SYMBOL in page.inner_text("[data-live-positions]")
    # A live update carrying markup (the socket's payload) is painted as text too.
    page.evaluate(
        """(id) => window.mt5Live.apply({type: "account", account: id, positions: [
             {ticket: 1, symbol: '<img src=x onerror=alert(7)>', side: "buy", volume: "1", price_open: "1",
              price_current: "1", swap: '<img src=x onerror=alert(8)>', profit: "1"}]})""",
        str(hostile.pk),
    )
    assert "<img src=x onerror=alert(7)>" in page.inner_text("[data-live-positions]")
    watch.assert_clean("account page with markup names")

    watch.visit(f"{app_server}/accounts/{main.pk}/analytics/", "#all-statistics")
    assert page.evaluate("Chart.getChart('monthly-chart') !== undefined")
    watch.assert_clean("analytics")

    for path, ready in [("/copy/", "table"), ("/copy/history/", "table"), ("/copy/rules/", "#rule-hits"),
                        ("/copy/templates/", "form"), ("/copy/terminal/", "#commands table")]:  # fmt: skip
        watch.visit(f"{app_server}{path}", ready)
        watch.assert_clean(path)

    # The watch sees what the policy blocks: an inline style attribute is reported (so a clean page means clean).
    page.evaluate("document.querySelector('main').insertAdjacentHTML('beforeend', '<p style=\"color:red\">x</p>')")
    page.wait_for_function("window.__violations.length > 0", timeout=3000)
    assert "style-src-attr" in page.evaluate("window.__violations")[0]
    context.close()


def test_admin_campaign_form_and_api_docs_run_under_the_policy(app_server, browser, world, screenshot_dir):
    context = _signed_in(browser, app_server, world["staff"])
    page = context.new_page()
    page.set_default_timeout(15_000)
    watch = Watcher(page)

    watch.visit(f"{app_server}/admin/bonuses/campaign/add/", "#campaign_form")
    help_text = page.inner_text("#campaign_form")
    assert GROUP in help_text and COUNTRY in help_text  # shown as text
    # The admin's own scripts still work: the date-time shortcuts are added by admin/js/admin/DateTimeShortcuts.js.
    page.wait_for_selector(".datetimeshortcuts")
    watch.assert_clean("admin campaign form")
    page.screenshot(path=str(screenshot_dir / "csp-admin-campaign-form.png"), full_page=True)

    watch.visit(f"{app_server}/admin/bonuses/campaign/", "#changelist")
    watch.assert_clean("admin campaign list")

    watch.visit(f"{app_server}/api/docs/", ".swagger-ui .info")  # Swagger UI rendered from local files
    watch.assert_clean("API docs")
    page.screenshot(path=str(screenshot_dir / "csp-api-docs.png"))
    context.close()
