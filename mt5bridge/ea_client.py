"""A reference EA in Python: speaks the EA protocol over HTTP and executes commands through an MT5 gateway.

It does what ``mql5/MT5BackOfficeEA.mq5`` does, so tests, benchmarks and the demo exercise the real
protocol: beat on a timer (or long-poll), execute each command once, report results on the next beat.
Execution is exactly once because a command's id travels in the order comment: before trading, the
client looks for a position, order or deal already carrying that comment (a terminal restart cannot
repeat a trade), and it remembers the outcome of every command id it has handled.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal

import httpx

from config.resilience import Resilient
from mt5bridge import gateway as gw

logger = logging.getLogger(__name__)

EA_VERSION = "py-1.0"
MAX_BACKOFF = 30.0


def _epoch(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())


def state_message(gateway: gw.MT5Gateway, login: int) -> dict:
    """A heartbeat body (without results) from the gateway's view of the account."""
    info = gateway.account_info(login)
    positions = gateway.positions(login)
    orders = gateway.orders(login)
    return {
        "v": 1,
        "ea_version": EA_VERSION,
        "login": login,
        "server_time": int(time.time()),
        "account": {
            "balance": str(info.balance),
            "credit": str(info.credit),
            "equity": str(info.equity),
            "margin": str(info.margin),
            "margin_free": str(info.margin_free),
            "leverage": info.leverage,
        },
        "positions": [
            {
                "ticket": p.ticket,
                "symbol": p.symbol,
                "type": int(p.type),
                "volume": str(p.volume),
                "price_open": str(p.price_open),
                "sl": str(p.sl),
                "tp": str(p.tp),
                "magic": p.magic,
                "comment": p.comment,
                "profit": str(p.profit),
                "time": _epoch(p.time),
                "identifier": p.identifier,
            }
            for p in positions
        ],
        "orders": [
            {
                "ticket": o.ticket,
                "symbol": o.symbol,
                "type": int(o.type),
                "volume": str(o.volume_current),
                "price_open": str(o.price_open),
                "sl": str(o.sl),
                "tp": str(o.tp),
                "magic": o.magic,
                "comment": o.comment,
                "time_setup": _epoch(o.time_setup),
            }
            for o in orders
        ],
        "terminal": {"name": "reference-ea", "connected": True, "trade_allowed": True},
    }


OPENING_KINDS = frozenset({"open_market", "place_pending"})  # refused while paused; closing and modifying go on


