"""EA to EA over HTTP: from a master's heartbeat (with a new position) to its slave receiving the copy command.

Masters beat with a new position every BENCH_INTERVAL s; each slave holds a long poll
(GET /api/ea/commands?wait=20). The server's copy hook (copytrading.hooks when it exists and
BENCH_HOOKS=copytrading.hooks, else the stand-in benchmarks/ea_bench_hooks.py) turns the new position into
one command for the slave. Latency = slave reply received − master request sent, same clock, one process.
Usage: benchmarks/ea_to_ea.py  (env: BENCH_PAIRS=20 BENCH_SECONDS=15 BENCH_INTERVAL=0.25 BENCH_WORKERS=2)
"""

from __future__ import annotations

import asyncio
import json
import os
import time

import httpx
from ea_heartbeat import ROOT, flush_redis, heartbeat_body, seed_accounts, setup_environment, start_server

PAIRS = int(os.environ.get("BENCH_PAIRS", "20"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "15"))
INTERVAL = float(os.environ.get("BENCH_INTERVAL", "0.25"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
HOOKS = os.environ.get("BENCH_HOOKS", "ea_bench_hooks")
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


async def master(client, login, token, sent, stop_at, base):
    tickets: list[int] = []
    n = 0
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    await client.post("/api/ea/heartbeat", content=master_body(login, []), headers=headers)  # first state
    while time.perf_counter() < stop_at:
        n += 1
        ticket = base + n
        tickets.append(ticket)
        body = master_body(login, tickets)
        sent[ticket] = time.perf_counter()
        response = await client.post("/api/ea/heartbeat", content=body, headers=headers)
        assert response.status_code == 200, response.text
        await asyncio.sleep(INTERVAL)


async def slave(client, token, sent, received, stop_at):
    headers = {"Authorization": f"Bearer {token}"}
    while time.perf_counter() < stop_at + 1:
        response = await client.get("/api/ea/commands", params={"wait": 2}, headers=headers)
        now = time.perf_counter()
        assert response.status_code == 200, response.text
        commands = response.json()["commands"]
        for command in commands:
            ticket = int(command["params"]["comment"])
            received[ticket] = now
        if commands:
            results = [{"id": c["id"], "status": "executed", "retcode": 10009} for c in commands]
            await client.post("/api/ea/command-ack", json={"results": results}, headers=headers)


async def run(pairs) -> dict:
    sent: dict[int, float] = {}
    received: dict[int, float] = {}
    limits = httpx.Limits(max_connections=4 * len(pairs) + 10)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{PORT}", timeout=30, limits=limits) as client:
        stop_at = time.perf_counter() + SECONDS
        tasks = []
        for k, (m, s) in enumerate(pairs):
            tasks.append(slave(client, s[2], sent, received, stop_at))
            tasks.append(master(client, m[1], m[2], sent, stop_at, base=(k + 1) * 10_000_000))
        await asyncio.gather(*tasks)
    lat = sorted((received[t] - sent[t]) * 1000 for t in sent if t in received)
    count = len(lat)

    def pct(p):
        return round(lat[min(count - 1, int(p * count))], 2) if count else None

    return {
        "copies_sent": len(sent),
        "copies_received": count,
        "p50_ms": pct(0.5),
        "p90_ms": pct(0.9),
        "p99_ms": pct(0.99),
        "max_ms": pct(1.0),
    }


def main() -> None:
    setup_environment()
    flush_redis()
    masters = seed_accounts(PAIRS, first_login=9_600_000, email="ea-bench-masters@example.com")
    slaves = seed_accounts(PAIRS, first_login=9_700_000, email="ea-bench-slaves@example.com")
    from mt5bridge.ea import store

    for m, s in zip(masters, slaves, strict=True):
        store.client().set(f"bench:slave_of:{m[0]}", s[0])
    server = start_server(workers=WORKERS, port=PORT, extra_env={"EA_HOOKS_MODULE": HOOKS})
    try:
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
            "machine": f"{os.cpu_count()} cores shared by server, clients, PostgreSQL and Redis",
        }
    )
    print(json.dumps(result, indent=2))
    (ROOT / "benchmarks" / "results").mkdir(exist_ok=True)
    (ROOT / "benchmarks" / "results" / "ea_to_ea.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
