"""The peer the EA heartbeat is measured against: the same steady beat in FastAPI + pydantic + redis-py.

Same semantics as a steady beat of ``/api/ea/heartbeat``: the token's SHA-256 → the account from Redis, the
per-account throttle counter, the body validated with Decimals and their bounds (and the login checked against
the token's), the state swapped in Redis (``SET … GET``), the connection's last-seen time, the account's due
commands popped from its queue, and the same reply body. No Django, no database. Run by ``ea_heartbeat.py``
(``uvicorn peer_heartbeat:app --workers 2``), which seeds ``peer:tok:<hash>`` for its accounts.
"""

from __future__ import annotations

import hashlib
import os
import time
from decimal import Decimal
from typing import Annotated, Literal

import redis.asyncio as aredis
from fastapi import FastAPI, Header, HTTPException
from pydantic import BaseModel, Field

MONEY = Decimal("1e15")
PRICE = Decimal("1e12")
Money = Annotated[Decimal, Field(ge=-MONEY, le=MONEY, allow_inf_nan=False)]
Price = Annotated[Decimal, Field(ge=0, le=PRICE, allow_inf_nan=False)]
Volume = Annotated[Decimal, Field(gt=0, le=Decimal("1e9"), allow_inf_nan=False)]
Epoch = Annotated[float, Field(ge=946684800, le=4102444800)]
Ticket = Annotated[int, Field(ge=1, le=2**63 - 1)]


class Position(BaseModel):
    ticket: Ticket
    symbol: Annotated[str, Field(min_length=1, max_length=64)]
    type: Annotated[int, Field(ge=0, le=1)]
    volume: Volume
    price_open: Price
    time: Epoch
    sl: Price = Decimal(0)
    tp: Price = Decimal(0)
    magic: Annotated[int, Field(ge=0)] = 0
    comment: Annotated[str, Field(max_length=64)] | None = None
    profit: Money = Decimal(0)
    identifier: Annotated[int, Field(ge=0)] | None = None


class Order(BaseModel):
    ticket: Ticket
    symbol: Annotated[str, Field(min_length=1, max_length=64)]
    type: Annotated[int, Field(ge=2, le=7)]
    volume: Volume
    price_open: Price
    time_setup: Epoch
    sl: Price = Decimal(0)
    tp: Price = Decimal(0)
    magic: Annotated[int, Field(ge=0)] = 0
    comment: Annotated[str, Field(max_length=64)] | None = None


class Account(BaseModel):
    balance: Money
    equity: Money
    credit: Money = Decimal(0)
    margin: Annotated[Decimal, Field(ge=0, le=MONEY, allow_inf_nan=False)] = Decimal(0)
    margin_free: Money = Decimal(0)
    leverage: Annotated[int, Field(ge=0, le=100000)] = 0


class Heartbeat(BaseModel):
    account: Account
    v: Literal[1] = 1
    ea_version: Annotated[str, Field(max_length=32)] | None = None
    login: int | None = None
    server_time: Epoch | None = None
    positions: Annotated[list[Position], Field(max_length=2000)] = []
    orders: Annotated[list[Order], Field(max_length=2000)] = []
    terminal: Annotated[dict[str, str | int | float | bool | None], Field(max_length=20)] = {}
    results: Annotated[list[dict], Field(max_length=0)] = []  # results go to the full path, as in ours
    max_commands: Annotated[int, Field(ge=1, le=200)] = 50


app = FastAPI()
redis = aredis.Redis.from_url(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11"), decode_responses=True)


@app.post("/api/ea/heartbeat")
async def heartbeat(beat: Heartbeat, authorization: str = Header("")) -> dict:
    token = authorization.removeprefix("Bearer ").strip()
    known = await redis.get(f"peer:tok:{hashlib.sha256(token.encode()).hexdigest()}")
    if known is None:
        raise HTTPException(401, "The EA token is wrong or has been revoked.")
    account_id, login = known.split("|")
    if beat.login is not None and beat.login != int(login):
        raise HTTPException(400, "login does not match the token's account")
    now = time.time()
    window = f"peer:rl:{account_id}:{int(now)}"
    async with redis.pipeline(transaction=False) as pipe:
        pipe.incr(window)
        pipe.expire(window, 2)
        pipe.set(f"peer:st:{account_id}", beat.model_dump_json(), get=True, ex=86400)
        pipe.hset(f"peer:meta:{account_id}", "seen", now)
        pipe.hgetall(f"peer:q:{account_id}")
        count, _, _previous, _, queued = await pipe.execute()
    if count > 1000:
        raise HTTPException(429, "throttled")
    commands = list(queued.values())[: beat.max_commands]
    if commands:
        await redis.hdel(f"peer:q:{account_id}", *list(queued)[: beat.max_commands])
    return {"v": 1, "status": "ok", "server_time": now, "next_beat_ms": 1000, "commands": commands}


@app.post("/bench/bare")
async def bare() -> dict:
    return {}
