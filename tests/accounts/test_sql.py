"""accounts/sql.py: the admin's row estimate for big unfiltered lists."""

from __future__ import annotations

import pytest
from django.db import connection

from accounts import sql
from accounts.models import Deal

pytestmark = pytest.mark.django_db


def test_the_row_estimate_follows_analyze_and_is_none_for_an_unknown_table(owned_account):
    Deal.objects.bulk_create(
        [
            Deal(
                account=owned_account,
                ticket=i,
                deal_type=0,
                time="2026-01-01T00:00:00Z",
                symbol="EURUSD",
                volume=1,
                price=1,
            )
            for i in range(1, 51)
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Deal._meta.db_table}")
    assert sql.table_row_estimate(Deal._meta.db_table) == 50
    assert sql.table_row_estimate("no_such_table") is None
