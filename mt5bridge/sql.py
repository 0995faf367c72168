"""The bridge's SQL that the ORM cannot express, named: every statement of the sync and of the EA's state writes.

Each runs on PostgreSQL only (other databases take the same writes through the ORM in the callers), on Django's
own cursor; the rows travel as one JSON parameter (``jsonb_to_recordset``), which the client-side binding of
Django's cursor quotes once instead of spelling each value into the SQL text. Tested through their callers against the ORM path (``tests/mt5bridge/test_sql.py``).
"""

from __future__ import annotations

import uuid

import msgspec
from django.db import connection

from accounts.models import AccountSnapshot, Deal, Order, Position, TradingAccount
from mt5bridge.ea.models import OPEN_STATUSES, Command, CommandStatus, EAConnection, EAToken

# The account figures an EA state writes, with their PostgreSQL types.
STATE_FIGURES = {
    "balance": "numeric",
    "credit": "numeric",
    "equity": "numeric",
    "margin": "numeric",
    "margin_free": "numeric",
    "floating_profit": "numeric",
    "margin_level": "numeric",
}
# The EA connection's columns an EA state writes, with their PostgreSQL types.
STATE_CONNECTION = {
    "ea_version": "text",
    "protocol_version": "integer",
    "terminal": "jsonb",
    "state": "jsonb",
    "state_fingerprint": "text",
    "beats": "bigint",
    "access_denied_reason": "text",
}


# Decimals, times and UUIDs as text (msgspec's defaults: Decimals exactly, times in RFC 3339), anything else as str().
_ENCODER = msgspec.json.Encoder(enc_hook=str)


def rows_json(rows: list[dict]) -> str:
    """Rows as one JSON text (``jsonb_to_recordset``): one C-encoded parameter; Decimals, times and UUIDs as their
    text, which PostgreSQL reads exactly into the column's type. msgspec encodes them in C, where ``json.dumps`` called
    ``str`` once per Decimal and time: 0.10 against 0.74 ms for a first sync's 186 deals."""
    return _ENCODER.encode(rows).decode()


def account_rows_write(model, account_id, rows: list[dict], *, updates=(), replace=False) -> int:
    """One statement over the rows as JSON (``jsonb_to_recordset``), keyed on (account, ticket); returns rows
    inserted or updated.

    No model instances and no pre-read: with ``replace`` the account's rows whose ticket is not in ``rows``
    are deleted in the same statement; without ``updates`` existing tickets are left as they are.
    """
    ctes, params, written = _rows_ctes("r", model, account_id, rows, updates=updates, replace=replace)
    if not ctes:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(_with(ctes, written), params)
        return cursor.fetchone()[0]


