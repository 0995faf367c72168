"""The simulated server's SQL that the ORM cannot express (or not at its cost), named: tickets and the hot reads.

- ``tickets_reserve``: one ``UPDATE ... RETURNING`` that moves a server's ticket counter, so that two books
  reserving at once never share a ticket (a read-then-write through the ORM would). It runs on any database.
- ``account_rows``, ``placed_order_rows``, ``account_version``, ``deal_rows_between``, ``deal_rows_with_comment``:
  one account's view and its deals. They run on every sync and in the broker's monitor loops, where the ORM's
  per-query overhead is larger than the work; the rows come back in the column order of ``ROW_NAMES`` (models'
  attnames, for ``Model.from_db``) and ``DEAL_FIELDS`` (the gateway's ``Deal``).
- ``changed_account_rows``: many accounts' rows with their group and open positions, only those whose
  (id, version) differs from the caller's copy (``bulk.accounts_info``).

Every function but ``tickets_reserve`` runs on PostgreSQL only; the callers (``book``, ``reads``, ``bulk``) take
ORM paths that return the same values on other databases. ``tests/mt5bridge/test_simulated_sql.py`` checks each
statement against its ORM equivalent.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from datetime import datetime

from django.db import connection

from mt5bridge.gateway.types import Deal

from .models import SimAccount, SimDeal, SimGroup, SimOrder, SimPosition, SimServer

# The columns of the deal reads, in the order of the gateway's ``Deal`` fields (``time`` as epoch milliseconds).
DEAL_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Deal))


@dataclasses.dataclass(frozen=True)
class RowNames:
    """The attnames of each model's columns, in the order the statements select them (for ``Model.from_db``)."""

    account: list[str]
    group: list[str]
    position: list[str]
    order: list[str]


def _columns(model) -> tuple[list[str], list[str]]:
    fields = model._meta.concrete_fields
    return [f.attname for f in fields], [connection.ops.quote_name(f.column) for f in fields]


class _Statements:
    """Hand-written queries, built once from the models' metadata so they follow the schema."""

    def __init__(self):
        q = connection.ops.quote_name
        account_names, account_cols = _columns(SimAccount)
        group_names, group_cols = _columns(SimGroup)
        position_names, position_cols = _columns(SimPosition)
        order_names, order_cols = _columns(SimOrder)
        self.names = RowNames(account_names, group_names, position_names, order_names)
        account, group = q(SimAccount._meta.db_table), q(SimGroup._meta.db_table)
        position, order, deal = q(SimPosition._meta.db_table), q(SimOrder._meta.db_table), q(SimDeal._meta.db_table)
        cols = ", ".join
        self.account = (
            f"SELECT {cols('a.' + c for c in account_cols)}, {cols('g.' + c for c in group_cols)}, "
            f"{cols('p.' + c for c in position_cols)} FROM {account} a JOIN {group} g ON g.id = a.group_id "
            f"LEFT JOIN {position} p ON p.login = a.login WHERE a.login = %s ORDER BY p.time, p.ticket"
        )
        self.version = f"SELECT id, version FROM {account} WHERE login = %s"
        self.orders = (
            f"SELECT {cols(order_cols)} FROM {order} WHERE login = %s AND state = %s ORDER BY time_setup, ticket"
        )
        deal_cols = [q(n) for n in DEAL_FIELDS]
        deal_cols[DEAL_FIELDS.index("time")] = "floor(extract(epoch from time) * 1000)::bigint"
        self.deals = (
            f"SELECT {cols(deal_cols)} FROM {deal} WHERE login = %s AND time >= %s AND time <= %s ORDER BY time, ticket"
        )
        self.deals_by_comment = (
            f"SELECT {cols(deal_cols)} FROM {deal} WHERE login = %s AND comment = %s ORDER BY time, ticket"
        )
        self.changed_accounts = (
            "SELECT a.id, a.version, c.login, a.server, a.name, a.currency, a.leverage, a.margin_mode, "
            "a.trade_mode, a.balance, a.credit, g.company, g.margin_call, g.stop_out, "
            "p.symbol, p.type, p.volume, p.price_open, p.swap_accrued, "
            "floor(extract(epoch from p.swap_since))::bigint, p.sl, p.tp "
            "FROM unnest(string_to_array(%s, ',')::bigint[], string_to_array(%s, ',')::bigint[], "
            "string_to_array(%s, ',')::bigint[]) AS c(login, id, version) "
            f"LEFT JOIN {account} a ON a.login = c.login LEFT JOIN {group} g ON g.id = a.group_id "
            f"LEFT JOIN {position} p ON p.login = a.login "
            "WHERE a.id IS DISTINCT FROM c.id OR a.version <> c.version"
        )


