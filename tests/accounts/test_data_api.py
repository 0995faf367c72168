"""Trader data endpoints: dashboard summary, analytics, snapshots/positions/deals, /api/mt5/* — and who may."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from guardian.shortcuts import assign_perm
from rest_framework.test import APIClient

from accounts.analytics.history import statistics_for_account
from accounts.choices import SyncStatus
from accounts.dashboard import dashboard_summary
from accounts.models import AccountSnapshot, Deal, Position, SyncRun, TradingAccount
from accounts.vault import encrypt
from tests.personas import next_login

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The personas hash a password each; PBKDF2 costs most of this module's time otherwise.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="module")
def _shared_client():
    # One client for the module: building a client's middleware chain is the slow part of a request.
    return APIClient()


@pytest.fixture
def api(_shared_client):
    """``api(user)`` -> the shared client acting as ``user`` (None: anonymous)."""

    def act_as(user):
        _shared_client.force_authenticate(user)
        _shared_client.cookies.clear()
        return _shared_client

    yield act_as
    _shared_client.force_authenticate(None)


@pytest.fixture
def owner_client(api, owner):
    return api(owner)


@pytest.fixture
def outsider_client(api, outsider):
    return api(outsider)


@pytest.fixture
def anon_client(api):
    return api(None)


NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)


def make_account(owner, **fields) -> TradingAccount:
    defaults = {
        "login": next_login(),
        "server": "MetaSim-Demo",
        "name": f"acc-{next_login()}",
        "password_encrypted": encrypt("x"),
        "sync_status": SyncStatus.OK,
        "last_sync_at": NOW,
    }
    return TradingAccount.objects.create(owner=owner, **{**defaults, **fields})


def add_deal(account, ticket, time, deal_type, **fields) -> Deal:
    return Deal.objects.create(account=account, ticket=ticket, time=time, deal_type=deal_type, **fields)


def add_trade(account, position, opened, closed, profit, *, symbol="BTCUSD", magic=0, long=True):
    add_deal(
        account,
        position * 10,
        opened,
        0 if long else 1,
        entry=0,
        position_id=position,
        symbol=symbol,
        volume=D("1"),
        price=D("40000.5"),
        magic=magic,
    )
    add_deal(
        account,
        position * 10 + 1,
        closed,
        1 if long else 0,
        entry=1,
        position_id=position,
        symbol=symbol,
        volume=D("1"),
        price=D("40001.5"),
        profit=D(profit),
        magic=magic,
    )


@pytest.fixture
def trading(owner):
    """Deposit 1000 on 1 March, +50 on 10 March, +50 today (15 March); balance 1100, floating 30."""
    account = make_account(
        owner,
        balance=D("1100"),
        equity=D("1130"),
        floating_profit=D("30"),
        margin=D("200"),
        margin_level=D("565"),
        credit=D("0"),
    )
    add_deal(account, 1, datetime(2026, 3, 1, tzinfo=UTC), 2, profit=D("1000"))
    add_trade(account, 2, datetime(2026, 3, 10, 9, tzinfo=UTC), datetime(2026, 3, 10, 10, tzinfo=UTC), "50", magic=11)
    add_trade(
        account,
        3,
        datetime(2026, 3, 15, 9, tzinfo=UTC),
        datetime(2026, 3, 15, 10, tzinfo=UTC),
        "50",
        symbol="ETHUSD",
        magic=12,
        long=False,
    )
    AccountSnapshot.objects.create(
        account=account,
        taken_at=datetime(2026, 3, 14, 23, tzinfo=UTC),
        balance=D("1050"),
        equity=D("1060"),
        floating_profit=D("10"),
    )
    AccountSnapshot.objects.create(
        account=account,
        taken_at=datetime(2026, 3, 15, 11, tzinfo=UTC),
        balance=D("1100"),
        equity=D("1130"),
        floating_profit=D("30"),
    )
    Position.objects.create(
        account=account,
        ticket=99,
        symbol="BTCUSD",
        side=0,
        volume=D("0.5"),
        price_open=D("40000"),
        price_current=D("40060"),
        profit=D("30"),
        magic=11,
        opened_at=NOW - timedelta(hours=2),
        updated_at=NOW,
    )
    return account


# --- Dashboard summary ----------------------------------------------------------------------


def test_dashboard_gains_exclude_deposits_and_count_floating_change(owner, trading):
    row = dashboard_summary(owner, now=NOW)["accounts"][0]
    # Today: realised 50; floating 10 -> 30 (+20); balance at midnight 1050 + floating 10 = 1060 -> 6.6038 %.
    assert row["today_gain"] == "70.00" and row["today_gain_pct"] == pytest.approx(6.6038, abs=1e-4)
    # Month: realised 100 + floating 30; the 1000 deposit is the base, not a gain -> 13 %.
    assert row["month_gain"] == "130.00" and row["month_gain_pct"] == pytest.approx(13.0)
    assert row["balance"] == "1100.00" and row["floating_profit"] == "30.00" and row["margin_level"] == "565.00"
    assert row["connection"] == "connected" and row["last_sync_at"] == NOW.isoformat()


def test_dashboard_totals_are_per_currency(owner, trading):
    make_account(owner, currency="EUR", balance=D("500"), equity=D("500"))
    make_account(owner, balance=D("900"), equity=D("950"), floating_profit=D("50"))
    totals = {t["currency"]: t for t in dashboard_summary(owner, now=NOW)["totals"]}
    assert totals["USD"]["accounts"] == 2 and totals["USD"]["balance"] == "2000.00"
    assert totals["USD"]["equity"] == "2080.00" and totals["USD"]["floating_profit"] == "80.00"
    assert totals["EUR"]["balance"] == "500.00"


def test_dashboard_summary_queries_do_not_grow_with_accounts(owner, django_assert_max_num_queries):
    for _ in range(2):
        make_account(owner)
    with CaptureQueriesContext(connection) as two:
        dashboard_summary(owner)
    for _ in range(18):
        account = make_account(owner)
        add_deal(account, 1, datetime.now(UTC) - timedelta(minutes=5), 2, profit=D("100"))
    with django_assert_max_num_queries(len(two.captured_queries)):
        assert len(dashboard_summary(owner)["accounts"]) == 20


def test_dashboard_summary_endpoint_and_who_sees_what(api, owner, outsider, trading):
    body = api(owner).get("/api/dashboard/summary").json()
    assert [a["id"] for a in body["accounts"]] == [str(trading.pk)]
    assert api(outsider).get("/api/dashboard/summary").json()["accounts"] == []
    response = api(None).get("/api/dashboard/summary")
    assert response.status_code == 401 and response.json()["error"]["code"] == "not_authenticated"


@pytest.fixture
def trader(db):
    from accounts.choices import Role
    from tests.personas import UserFactory

    return UserFactory(roles=[Role.TRADER])


def test_shared_accounts_are_in_the_summary_of_whom_they_were_shared_with_only(api, owner, outsider, trader, trading):
    # The "shared with" subquery is built once per process and reused with each user's id.
    assign_perm("accounts.view_tradingaccount", trader, trading)
    assert [a["id"] for a in api(trader).get("/api/dashboard/summary").json()["accounts"]] == [str(trading.pk)]
    assert api(outsider).get("/api/dashboard/summary").json()["accounts"] == []
    assert api(owner).get("/api/dashboard/summary").json()["accounts"][0]["id"] == str(trading.pk)


def test_the_one_statement_summary_reads_what_the_orm_reads(owner, trader, trading):
    from accounts import dashboard
    from accounts.permissions import restrict

    make_account(owner, currency="EUR", balance=D("500"), equity=D("500"))
    other = make_account(trader, balance=D("900"), equity=D("950"), floating_profit=D("50"))
    add_deal(other, 5, NOW - timedelta(hours=1), 0, profit=D("12.34"), commission=D("-1.5"))
    assign_perm("accounts.view_tradingaccount", owner, other)
    day, month = dashboard.period_starts(NOW)
    visible = restrict(owner, dashboard.VIEW, TradingAccount.objects.all())
    fast_accounts, fast_sums = dashboard._summary_rows_postgres(visible, day, month)
    orm_accounts, orm_sums = dashboard._summary_rows_orm(visible, day, month)
    assert len(fast_accounts) == 3 and fast_accounts == orm_accounts
    zero = dict.fromkeys(dashboard._SUMMARY_SUMS, D("0"))
    assert fast_sums == {
        a["id"]: {**zero, **{k: v for k, v in orm_sums.get(a["id"], {}).items() if k in zero}} for a in orm_accounts
    }
    assert fast_sums[trading.pk]["realized_month"] != 0


def test_paused_and_inactive_accounts_say_so(owner):
    make_account(owner, sync_status=SyncStatus.PAUSED, last_error="Password refused")
    make_account(owner, is_active=False)
    connections = sorted(row["connection"] for row in dashboard_summary(owner)["accounts"])
    assert connections == ["inactive", "paused"]


# --- Analytics ---------------------------------------------------------------------------------


def test_analytics_endpoint_returns_statistics_and_series(owner_client, trading):
    response = owner_client.get(f"/api/analytics/{trading.pk}")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["summary"]["trades"] == 2 and body["summary"]["net_profit"] == "100.00"
    assert body["summary"]["gain_pct"] == pytest.approx(10.0)
    assert "sharpe" in body["insufficient"]
    assert {row["magic"] for row in body["series"]["by_magic"]} == {11, 12}
    assert body["series"]["monthly_returns"][0]["month"] == "2026-03"


def test_analytics_date_range_uses_the_balance_before_it(owner, trading):
    result = statistics_for_account(
        trading, date_from=datetime(2026, 3, 12).date(), date_to=datetime(2026, 3, 15).date()
    )
    s = result["summary"]
    assert s["opening_balance"] == "1050.00" and s["trades"] == 1
    assert s["gain_pct"] == pytest.approx(50 / 1050 * 100, abs=1e-4)
    assert result["date_from"] == "2026-03-12"


def test_statistics_for_account_reads_with_a_few_queries(trading, django_assert_max_num_queries):
    with django_assert_max_num_queries(4):
        statistics_for_account(trading, date_from=datetime(2026, 3, 1).date())


@pytest.mark.parametrize(
    "query", ["from=2026-13-01", "to=yesterday", "from=2026-03-10&to=2026-03-01", "from=0001-01-01"]
)
def test_analytics_bad_dates_are_400(owner_client, trading, query):
    response = owner_client.get(f"/api/analytics/{trading.pk}?{query}")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_analytics_is_hidden_from_outsiders_and_anonymous(api, outsider, trading):
    assert api(outsider).get(f"/api/analytics/{trading.pk}").status_code == 404
    assert api(None).get(f"/api/analytics/{trading.pk}").status_code == 401


def test_analytics_follows_a_per_object_share(api, outsider, trading):
    assign_perm("accounts.view_tradingaccount", outsider, trading)
    assert api(outsider).get(f"/api/analytics/{trading.pk}").status_code == 200


# --- Snapshots, positions, deals ------------------------------------------------------------


def test_deals_filter_by_symbol_magic_type_and_dates(owner_client, trading):
    base = f"/api/accounts/{trading.pk}/deals"
    assert len(owner_client.get(base).json()["results"]) == 5
    eth = owner_client.get(f"{base}?symbol=ETHUSD").json()["results"]
    assert {d["ticket"] for d in eth} == {30, 31}
    assert eth[0]["profit"] == "50.00" and eth[0]["time"].startswith("2026-03-15T10:00")  # newest first
    assert [d["ticket"] for d in owner_client.get(f"{base}?magic=11").json()["results"]] == [21, 20]
    assert [d["ticket"] for d in owner_client.get(f"{base}?type=2").json()["results"]] == [1]
    ranged = owner_client.get(f"{base}?from=2026-03-10T00:00:00Z&to=2026-03-11").json()["results"]
    assert [d["ticket"] for d in ranged] == [21, 20]


def test_deals_paginate_without_counting(owner_client, trading):
    page = owner_client.get(f"/api/accounts/{trading.pk}/deals?limit=2").json()
    assert "count" not in page and len(page["results"]) == 2 and page["previous"] is None
    assert "offset=2" in page["next"]
    last = owner_client.get(f"/api/accounts/{trading.pk}/deals?limit=2&offset=4").json()
    assert len(last["results"]) == 1 and last["next"] is None


@pytest.mark.parametrize(
    "query",
    [
        "magic=abc",
        "type=-1",
        "from=not-a-date",
        "magic=99999999999999999999",
        "symbol=%00",
        "offset=100000000000000000000",
    ],
)
def test_bad_deal_filters_are_400(owner_client, trading, query):
    response = owner_client.get(f"/api/accounts/{trading.pk}/deals?{query}")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid"


@pytest.mark.parametrize("query", ["offset=9223372036854775808", "offset=10000001", "limit=1&offset=-1"])
def test_an_offset_beyond_the_bound_is_400_on_every_list(owner_client, trading, query):
    # The accounts list used DRF's own unbounded class: PostgreSQL refused the OFFSET and the answer was a 500.
    for url in ("/api/accounts/", f"/api/accounts/{trading.pk}/deals", f"/api/accounts/{trading.pk}/positions"):
        response = owner_client.get(f"{url}?{query}")
        if query.endswith("-1"):  # DRF reads a negative offset as none
            assert response.status_code == 200, (url, response.content)
            continue
        assert response.status_code == 400, (url, response.content)
        assert response.json()["error"]["code"] == "invalid"


def test_snapshots_filter_by_time_oldest_first(owner_client, trading):
    base = f"/api/accounts/{trading.pk}/snapshots"
    rows = owner_client.get(base).json()["results"]
    assert [r["equity"] for r in rows] == ["1060.00", "1130.00"]
    assert [r["equity"] for r in owner_client.get(f"{base}?from=2026-03-15").json()["results"]] == ["1130.00"]


def test_positions_list_with_count(owner_client, trading):
    body = owner_client.get(f"/api/accounts/{trading.pk}/positions").json()
    assert body["count"] == 1
    assert body["results"][0]["side"] == "buy" and body["results"][0]["profit"] == "30.00"
    assert owner_client.get(f"/api/accounts/{trading.pk}/positions?side=1").json()["count"] == 0


def test_position_decimals_match_the_schema_pattern_for_zero_and_normal_values(owner_client, trading):
    """Guards issue 13 #11: a zero stop loss came out as "0E-8", which the schema's decimal pattern refuses."""
    import re

    from drf_spectacular.generators import SchemaGenerator

    declared = SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]["Position"]
    row = owner_client.get(f"/api/accounts/{trading.pk}/positions").json()["results"][0]
    assert row["sl"] == "0.00000000" and row["tp"] == "0.00000000"  # zeros in the database
    assert row["price_open"] == "40000.00000000" and row["volume"] == "0.5000"
    for field in ("volume", "price_open", "price_current", "sl", "tp", "swap", "profit"):
        assert re.fullmatch(declared["properties"][field]["pattern"], row[field]), (field, row[field])


