"""The EA's state written to PostgreSQL: account figures, the connection row, positions, orders and snapshots."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db import connection as db_connection
from django.db import transaction

from accounts.live import figures_payload, publish_account_update
from accounts.models import AccountSnapshot, Order, Position, TradingAccount
from mt5bridge import sql
from mt5bridge.ea import store
from mt5bridge.ea.models import EAConnection, EAToken
from mt5bridge.ea.state import EAState, state_to_json
from mt5bridge.sync import replace_account_rows

if TYPE_CHECKING:
    from mt5bridge.ea.protocol import Heartbeat
    from mt5bridge.ea.services import EAClient


@dataclass(frozen=True)
class StateWrite:
    """One beat's state to write: who sent it, the beat, its fingerprint, the beat count, the gate's refusal ("" when
    allowed) and whether the state changed since the last write (then positions, orders and a snapshot too)."""

    client: EAClient
    beat: Heartbeat
    fingerprint: str
    beats: int
    denied: str
    changed: bool = False


def states_write(writes: list[StateWrite]) -> int:
    """The one writer of EA states to PostgreSQL, for one beat (the pipeline) or a batch of cadence writes (the ASGI
    edge's batch, each the account's latest): account figures and connection rows always; positions, orders and a
    snapshot for a changed state. On PostgreSQL one statement writes the rows of all the accounts (one JSON parameter),
    plus one each for positions and orders of a changed state, in one transaction. Then the accounts' meta records
    the write; after a failure each write is due again on its account's next beat. Returns how many were written."""
    if not writes:
        return 0
    with transaction.atomic():
        if db_connection.vendor == "postgresql":
            for changed in (False, True):
                rows = [w for w in writes if w.changed is changed]
                if rows:
                    _persist_many_postgres(rows, snapshots=changed)
        else:
            for w in writes:
                _persist_rows_orm(w)
        for w in writes:
            if w.changed:
                state, account_id = w.beat.state, w.client.account_id
                replace_account_rows(
                    Position, account_id, _position_rows(state, state.received_at), EA_POSITION_UPDATES
                )
                replace_account_rows(Order, account_id, _order_rows(state), EA_ORDER_UPDATES)
    r = store.client()
    if r is not None:
        pipe = r.pipeline(transaction=False)
        for w in writes:
            at = w.beat.state.received_at.timestamp()
            pipe.hset(store.meta_key(w.client.account_id), mapping={"fp": w.fingerprint, "persisted": at})
        pipe.execute()
    return len(writes)


def _persist_many_postgres(writes: list[StateWrite], *, snapshots: bool = False) -> None:
    """The rows of ``mt5bridge.sql.ea_states_upsert``, one per write."""
    rows = []
    for w in writes:
        state, beat = w.beat.state, w.beat
        figures = state_figures(state)
        row = {"id": w.client.account_id, "at": state.received_at}
        row.update((name, figures[name]) for name in sql.STATE_FIGURES)
        row["leverage"] = figures.get("leverage")
        row.update(
            ea_version=beat.ea_version,
            protocol_version=beat.version,
            terminal=beat.terminal,
            state={"json": state_to_json(state)},
            state_fingerprint=w.fingerprint,
            beats=w.beats,
            access_denied_reason=w.denied,
        )
        rows.append(row)
    sql.ea_states_upsert(rows, snapshots=snapshots)


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


def _persist_rows_orm(w: StateWrite) -> None:
    beat, state, account_id = w.beat, w.beat.state, w.client.account_id
    at, figures = state.received_at, state_figures(state)
    TradingAccount.objects.filter(pk=account_id).update(**figures, updated_at=at)
    defaults = {
        "last_seen_at": at,
        "ea_version": beat.ea_version,
        "protocol_version": beat.version,
        "terminal": beat.terminal,
        "state": {"json": state_to_json(state)},
        "state_fingerprint": w.fingerprint,
        "persisted_at": at,
        "beats": w.beats,
        "access_denied_reason": w.denied,
    }
    conn, created = EAConnection.objects.update_or_create(account_id=account_id, defaults=defaults)
    if created:
        EAConnection.objects.filter(pk=conn.pk).update(first_seen_at=at)
    EAToken.objects.filter(account_id=account_id).update(last_used_at=at)  # on the persist cadence
    if w.changed:
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


def state_publish(account_id: str, state: EAState) -> None:
    """Push the state's figures and positions to the account's live dashboards. Built from the heartbeat itself, so
    a push costs no database read."""
    positions = [
        {
            "ticket": p.ticket,
            "symbol": p.symbol,
            "side": "buy" if p.type == 0 else "sell",
            "volume": str(p.volume.normalize()),
            "price_open": str(p.price_open.normalize()),
            "price_current": None,  # the EA reports P/L, not the current price
            "swap": None,
            "profit": str(p.profit),
        }
        for p in sorted(state.positions, key=lambda p: p.time)
    ]
    publish_account_update(account_id, figures_payload(account_id, state_figures(state), positions), watched=True)