# Not a config.caches memo: the statements are spelled from the models' table and column names only (code;
# used on PostgreSQL only), so they cannot go stale in a process.
@functools.cache
def _statements() -> _Statements:
    return _Statements()


def row_names() -> RowNames:
    """The attnames of the columns ``account_rows`` and ``placed_order_rows`` return, model by model."""
    return _statements().names


# --- Tickets (any database) -------------------------------------------------------------


def tickets_reserve(server: str, count: int) -> int | None:
    """Move ``server``'s ticket counter on by ``count`` in one statement; the counter after it, None if no server.

    The first reserved ticket is the returned value minus ``count``.
    """
    table = connection.ops.quote_name(SimServer._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET next_ticket = next_ticket + %s WHERE name = %s RETURNING next_ticket",
            [count, server],
        )
        row = cursor.fetchone()
    return None if row is None else row[0]


# --- One account (PostgreSQL) -----------------------------------------------------------


def account_rows(login: int) -> list[tuple]:
    """The account's columns, its group's, then one open position's (None when it has none), oldest first.

    One row per open position, at least one when the account exists; none when it does not.
    """
    with connection.cursor() as cursor:
        cursor.execute(_statements().account, [login])
        return cursor.fetchall()


def placed_order_rows(login: int, state: int) -> list[tuple]:
    """The account's orders in ``state``, oldest first (columns as ``row_names().order``)."""
    with connection.cursor() as cursor:
        cursor.execute(_statements().orders, [login, state])
        return cursor.fetchall()


def account_version(login: int) -> tuple[int, int] | None:
    """(row id, version) of the account, None when it does not exist."""
    with connection.cursor() as cursor:
        cursor.execute(_statements().version, [login])
        return cursor.fetchone()


def deal_rows_between(login: int, date_from: datetime, date_to: datetime) -> list[tuple]:
    """Deals with ``date_from <= time <= date_to``, oldest first, as ``DEAL_FIELDS`` (time in epoch milliseconds)."""
    with connection.cursor() as cursor:
        cursor.execute(_statements().deals, [login, date_from, date_to])
        return cursor.fetchall()


def deal_rows_with_comment(login: int, comment: str) -> list[tuple]:
    """Deals whose stored comment equals ``comment``, oldest first, as ``DEAL_FIELDS`` (time in epoch milliseconds)."""
    with connection.cursor() as cursor:
        cursor.execute(_statements().deals_by_comment, [login, comment])
        return cursor.fetchall()


# --- Many accounts (PostgreSQL) ---------------------------------------------------------


def changed_account_rows(logins: Sequence[int], ids: Sequence[int], versions: Sequence[int]) -> list[tuple]:
    """Rows of the ``logins`` whose (id, version) differs from the caller's (``ids``/``versions``, same order).

    The cached pairs travel with the logins so the database answers only with what changed: a monitor's
    steady state costs one query that returns next to nothing. Pass id 0 and version -1 for a login not held.
    Each row: id, version, login, server, name, currency, leverage, margin_mode, trade_mode, balance, credit,
    the group's company, margin_call, stop_out, then one open position's symbol, type, volume, price_open,
    swap_accrued, swap_since (epoch seconds), sl, tp (all None when it has none). A login with no account comes
    back once with id None.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            _statements().changed_accounts,
            # Comma-joined text: the client-side cursor spells a Python list out element by element, 3x slower.
            [",".join(map(str, logins)), ",".join(map(str, ids)), ",".join(map(str, versions))],
        )
        return cursor.fetchall()
