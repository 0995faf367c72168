"""Pure diff of two EA states of a master into copy intents (no database)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

OPEN = "open"
INCREASE = "increase"  # a netting master added volume to its position
CLOSE = "close"
PARTIAL_CLOSE = "partial_close"
MODIFY = "modify"
PENDING_PLACED = "pending_placed"
PENDING_MODIFIED = "pending_modified"
PENDING_CANCELLED = "pending_cancelled"
PENDING_TRIGGERED = "pending_triggered"
OPENING_INTENTS = frozenset({OPEN, INCREASE, PENDING_PLACED})


@dataclass(frozen=True)
class Intent:
    """One change on the master. ``ticket`` is the POSITION_IDENTIFIER (or the order ticket for pendings)."""

    kind: str
    ticket: int
    symbol: str
    type: int  # 0 buy / 1 sell for positions; ORDER_TYPE for pendings
    volume: Decimal  # volume opened, added or closed by this change
    previous_volume: Decimal = Decimal("0")
    remaining_volume: Decimal = Decimal("0")
    price: Decimal = Decimal("0")
    sl: Decimal = Decimal("0")
    tp: Decimal = Decimal("0")
    magic: int = 0
    time: datetime | None = None


def _positions(state: Any) -> dict[int, Any]:
    # Identifier (= opening order ticket) is stable for a position's life, the ticket may not be on netting.
    return {p.identifier or p.ticket: p for p in state.positions}


def state_diff(previous: Any | None, current: Any) -> list[Intent]:
    """Compare the master's last state with the new one. A first state (no previous) yields nothing."""
    if previous is None:
        return []
    intents: list[Intent] = []
    before, after = _positions(previous), _positions(current)
    old_orders = {o.ticket: o for o in previous.orders}
    new_orders = {o.ticket: o for o in current.orders}

    for ident, pos in after.items():
        old = before.get(ident)
        if old is not None and old.type != pos.type:
            # A netting position reversed through zero: the old side closed, a new one opened.
            intents.append(_position_intent(CLOSE, ident, old, old.volume, old.volume, Decimal("0")))
            old = None
        if old is None:
            kind = PENDING_TRIGGERED if ident in old_orders and ident not in new_orders else OPEN
            intents.append(_position_intent(kind, ident, pos, pos.volume, Decimal("0"), pos.volume))
            continue
        if pos.volume < old.volume:
            intents.append(_position_intent(PARTIAL_CLOSE, ident, pos, old.volume - pos.volume, old.volume, pos.volume))
        elif pos.volume > old.volume:
            intents.append(_position_intent(INCREASE, ident, pos, pos.volume - old.volume, old.volume, pos.volume))
        if pos.sl != old.sl or pos.tp != old.tp:
            intents.append(_position_intent(MODIFY, ident, pos, Decimal("0"), old.volume, pos.volume))

    for ident, old in before.items():
        if ident not in after:
            intents.append(_position_intent(CLOSE, ident, old, old.volume, old.volume, Decimal("0")))

    for ticket, order in new_orders.items():
        old = old_orders.get(ticket)
        if old is None:
            intents.append(_order_intent(PENDING_PLACED, order))
        elif (order.price_open, order.sl, order.tp) != (old.price_open, old.sl, old.tp):
            intents.append(_order_intent(PENDING_MODIFIED, order))
    for ticket, old in old_orders.items():
        if ticket not in new_orders and ticket not in after:
            intents.append(_order_intent(PENDING_CANCELLED, old))
    return intents


def _position_intent(kind: str, ident: int, pos: Any, volume: Decimal, previous: Decimal, remaining: Decimal) -> Intent:
    return Intent(
        kind=kind,
        ticket=ident,
        symbol=pos.symbol,
        type=int(pos.type),
        volume=volume,
        previous_volume=previous,
        remaining_volume=remaining,
        price=pos.price_open,
        sl=pos.sl,
        tp=pos.tp,
        magic=pos.magic,
        time=pos.time,
    )


def _order_intent(kind: str, order: Any) -> Intent:
    return Intent(
        kind=kind,
        ticket=order.ticket,
        symbol=order.symbol,
        type=int(order.type),
        volume=order.volume,
        price=order.price_open,
        sl=order.sl,
        tp=order.tp,
        magic=order.magic,
        time=order.time_setup,
    )
