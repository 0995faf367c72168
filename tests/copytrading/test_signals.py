"""Signals: publishing a master, its public page's verified figures, following (the copy link and the permission
it needs), the minimum deposit, stopping with the open copies closed or kept, and the pages of both sides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.test import Client
from django.utils.html import escape

from accounts.analytics.history import statistics_for_account
from accounts.models import Deal, TradingAccount
from accounts.permissions import restrict
from copytrading import services, signal_services
from copytrading.choices import CopyStatus
from copytrading.models import CopiedPosition, CopyLink, SignalAudit, SignalSubscription, TradingSignal
from mt5bridge.ea.models import Command
from tests.personas import UserFactory, api_client_for

from .conftest import make_account

pytestmark = pytest.mark.django_db

START = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


def deal(account, ticket, when, *, deal_type=0, entry=0, position=0, profit="0", volume="1", price="1.1"):
    return Deal.objects.create(
        account=account,
        ticket=ticket,
        time=when,
        deal_type=deal_type,
        entry=entry,
        position_id=position,
        profit=D(profit),
        volume=D(volume),
        price=D(price),
        symbol="EURUSD" if deal_type in (0, 1) else "",
    )


def trade_history(account, trades):
    """A deposit, then one closed trade a day with each profit of ``trades``: the synced history analytics read."""
    deal(account, 1, START, deal_type=2, profit="10000", volume="0", price="0")
    for n, profit in enumerate(trades, start=1):
        opened = START + timedelta(days=n * 9, hours=1)
        deal(account, 100 + 2 * n, opened, deal_type=0, entry=0, position=500 + n)
        deal(account, 101 + 2 * n, opened + timedelta(hours=3), deal_type=1, entry=1, position=500 + n, profit=profit)


@pytest.fixture
def provider(owner):
    return owner


@pytest.fixture
def follower(db):
    return UserFactory()


@pytest.fixture
def follower_account(follower):
    return make_account(follower, "MetaSim-Demo", balance="5000", name="Follower")


@pytest.fixture
def signal(provider, master):
    trade_history(master, ["120", "-40", "75.5", "-20", "310", "15"])
    return signal_services.signal_publish(
        user=provider,
        master_id=master.pk,
        name="Steady EURUSD",
        description="Day trades.",
        min_deposit=D("1000"),
        monthly_fee=D("10"),
        performance_fee_pct=D("20"),
    )


def follow(follower, signal, account, **values):
    return signal_services.signal_subscribe(user=follower, signal_id=signal.pk, account_id=account.pk, **values)


# --- Publishing and the public page --------------------------------------------------------------------------


def test_a_trader_publishes_a_master_through_the_api_and_it_is_listed(provider, master):
    client = api_client_for(provider)
    body = {"master": str(master.pk), "name": "Gold swing", "min_deposit": "500", "performance_fee_pct": "25"}
    response = client.post("/api/signals", body, format="json")
    assert response.status_code == 201, response.content
    signal = TradingSignal.objects.get(master=master)
    assert (signal.owner, signal.min_deposit, signal.performance_fee_pct) == (provider, D("500"), D("25"))
    assert [s["name"] for s in api_client_for(None).get("/api/signals").json()] == ["Gold swing"]
    assert SignalAudit.objects.filter(signal=signal, action="published", actor=provider).exists()
    again = client.post("/api/signals", body, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "signal_exists"


def test_nobody_publishes_an_account_they_do_not_own(provider, master, follower):
    response = api_client_for(follower).post("/api/signals", {"master": str(master.pk), "name": "Mine"}, format="json")
    assert response.status_code == 404
    assert not TradingSignal.objects.exists()


def test_the_public_page_shows_the_figures_analytics_computes_from_the_synced_history(signal, master):
    stats = statistics_for_account(master)
    summary = stats["summary"]
    response = api_client_for(None).get(f"/api/signals/{signal.pk}")
    assert response.status_code == 200
    figures = response.json()["figures"]
    assert figures["gain_pct"] == summary["gain_pct"] and figures["gain_pct"] > 0
    assert figures["max_drawdown_pct"] == summary["max_drawdown_balance_pct"] and figures["max_drawdown_pct"] > 0
    assert figures["trades"] == stats["trades_count"] == 6
    assert figures["months"] == len(stats["series"]["monthly_returns"]) == 2
    assert figures["net_profit"] == summary["net_profit"] == "460.50"

    page = Client().get(f"/copy/signals/{signal.pk}/")  # no login
    assert page.status_code == 200
    html = page.content.decode()
    assert f'data-figure="gain_pct">{summary["gain_pct"]} %' in html
    assert f'data-figure="trades">{stats["trades_count"]}<' in html


def test_the_provider_cannot_edit_the_figures(signal, provider):
    before = api_client_for(None).get(f"/api/signals/{signal.pk}").json()["figures"]
    response = api_client_for(provider).patch(
        f"/api/signals/{signal.pk}", {"figures": {"gain_pct": 999}, "gain_pct": 999, "name": "Renamed"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["name"] == "Renamed"
    assert response.json()["figures"] == before


def test_another_trader_cannot_change_a_signal_or_see_its_followers(signal, follower):
    client = api_client_for(follower)
    assert client.patch(f"/api/signals/{signal.pk}", {"name": "Hijacked"}, format="json").status_code == 404
    assert client.get(f"/api/signals/{signal.pk}/followers").status_code == 404
    signal.refresh_from_db()
    assert signal.name == "Steady EURUSD"


def test_a_withdrawn_signal_is_neither_listed_nor_public_nor_open_to_followers(signal, provider, follower, slave):
    signal_services.signal_update(user=provider, signal=signal, listed=False)
    anonymous = api_client_for(None)
    assert anonymous.get("/api/signals").json() == []
    assert anonymous.get(f"/api/signals/{signal.pk}").status_code == 404
    assert api_client_for(provider).get(f"/api/signals/{signal.pk}").status_code == 200
    account = make_account(follower, "MetaSim-Demo", balance="5000")
    response = api_client_for(follower).post(
        f"/api/signals/{signal.pk}/subscribe", {"account": str(account.pk)}, format="json"
    )
    assert response.status_code == 404


# --- Following ---------------------------------------------------------------------------------------------


def test_following_creates_the_copy_link_and_gives_the_follower_view_on_the_master(
    signal, master, follower, follower_account
):
    assert not restrict(follower, "accounts.view_tradingaccount", TradingAccount.objects.filter(pk=master.pk)).exists()
    body = {
        "account": str(follower_account.pk),
        "sizing_mode": "risk_percent",
        "risk_percent": "0.5",
        "no_sl": "skip",
        "max_volume": "2",
        "max_delay_seconds": 10,
        "skip_below_min_volume": True,
        "equity_stop_percent": "70",
    }
    response = api_client_for(follower).post(f"/api/signals/{signal.pk}/subscribe", body, format="json")
    assert response.status_code == 201, response.content
    link = CopyLink.objects.get(master=master, slave=follower_account)
    assert (link.active, link.sizing_mode, link.risk_percent, link.max_volume, link.max_delay_seconds) == (
        True,
        "risk_percent",
        D("0.5"),
        D("2"),
        10,
    )
    assert (link.skip_below_min_volume, link.equity_stop_percent, link.start_equity) == (True, D("70"), D("5000"))
    assert link.created_by == follower
    assert follower.has_perm("accounts.view_tradingaccount", master)
    assert not follower.has_perm("accounts.change_tradingaccount", master)
    subscription = SignalSubscription.objects.get(pk=response.json()["id"])
    assert (subscription.link, subscription.monthly_fee, subscription.performance_fee_pct) == (link, D("10"), D("20"))
    assert SignalAudit.objects.filter(subscription=subscription, action="subscribed", actor=follower).exists()
    # The follower manages the link like any of their links; the provider sees the follower.
    assert api_client_for(follower).get(f"/api/copy/links/{link.pk}").status_code == 200
    followers = api_client_for(signal.owner).get(f"/api/signals/{signal.pk}/followers").json()["followers"]
    assert [f["account"] for f in followers] == [str(follower_account.pk)]


def test_a_balance_below_the_minimum_deposit_is_refused_and_nothing_is_made(signal, master, follower):
    poor = make_account(follower, "MetaSim-Demo", balance="999.99", name="Small")
    response = api_client_for(follower).post(
        f"/api/signals/{signal.pk}/subscribe", {"account": str(poor.pk)}, format="json"
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "below_min_deposit" and "1000" in error["message"]
    assert not CopyLink.objects.filter(slave=poor).exists()
    assert not SignalSubscription.objects.exists()
    assert not follower.has_perm("accounts.view_tradingaccount", master)


def test_nobody_follows_with_someone_elses_account_or_their_own_signal(signal, provider, follower, slave):
    response = api_client_for(follower).post(
        f"/api/signals/{signal.pk}/subscribe", {"account": str(slave.pk)}, format="json"
    )
    assert response.status_code == 404  # the provider's slave is not the follower's
    own = api_client_for(provider).post(
        f"/api/signals/{signal.pk}/subscribe", {"account": str(slave.pk)}, format="json"
    )
    assert own.status_code == 400 and own.json()["error"]["code"] == "own_signal"
    assert not SignalSubscription.objects.exists()


def test_an_account_follows_a_signal_once(signal, follower, follower_account):
    follow(follower, signal, follower_account)
    response = api_client_for(follower).post(
        f"/api/signals/{signal.pk}/subscribe", {"account": str(follower_account.pk)}, format="json"
    )
    assert response.status_code == 409
    assert SignalSubscription.objects.count() == 1


# --- Stopping ----------------------------------------------------------------------------------------------


def open_copy(link, ticket, status=CopyStatus.OPEN):
    return CopiedPosition.objects.create(
        link=link,
        slave_account=link.slave,
        master_ticket=ticket,
        master_symbol="EURUSD",
        master_volume=D("1"),
        slave_ticket=ticket + 9000 if status == CopyStatus.OPEN else None,
        slave_symbol="EURUSD",
        slave_side="buy",
        slave_volume=D("0.5"),
        status=status,
        copy_id=f"c{ticket}",
    )


def test_stopping_with_close_closes_the_open_copies_and_takes_back_the_view(signal, master, follower, follower_account):
    subscription = follow(follower, signal, follower_account)
    opened, in_flight = open_copy(subscription.link, 1), open_copy(subscription.link, 2, status=CopyStatus.PENDING)
    response = api_client_for(follower).post(
        f"/api/signal-subscriptions/{subscription.pk}/stop", {"close_open": True}, format="json"
    )
    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["stop_mode"]) == ("stopped", "close")
    opened.refresh_from_db(), in_flight.refresh_from_db()
    command = Command.objects.get(pk=opened.close_command_id)
    assert (command.kind, command.params["ticket"], str(command.account_id)) == (
        "close",
        9001,
        str(follower_account.pk),
    )
    assert in_flight.close_requested  # closed as soon as it opens
    link = CopyLink.objects.get(pk=subscription.link_id)
    assert not link.active
    assert not follower.has_perm("accounts.view_tradingaccount", master)
    assert SignalAudit.objects.filter(subscription=subscription, action="stopped", detail__mode="close").exists()
    # Stopping again changes nothing.
    again = api_client_for(follower).post(
        f"/api/signal-subscriptions/{subscription.pk}/stop", {"close_open": False}, format="json"
    )
    assert again.json()["stop_mode"] == "close"
    assert Command.objects.filter(account_id=follower_account.pk).count() == 1


def test_stopping_with_keep_leaves_the_copies_open_and_the_link_cannot_be_switched_on_by_hand(
    signal, follower, follower_account
):
    subscription = follow(follower, signal, follower_account)
    opened = open_copy(subscription.link, 1)
    signal_services.signal_stop(user=follower, subscription=subscription, close_open=False)
    opened.refresh_from_db()
    assert (opened.status, opened.close_command_id) == (CopyStatus.OPEN, None)
    assert not Command.objects.filter(account_id=follower_account.pk).exists()
    link = services.copy_link_update(link=CopyLink.objects.get(pk=subscription.link_id), active=True)
    link.refresh_from_db()
    assert not link.active  # copying the signal again goes through following (and its fees)
    again = follow(follower, signal, follower_account, sizing_mode="fixed", fixed_volume=D("0.1"))
    link.refresh_from_db()
    assert again.link == link and link.active and link.fixed_volume == D("0.1")


def test_deleting_a_followed_link_stops_following_and_keeps_the_copies(
    signal, master, follower, follower_account, django_capture_on_commit_callbacks
):
    subscription = follow(follower, signal, follower_account)
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client_for(follower).delete(f"/api/copy/links/{subscription.link_id}")
    assert response.status_code == 204
    subscription.refresh_from_db()
    assert (subscription.status, subscription.stop_mode, subscription.link) == ("stopped", "keep", None)
    assert not follower.has_perm("accounts.view_tradingaccount", master)


def test_an_outsider_cannot_stop_someone_elses_subscription(signal, follower, follower_account, outsider):
    subscription = follow(follower, signal, follower_account)
    response = api_client_for(outsider).post(
        f"/api/signal-subscriptions/{subscription.pk}/stop", {"close_open": True}, format="json"
    )
    assert response.status_code == 404
    subscription.refresh_from_db()
    assert subscription.status == "active"


# --- Pages -------------------------------------------------------------------------------------------------


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user, backend="accounts.backends.ModelBackend")
    return client


def test_the_pages_publish_follow_and_stop(provider, master, follower, follower_account):
    trade_history(master, ["50", "25"])
    provider_client = logged_in(provider)
    assert "My signals" in provider_client.get("/copy/").content.decode()  # under Copy trading
    published = provider_client.post(
        "/copy/signals/mine/",
        {"master": str(master.pk), "name": "Page signal", "min_deposit": "100", "monthly_fee": "5",
         "performance_fee_pct": "10"},
    )  # fmt: skip
    assert published.status_code == 302
    signal = TradingSignal.objects.get(name="Page signal")
    assert "Page signal" in Client().get("/copy/signals/").content.decode()

    follower_client = logged_in(follower)
    followed = follower_client.post(
        f"/copy/signals/{signal.pk}/follow/",
        {"slave": str(follower_account.pk), "sizing_mode": "multiplier", "multiplier": "0.5", "max_delay_seconds": 30,
         "max_slippage_points": 20, "copy_sltp": "on"},
    )  # fmt: skip
    assert followed.status_code == 302, followed.content.decode()
    subscription = SignalSubscription.objects.get(account=follower_account)
    assert subscription.link.multiplier == D("0.5")
    assert "Page signal" in follower_client.get("/copy/following/").content.decode()
    assert "Page signal" in provider_client.get("/copy/signals/mine/").content.decode()
    assert escape(follower.display_name) in provider_client.get("/copy/signals/mine/").content.decode()

    stopped = follower_client.post(f"/copy/following/{subscription.pk}/stop/", {"close_open": "0"})
    assert stopped.status_code == 302
    subscription.refresh_from_db()
    assert (subscription.status, subscription.stop_mode) == ("stopped", "keep")


def test_the_follow_page_refuses_a_small_account_with_a_form_error(signal, follower):
    poor = make_account(follower, "MetaSim-Demo", balance="10", name="Tiny")
    response = logged_in(follower).post(
        f"/copy/signals/{signal.pk}/follow/",
        {"slave": str(poor.pk), "sizing_mode": "multiplier", "multiplier": "1", "max_delay_seconds": 30,
         "max_slippage_points": 20},
    )  # fmt: skip
    assert response.status_code == 200
    assert "needs a balance of at least 1000.00" in response.content.decode()
    assert not SignalSubscription.objects.exists()
