"""Database helpers shared by the hot write paths."""

from __future__ import annotations

import psycopg
from django.db import connection


def server_binding_cursor():
    """A cursor on the default PostgreSQL connection with server-side parameter binding, wrapped as Django wraps its
    own (execute wrappers, the query log that tests and the debug toolbar read).

    Django's cursors bind parameters on the client, so a statement is never prepared; through this one a
    fixed-shape statement is prepared after ``DATABASE_PREPARE_THRESHOLD`` runs on a connection, and arrays travel
    as parameters instead of being spelled into the SQL text.
    """
    connection.ensure_connection()
    return connection._prepare_cursor(psycopg.Cursor(connection.connection))
