"""The admin per staff role in headless Chromium: each role starts at /admin/ and reaches every page of its role by
clicking links only; every page keeps the sidebar (no dead end), offers only controls the role may use, and runs
under the Content-Security-Policy with Alpine and Chart.js working. Screenshots of the main pages go to
docs/screenshots/admin-*.png."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from tests.personas import staff_user

pytestmark = pytest.mark.browser

DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
WATCH = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`);
});
"""
# Per role: the sidebar entries it must reach, and the screenshot each main page leaves (Super Admin's pass only).
PAGES = {
    "super_admin": ["Campaigns", "Bonus monitor", "Account lookup", "Reports", "Audit log", "Assign bonus",
                    "Monitoring status", "Monitored accounts", "MT5 postings", "Users", "Stripe records",
                    "Dashboard"],
    "campaign_manager": ["Campaigns", "Bonus monitor", "Monitoring status", "Monitored accounts", "MT5 postings",
                         "Dashboard"],
    "support_agent": ["Bonus monitor", "Account lookup", "Assign bonus", "Monitoring status", "Trading accounts",
                      "Dashboard"],
    "read_only": ["Campaigns", "Bonus monitor", "Reports", "Monitoring status", "Dashboard"],
}  # fmt: skip
NOT_SHOWN = {
    "super_admin": [],
    "campaign_manager": ["Account lookup", "Reports", "Audit log", "Assign bonus", "Stripe records", "Users"],
    "support_agent": ["Campaigns", "Reports", "Audit log", "Stripe records", "Users"],
    "read_only": ["Account lookup", "Audit log", "Assign bonus", "Stripe records", "Users", "Trading accounts"],
}
SCREENSHOTS = {
    "Dashboard": "admin-dashboard.png",
    "Campaigns": "admin-campaigns.png",
    "Bonus monitor": "admin-bonus-monitor.png",
    "Account lookup": "admin-account-lookup.png",
    "Reports": "admin-reports.png",
    "Audit log": "admin-audit-log.png",
}
MANAGE_ACTIONS = ("cancel", "force_convert", "override_leverage")


@pytest.fixture
def back_office(monkeypatch, app_server):
    """Bonuses of each type (one type C a quarter converted, one cancelled) and one person per staff role."""
    from accounts.choices import Role
    from bonuses.choices import BonusType, CampaignStatus
    from bonuses.models import Campaign
    from bonuses.services.detection import account_trades_detected
    from bonuses.services.ending import bonus_cancel
    from bonuses.services.monitored import monitoring_register
    from bonuses.services.triggers import trigger_deposit
    from mt5bridge import gateway as gw
    from mt5bridge.simulated import deposit
    from tests.bonuses.conftest import make_account, make_campaign

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's loop lives in this thread

    def give(login, amount):
        deposit(login, D(amount))
        monitoring_register(actor="test", login=login)
        return trigger_deposit(login=login, amount=D(amount))[0].bonus

    first = make_campaign(name="Leverage boost", bonus_type=BonusType.DYNAMIC_LEVERAGE, bonus_percent=D("50"))
    give(make_account(balance="0"), "200")
    Campaign.objects.filter(pk=first.pk).update(status=CampaignStatus.PAUSED)
    second = make_campaign(name="Welcome 100%", bonus_type=BonusType.FIXED_LEVERAGE, bonus_percent=D("100"))
    bonus_cancel(actor="test", bonus=give(make_account(balance="0"), "300"))
    Campaign.objects.filter(pk=second.pk).update(status=CampaignStatus.PAUSED)
    make_campaign(name="Trade to convert", bonus_type=BonusType.CONVERTIBLE, bonus_percent=D("10"),
                  lots_per_unit=D("0.1"), unit_amount=D("1"))  # fmt: skip
    login = make_account(balance="0")
    give(login, "1000")
    deal = gw.Deal(
        ticket=920001, order=920001, time=timezone.now() + timezone.timedelta(seconds=1), type=gw.DealType.SELL,
        entry=gw.DealEntry.OUT, magic=0, position_id=920001, reason=0, volume=D("2.5"), price=D("1"),
        commission=D("0"), swap=D("0"), profit=D("0"), fee=D("0"), symbol="BTCUSD", comment="",
    )  # fmt: skip
    account_trades_detected(login=login, deals=[deal])
    return {
        "super_admin": staff_user(Role.SUPER_ADMIN),
        "campaign_manager": staff_user(Role.CAMPAIGN_MANAGER),
        "support_agent": staff_user(Role.SUPPORT_AGENT),
        "read_only": staff_user(Role.READ_ONLY),
    }


