"""The admin as the back office: the broker's header, the per-role sidebar, dj-stripe for Super Admin only, the
bonus dashboard's figures against the bonuses behind them, and the live monitor with its per-role row actions."""

from __future__ import annotations

import re
from decimal import Decimal as D

import pytest
from django.contrib import admin
from django.test import Client, override_settings
from django.utils import timezone

from accounts.admin_site import BackOfficeAdminSite
from bonuses.admin.dashboard import charts
from bonuses.choices import BonusStatus, BonusType, CampaignStatus, CancelReason
from bonuses.models import Bonus, Campaign
from bonuses.services.detection import account_trades_detected
from bonuses.services.ending import bonus_cancel
from bonuses.services.triggers import trigger_deposit
from mt5bridge import gateway as gw
from mt5bridge.simulated import deposit
from tests.test_settings import run_python

from .conftest import make_account, make_campaign

pytestmark = pytest.mark.django_db

ROLES = ("super_admin", "campaign_manager", "support_agent", "read_only")
# The bonus back office's sidebar entries per role (the seed's role table, written out).
BACK_OFFICE = {
    "super_admin": ["Dashboard", "Campaigns", "Bonus monitor", "Account lookup", "Reports", "Audit log",
                    "Assign bonus", "Monitoring status", "Monitored accounts", "MT5 postings"],
    "campaign_manager": ["Dashboard", "Campaigns", "Bonus monitor", "Monitoring status", "Monitored accounts",
                         "MT5 postings"],
    "support_agent": ["Dashboard", "Bonus monitor", "Account lookup", "Assign bonus", "Monitoring status",
                      "Monitored accounts", "MT5 postings"],
    "read_only": ["Dashboard", "Campaigns", "Bonus monitor", "Reports", "Monitoring status", "Monitored accounts",
                  "MT5 postings"],
}  # fmt: skip
SIDEBAR_LINK = re.compile(r'<a href="(/admin/[^"]*)" class="flex h-\[38px\][^"]*">.*?<span>([^<]+)</span>', re.S)


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _sidebar(html: str) -> list[tuple[str, str]]:
    nav = html[html.index('id="nav-sidebar-apps"') :]
    return [(url, title.strip()) for url, title in SIDEBAR_LINK.findall(nav)]


def _deposit(login: int, amount: str):
    deposit(login, D(amount))
    return trigger_deposit(login=login, amount=D(amount))


@pytest.fixture
def bonuses_world(db):
    """A type A bonus (open), a type B bonus cancelled by staff, a type C bonus a quarter converted."""
    type_a = make_campaign(name="Leverage boost", bonus_type=BonusType.DYNAMIC_LEVERAGE, bonus_percent=D("50"))
    (a,) = _deposit(make_account(balance="0"), "200")  # 100 credit
    Campaign.objects.filter(pk=type_a.pk).update(status=CampaignStatus.PAUSED)
    type_b = make_campaign(name="Welcome 100%", bonus_type=BonusType.FIXED_LEVERAGE, bonus_percent=D("100"))
    (b,) = _deposit(make_account(balance="0"), "300")  # 300 credit, then cancelled
    bonus_cancel(actor="test", bonus=b.bonus)
    Campaign.objects.filter(pk=type_b.pk).update(status=CampaignStatus.PAUSED)
    make_campaign(name="Trade to convert", bonus_type=BonusType.CONVERTIBLE, bonus_percent=D("10"),
                  lots_per_unit=D("0.1"), unit_amount=D("1"))  # fmt: skip
    login_c = make_account(balance="0")
    (c,) = _deposit(login_c, "1000")  # 100 credit, 10 lots to convert all
    deal = gw.Deal(
        ticket=910001, order=910001, time=timezone.now() + timezone.timedelta(seconds=1), type=gw.DealType.SELL,
        entry=gw.DealEntry.OUT, magic=0, position_id=910001, reason=0, volume=D("2.5"), price=D("1"),
        commission=D("0"), swap=D("0"), profit=D("0"), fee=D("0"), symbol="BTCUSD", comment="",
    )  # fmt: skip
    account_trades_detected(login=login_c, deals=[deal])
    return {
        "a": Bonus.objects.get(pk=a.bonus.pk),
        "b": Bonus.objects.get(pk=b.bonus.pk),
        "c": Bonus.objects.get(pk=c.bonus.pk),
    }


# --- The site, its header and its login --------------------------------------------------------


def test_the_admin_is_the_back_office_site_with_its_second_factor():
    # django-unfold's default app config would swap in a plain site (no second factor): it must not.
    assert isinstance(admin.site, BackOfficeAdminSite)
    page = Client().get("/admin/login/").content.decode()
    assert 'name="otp_token"' in page and 'name="password"' in page


def test_the_header_names_the_broker_not_django(super_admin, settings):
    with override_settings(UNFOLD={**settings.UNFOLD, "SITE_HEADER": "Acme Markets", "SITE_TITLE": "Acme Markets"}):
        page = _client(super_admin).get("/admin/").content.decode()
    assert "Acme Markets" in page
    assert "Django administration" not in page and "Django site admin" not in page


