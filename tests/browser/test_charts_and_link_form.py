"""In headless Chromium: the range buttons redraw the equity chart over the range they name, the analytics page
draws its growth curve, and the copy link form shows the chosen mode's fields and a live volume preview."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.utils import timezone

from tests.accounts.test_chart_curves import _five_months_then_forty_minutes

pytestmark = pytest.mark.browser
PASSWORD = "browser-Pass-42"


@pytest.fixture
def trader(monkeypatch):
    from accounts.models import User

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    user = User.objects.create_user(email="charts@example.com", password=PASSWORD, display_name="Chart Reader")
    return user


def _log_in(browser, app_server):
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    # Script errors only (the favicon's 404 is a console error too).
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{app_server}/login/")
    page.fill("input[name=username]", "charts@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(lambda url: "/login/" not in url)
    return page, errors


def _x_min(page, canvas: str) -> float:
    return page.evaluate(f"Chart.getChart(document.getElementById('{canvas}')).scales.x.min")


def test_range_buttons_and_growth_chart(app_server, browser, trader):
    from accounts.models import AccountSnapshot, Deal, TradingAccount

    account = TradingAccount.objects.create(owner=trader, login=7700001, server="MetaSim-Demo", name="Charted",
                                            password_encrypted=b"-", balance=D("1200"), equity=D("1210"))  # fmt: skip
    now = timezone.now().replace(microsecond=0)
    deals, snaps = _five_months_then_forty_minutes(now)
    Deal.objects.bulk_create(Deal(account=account, **{k: v for k, v in r.items() if k != "position"}) for r in deals)
    AccountSnapshot.objects.bulk_create(AccountSnapshot(account=account, **row) for row in snaps)
    first_ms = deals[0]["time"].timestamp() * 1000

    page, errors = _log_in(browser, app_server)
    page.goto(f"{app_server}/accounts/{account.pk}/")
    page.wait_for_function("window.Chart && Chart.getChart(document.getElementById('equity-chart'))")
    assert _x_min(page, "equity-chart") == pytest.approx(first_ms, abs=1000)  # "All" reaches the first deposit
    with page.expect_response(lambda r: "/chart/?range=1W" in r.url):
        page.click("[data-range='1W']")
    page.wait_for_function(
        "Chart.getChart(document.getElementById('equity-chart')).scales.x.min > Date.now() - 8 * 86400000"
    )
    week_ago_ms = (now - timedelta(days=7)).timestamp() * 1000
    assert _x_min(page, "equity-chart") == pytest.approx(week_ago_ms, abs=120_000)
    page.click("[data-range='All']")
    page.wait_for_function(f"Chart.getChart(document.getElementById('equity-chart')).scales.x.min < {first_ms + 1000}")

    page.goto(f"{app_server}/accounts/{account.pk}/analytics/")
    page.wait_for_function("window.Chart && Chart.getChart(document.getElementById('growth-chart'))")
    last_gain = page.evaluate(
        "(() => { const d = Chart.getChart(document.getElementById('growth-chart')).data.datasets[0].data;"
        " return d[d.length - 1].y; })()"
    )
    assert last_gain == pytest.approx(20.0)
    with page.expect_response(lambda r: "/chart/?range=1M" in r.url):
        page.click("[data-range='1M']")
    assert errors == []


def test_link_form_shows_the_modes_fields_and_previews_the_volume(app_server, browser, trader):
    from tests.copytrading.conftest import make_account

    make_account(trader, "MetaSim-Live", balance="100000", name="Master")
    slave = make_account(trader, "MetaSim-Demo", balance="5000", name="Slave")
    page, errors = _log_in(browser, app_server)
    page.goto(f"{app_server}/copy/")
    assert page.locator("#id_multiplier").is_visible() and not page.locator("#id_fixed_volume").is_visible()
    page.select_option("#id_sizing_mode", "risk_percent")
    assert page.locator("#id_risk_percent").is_visible() and not page.locator("#id_multiplier").is_visible()
    assert not page.locator("#id_default_sl_points").is_visible()
    page.select_option("#id_no_sl", "default")
    assert page.locator("#id_default_sl_points").is_visible()

    page.select_option("#id_sizing_mode", "balance_ratio")
    page.select_option("#id_slave", str(slave.pk))
    page.fill("#id_sample_symbol", "BTCUSD")
    page.fill("#id_sample_volume", "2")
    page.locator("#link-preview strong").nth(1).wait_for()
    page.locator("#link-preview", has_text="0.1 lot").wait_for()  # 2 lots x 5,000 / 100,000
    assert "on the slave" in page.inner_text("#link-preview")
    assert errors == []
