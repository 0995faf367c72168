"""An EA's reported state as plain frozen values: what the copy and rules engines receive on every heartbeat."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

__all__ = [
    "EAPosition",
    "EAOrder",
    "EAState",
    "state_from_json",
    "state_to_json",
    "state_fingerprint",
    "state_floating_figures",
]


@dataclass(frozen=True)
class EAPosition:
    ticket: int
    symbol: str
    type: int  # 0 buy, 1 sell
    volume: Decimal
    price_open: Decimal
    sl: Decimal
    tp: Decimal
    magic: int
    comment: str
    profit: Decimal
    time: datetime
    identifier: int


@dataclass(frozen=True)
class EAOrder:
    ticket: int
    symbol: str
    type: int  # ORDER_TYPE_*
    volume: Decimal
    price_open: Decimal
    sl: Decimal
    tp: Decimal
    magic: int
    comment: str
    time_setup: datetime


@dataclass(frozen=True)
class EAState:
    account_id: str
    login: int
    received_at: datetime
    server_time: datetime | None
    balance: Decimal
    credit: Decimal
    equity: Decimal
    margin: Decimal
    margin_free: Decimal
    leverage: int
    positions: tuple[EAPosition, ...]
    orders: tuple[EAOrder, ...]
    paused: bool = False  # the EA obeys a "pause" command: it opens nothing until "resume"


def _ts(value: datetime) -> float:
    return value.timestamp()


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=UTC)


def state_to_json(state: EAState) -> str:
    """Compact JSON for Redis (decimals as strings, times as epoch seconds)."""
    return json.dumps(
        {
            "a": state.account_id,
            "l": state.login,
            "r": _ts(state.received_at),
            "st": None if state.server_time is None else _ts(state.server_time),
            "f": [str(state.balance), str(state.credit), str(state.equity), str(state.margin), str(state.margin_free)],
            "lv": state.leverage,
            "p": [
                [
                    p.ticket,
                    p.symbol,
                    p.type,
                    str(p.volume),
                    str(p.price_open),
                    str(p.sl),
                    str(p.tp),
                    p.magic,
                    p.comment,
                    str(p.profit),
                    _ts(p.time),
                    p.identifier,
                ]
                for p in state.positions
            ],
            "o": [
                [
                    o.ticket,
                    o.symbol,
                    o.type,
                    str(o.volume),
                    str(o.price_open),
                    str(o.sl),
                    str(o.tp),
                    o.magic,
                    o.comment,
                    _ts(o.time_setup),
                ]
                for o in state.orders
            ],
            "pz": state.paused,
        },
        separators=(",", ":"),
    )


def state_from_json(text: str | bytes) -> EAState:
    d = json.loads(text)
    balance, credit, equity, margin, margin_free = (Decimal(x) for x in d["f"])
    return EAState(
        account_id=d["a"],
        login=d["l"],
        received_at=_dt(d["r"]),
        server_time=_dt(d["st"]),
        balance=balance,
        credit=credit,
        equity=equity,
        margin=margin,
        margin_free=margin_free,
        leverage=d["lv"],
        positions=tuple(
            EAPosition(
                p[0],
                p[1],
                p[2],
                Decimal(p[3]),
                Decimal(p[4]),
                Decimal(p[5]),
                Decimal(p[6]),
                p[7],
                p[8],
                Decimal(p[9]),
                _dt(p[10]),
                p[11],
            )
            for p in d["p"]
        ),
        orders=tuple(
            EAOrder(o[0], o[1], o[2], Decimal(o[3]), Decimal(o[4]), Decimal(o[5]), Decimal(o[6]), o[7], o[8], _dt(o[9]))
            for o in d["o"]
        ),
        paused=d.get("pz", False),
    )


def state_floating_figures(text: str | bytes) -> tuple[Decimal, Decimal]:
    """(equity, margin) of a state stored by ``state_to_json``, without building the whole state."""
    figures = json.loads(text)["f"]
    return Decimal(figures[2]), Decimal(figures[3])


def state_fingerprint(state: EAState) -> str:
    """A digest of what matters for persisting and copying: balance/credit, positions, orders (not floating P/L)."""
    parts = [str(state.balance), str(state.credit), str(state.leverage), "paused" if state.paused else ""]
    parts += [f"p{p.ticket}:{p.volume}:{p.sl}:{p.tp}" for p in sorted(state.positions, key=lambda p: p.ticket)]
    parts += [
        f"o{o.ticket}:{o.volume}:{o.price_open}:{o.sl}:{o.tp}" for o in sorted(state.orders, key=lambda o: o.ticket)
    ]
    return hashlib.blake2b("|".join(parts).encode(), digest_size=16).hexdigest()