def account_sync_write(
    account_id,
    *,
    deals: list[dict],
    positions: tuple[list[dict], tuple[str, ...]],
    orders: tuple[list[dict], tuple[str, ...]],
    snapshot: dict,
    account: dict,
) -> int:
    """A successful sync's writes in one statement (one round trip, one plan); returns the deals inserted. Run it in
    the sync's transaction (with its audit row), which it sets to commit asynchronously (see below).

    ``deals``: ``Deal`` rows, inserted when their ticket is new (a deal never changes once made); ``positions`` and
    ``orders``: (rows, columns an existing ticket takes) replacing the account's rows as ``account_rows_write(...,
    replace=True)`` does; ``snapshot``: the ``AccountSnapshot`` columns (the account is added); ``account``: the
    ``TradingAccount`` columns to set, of which ``last_deal_time`` only moves forward (``GREATEST`` with the one
    stored: a sync never moves it back).
    """
    ctes, params, written = _rows_ctes("d", Deal, account_id, deals)
    for alias, model, (rows, updates) in (("p", Position, positions), ("o", Order, orders)):
        more, more_params, _ = _rows_ctes(alias, model, account_id, rows, updates=updates, replace=True)
        ctes += more
        params += more_params
    q = connection.ops.quote_name
    snapshot = {"account": account_id, **snapshot}
    ctes.append(
        f"snap AS (INSERT INTO {q(AccountSnapshot._meta.db_table)} ("
        + ", ".join(q(AccountSnapshot._meta.get_field(name).column) for name in snapshot)
        + ") VALUES ("
        + ", ".join(["%s"] * len(snapshot))
        + "))"
    )
    params += _prepared(AccountSnapshot, snapshot)
    sets = []
    for name in account:
        column = q(TradingAccount._meta.get_field(name).column)
        sets.append(f"{column} = GREATEST({column}, %s)" if name == "last_deal_time" else f"{column} = %s")
    ctes.append(f"acct AS (UPDATE {q(TradingAccount._meta.db_table)} SET {', '.join(sets)} WHERE id = %s)")
    params += [*_prepared(TradingAccount, account), account_id]
    # The transaction it runs in commits without waiting for its WAL flush (synchronous_commit off for this
    # transaction only): on this machine's disk the wait was 7.5 ms a sync, longer than reading the account.
    # What a database crash can lose is the last fraction of a second of syncs, each whole (deals, positions,
    # snapshot, account and audit row together, as the WAL replays in order), and the next sync stores them again:
    # the broker holds the history. Nothing here moves money.
    statement = _with(ctes, written) + ", set_config('synchronous_commit', 'off', true)"
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchone()[0]


def _prepared(model, values: dict) -> list:
    """``values`` (field name: Python value) as the database takes them, through each field's own conversion."""
    return [model._meta.get_field(name).get_db_prep_save(value, connection) for name, value in values.items()]


def _with(ctes: list[str], written: str | None) -> str:
    """One statement of data-modifying CTEs (PostgreSQL runs each exactly once), answering how many rows the
    ``written`` one wrote (0 without one)."""
    count = f"(SELECT count(*) FROM {written})" if written else "0"
    return "WITH " + ", ".join(ctes) + f" SELECT {count}"


def _rows_ctes(alias: str, model, account_id, rows: list[dict], *, updates=(), replace=False):
    """The CTEs writing one account's ``rows`` of ``model`` (keyed on account and ticket), their parameters and the
    name of the one returning a row per row inserted or updated (None when there are no rows)."""
    q = connection.ops.quote_name
    table = q(model._meta.db_table)
    if not rows:
        if replace:
            return [f"{alias}_gone AS (DELETE FROM {table} WHERE account_id = %s)"], [account_id], None
        return [], [], None
    names = list(rows[0])
    fields = [model._meta.get_field(name) for name in names]
    columns = ", ".join(q(field.column) for field in fields)
    # The recordset's own column names (the JSON keys) are the field names, typed as the table's columns.
    record = ", ".join(f"{q(name)} {field.db_type(connection)}" for name, field in zip(names, fields, strict=True))
    values = ", ".join(f"r.{q(name)}" for name in names)
    ctes = [f"{alias} AS (SELECT * FROM jsonb_to_recordset(%s::jsonb) AS r({record}))"]
    params: list = [rows_json(rows)]
    if replace:
        ctes.append(
            f"{alias}_gone AS (DELETE FROM {table} WHERE account_id = %s AND ticket NOT IN (SELECT ticket FROM {alias}))"
        )
        params.append(account_id)
    if updates:
        assignments = ", ".join(
            f"{q(model._meta.get_field(n).column)} = EXCLUDED.{q(model._meta.get_field(n).column)}" for n in updates
        )
        conflict = f"DO UPDATE SET {assignments}"
    else:
        conflict = "DO NOTHING"
    ctes.append(
        f"{alias}_written AS (INSERT INTO {table} (account_id, {columns}) SELECT %s, {values} FROM {alias} r "
        f"ON CONFLICT (account_id, ticket) {conflict} RETURNING 1)"
    )
    params.append(account_id)
    return ctes, params, f"{alias}_written"