class CommandExecutor:
    """Runs protocol commands against a gateway, once per command id."""

    def __init__(self, gateway: gw.MT5Gateway, login: int, *, magic: int = 0):
        self.gateway = gateway
        self.login = login
        self.magic = magic
        self.done: dict[str, dict] = {}  # command id -> result reported (the MQL5 EA keeps this in a file)
        self.paused = False

    def execute(self, command: dict) -> dict:
        cid = command["id"]
        if cid in self.done:
            return self.done[cid]
        result = self._execute(command)
        self.done[cid] = result
        return result

    def _result(self, command, status, retcode=None, message="", **values) -> dict:
        return {
            "id": command["id"],
            "status": status,
            "retcode": retcode,
            "message": message[:255],
            "result": {k: (str(v) if isinstance(v, Decimal) else v) for k, v in values.items() if v is not None},
        }

    def _already_done(self, command: dict) -> dict | None:
        """A trade that already carries this command's comment: executed before a restart or a lost reply."""
        comment = command["comment"]
        for p in self.gateway.positions(self.login):
            if p.comment == comment:
                return self._result(
                    command,
                    "executed",
                    int(gw.Retcode.DONE),
                    "already executed",
                    position=p.ticket,
                    order=p.identifier,
                    duplicate=True,
                )
        for o in self.gateway.orders(self.login):
            if o.comment == comment:
                return self._result(
                    command, "executed", int(gw.Retcode.PLACED), "already placed", order=o.ticket, duplicate=True
                )
        deals = self.gateway.deals_by_comment(self.login, comment)
        if deals:
            d = deals[0]
            return self._result(
                command,
                "executed",
                int(gw.Retcode.DONE),
                "already executed",
                deal=d.ticket,
                order=d.order,
                position=d.position_id,
                duplicate=True,
            )
        return None

    def _execute(self, command: dict) -> dict:
        kind, p = command["kind"], command["params"]
        expires_at = command.get("expires_at")
        if expires_at is not None and time.time() > expires_at:
            return self._result(command, "failed", None, "expired before execution")
        if kind == "pause":
            self.paused = True
            return self._result(command, "executed", None, "paused")
        if kind == "resume":
            self.paused = False
            return self._result(command, "executed", None, "resumed")
        if self.paused and kind in OPENING_KINDS:
            # Refused, not held: a copy that waited for the resume would open at a stale price.
            return self._result(
                command, "failed", int(gw.Retcode.TRADE_DISABLED), "paused: opens nothing until resumed"
            )
        if kind in ("open_market", "place_pending", "close", "close_partial", "close_all"):
            previous = self._already_done(command)
            if previous is not None:
                return previous
        try:
            if kind == "close_all":
                results = [
                    self._send(
                        command,
                        gw.OrderRequest.closing(pos, magic=self.magic, comment=command["comment"]),
                    )
                    for pos in self.gateway.positions(self.login)
                    if not p.get("symbol") or pos.symbol == p["symbol"]
                ]
                failed = [r for r in results if not r.ok]
                return self._result(
                    command,
                    "failed" if failed else "executed",
                    failed[0].retcode if failed else int(gw.Retcode.DONE),
                    f"closed {len(results) - len(failed)} of {len(results)}",
                )
            request = self._request(command)
        except gw.NotFound as exc:
            return self._result(command, "failed", int(gw.Retcode.INVALID_ORDER), str(exc))
        if request is None:
            return self._result(command, "failed", int(gw.Retcode.INVALID), f"unsupported command {kind}")
        res = self._send(command, request)
        status = "executed" if res.ok else "failed"
        position = None
        if kind == "open_market" and res.ok:
            position = self._opened_position(command["comment"], res)
        elif kind in ("close", "close_partial", "modify_sltp"):
            position = p["ticket"]
        return self._result(
            command,
            status,
            res.retcode,
            res.comment,
            order=res.order or None,
            deal=res.deal or None,
            position=position,
            price=res.price if res.ok else None,
            volume=res.volume if res.ok else None,
        )

    def _opened_position(self, comment: str, res: gw.OrderResult) -> int | None:
        for pos in self.gateway.positions(self.login):
            if pos.comment == comment or pos.identifier == res.order:
                return pos.ticket
        return res.order or None

    def _send(self, command: dict, request: gw.OrderRequest) -> gw.OrderResult:
        try:
            return self.gateway.order_send(self.login, request)
        except gw.NotFound as exc:
            return gw.OrderResult(retcode=int(gw.Retcode.INVALID_ORDER), comment=str(exc))

    def _position(self, ticket: int) -> gw.Position:
        for pos in self.gateway.positions(self.login):
            if pos.ticket == ticket:
                return pos
        raise gw.NotFound(f"position {ticket} is not open")

    def _request(self, command: dict) -> gw.OrderRequest | None:
        kind, p, comment = command["kind"], command["params"], command["comment"]
        dec = lambda name: Decimal(p.get(name) or "0")  # noqa: E731
        magic = p.get("magic", self.magic)
        if kind == "open_market":
            return gw.OrderRequest(
                action=gw.TradeAction.DEAL,
                symbol=p["symbol"],
                volume=dec("volume"),
                type=gw.OrderType.BUY if p["side"] == "buy" else gw.OrderType.SELL,
                sl=dec("sl"),
                tp=dec("tp"),
                deviation=p.get("deviation", 10),
                magic=magic,
                comment=comment,
            )
        if kind == "place_pending":
            expiration = p.get("expiration")
            return gw.OrderRequest(
                action=gw.TradeAction.PENDING,
                symbol=p["symbol"],
                volume=dec("volume"),
                type=gw.OrderType(p["type"]),
                price=dec("price"),
                sl=dec("sl"),
                tp=dec("tp"),
                magic=magic,
                comment=comment,
                type_time=2 if expiration else 0,
                expiration=datetime.fromtimestamp(expiration, tz=UTC) if expiration else None,
            )
        if kind in ("close", "close_partial"):
            pos = self._position(p["ticket"])
            volume = pos.volume if kind == "close" else min(dec("volume"), pos.volume)
            return gw.OrderRequest.closing(
                pos, volume=volume, deviation=p.get("deviation", 10), magic=pos.magic, comment=comment
            )
        if kind == "modify_sltp":
            pos = self._position(p["ticket"])
            return gw.OrderRequest(
                action=gw.TradeAction.SLTP, symbol=pos.symbol, position=pos.ticket, sl=dec("sl"), tp=dec("tp")
            )
        if kind == "modify_pending":
            return gw.OrderRequest(
                action=gw.TradeAction.MODIFY, order=p["ticket"], price=dec("price"), sl=dec("sl"), tp=dec("tp")
            )
        if kind == "cancel_pending":
            return gw.OrderRequest(action=gw.TradeAction.REMOVE, order=p["ticket"])
        return None


