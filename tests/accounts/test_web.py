"""The trader web app: people pages, accounts CRUD, dashboard, account page, deals, analytics, permissions."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.urls import reverse
from guardian.shortcuts import assign_perm

from accounts.models import TradingAccount, User
from tests.personas import PASSWORD, SIM_PASSWORD, SIM_SERVER, UserFactory

ACCOUNT_PAGES = [
    "web-account-detail",
    "web-account-edit",
    "web-account-delete",
    "web-account-deals",
    "web-account-analytics",
    "web-account-import",
]


@pytest.fixture
def owner_web(client, owner):
    client.force_login(owner)
    return client


@pytest.fixture
def synced_account(owned_account, django_capture_on_commit_callbacks):
    from mt5bridge.sync import account_sync

    with django_capture_on_commit_callbacks(execute=True):
        account_sync(account_id=owned_account.pk, trigger="test")
    owned_account.refresh_from_db()
    return owned_account


# --- people ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["dashboard", "web-account-list", "web-account-add", "profile"])
def test_pages_need_a_login(client, db, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("name", ACCOUNT_PAGES)
def test_account_pages_need_a_login(client, owned_account, name):
    response = client.get(reverse(name, args=[owned_account.pk]))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_home_sends_visitors_to_login_and_traders_to_the_dashboard(client, owner):
    assert client.get("/")["Location"] == reverse("login")
    client.force_login(owner)
    assert client.get("/")["Location"] == reverse("dashboard")


def test_sign_up_creates_a_trader_and_logs_them_in(client, db):
    response = client.post(
        reverse("signup"),
        {
            "email": "New@Example.com",
            "display_name": "Nia",
            "password1": "a-long-pass-phrase-9",
            "password2": "a-long-pass-phrase-9",
        },
    )
    assert response.status_code == 302 and response["Location"] == reverse("web-account-add")
    user = User.objects.get(email="new@example.com")
    assert user.groups.filter(name="Trader").exists()
    assert client.get(reverse("dashboard")).status_code == 200


def test_sign_up_refuses_an_email_in_use(client, owner):
    response = client.post(
        reverse("signup"),
        {"email": owner.email.upper(), "password1": "a-long-pass-phrase-9", "password2": "a-long-pass-phrase-9"},
    )
    assert response.status_code == 200
    assert "already exists" in response.content.decode()


def test_log_in_and_log_out(client, owner):
    response = client.post(reverse("login"), {"username": owner.email, "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("dashboard")
    assert client.get(reverse("dashboard")).status_code == 200
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("dashboard")).status_code == 302


def test_wrong_password_is_a_form_error(client, owner):
    response = client.post(reverse("login"), {"username": owner.email, "password": "nope"})
    assert response.status_code == 200
    assert "correct email address and password" in response.content.decode()


def test_password_reset_mails_a_link_that_sets_a_new_password(client, owner):
    response = client.post(reverse("password_reset"), {"email": owner.email})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    link = re.search(r"http://\S+/password/reset/\S+/\S+/", mail.outbox[0].body).group(0)
    path = link.split("testserver", 1)[1]
    form_page = client.get(path, follow=True)
    assert form_page.status_code == 200
    set_url = form_page.redirect_chain[-1][0]
    done = client.post(set_url, {"new_password1": "brand-new-pass-77", "new_password2": "brand-new-pass-77"})
    assert done.status_code == 302
    owner.refresh_from_db()
    assert owner.check_password("brand-new-pass-77")


def test_profile_saves_name_and_email(owner_web, owner):
    response = owner_web.post(reverse("profile"), {"display_name": "Ada", "email": "ada@example.com"})
    assert response.status_code == 302
    owner.refresh_from_db()
    assert (owner.display_name, owner.email) == ("Ada", "ada@example.com")


def test_profile_refuses_an_email_of_someone_else(owner_web, outsider):
    response = owner_web.post(reverse("profile"), {"display_name": "x", "email": outsider.email})
    assert "Another person already uses this email" in response.content.decode()


# --- accounts ----------------------------------------------------------------------------------


def test_adding_an_account_checks_credentials_then_stores_and_syncs_it(
    owner_web, owner, sim_login, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_web.post(
            reverse("web-account-add"),
            {"login": sim_login, "password": SIM_PASSWORD, "server": SIM_SERVER, "category": "demo", "name": "Swing"},
        )
    account = TradingAccount.objects.get(owner=owner, login=sim_login)
    assert response["Location"] == reverse("web-account-detail", args=[account.pk])
    assert account.name == "Swing" and account.sync_status == "ok" and account.deals.exists()


def test_a_wrong_mt5_password_is_a_clear_form_error_and_stores_nothing(owner_web, sim_login):
    response = owner_web.post(
        reverse("web-account-add"),
        {"login": sim_login, "password": "wrong-pass", "server": SIM_SERVER, "category": "demo"},
    )
    assert response.status_code == 200
    assert "refused login" in response.content.decode()
    assert not TradingAccount.objects.exists()


def test_adding_the_same_account_twice_is_a_form_error(owner_web, owned_account):
    response = owner_web.post(
        reverse("web-account-add"),
        {"login": owned_account.login, "password": SIM_PASSWORD, "server": SIM_SERVER, "category": "demo"},
    )
    assert "already connected" in response.content.decode()


def test_account_list_shows_own_accounts_with_status_in_words(owner_web, owned_account):
    text = owner_web.get(reverse("web-account-list")).content.decode()
    assert "Main" in text and "Waiting for first sync" in text


def test_account_list_and_dashboard_show_an_outsider_nothing(client, outsider, owned_account):
    client.force_login(outsider)
    assert str(owned_account.login) not in client.get(reverse("web-account-list")).content.decode()
    text = client.get(reverse("dashboard")).content.decode()
    assert str(owned_account.login) not in text and "No MT5 accounts yet" in text


@pytest.mark.parametrize("name", ACCOUNT_PAGES)
def test_every_account_page_is_a_404_for_an_outsider(client, outsider, owned_account, name):
    client.force_login(outsider)
    assert client.get(reverse(name, args=[owned_account.pk])).status_code == 404


def test_outsider_cannot_sync_or_delete(client, outsider, owned_account):
    client.force_login(outsider)
    assert client.post(reverse("web-account-sync", args=[owned_account.pk])).status_code == 404
    assert client.post(reverse("web-account-delete", args=[owned_account.pk])).status_code == 404
    assert TradingAccount.objects.filter(pk=owned_account.pk).exists()


def test_a_shared_viewer_sees_the_account_but_cannot_edit_it(client, owned_account):
    viewer = UserFactory()
    assign_perm("accounts.view_tradingaccount", viewer, owned_account)
    client.force_login(viewer)
    assert client.get(reverse("web-account-detail", args=[owned_account.pk])).status_code == 200
    assert client.get(reverse("web-account-edit", args=[owned_account.pk])).status_code == 404
    assert client.get(reverse("web-account-import", args=[owned_account.pk])).status_code == 404


def test_edit_renames_and_a_wrong_new_password_is_refused(owner_web, owned_account):
    url = reverse("web-account-edit", args=[owned_account.pk])
    assert owner_web.get(url).status_code == 200
    response = owner_web.post(url, {"name": "Renamed", "category": "real", "is_active": "on"})
    assert response.status_code == 302
    owned_account.refresh_from_db()
    assert (owned_account.name, owned_account.category) == ("Renamed", "real")
    response = owner_web.post(url, {"name": "Again", "category": "real", "is_active": "on", "password": "bad"})
    assert "refused login" in response.content.decode()
    owned_account.refresh_from_db()
    assert owned_account.name == "Renamed"


def test_delete_asks_for_confirmation_then_deletes(owner_web, owned_account):
    url = reverse("web-account-delete", args=[owned_account.pk])
    assert "Yes, delete it" in owner_web.get(url).content.decode()
    assert TradingAccount.objects.filter(pk=owned_account.pk).exists()
    assert owner_web.post(url)["Location"] == reverse("web-account-list")
    assert not TradingAccount.objects.filter(pk=owned_account.pk).exists()


def test_sync_now_syncs_the_account(owner_web, owned_account, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_web.post(reverse("web-account-sync", args=[owned_account.pk]))
    assert response.status_code == 302
    owned_account.refresh_from_db()
    assert owned_account.sync_status == "ok" and owned_account.last_sync_at is not None


def test_sync_now_on_a_deactivated_account_says_why(owner_web, owned_account):
    TradingAccount.objects.filter(pk=owned_account.pk).update(is_active=False)
    response = owner_web.post(reverse("web-account-sync", args=[owned_account.pk]), follow=True)
    assert "deactivated" in response.content.decode()


def test_sync_now_does_not_redirect_off_site(owner_web, owned_account):
    response = owner_web.post(reverse("web-account-sync", args=[owned_account.pk]), {"next": "https://evil.test/"})
    assert response["Location"] == reverse("web-account-detail", args=[owned_account.pk])


# --- dashboard, account page, deals, analytics --------------------------------------------------


def test_dashboard_shows_totals_and_each_account(owner_web, synced_account):
    text = owner_web.get(reverse("dashboard")).content.decode()
    assert f"equity-{synced_account.pk}" in text
    assert "Balance · USD" in text and "Main" in text
    assert 'data-live-socket="/ws/accounts/"' in text


def test_dashboard_refresh_returns_only_the_body_to_htmx(owner_web, synced_account):
    response = owner_web.get(reverse("dashboard"), HTTP_HX_REQUEST="true")
    text = response.content.decode()
    assert "<html" not in text and f"equity-{synced_account.pk}" in text


def test_empty_dashboard_invites_to_connect_an_account(owner_web):
    assert "Connect your first account" in owner_web.get(reverse("dashboard")).content.decode()


def test_account_page_shows_figures_curve_positions_and_statistics(owner_web, synced_account):
    text = owner_web.get(reverse("web-account-detail", args=[synced_account.pk])).content.decode()
    assert 'id="equity-data"' in text and "Open positions" in text and "Pending orders" in text
    assert "Statistics" in text and "Gain (%)" in text
    assert f'data-live-socket="/ws/accounts/{synced_account.pk}/"' in text


def test_account_page_without_history_has_a_designed_empty_state(owner_web, owned_account):
    owned_account.deals.all().delete()
    text = owner_web.get(reverse("web-account-detail", args=[owned_account.pk])).content.decode()
    assert "No history yet" in text and "No open positions" in text


def test_deal_history_filters_by_symbol_and_type_and_paginates(owner_web, synced_account):
    url = reverse("web-account-deals", args=[synced_account.pk])
    all_deals = synced_account.deals.count()
    assert all_deals > 50
    first = owner_web.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert f"Page 1 of {(all_deals + 49) // 50}" in first and "<html" not in first
    symbol = synced_account.deals.exclude(symbol="").values_list("symbol", flat=True).first()
    filtered = owner_web.get(url, {"symbol": symbol, "kind": "trades"}).content.decode()
    wanted = synced_account.deals.filter(symbol=symbol, deal_type__in=(0, 1)).count()
    assert f"{wanted} deal" in filtered
    balance = owner_web.get(url, {"kind": "balance"}).content.decode()
    assert f"{synced_account.deals.filter(deal_type=2).count()} deal" in balance


def test_deal_history_date_range_and_bad_input(owner_web, synced_account):
    url = reverse("web-account-deals", args=[synced_account.pk])
    response = owner_web.get(url, {"date_from": "2030-01-02", "date_to": "2030-01-01"})
    assert response.status_code == 200 and "must be on or before" in response.content.decode()
    assert "No deals match" in owner_web.get(url, {"date_from": "1990-01-01", "date_to": "1990-01-02"}).content.decode()
    assert owner_web.get(url, {"magic": "abc", "page": "zz"}).status_code == 200


def test_analytics_page_shows_charts_tables_and_all_statistics(owner_web, synced_account):
    response = owner_web.get(reverse("web-account-analytics", args=[synced_account.pk]))
    text = response.content.decode()
    for marker in (
        "monthly-chart",
        "drawdown-chart",
        "symbol-chart",
        "hour-chart",
        "weekday-chart",
        "distribution-chart",
        "analytics-series",
        "All statistics",
        "By magic number",
    ):
        assert marker in text


def test_analytics_period_filter_and_bad_range(owner_web, synced_account):
    url = reverse("web-account-analytics", args=[synced_account.pk])
    assert (
        "No deals in this period"
        in owner_web.get(url, {"date_from": "1990-01-01", "date_to": "1990-02-01"}).content.decode()
    )
    response = owner_web.get(url, {"date_from": "2030-01-02", "date_to": "2030-01-01"})
    assert response.status_code == 200 and "must be on or before" in response.content.decode()
    assert owner_web.get(url, {"date_from": "not-a-date"}).status_code == 200


def test_static_libraries_are_served_from_node_modules(client, db):
    from django.contrib.staticfiles import finders

    for asset in (
        "vendor/htmx.org/dist/htmx.min.js",
        "vendor/chart.js/dist/chart.umd.min.js",
        "vendor/chartjs-plugin-zoom/dist/chartjs-plugin-zoom.min.js",
        "accounts/live.js",
    ):
        assert finders.find(asset), asset