def ea_states_upsert(rows: list[dict], *, snapshots: bool = False) -> None:
    """EA states of one or many accounts in one statement of data-modifying CTEs over the rows as JSON: the account
    figures, the connection row (first_seen_at set once; a late write never replaces a newer state), the token's
    last use and, with ``snapshots``, an ``AccountSnapshot`` each. A row: ``id``, ``at``, the ``STATE_FIGURES``,
    ``leverage``, then the connection columns (``STATE_CONNECTION``: EA version, protocol version, terminal,
    state, fingerprint, beats, refusal); ``mt5bridge.ea.persist`` builds them."""
    q = connection.ops.quote_name
    account_table = q(TradingAccount._meta.db_table)
    conn_table = q(EAConnection._meta.db_table)
    token_table = q(EAToken._meta.db_table)
    columns = list(STATE_CONNECTION)
    figure_names = list(STATE_FIGURES)
    record = {"id": "uuid", "at": "timestamptz", **STATE_FIGURES, "leverage": "integer", **STATE_CONNECTION}
    text = (
        "WITH v AS (SELECT * FROM jsonb_to_recordset(%s::jsonb) AS v("
        + ", ".join(f"{name} {kind}" for name, kind in record.items())
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
    with connection.cursor() as cursor:
        cursor.execute(text, [rows_json(rows)])


def commands_mark_delivered(command_ids: list[str], stamp) -> set[str]:
    """Mark the commands of ``command_ids`` that are still open as delivered (their delivery counted) and return the
    ids it marked: one ``UPDATE ... RETURNING`` instead of a read of the open ones and an update (PostgreSQL and
    SQLite both speak it). An id not returned was finished or cancelled meanwhile."""
    if not command_ids:
        return set()
    q = connection.ops.quote_name
    pk, delivered_at = Command._meta.pk, Command._meta.get_field("delivered_at")
    ids = ", ".join(["%s"] * len(command_ids))
    statuses = ", ".join(["%s"] * len(OPEN_STATUSES))
    sql = (
        f"UPDATE {q(Command._meta.db_table)} SET status = %s, delivered_at = %s, delivery_count = delivery_count + 1 "
        f"WHERE id IN ({ids}) AND status IN ({statuses}) RETURNING id"
    )
    params = [
        CommandStatus.DELIVERED.value,
        delivered_at.get_db_prep_value(stamp, connection),
        *(pk.get_db_prep_value(uuid.UUID(cid), connection) for cid in command_ids),
        *(str(s) for s in OPEN_STATUSES),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {str(uuid.UUID(str(row[0]))) for row in cursor.fetchall()}


def command_result_write(command_id, account_id, *, status: str, retcode, message: str, result, finished_at):
    """A command's result in one conditional ``UPDATE ... RETURNING`` the stored row (its own transaction): None when
    the command is not this account's or already has a result. Of two results racing for one command one writes, the
    other finds it final. A result after a server-side expiry or cancellation still wins (the terminal is the truth),
    and the message says what the server had marked."""
    fields = Command._meta.concrete_fields
    q = connection.ops.quote_name
    sql = (
        f"UPDATE {q(Command._meta.db_table)} SET status = %s, retcode = %s, "
        "message = left(%s || CASE WHEN status IN (%s, %s) THEN '' "
        "ELSE ' (after server marked it ' || status || ')' END, 255), result = %s, finished_at = %s "
        "WHERE id = %s AND account_id = %s AND status NOT IN (%s, %s) "
        f"RETURNING {', '.join(q(f.column) for f in fields)}"
    )
    params = [
        status,
        retcode,
        message,
        *(str(s) for s in OPEN_STATUSES),
        Command._meta.get_field("result").get_db_prep_value(result, connection),
        finished_at,
        str(command_id),
        str(account_id),
        CommandStatus.EXECUTED.value,
        CommandStatus.FAILED.value,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    values = [
        f.from_db_value(v, None, connection) if hasattr(f, "from_db_value") else v
        for f, v in zip(fields, row, strict=True)
    ]
    return Command.from_db(connection.alias, [f.attname for f in fields], values)
