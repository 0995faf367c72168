"""EA to EA over HTTP: from a master's heartbeat (with a new position) to its slave receiving the copy command.

Masters beat with a new position every BENCH_INTERVAL s (default 1: the EA's beat, EA_BEAT_MS; 0.25 is the stress
case of four new positions a second on every master), at phases spread over the interval as independent EAs'
timers are (all starting on the same tick would make every beat part of a burst of BENCH_PAIRS). Each slave holds
a long poll (GET /api/ea/commands?wait=BENCH_WAIT) and acks what it gets on a second connection while its next
poll already waits (BENCH_ACK_INLINE=1: ack, then poll, as ``ReferenceEA.poll`` does). The server's copy hook
(the copy engine, copy trading's listener, through one CopyLink per pair; BENCH_HOOKS=ea_bench_hooks: a stand-in that
only enqueues, to tell the engine's share from the transport's) turns the new position into one command for the
slave. Latency = slave reply received − master request sent, same clock,
one process; copies sent in the first BENCH_WARMUP_SECONDS are not counted. Each EA speaks through its own
keep-alive connection with a lean HTTP/1.1 client (ea_load.Connection) on uvloop: httpx cost about a millisecond
of CPU a request, taken from the server on this small shared machine and counted in the latency.
Usage: benchmarks/ea_to_ea.py  (env: BENCH_PAIRS=20 BENCH_SECONDS=30 BENCH_INTERVAL=1 BENCH_WORKERS=2
BENCH_WAIT=20 BENCH_WARMUP_SECONDS=2 BENCH_ACK_INLINE=)
"""

from __future__ import annotations

import asyncio
import json
import os
import time

from ea_heartbeat import ROOT, flush_redis, heartbeat_body, seed_accounts, setup_environment, start_server
from ea_load import Connection