def test_broker_name_and_header_come_from_the_environment():
    code = "import config.settings as s; print(s.UNFOLD['SITE_HEADER'], '|', s.UNFOLD['SITE_TITLE'])"
    assert run_python(code, DEBUG="true").stdout.strip() == "MT5 back office | MT5 back office"
    assert run_python(code, DEBUG="true", BROKER_NAME="Acme Markets").stdout.strip() == "Acme Markets | Acme Markets"
    both = run_python(code, DEBUG="true", BROKER_NAME="Acme", ADMIN_SITE_HEADER="Acme bonus desk")
    assert both.stdout.strip() == "Acme bonus desk | Acme bonus desk"


# --- The sidebar per role, and dj-stripe --------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_the_sidebar_shows_each_role_its_back_office_pages_in_order_and_each_opens(role, request, bonuses_world):
    client = _client(request.getfixturevalue(role))
    links = _sidebar(client.get("/admin/").content.decode())
    titles = [title for _, title in links]
    assert titles[: len(BACK_OFFICE[role])] == BACK_OFFICE[role]
    for url, title in links:  # no entry leads to a page the role may not open
        assert client.get(url).status_code == 200, (role, title, url)


def test_the_sidebar_marks_the_page_that_is_open(super_admin, bonuses_world):
    client = _client(super_admin)

    def active(url: str) -> list[str]:
        html = client.get(url).content.decode()
        nav = html[html.index('id="nav-sidebar-apps"') :]
        return re.findall(r'<a href="(/admin/[^"]*)" class="flex h-\[38px\][^"]*\bactive\b', nav)

    assert active("/admin/bonuses/bonus/lookup/") == ["/admin/bonuses/bonus/lookup/"]  # not the monitor's too
    assert active(f"/admin/bonuses/bonus/{bonuses_world['a'].pk}/change/") == ["/admin/bonuses/bonus/"]
    assert active("/admin/") == ["/admin/"]


@pytest.mark.parametrize("role", ROLES)
def test_dj_stripe_is_listed_for_super_admin_only(role, request):
    client = _client(request.getfixturevalue(role))
    index = client.get("/admin/").content.decode()
    stripe_app = client.get("/admin/djstripe/")
    if role == "super_admin":
        assert "Stripe records" in index and stripe_app.status_code == 200
    else:
        assert "/admin/djstripe/" not in index and "Stripe records" not in index
        assert stripe_app.status_code == 404


def test_groups_come_in_the_back_office_order_for_super_admin(super_admin):
    page = _client(super_admin).get("/admin/").content.decode()
    headings = re.findall(r'<h2 class="font-semibold flex flex-row group[^"]*"[^>]*>\s*([^<]+?)\s*<', page)
    assert headings == ["Back office", "Accounts", "Copy trading", "Billing", "Integrations", "System"]


# --- The dashboard's figures against the bonuses behind them ------------------------------------


def test_dashboard_figures_and_charts_follow_the_bonuses(super_admin, bonuses_world):
    a, b, c = bonuses_world["a"], bonuses_world["b"], bonuses_world["c"]
    assert b.status == BonusStatus.CANCELLED and c.credit_outstanding == D("75.00")
    page = _client(super_admin).get("/admin/").content.decode()
    figures = dict(re.findall(r'data-figure="(\w+)">([^<]*)<', page))
    assert figures["active_bonuses"] == "2"
    assert figures["credit_outstanding"] == str(a.credit_outstanding + c.credit_outstanding)  # 100 + 75
    assert figures["cancellations_30d"] == "1"
    assert figures["given_30d"] == str(a.amount + b.amount + c.amount)  # 100 + 300 + 100

    drawn = charts()
    today = timezone.now().date()
    # Credit outstanding: the last point is today's figure; the cancelled bonus's 300 came and went today.
    assert drawn["credit"][-1] == (today, D("175.00"))
    assert all(value == 0 for _, value in drawn["credit"][:-1])
    assert drawn["flows"]["granted"][-1] == 3
    assert drawn["flows"]["cancelled"][CancelReason.MANUAL][-1] == 1
    assert drawn["flows"]["cancelled"][CancelReason.WITHDRAWAL][-1] == 0
    (row,) = drawn["conversion"]["rows"]
    assert row["bonus"].pk == c.pk and row["percent"] == D("25.0")
    assert [(t["name"], t["given"], t["bonuses"], t["open"]) for t in drawn["campaigns"]] == [
        ("Welcome 100%", D("300.00"), 1, 0),
        ("Leverage boost", D("100.00"), 1, 1),
        ("Trade to convert", D("100.00"), 1, 1),
    ]
    # The charts are canvases Chart.js draws from the node_modules copy (no CDN).
    for chart in ("chart-credit", "chart-flows", "chart-campaigns"):
        assert f'id="{chart}"' in page
    assert "/static/vendor/chart.js/dist/chart.umd.min.js" in page
    assert not re.search(r'<(script|link)[^>]+(src|href)="(https?:)?//', page)


