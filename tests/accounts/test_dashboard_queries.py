"""The dashboard summary's request costs the same queries for a trader with 2 accounts as for one with 30.

The whole request is counted, as the web app's dashboard calls it (a browser session): the user with its roles
(accounts.backends: one statement), the summary statement and the EA beats of the freshness rule.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import AccountSnapshot, Deal, Position, TradingAccount
from accounts.vault import encrypt
from mt5bridge.ea.models import EAConnection
from tests.personas import next_login

pytestmark = pytest.mark.django_db

# The user and its roles in one statement (its session comes from Redis), the summary statement, the EA beats
# persisted in PostgreSQL.
QUERIES = 3


def add_accounts(owner, count: int) -> None:
    """Accounts as a sync leaves them: snapshots before today and this month, deals of the month, a position,
    and for every other account an EA that beat a minute ago."""
    now = timezone.now()
    for index in range(count):
        account = TradingAccount.objects.create(
            owner=owner,
            login=next_login(),
            server="MetaSim-Demo",
            name=f"acc-{next_login()}",
            password_encrypted=encrypt("x"),
            balance=D("1000"),
            equity=D("1010"),
            floating_profit=D("10"),
            sync_status="ok",
            last_sync_at=now - timedelta(hours=5),
        )
        for days in (40, 1):
            AccountSnapshot.objects.create(
                account=account, taken_at=now - timedelta(days=days), balance=D("990"), equity=D("995")
            )
        Deal.objects.create(account=account, ticket=1, time=now - timedelta(minutes=5), deal_type=1, profit=D("7"))
        Position.objects.create(
            account=account,
            ticket=2,
            symbol="EURUSD",
            side=0,
            volume=D("0.1"),
            price_open=D("1.08"),
            price_current=D("1.081"),
            profit=D("10"),
            opened_at=now,
            updated_at=now,
        )
        if index % 2 == 0:  # not the login's parity: two logins are drawn per account, so all would share one
            EAConnection.objects.create(account=account, last_seen_at=now - timedelta(minutes=1))


def summary_queries(client) -> tuple[dict, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/dashboard/summary")
    assert response.status_code == 200, response.content[:300]
    return response.json(), [q["sql"] for q in queries.captured_queries]


def test_the_summary_request_makes_the_same_queries_for_2_and_for_30_accounts(client, owner):
    client.force_login(owner)
    add_accounts(owner, 2)
    summary_queries(client)  # the first request of a session may fill caches (content types, session)
    two, two_queries = summary_queries(client)
    add_accounts(owner, 28)
    thirty, thirty_queries = summary_queries(client)
    assert len(two["accounts"]) == 2 and len(thirty["accounts"]) == 30
    assert len(thirty_queries) == len(two_queries) <= QUERIES, "\n".join(thirty_queries)
    # The EA that beat a minute ago keeps its account current although the sync is five hours old.
    beaten = {str(pk) for pk in EAConnection.objects.values_list("account_id", flat=True)}
    assert beaten and all(not row["stale"] for row in thirty["accounts"] if row["id"] in beaten)


def test_a_trader_sees_only_their_own_accounts_whatever_their_number(client, owner, outsider):
    add_accounts(outsider, 3)
    client.force_login(owner)
    add_accounts(owner, 2)
    body, _ = summary_queries(client)
    mine = {str(pk) for pk in TradingAccount.objects.filter(owner=owner).values_list("pk", flat=True)}
    assert {row["id"] for row in body["accounts"]} == mine
    assert body["totals"][0]["accounts"] == 2


def test_a_role_taken_away_is_gone_on_the_next_request(client, owner):
    """The roles come with the user's own statement, read again on every request: nothing keeps the old ones."""
    client.force_login(owner)
    assert client.get("/api/dashboard/summary").status_code == 200
    owner.groups.clear()
    assert client.get("/api/dashboard/summary").status_code == 403
