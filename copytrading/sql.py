"""The copy engine's SQL that the ORM cannot express: one master heartbeat's writes in one PostgreSQL statement.

``WITH new_command AS (INSERT ... ON CONFLICT DO NOTHING RETURNING id), new_copy AS (INSERT ... JOIN new_command),
changed AS (UPDATE ...), skipped AS (INSERT ...) SELECT id FROM new_command``: the copy rows join the commands
inserted now, so a repeated heartbeat inserts neither. Other databases take the same writes through the ORM
(``copytrading.engine``); ``tests/copytrading/test_engine_writes.py`` checks both store the same rows.
"""

from __future__ import annotations

import functools
from contextlib import nullcontext

from django.db import connection, transaction

from mt5bridge.commands import commands_cache_after_commit, commands_insert_sql
from mt5bridge.ea.models import Command
from mt5bridge.sql import rows_json

from .choices import CopyStatus
from .models import CopiedPosition, CopyEvent
from .planning import Plan, Skip


# Not a config.caches memo: built from the models' table names only (code), it cannot go stale in a process.
@functools.cache
def _statement_parts() -> dict[str, str]:
    """The ``WITH`` parts of the heartbeat statement after the commands' insert (built once per process)."""
    copies, events, commands = CopiedPosition._meta.db_table, CopyEvent._meta.db_table, Command._meta.db_table
    return {
        "new_copy": (
            f"new_copy AS (INSERT INTO {copies} (link_id, slave_account_id, kind, master_ticket, master_symbol, "
            "master_volume, slave_ticket, slave_symbol, slave_side, slave_volume, status, close_requested, "
            "open_command_id, close_command_id, copy_id, opened_at, closed_at) "
            "SELECT r.link_id, r.slave_account_id, r.kind, r.master_ticket, r.master_symbol, r.master_volume, NULL, "
            "r.slave_symbol, r.slave_side, r.slave_volume, %s, false, r.open_command_id, NULL, r.copy_id, %s, NULL "
            "FROM jsonb_to_recordset(%s::jsonb) AS r(link_id bigint, slave_account_id uuid, kind text, "
            "master_ticket bigint, master_symbol text, master_volume numeric, slave_symbol text, slave_side text, "
            "slave_volume numeric, copy_id text, open_command_id uuid) "
            # Only the rows of commands inserted now (new ids): no conflict check needed, and none paid for.
            "JOIN new_command ON new_command.id = r.open_command_id)"
        ),
        # A close of a copy points at its close command: the new one, or on a repeated heartbeat the stored one
        # with the same key (the statement's snapshot sees stored commands, not the ones it inserts).
        "changed": (
            f"changed AS (UPDATE {copies} AS p SET kind = u.kind, master_volume = u.master_volume, "
            "slave_volume = u.slave_volume, close_requested = u.close_requested, "
            "close_command_id = CASE WHEN u.close_key IS NULL THEN u.close_command_id ELSE COALESCE("
            "(SELECT n.id FROM new_command AS n WHERE n.id = u.new_close_command_id), "
            f"(SELECT c.id FROM {commands} AS c "
            "WHERE c.account_id = p.slave_account_id AND c.idempotency_key = u.close_key), "
            "u.close_command_id) END "
            "FROM jsonb_to_recordset(%s::jsonb) AS u(id bigint, kind text, master_volume numeric, "
            "slave_volume numeric, close_requested boolean, close_command_id uuid, close_key text, "
            "new_close_command_id uuid) "
            "WHERE p.id = u.id)"
        ),
        "skipped": (
            f"skipped AS (INSERT INTO {events} (link_id, master_account_id, slave_account_id, intent, status, "
            "reason_code, reason, master_ticket, symbol, volume, created_at) "
            "SELECT e.link_id, e.master_account_id, e.slave_account_id, e.intent, 'skipped', e.reason_code, "
            "e.reason, e.master_ticket, e.symbol, e.volume, %s "
            "FROM jsonb_to_recordset(%s::jsonb) AS e(link_id bigint, master_account_id uuid, slave_account_id uuid, "
            "intent text, reason_code text, reason text, master_ticket bigint, symbol text, volume numeric))"
        ),
    }


def heartbeat_write(plan: Plan, commands: list, now) -> list:
    """PostgreSQL: every write of the heartbeat in one statement (one round trip, its own transaction).

    ``WITH new_command AS (INSERT ... ON CONFLICT DO NOTHING RETURNING id)`` inserts the commands and says which
    are new; the copy rows join it, so a repeated heartbeat inserts neither again. Rows travel as JSON
    (``jsonb_to_recordset``): one C-encoded parameter per table instead of the ORM's per-field work.
    """
    command_sql, params = commands_insert_sql(commands)
    statement = _statement_parts()
    parts = [f"new_command AS ({command_sql})"]
    by_key = {c.idempotency_key: c for c in commands}
    rows = [r for r in plan.new_rows if r.key in by_key]
    if rows:
        parts.append(statement["new_copy"])
        params += [
            CopyStatus.PENDING.value,
            now,
            rows_json(
                [
                    {
                        "link_id": r.link_id,
                        "slave_account_id": r.slave_account_id,
                        "kind": r.kind,
                        "master_ticket": r.master_ticket,
                        "master_symbol": r.master_symbol,
                        "master_volume": str(r.master_volume),
                        "slave_symbol": r.slave_symbol,
                        "slave_side": r.slave_side,
                        "slave_volume": str(r.slave_volume),
                        "copy_id": r.copy_id,
                        "open_command_id": str(by_key[r.key].id),
                    }
                    for r in rows
                ]
            ),
        ]
    if plan.changed_rows:
        closing = {row.id: key for key, row in plan.close_keys if key in by_key}
        parts.append(statement["changed"])
        params.append(
            rows_json(
                [
                    {
                        "id": row.id,
                        "kind": row.kind,
                        "master_volume": row.master_volume,
                        "slave_volume": row.slave_volume,
                        "close_requested": row.close_requested,
                        "close_command_id": row.close_command_id,
                        "close_key": closing.get(row.id),
                        "new_close_command_id": by_key[closing[row.id]].id if row.id in closing else None,
                    }
                    for row in plan.changed_rows.values()
                ]
            )
        )
    if plan.events:
        parts.append(statement["skipped"])
        params += [now, rows_json([skip_row(e) for e in plan.events])]
    sql = "WITH " + ", ".join(parts) + " SELECT id FROM new_command"
    # Alone (autocommit), the statement is its own transaction; inside a caller's transaction a savepoint keeps a
    # failed copy from breaking the caller's (the heartbeat's) transaction.
    with transaction.atomic() if not connection.get_autocommit() else nullcontext():
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            inserted = {row[0] for row in cursor.fetchall()}
        new = [c for c in commands if c.id in inserted]
        commands_cache_after_commit(new)
    return new


def skip_row(skip: Skip) -> dict:
    return {name: getattr(skip, name) for name in Skip.__slots__}