PAIRS = int(os.environ.get("BENCH_PAIRS", "20"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "30"))
INTERVAL = float(os.environ.get("BENCH_INTERVAL", "1"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
WAIT = int(os.environ.get("BENCH_WAIT", "20"))
WARMUP = float(os.environ.get("BENCH_WARMUP_SECONDS", "2"))
ACK_INLINE = os.environ.get("BENCH_ACK_INLINE", "") == "1"
HOOKS = os.environ.get("BENCH_HOOKS", "copytrading.hooks")
PORT = 8766


def master_body(login: int, tickets: list[int]) -> bytes:
    body = json.loads(heartbeat_body(login, 0))
    now = int(time.time())
    body["positions"] = [
        {
            "ticket": t,
            "symbol": "BTCUSD",
            "type": 0,
            "volume": "0.10",
            "price_open": "65000",
            "sl": "0",
            "tp": "0",
            "magic": 0,
            "comment": "",
            "profit": "0",
            "time": now,
            "identifier": t,
        }
        for t in tickets[-5:]
    ]
    body["orders"] = []
    return json.dumps(body).encode()


async def master(conn, login, sent, spans, stop_at, base, phase):
    tickets: list[int] = []
    n = 0
    await conn.request("POST", "/api/ea/heartbeat", master_body(login, []))  # first state
    await asyncio.sleep(phase)
    while time.perf_counter() < stop_at:
        n += 1
        ticket = base + n
        tickets.append(ticket)
        body = master_body(login, tickets)
        spans["sent_wall"][ticket] = time.time()
        sent[ticket] = started = time.perf_counter()
        status, reply = await conn.request("POST", "/api/ea/heartbeat", body)
        spans["heartbeat_rtt"][ticket] = time.perf_counter() - started
        assert status == 200, reply
        await asyncio.sleep(INTERVAL)


async def slave(conn, ack_conn, received, spans):
    """Long poll, take the commands, ack them, poll again. The ack goes out on a second connection while the next
    poll already waits (BENCH_ACK_INLINE=1: ack first, then poll, as ``ReferenceEA.poll`` does): a copy that
    arrives while an EA is busy waits for the EA, not for the server, and that is not what is measured here."""
    acks: list[dict] = []
    acking = None
    while True:
        status, reply = await conn.request("GET", f"/api/ea/commands?wait={WAIT}")
        now, wall = time.perf_counter(), time.time()
        assert status == 200, reply
        commands = json.loads(reply)["commands"]
        for command in commands:
            ticket = ticket_of(command["params"]["comment"])
            received[ticket] = now
            spans["created_wall"][ticket] = command["created_at"]
            spans["received_wall"][ticket] = wall
        acks += [{"id": c["id"], "status": "executed", "retcode": 10009} for c in commands]
        if acks and (acking is None or acking.done()):
            if acking is not None:
                acking.result()  # re-raise a failed ack
            acking = asyncio.create_task(ack(ack_conn, acks, spans))
            acks = []
            if ACK_INLINE:
                await acking


def ticket_of(comment: str) -> int:
    """The master ticket in a copy's comment: the stand-in writes it, the engine's copy id is cp<link>.<ticket> in
    base 36."""
    return int(comment) if comment.isdigit() else int(comment.rsplit(".", 1)[1], 36)


def link_pairs(pairs) -> None:
    """One active copy link per pair (the engine's default sizing: multiplier 1), slaves known to the simulated
    server so their symbol list maps BTCUSD."""
    from decimal import Decimal

    from accounts.models import TradingAccount
    from copytrading.models import CopyLink
    from copytrading.selectors import bump_config_version
    from mt5bridge.simulated import create_account
    from mt5bridge.simulated.models import SimAccount

    for m, s in pairs:
        for login in (m[1], s[1]):
            if not SimAccount.objects.filter(login=login).exists():
                create_account(login=login, password="Bench-pass-1", server="MetaSim-Demo", balance=Decimal("10000"))
    accounts = {str(a.pk): a for a in TradingAccount.objects.filter(pk__in=[x[0] for p in pairs for x in p])}
    CopyLink.objects.bulk_create(
        [CopyLink(master=accounts[m[0]], slave=accounts[s[0]], created_by=accounts[m[0]].owner) for m, s in pairs]
    )
    bump_config_version()


async def ack(conn, results: list[dict], spans) -> None:
    started = time.perf_counter()
    status, reply = await conn.request("POST", "/api/ea/command-ack", json.dumps({"results": results}).encode())
    if started >= spans["measure_from"]:
        spans["ack_rtt"].append(time.perf_counter() - started)
    assert status == 200, reply


async def run(pairs) -> dict:
    sent: dict[int, float] = {}
    received: dict[int, float] = {}
    measure_from = time.perf_counter() + WARMUP
    stop_at = measure_from + SECONDS
    spans: dict = {"sent_wall": {}, "created_wall": {}, "received_wall": {}, "heartbeat_rtt": {}, "ack_rtt": []}
    spans["measure_from"] = measure_from
    connections = [
        (Connection("127.0.0.1", PORT, m[2]), Connection("127.0.0.1", PORT, s[2]), Connection("127.0.0.1", PORT, s[2]))
        for m, s in pairs
    ]
    slaves = [asyncio.create_task(slave(s_conn, ack_conn, received, spans)) for _, s_conn, ack_conn in connections]
    await asyncio.gather(
        *[
            master(m_conn, m[1], sent, spans, stop_at, base=(k + 1) * 10_000_000, phase=k * INTERVAL / len(pairs))
            for k, ((m, _), (m_conn, *_)) in enumerate(zip(pairs, connections, strict=True))
        ]
    )
    await asyncio.sleep(1.0)  # the last copies arrive
    for task in slaves:
        task.cancel()
    for outcome in await asyncio.gather(*slaves, return_exceptions=True):
        if isinstance(outcome, BaseException) and not isinstance(outcome, asyncio.CancelledError):
            raise outcome  # a slave failed (an HTTP error, a broken reply): the figures would be wrong
    for conns in connections:
        for conn in conns:
            conn.close()
    # Copies sent during the warm-up (first beats: token, billing gate and queue caches of each server process,
    # database pool) are not counted.
    sent = {t: at for t, at in sent.items() if at >= measure_from}
    lat = sorted((received[t] - sent[t]) * 1000 for t in sent if t in received)
    count = len(lat)

    def pct(p):
        return round(lat[min(count - 1, int(p * count))], 2) if count else None

    got = [t for t in sent if t in received]
    return {
        "copies_sent": len(sent),
        "copies_received": count,
        "p50_ms": pct(0.5),
        "p90_ms": pct(0.9),
        "p99_ms": pct(0.99),
        "max_ms": pct(1.0),
        # Where the time goes (wall clock, same machine): master request → copy command created by the hook
        # (the server's heartbeat), command created → slave has it (queue, wake-up, poll reply), and the
        # round trips of the master's heartbeat and the slave's ack.
        "breakdown_ms": {
            "sent_to_command_created": summary([spans["created_wall"][t] - spans["sent_wall"][t] for t in got]),
            "command_created_to_slave": summary([spans["received_wall"][t] - spans["created_wall"][t] for t in got]),
            "master_heartbeat_rtt": summary([spans["heartbeat_rtt"][t] for t in sent if t in spans["heartbeat_rtt"]]),
            "slave_ack_rtt": summary(spans["ack_rtt"]),
        },
    }


def summary(seconds: list[float]) -> dict:
    values = sorted(seconds)
    count = len(values)
    if not count:
        return {}
    return {f"p{p}": round(values[min(count - 1, int(p / 100 * count))] * 1000, 2) for p in (50, 90, 99)}


def load_average() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def main() -> None:
    setup_environment()
    flush_redis()
    masters = seed_accounts(PAIRS, first_login=9_600_000, email="ea-bench-masters@example.com")
    slaves = seed_accounts(PAIRS, first_login=9_700_000, email="ea-bench-slaves@example.com")
    from mt5bridge.ea import store

    for m, s in zip(masters, slaves, strict=True):
        store.client().set(f"bench:slave_of:{m[0]}", s[0])
    if HOOKS == "copytrading.hooks":
        link_pairs(list(zip(masters, slaves, strict=True)))
    server = start_server(workers=WORKERS, port=PORT, extra_env={"BENCH_HOOKS": HOOKS})
    load_before = load_average()
    try:
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        result = asyncio.run(run(list(zip(masters, slaves, strict=True))))
    finally:
        server.terminate()
        server.wait(timeout=20)
    result.update(
        {
            "pairs": PAIRS,
            "seconds": SECONDS,
            "interval_s": INTERVAL,
            "workers": WORKERS,
            "hooks": HOOKS,
            "long_poll_wait_s": WAIT,
            "ack": "inline, then poll" if ACK_INLINE else "on a second connection while the next poll waits",
            "warmup_s": WARMUP,
            "load_average_before_after": [load_before, load_average()],
            "machine": f"{os.cpu_count()} cores shared by server, clients, PostgreSQL and Redis",
        }
    )
    print(json.dumps(result, indent=2))
    (ROOT / "benchmarks" / "results").mkdir(exist_ok=True)
    (ROOT / "benchmarks" / "results" / "ea_to_ea.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