@pytest.mark.parametrize("what", ["snapshots", "positions", "deals"])
def test_account_data_is_hidden_from_outsiders_and_anonymous(api, outsider, trading, what):
    response = api(outsider).get(f"/api/accounts/{trading.pk}/{what}")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert api(None).get(f"/api/accounts/{trading.pk}/{what}").status_code == 401


def test_support_agents_see_account_data_and_read_only_staff_do_not(api, support_agent, read_only, trading):
    """Account lookup is the Support Agent's; Read-Only sees campaigns, the monitor and reports only."""
    assert api(support_agent).get(f"/api/accounts/{trading.pk}/deals").status_code == 200
    assert api(read_only).get(f"/api/accounts/{trading.pk}/deals").status_code == 403


# --- /api/mt5 ---------------------------------------------------------------------------------


def test_mt5_stats_aggregate_the_users_accounts(api, owner, outsider, trading):
    make_account(owner, sync_status=SyncStatus.ERROR, balance=D("10"))
    body = api(owner).get("/api/mt5/stats").json()
    assert body["accounts"]["total"] == 2 and body["accounts"]["connected"] == 1
    assert body["accounts"]["by_sync_status"]["error"] == 1
    assert body["open_positions"] == 1 and body["open_positions_profit"] == "30.00"
    assert body["totals"][0]["balance"] == "1110.00"
    assert api(outsider).get("/api/mt5/stats").json()["accounts"]["total"] == 0
    assert api(None).get("/api/mt5/stats").status_code == 401


def test_mt5_refresh_queues_active_accounts_and_explains_skips(
    api, owner, owned_account, django_capture_on_commit_callbacks
):
    paused = make_account(owner, sync_status=SyncStatus.PAUSED, last_error="Password refused")
    inactive = make_account(owner, is_active=False)
    with django_capture_on_commit_callbacks(execute=True):
        response = api(owner).post("/api/mt5/refresh")
    assert response.status_code == 202, response.content
    body = response.json()
    assert [q["id"] for q in body["queued"]] == [str(owned_account.pk)]
    skipped = {s["id"]: s for s in body["skipped"]}
    assert skipped[str(paused.pk)]["code"] == "paused" and "Password refused" in skipped[str(paused.pk)]["reason"]
    assert skipped[str(inactive.pk)]["code"] == "inactive"
    assert SyncRun.objects.filter(account=owned_account, trigger="api").exists()
    assert not SyncRun.objects.filter(account=paused).exists()


def test_mt5_refresh_touches_nothing_of_others(api, outsider, owned_account):
    body = api(outsider).post("/api/mt5/refresh").json()
    assert body == {"queued": [], "skipped": []}
    assert api(None).post("/api/mt5/refresh").status_code == 401
    assert not SyncRun.objects.exists()