class ReferenceEA:
    """One EA for one account: beats, receives commands, executes them, reports results."""

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        login: int,
        gateway: gw.MT5Gateway | None = None,
        http: httpx.Client | None = None,
        magic: int = 0,
        timeout: float = 35.0,
    ):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.login = login
        self.gateway = gateway or gw.get_gateway("simulated")
        self.executor = CommandExecutor(self.gateway, login, magic=magic)
        self.http = http or httpx.Client(timeout=timeout)
        self.unreported: dict[str, dict] = {}
        self.failures = 0
        self.last_reply: dict | None = None

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}

    def _handle(self, reply: dict) -> list[dict]:
        self.last_reply = reply
        for command in reply.get("commands", []):
            self.unreported[command["id"]] = self.executor.execute(command)
        for ack in reply.get("acks", []):
            self.unreported.pop(ack["id"], None)
        return reply.get("commands", [])

    def beat(self) -> dict:
        """One heartbeat: state + results of commands executed since the last one; executes the reply's commands."""
        body = state_message(self.gateway, self.login)
        body["results"] = list(self.unreported.values())
        body["paused"] = self.executor.paused
        response = self.http.post(f"{self.base_url}/api/ea/heartbeat", json=body, headers=self.headers)
        response.raise_for_status()
        reply = response.json()
        self._handle(reply)
        return reply

    def poll(self, wait: int = 0) -> list[dict]:
        """GET /api/ea/commands (long poll with ``wait``); executes what arrives and acks at once."""
        response = self.http.get(f"{self.base_url}/api/ea/commands", params={"wait": wait}, headers=self.headers)
        response.raise_for_status()
        commands = self._handle(response.json())
        if commands:
            self.ack()
        return commands

    def ack(self) -> None:
        if not self.unreported:
            return
        response = self.http.post(
            f"{self.base_url}/api/ea/command-ack",
            json={"results": list(self.unreported.values())},
            headers=self.headers,
        )
        response.raise_for_status()
        for ack in response.json().get("acks", []):
            self.unreported.pop(ack["id"], None)

    def run(self, *, stop: threading.Event, interval: float = 1.0, long_poll: int = 0) -> None:
        """Beat every ``interval`` s (or long-poll between beats) until ``stop``; back off on errors like the EA.

        The server unreachable, the simulated MT5's database or Redis gone, the gateway down: each outage is
        logged once and waited out with backoff (config/resilience.py). A command whose execution was cut short
        runs again when it is delivered again, and its comment finds the trade if it was made (no second trade).
        """
        guard = Resilient(
            f"EA {self.login}",
            transient=(httpx.HTTPError, ValueError, gw.GatewayUnavailable),
            max_delay=MAX_BACKOFF,
            log=logger,
        )
        state = {"next_beat": 0.0}

        def step() -> None:
            if time.monotonic() >= state["next_beat"]:
                self.beat()
                state["next_beat"] = time.monotonic() + interval
                if self.unreported:
                    self.ack()
            if long_poll:
                self.poll(wait=long_poll)

        while not stop.is_set():
            ok, _ = guard.call(step)
            self.failures = guard.failures
            if not ok:
                stop.wait(guard.next_wait(0.0))
            elif not long_poll:
                stop.wait(max(0.0, state["next_beat"] - time.monotonic()))
