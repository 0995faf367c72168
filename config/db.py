"""Database helpers shared by the hot write paths."""

from __future__ import annotations

import psycopg
from django.db import connection


def server_binding_cursor():
    """A cursor on the default PostgreSQL connection with server-side parameter binding, wrapped as Django wraps its
    own (execute wrappers, the query log that tests and the debug toolbar read).

    Django's cursors bind parameters on the client, so a statement is never prepared; through this one a
    fixed-shape statement is prepared after ``DATABASE_PREPARE_THRESHOLD`` runs on a connection, and arrays travel
    as parameters instead of being spelled into the SQL text. It runs on the connection (and so in the transaction)
    of the ORM.

    Not Django's ``server_side_binding`` option for every cursor: on Django 5.2 a query with more than 65,535
    parameters then fails (``ticket__in`` over the deals of a first sync or of a statement import), and every other
    statement would change how its parameters are typed.
    """
    connection.ensure_connection()
    connection.validate_thread_sharing()
    cursor = psycopg.Cursor(connection.connection)
    return connection.make_debug_cursor(cursor) if connection.queries_logged else connection.make_cursor(cursor)
