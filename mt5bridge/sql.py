"""The bridge's SQL that the ORM cannot express, named: every statement of the sync and of the EA's state writes.

Each runs on PostgreSQL only (other databases take the same writes through the ORM in the callers) and through
``config.db.server_binding_cursor``, so that arrays travel as parameters and a fixed-shape statement is prepared
after a few runs. Tested through their callers against the ORM path (``tests/mt5bridge/test_sql.py``).
"""

from __future__ import annotations

from django.db import connection

from accounts.models import AccountSnapshot, TradingAccount
from config.db import server_binding_cursor
from mt5bridge.ea.models import EAConnection, EAToken

# The account figures an EA state writes, with their PostgreSQL types (in the order of ``ea_states_upsert``).
STATE_FIGURES = {
    "balance": "numeric",
    "credit": "numeric",
    "equity": "numeric",
    "margin": "numeric",
    "margin_free": "numeric",
    "floating_profit": "numeric",
    "margin_level": "numeric",
}


def account_rows_write(model, account_id, rows: list[dict], *, updates=(), replace=False) -> int:
    """One statement over column arrays (``unnest``), keyed on (account, ticket); returns rows inserted or updated.

    No model instances and no pre-read: with ``replace`` the account's rows whose ticket is not in ``rows``
    are deleted in the same statement; without ``updates`` existing tickets are left as they are.
    """
    q = connection.ops.quote_name
    table = q(model._meta.db_table)
    if not rows:
        if replace:
            with connection.cursor() as cursor:
                cursor.execute(f"DELETE FROM {table} WHERE account_id = %s", [account_id])
        return 0
    connection.ensure_connection()
    names = list(rows[0])
    fields = [model._meta.get_field(name) for name in names]
    columns = ", ".join(q(field.column) for field in fields)
    # Numbers and times travel as one comma-joined text per column (str() in C; psycopg's array dumper is
    # Python, one call per element); text columns, which may hold commas, as real arrays.
    texts = [field.get_internal_type() in ("CharField", "TextField") for field in fields]
    arrays = ", ".join(
        f"%b::{field.db_type(connection)}[]" if text else f"string_to_array(%s, ',', '')::{field.db_type(connection)}[]"
        for field, text in zip(fields, texts, strict=True)
    )
    params: list = []
    sql = ""
    if replace:
        sql = f"WITH gone AS (DELETE FROM {table} WHERE account_id = %s AND NOT (ticket = ANY(%b::bigint[]))) "
        params += [account_id, [row["ticket"] for row in rows]]
    if updates:
        assignments = ", ".join(
            f"{q(model._meta.get_field(n).column)} = EXCLUDED.{q(model._meta.get_field(n).column)}" for n in updates
        )
        conflict = f"DO UPDATE SET {assignments}"
    else:
        conflict = "DO NOTHING"
    sql += (
        f"INSERT INTO {table} (account_id, {columns}) SELECT %s, * FROM unnest({arrays}) "
        f"ON CONFLICT (account_id, ticket) {conflict} RETURNING 1"
    )
    params.append(account_id)
    for name, text in zip(names, texts, strict=True):
        values = [row[name] for row in rows]
        params.append(values if text else ",".join("" if v is None else str(v) for v in values))
    # Server-side binding: the arrays travel as parameters. Django's client-side cursor would spell each
    # element into the SQL text, which costs more than the rest of the sync together for 200 deals.
    with server_binding_cursor() as cursor:
        cursor.execute(sql, params)
        return len(cursor.fetchall())


def ea_states_upsert(arrays: list[list], *, snapshots: bool = False) -> None:
    """EA states of one or many accounts in one statement of data-modifying CTEs over column arrays: the account
    figures, the connection row (first_seen_at set once; a late write never replaces a newer state), the token's
    last use and, with ``snapshots``, an ``AccountSnapshot`` each. ``arrays``: account ids, times, the
    ``STATE_FIGURES`` in order, leverages, then the connection columns (EA version, protocol version, terminal,
    state, fingerprint, beats, refusal), one list each (``mt5bridge.ea.persist`` builds them)."""
    q = connection.ops.quote_name
    account_table = q(TradingAccount._meta.db_table)
    conn_table = q(EAConnection._meta.db_table)
    token_table = q(EAToken._meta.db_table)
    columns = ["ea_version", "protocol_version", "terminal", "state", "state_fingerprint", "beats"]
    columns.append("access_denied_reason")
    types = ["text", "integer", "jsonb", "jsonb", "text", "bigint", "text"]
    figure_names = list(STATE_FIGURES)
    text = (
        "WITH v AS (SELECT * FROM unnest(%s::uuid[], %s::timestamptz[], "
        + ", ".join(f"%s::{t}[]" for t in STATE_FIGURES.values())
        + ", %s::integer[], "
        + ", ".join(f"%s::{t}[]" for t in types)
        + ") AS v(id, at, "
        + ", ".join(figure_names)
        + ", leverage, "
        + ", ".join(columns)
        + f")), account AS (UPDATE {account_table} a SET "
        + ", ".join(f"{q(n)} = v.{n}" for n in figure_names)
        + ", leverage = COALESCE(v.leverage, a.leverage), updated_at = v.at FROM v WHERE a.id = v.id), "
        f"conn AS (INSERT INTO {conn_table} (account_id, first_seen_at, last_seen_at, persisted_at, "
        + ", ".join(q(c) for c in columns)
        + ") SELECT id, at, at, at, "
        + ", ".join(columns)
        + " FROM v ON CONFLICT (account_id) DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at, "
        "persisted_at = EXCLUDED.persisted_at, "
        + ", ".join(f"{q(c)} = EXCLUDED.{q(c)}" for c in columns)
        + f" WHERE {conn_table}.persisted_at IS NULL OR {conn_table}.persisted_at <= EXCLUDED.persisted_at), "
        f"token AS (UPDATE {token_table} t SET last_used_at = v.at FROM v WHERE t.account_id = v.id)"
    )
    if snapshots:
        snapshot_table = q(AccountSnapshot._meta.db_table)
        text += (
            f", snapshot AS (INSERT INTO {snapshot_table} (account_id, taken_at, "
            + ", ".join(q(n) for n in figure_names)
            + ") SELECT id, at, "
            + ", ".join(figure_names)
            + " FROM v)"
        )
    text += " SELECT 1"
    with server_binding_cursor() as cursor:
        cursor.execute(text, arrays)
