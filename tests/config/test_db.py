"""The server-binding cursor of the hot write paths (config/db.py)."""

from __future__ import annotations

import pytest
from django.db import connection

from config.db import server_binding_cursor
from tests.personas import UserFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL only"),
]


def test_it_reads_in_the_orms_transaction_and_is_counted(django_assert_num_queries):
    user = UserFactory()
    with django_assert_num_queries(1), server_binding_cursor() as cursor:
        cursor.execute("SELECT count(*) FROM accounts_user WHERE id = ANY(%s)", [[user.pk]])
        assert cursor.fetchone() == (1,)


def test_a_repeated_statement_is_prepared(settings):
    threshold = connection.settings_dict["OPTIONS"].get("prepare_threshold")
    if not threshold:
        pytest.skip("DATABASE_PREPARE_THRESHOLD=0: nothing is prepared")
    statement = "SELECT %s::int + 1 -- config.db test"
    with server_binding_cursor() as cursor:
        for _ in range(threshold + 1):
            cursor.execute(statement, [1])
        # Only server-side binding prepares; Django's own cursors never do.
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", ["%config.db test%"])
        assert cursor.fetchone()[0] == 1
