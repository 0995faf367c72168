"""Each plan feature and limit sold on the pricing page, checked plan by plan through its one gate function.

History: Free reads 30 days, Basic 365, Pro and Enterprise everything (no cap, the sync included).
Advanced analytics: Pro and Enterprise. Systeme.io sync: Enterprise only. Staff see and get everything.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts import ports
from accounts.choices import Role
from accounts.models import Deal
from entitlements import gates
from tests.personas import UserFactory, api_client_for, staff_user

from .conftest import make_account, on_plan

PLANS = ("free", "basic", "pro", "enterprise")
HISTORY_DAYS = {"free": 30, "basic": 365, "pro": None, "enterprise": None}
ADVANCED = {"free": False, "basic": False, "pro": True, "enterprise": True}
SYSTEME = {"free": False, "basic": False, "pro": False, "enterprise": True}
DEAL_AGES_DAYS = (1, 29, 31, 200, 400, 2000)

STATISTICS = {
    "summary": {"net_profit": "12.50"},
    "series": {
        "equity": [1],
        "drawdown": [2],
        "monthly_returns": [3],
        "by_symbol": [4],
        "by_magic": [5],
        "by_hour": [6],
        "by_weekday": [7],
        "profit_distribution": [8],
    },
}


@pytest.fixture
def trader(db):
    return UserFactory(roles=[Role.TRADER])


def _deals_aged(account, now):
    for ticket, days in enumerate(DEAL_AGES_DAYS, start=1):
        Deal.objects.create(
            account=account, ticket=ticket, time=now - timedelta(days=days), deal_type=0, profit=Decimal("1.00")
        )


@pytest.mark.parametrize("plan", PLANS)
def test_history_start_follows_the_plan_with_no_cap_on_unlimited_plans(trader, stripe_mode, plan):
    on_plan(trader, plan)
    now = timezone.now()
    start = gates.history_start(trader, now=now)
    days = HISTORY_DAYS[plan]
    assert start == (None if days is None else now - timedelta(days=days))
    # A first sync reads the same window; "unlimited" is everything the broker holds, not SYNC_HISTORY_DAYS.
    expected_sync = gates.HISTORY_BEGINNING if days is None else now - timedelta(days=days)
    assert gates.sync_history_start(trader.pk, now=now) == expected_sync


@pytest.mark.parametrize("plan", PLANS)
def test_every_read_of_deals_is_held_to_the_plans_window(trader, stripe_mode, plan):
    on_plan(trader, plan)
    account = make_account(trader)
    _deals_aged(account, timezone.now())
    visible = ports.within_history(Deal.objects.filter(account=account), trader, viewer=trader)
    days = HISTORY_DAYS[plan]
    expected = [age for age in DEAL_AGES_DAYS if days is None or age < days]
    assert sorted((timezone.now() - d.time).days for d in visible) == expected


def test_free_history_is_held_to_thirty_days_long_after_the_first_sync(trader, stripe_mode):
    # The sync keeps appending: a Free account a year old holds a year of deals, and still reads 30 days.
    account = make_account(trader)
    _deals_aged(account, timezone.now())
    assert Deal.objects.filter(account=account).count() == len(DEAL_AGES_DAYS)
    assert ports.within_history(Deal.objects.filter(account=account), trader).count() == 2


def test_staff_read_the_whole_history_of_a_free_trader(trader, stripe_mode):
    account = make_account(trader)
    _deals_aged(account, timezone.now())
    staff = staff_user(Role.SUPPORT_AGENT)
    assert gates.history_start(trader, viewer=staff) is None
    assert ports.within_history(Deal.objects.filter(account=account), trader, viewer=staff).count() == 6


@pytest.mark.parametrize("plan", PLANS)
def test_advanced_analytics_are_shown_only_on_plans_that_sell_them(trader, stripe_mode, plan):
    on_plan(trader, plan)
    shown = gates.analytics_for(STATISTICS, trader, viewer=trader)
    assert shown["summary"] == STATISTICS["summary"]
    assert {"equity", "drawdown"} <= set(shown["series"])  # every plan's
    assert all((name in shown["series"]) is ADVANCED[plan] for name in gates.ADVANCED_SERIES)
    if ADVANCED[plan]:
        assert shown == STATISTICS
    else:
        assert shown["advanced"]["allowed"] is False
        assert shown["advanced"]["required_plan"] == "pro"
    assert gates.has_feature(trader, "analytics_advanced") is ADVANCED[plan]


def test_staff_see_the_advanced_analytics_of_a_free_trader(trader, stripe_mode):
    shown = gates.analytics_for(STATISTICS, trader, viewer=staff_user(Role.SUPPORT_AGENT))
    assert set(shown["series"]) == set(STATISTICS["series"])


@pytest.mark.parametrize("plan", PLANS)
def test_systeme_sync_sends_only_contacts_whose_plan_has_it(trader, stripe_mode, plan):
    on_plan(trader, plan)
    assert gates.systeme_contacts([trader]) == ([trader] if SYSTEME[plan] else [])


# --- Through the API: the deals list and the analytics read the same window and gate ----------------


@pytest.mark.parametrize("plan", PLANS)
def test_the_deals_api_lists_only_the_plans_history(trader, stripe_mode, plan):
    on_plan(trader, plan)
    account = make_account(trader)
    _deals_aged(account, timezone.now())
    response = api_client_for(trader).get(f"/api/accounts/{account.pk}/deals", {"limit": 100})
    assert response.status_code == 200
    days = HISTORY_DAYS[plan]
    assert len(response.json()["results"]) == len([a for a in DEAL_AGES_DAYS if days is None or a < days])


@pytest.mark.parametrize("plan", PLANS)
def test_the_analytics_api_shows_advanced_analytics_only_on_plans_that_sell_them(trader, stripe_mode, plan):
    on_plan(trader, plan)
    account = make_account(trader)
    _deals_aged(account, timezone.now())
    body = api_client_for(trader).get(f"/api/analytics/{account.pk}").json()
    assert ("advanced" not in body) is ADVANCED[plan]
    assert all((name in body["series"]) is ADVANCED[plan] for name in gates.ADVANCED_SERIES)
    assert "equity" in body["series"]
    if HISTORY_DAYS[plan] is not None:
        assert body["trades_count"] <= len([a for a in DEAL_AGES_DAYS if a < HISTORY_DAYS[plan]])


def test_staff_read_a_free_traders_whole_deal_history_through_the_api(trader, stripe_mode):
    account = make_account(trader)
    _deals_aged(account, timezone.now())
    response = api_client_for(staff_user(Role.SUPPORT_AGENT)).get(f"/api/accounts/{account.pk}/deals", {"limit": 100})
    assert response.status_code == 200
    assert len(response.json()["results"]) == len(DEAL_AGES_DAYS)
