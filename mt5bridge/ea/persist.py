"""The EA's state written to PostgreSQL: account figures, the connection row, positions, orders and snapshots."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db import connection as db_connection
from django.db import transaction
from psycopg.types.json import Jsonb

from accounts.models import AccountSnapshot, Order, Position, TradingAccount
from config.db import server_binding_cursor
from mt5bridge.ea import store
from mt5bridge.ea.models import EAConnection, EAToken
from mt5bridge.ea.state import EAState, state_to_json
from mt5bridge.sync import replace_account_rows

if TYPE_CHECKING:
    from mt5bridge.ea.protocol import Heartbeat
    from mt5bridge.ea.services import EAClient


def states_persist(beats: list) -> int:
    """Cadence writes of unchanged states, deferred and batched by the EA fast path: ``beats`` are
    (client, heartbeat, fingerprint, beat count, denied reason), each the account's latest. On PostgreSQL one
    statement writes them all (account figures, connection rows, tokens' last use). Returns how many were written;
    after a failure each write is due again on its account's next beat."""
    if not beats:
        return 0
    if db_connection.vendor == "postgresql":
        with transaction.atomic():
            _persist_many_postgres(beats)
    else:
        for client, beat, fingerprint, count, denied in beats:
            state_persist(client, beat, beat.state, fingerprint, changed=False, beats=count, denied=denied)
    r = store.client()
    if r is not None:
        pipe = r.pipeline(transaction=False)
        for client, beat, fingerprint, _count, _denied in beats:
            at = beat.state.received_at.timestamp()
            pipe.hset(store.meta_key(client.account_id), mapping={"fp": fingerprint, "persisted": at})
        pipe.execute()
    return len(beats)


_FIGURE_TYPES = {
    "balance": "numeric",
    "credit": "numeric",
    "equity": "numeric",
    "margin": "numeric",
    "margin_free": "numeric",
    "floating_profit": "numeric",
    "margin_level": "numeric",
}


def _persist_many_postgres(beats: list, *, snapshots: bool = False) -> None:
    """The account figures, the connection row (first_seen_at set once; a late write never replaces a newer
    state), the token's last use and, with ``snapshots``, an ``AccountSnapshot`` each, for one or many accounts:
    one statement of data-modifying CTEs over column arrays."""
    q = db_connection.ops.quote_name
    account_table = q(TradingAccount._meta.db_table)
    conn_table = q(EAConnection._meta.db_table)
    token_table = q(EAToken._meta.db_table)
    ids, ats, figures, leverages, conns = [], [], {name: [] for name in _FIGURE_TYPES}, [], []
    for client, beat, fingerprint, count, denied in beats:
        state = beat.state
        row = state_figures(state)
        ids.append(client.account_id)
        ats.append(state.received_at)
        for name in _FIGURE_TYPES:
            figures[name].append(row[name])
        leverages.append(row.get("leverage"))
        conns.append(
            (
                beat.ea_version,
                beat.version,
                Jsonb(beat.terminal),
                Jsonb({"json": state_to_json(state)}),
                fingerprint,
                count,
                denied,
            )
        )
    columns = ["ea_version", "protocol_version", "terminal", "state", "state_fingerprint", "beats"]
    columns.append("access_denied_reason")
    types = ["text", "integer", "jsonb", "jsonb", "text", "bigint", "text"]
    figure_names = list(_FIGURE_TYPES)
    sql = (
        "WITH v AS (SELECT * FROM unnest(%s::uuid[], %s::timestamptz[], "
        + ", ".join(f"%s::{t}[]" for t in _FIGURE_TYPES.values())
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
        sql += (
            f", snapshot AS (INSERT INTO {snapshot_table} (account_id, taken_at, "
            + ", ".join(q(n) for n in figure_names)
            + ") SELECT id, at, "
            + ", ".join(figure_names)
            + " FROM v)"
        )
    sql += " SELECT 1"
    params = [
        ids,
        ats,
        *(figures[n] for n in figure_names),
        leverages,
        *(list(col) for col in zip(*conns, strict=True)),
    ]
    with server_binding_cursor() as cursor:
        cursor.execute(sql, params)


def state_figures(state: EAState) -> dict:
    figures = {
        "balance": state.balance,
        "credit": state.credit,
        "equity": state.equity,
        "margin": state.margin,
        "margin_free": state.margin_free,
        "floating_profit": state.equity - state.balance - state.credit,
        "margin_level": (state.equity / state.margin * 100).quantize(Decimal("0.01")) if state.margin else None,
    }
    if state.leverage:
        figures["leverage"] = state.leverage
    return figures


EA_POSITION_UPDATES = ("volume", "sl", "tp", "profit", "comment", "updated_at")
EA_ORDER_UPDATES = ("volume_current", "price_open", "sl", "tp", "comment")


def state_persist(
    client: EAClient, beat: Heartbeat, state: EAState, fingerprint: str, *, changed: bool, beats: int, denied: str
) -> None:
    """Write the state to PostgreSQL: account figures and connection always; positions/orders/snapshot on change.

    On PostgreSQL that is one statement for the account, connection, token and snapshot rows and one each for
    positions and orders (column arrays), in one transaction: a changed master beat waits for it before its reply.
    """
    at = state.received_at
    with transaction.atomic():
        if db_connection.vendor == "postgresql":
            _persist_many_postgres([(client, beat, fingerprint, beats, denied)], snapshots=changed)
        else:
            _persist_rows_orm(client, beat, fingerprint, beats, denied, snapshot=changed)
        if changed:
            replace_account_rows(Position, client.account_id, _position_rows(state, at), EA_POSITION_UPDATES)
            replace_account_rows(Order, client.account_id, _order_rows(state), EA_ORDER_UPDATES)


def _persist_rows_orm(
    client: EAClient, beat: Heartbeat, fingerprint: str, beats: int, denied: str, *, snapshot: bool
) -> None:
    state, account_id = beat.state, client.account_id
    at, figures = state.received_at, state_figures(state)
    TradingAccount.objects.filter(pk=account_id).update(**figures, updated_at=at)
    defaults = {
        "last_seen_at": at,
        "ea_version": beat.ea_version,
        "protocol_version": beat.version,
        "terminal": beat.terminal,
        "state": {"json": state_to_json(state)},
        "state_fingerprint": fingerprint,
        "persisted_at": at,
        "beats": beats,
        "access_denied_reason": denied,
    }
    conn, created = EAConnection.objects.update_or_create(account_id=account_id, defaults=defaults)
    if created:
        EAConnection.objects.filter(pk=conn.pk).update(first_seen_at=at)
    EAToken.objects.filter(account_id=account_id).update(last_used_at=at)  # on the persist cadence
    if snapshot:
        AccountSnapshot.objects.create(
            account_id=account_id, taken_at=at, **{k: v for k, v in figures.items() if k != "leverage"}
        )


def _position_rows(state: EAState, at: datetime) -> list[dict]:
    return [
        {
            "ticket": p.ticket,
            "symbol": p.symbol,
            "side": p.type,
            "volume": p.volume,
            "price_open": p.price_open,
            "price_current": p.price_open,
            "sl": p.sl,
            "tp": p.tp,
            "swap": 0,  # not reported by the EA
            "profit": p.profit,
            "magic": p.magic,
            "comment": p.comment,
            "identifier": p.identifier,
            "opened_at": p.time,
            "updated_at": at,
        }
        for p in state.positions
    ]


def _order_rows(state: EAState) -> list[dict]:
    return [
        {
            "ticket": o.ticket,
            "symbol": o.symbol,
            "order_type": o.type,
            "volume_initial": o.volume,
            "volume_current": o.volume,
            "price_open": o.price_open,
            "price_current": 0,
            "price_stoplimit": 0,
            "sl": o.sl,
            "tp": o.tp,
            "magic": o.magic,
            "comment": o.comment,
            "placed_at": o.time_setup,
        }
        for o in state.orders
    ]