def test_the_old_dashboard_url_shows_the_same_dashboard(read_only, bonuses_world):
    page = _client(read_only).get("/admin/bonuses/bonus/dashboard/").content.decode()
    assert 'data-figure="active_bonuses">2<' in page and 'id="chart-flows"' in page


# --- The live monitor ------------------------------------------------------------------------------


def _actions(html: str, bonus: Bonus) -> set[str]:
    row = re.search(rf'<tr data-bonus="{bonus.pk}">(.*?)</tr>', html, re.S)
    assert row, f"bonus #{bonus.pk} is not in the live rows"
    return set(re.findall(r'data-action="(\w+)"', row.group(1)))


def test_the_monitor_page_polls_its_live_rows(read_only, bonuses_world):
    page = _client(read_only).get("/admin/bonuses/bonus/?status__exact=active").content.decode()
    assert 'hx-get="/admin/bonuses/bonus/live/?status__exact=active"' in page
    assert re.search(r'hx-trigger="every \ds"', page)


@pytest.mark.parametrize("role", ROLES)
def test_live_rows_offer_each_role_only_the_actions_it_may_use(role, request, bonuses_world):
    a, b, c = bonuses_world["a"], bonuses_world["b"], bonuses_world["c"]
    response = _client(request.getfixturevalue(role)).get("/admin/bonuses/bonus/live/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html  # a fragment for htmx to swap in
    if role == "super_admin":
        assert _actions(html, a) == {"view", "override_leverage", "cancel"}
        assert _actions(html, b) == {"view"}  # cancelled: nothing left to do
        assert _actions(html, c) == {"view", "force_convert", "cancel"}
    else:
        assert _actions(html, a) == _actions(html, b) == _actions(html, c) == {"view"}


def test_live_rows_follow_the_monitor_filters(super_admin, bonuses_world):
    html = _client(super_admin).get("/admin/bonuses/bonus/live/?bonus_type__exact=C").content.decode()
    assert set(map(int, re.findall(r'data-bonus="(\d+)"', html))) == {bonuses_world["c"].pk}


def test_live_rows_ignore_a_malformed_filter(super_admin, bonuses_world):
    response = _client(super_admin).get("/admin/bonuses/bonus/live/?campaign__id__exact=abc&q=%3Cx%3E")
    assert response.status_code == 200 and len(re.findall(r'data-bonus="', response.content.decode())) == 3


@pytest.mark.parametrize("role", ["campaign_manager", "support_agent", "read_only"])
def test_roles_without_bonus_management_cannot_cancel_or_convert(role, request, bonuses_world):
    client = _client(request.getfixturevalue(role))
    a, c = bonuses_world["a"], bonuses_world["c"]
    for url in (f"/admin/bonuses/bonus/{a.pk}/cancel/", f"/admin/bonuses/bonus/{c.pk}/force-convert/"):
        assert client.get(url).status_code == 403
        assert client.post(url).status_code == 403
    assert Bonus.objects.get(pk=a.pk).status == BonusStatus.ACTIVE


def test_cancel_asks_first_then_cancels(super_admin, bonuses_world):
    a = bonuses_world["a"]
    client = _client(super_admin)
    confirm = client.get(f"/admin/bonuses/bonus/{a.pk}/cancel/?next=/admin/bonuses/bonus/")
    assert confirm.status_code == 200 and b"Yes, cancel bonus" in confirm.content
    assert Bonus.objects.get(pk=a.pk).status == BonusStatus.ACTIVE  # asking changes nothing
    done = client.post(f"/admin/bonuses/bonus/{a.pk}/cancel/", {"next": "/admin/bonuses/bonus/"})
    assert done.status_code == 302 and done["Location"] == "/admin/bonuses/bonus/"
    assert Bonus.objects.get(pk=a.pk).status == BonusStatus.CANCELLED


def test_force_convert_after_confirmation_converts_the_rest(super_admin, bonuses_world):
    c = bonuses_world["c"]
    client = _client(super_admin)
    assert b"Yes, force-convert bonus" in client.get(f"/admin/bonuses/bonus/{c.pk}/force-convert/").content
    client.post(f"/admin/bonuses/bonus/{c.pk}/force-convert/", {"next": "https://evil.example/"})
    c.refresh_from_db()
    assert c.status == BonusStatus.CONVERTED and c.converted_amount == D("100.00")


def test_an_outside_next_is_not_followed(super_admin, bonuses_world):
    a = bonuses_world["a"]
    done = _client(super_admin).post(f"/admin/bonuses/bonus/{a.pk}/cancel/", {"next": "https://evil.example/"})
    assert done["Location"] == "/admin/bonuses/bonus/"


def test_the_bonus_page_links_override_leverage_for_super_admin_only(super_admin, support_agent, bonuses_world):
    a = bonuses_world["a"]
    url = f"/admin/bonuses/bonus/{a.pk}/override-leverage/"
    assert f'href="{url}"' in _client(super_admin).get(f"/admin/bonuses/bonus/{a.pk}/change/").content.decode()
    assert url not in _client(support_agent).get(f"/admin/bonuses/bonus/{a.pk}/change/").content.decode()