class Visit:
    """One role's browser tab: clicks, and what each page must (not) show."""

    def __init__(self, browser, app_server, user, role):
        client = Client()
        client.force_login(user, backend="accounts.backends.ModelBackend")
        self.context = browser.new_context(viewport={"width": 1280, "height": 800})
        self.context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": app_server}])
        self.context.add_init_script(WATCH)
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.console = []
        self.page.on("console", lambda m: m.type in ("error", "warning") and self.console.append(m.text))
        self.page.on("pageerror", lambda e: self.console.append(f"page error: {e}"))
        self.app_server, self.role = app_server, role
        self.checked_links: dict[str, int] = {}

    def status(self, path: str) -> int:
        """The status this person's session gets for an address (asked again once if the connection drops)."""
        from playwright.sync_api import Error

        for attempt in (1, 2):
            try:
                return self.context.request.get(f"{self.app_server}{path}", max_redirects=0).status
            except Error:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def sidebar(self) -> list[str]:
        return [t.strip().splitlines()[-1].strip() for t in self.page.locator("#nav-sidebar-apps a").all_inner_texts()]

    def sidebar_link(self, title: str):
        return self.page.locator(f'#nav-sidebar-apps a:has(span:text-is("{title}"))')

    def click_sidebar(self, title: str) -> None:
        link = self.sidebar_link(title).first
        with self.page.expect_navigation():
            link.click()
        self.page.wait_for_load_state("load")

    def assert_page_ok(self, where: str) -> None:
        page = self.page
        assert page.locator("#nav-sidebar-apps").count() == 1, f"{self.role}: {where} has no sidebar (dead end)"
        assert self.sidebar_link("Dashboard").count() == 1, where
        text = page.inner_text("body")
        assert "Forbidden" not in text and "Server Error" not in text, (self.role, where)
        for hidden in NOT_SHOWN[self.role]:
            assert hidden not in self.sidebar(), (self.role, where, hidden)
        if self.role != "super_admin":
            for action in MANAGE_ACTIONS:
                assert page.locator(f'[data-action="{action}"]').count() == 0, (self.role, where, action)
            options = page.locator('select[name="action"] option').all_inner_texts()
            assert not [o for o in options if "Cancel" in o or "Force-convert" in o], (self.role, where, options)
        # Every admin link on the page opens for this role (no control leads to a refusal).
        for href in set(page.eval_on_selector_all('a[href^="/admin/"]', "els => els.map(e => e.getAttribute('href'))")):
            path = href.split("#")[0]
            if path not in self.checked_links:
                self.checked_links[path] = self.status(path)
            assert self.checked_links[path] < 400, (self.role, where, href, self.checked_links[path])
        violations = page.evaluate("window.__violations")
        assert violations == [], (self.role, where, violations)
        alpine = [m for m in self.console if "Alpine" in m or "page error" in m or "Content Security" in m]
        assert alpine == [], (self.role, where, alpine)


@pytest.mark.parametrize("role", list(PAGES))
def test_each_role_reaches_its_pages_by_clicking_and_sees_only_its_controls(role, app_server, browser, back_office):
    visit = Visit(browser, app_server, back_office[role], role)
    page = visit.page
    page.goto(f"{app_server}/admin/")  # the only typed address: the admin's home
    page.wait_for_selector("#bonus-figures")
    assert page.evaluate("Chart.getChart('chart-flows') !== undefined")  # Chart.js drew the dashboard
    visit.assert_page_ok("dashboard")
    for title in PAGES[role]:
        assert title in visit.sidebar(), (role, title, visit.sidebar())
        visit.click_sidebar(title)
        visit.assert_page_ok(title)
        if title == "Bonus monitor":
            page.wait_for_selector("#bonus-live-rows tr[data-bonus]")
            # The live rows refresh by themselves (htmx polling): the stamp changes without a click.
            stamp = page.get_attribute("#bonus-live-rows .live-state", "data-updated")
            page.wait_for_function(
                "s => document.querySelector('#bonus-live-rows .live-state').dataset.updated !== s",
                arg=stamp,
                timeout=12_000,
            )
            if role == "super_admin":
                _super_admin_row_actions(visit)
            else:
                page.locator('#bonus-live-rows [data-action="view"]').first.click()
                page.wait_for_selector("#bonus_form")
                visit.assert_page_ok("bonus page")
                visit.click_sidebar("Bonus monitor")
        if role == "super_admin" and title in SCREENSHOTS:
            DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(DOCS_SCREENSHOTS / SCREENSHOTS[title]))
    if role == "super_admin":
        page.screenshot(path=str(DOCS_SCREENSHOTS / SCREENSHOTS["Dashboard"]))
    visit.context.close()


def _super_admin_row_actions(visit: Visit) -> None:
    """From a live row: the override-leverage form and the cancel confirmation, each with a way back."""
    page = visit.page
    page.locator('#bonus-live-rows [data-action="override_leverage"]').first.click()
    page.wait_for_selector('input[name="leverage"]')
    visit.assert_page_ok("override leverage")
    visit.click_sidebar("Bonus monitor")
    page.locator('#bonus-live-rows [data-action="force_convert"]').first.click()
    page.wait_for_selector("#confirm-action")
    visit.assert_page_ok("force-convert confirmation")
    page.click("text=No, go back")
    page.wait_for_selector("#bonus-live-rows")
    page.locator('#bonus-live-rows [data-action="view"]').first.click()
    page.wait_for_selector("#bonus_form")
    visit.assert_page_ok("bonus page")
    visit.click_sidebar("Bonus monitor")
