"""The bonus app's SQL that the ORM cannot express, named. PostgreSQL only; the callers keep an ORM path for other
databases (``bonuses.snapshots``) or need none (the advisory lock exists only on PostgreSQL). Tested through the
monitor's tests (``tests/bonuses/test_monitor*.py``), which run both on PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection

from .models import MonitoredAccount


def advisory_lock_try(key: str) -> bool:
    """Take the session advisory lock named ``key`` if free (``pg_try_advisory_lock``); True when taken."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [key])
        return bool(cursor.fetchone()[0])


def advisory_unlock(key: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [key])


def snapshots_update(now: datetime, logins, balances, credits, equities, leverages, checked, reviews) -> None:
    """The monitor's snapshot of many accounts in one statement over arrays (``bulk_update``'s CASE per row costs
    seconds for a 10,000-account baseline). ``deals_checked_at`` never goes back (the account task moves it too);
    a review of 1 asks the account task to read the account's deals (``review_seq``)."""
    table = connection.ops.quote_name(MonitoredAccount._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} m SET balance = v.balance, credit = v.credit, equity = v.equity, "
            "leverage = v.leverage, deals_checked_at = GREATEST(m.deals_checked_at, v.checked), "
            "snapshot_at = %s, review_seq = m.review_seq + v.review "
            "FROM unnest(%s::bigint[], %s::numeric[], %s::numeric[], %s::numeric[], %s::integer[], "
            "%s::timestamptz[], %s::integer[]) AS v(login, balance, credit, equity, leverage, checked, review) "
            "WHERE m.login = v.login",
            [now, logins, balances, credits, equities, leverages, checked, reviews],
        )
