"""WebSocket fan-out: BENCH_SOCKETS (default 1,000) connected dashboards, each receiving one update per second.

BENCH_ACCOUNTS accounts (default 100) of one trader, each account page open in BENCH_SOCKETS / BENCH_ACCOUNTS
browsers (session-authenticated sockets on /ws/accounts/<id>/). A publisher process pushes every account once a
second through ``accounts.live.publish_account_update`` with the figures in hand (the EA heartbeat's way), so
every socket gets one update per second. The accounts are spread evenly over each second, as EAs beating on
their own timers are; BENCH_BURST=1 pushes all of them at the start of each second instead (the worst case). Latency = receive time − the payload's ``sent_at`` (same machine
clock). Server: uvicorn workers (BENCH_WORKERS, default 2) on config.asgi, channel layer on Redis, PostgreSQL
for sessions. Goal: p99 delivery ≤ 100 ms. Database mt5bo_bench_ws, Redis db 10.
Usage: .venv/bin/python benchmarks/ws_fanout.py   (env: BENCH_SOCKETS BENCH_ACCOUNTS BENCH_SECONDS=30 BENCH_BURST)
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

import ea_heartbeat as common  # noqa: E402

SOCKETS = int(os.environ.get("BENCH_SOCKETS", "1000"))
ACCOUNTS = int(os.environ.get("BENCH_ACCOUNTS", "100"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "30"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
PORT = int(os.environ.get("BENCH_PORT", "8766"))
common.ENV.update(
    {
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/mt5bo_bench_ws",
        "REDIS_URL": "redis://127.0.0.1:6379/10",
        "CACHE_KEY_PREFIX": "benchws",
    }
)
common.BENCH_DB = "mt5bo_bench_ws"

PUBLISHER = """
import os, sys, time, django
django.setup()
from accounts.live import figures_payload, publish_account_update
ids = sys.argv[1].split(",")
end = time.time() + float(sys.argv[2])
burst = os.environ.get("BENCH_BURST") == "1"
tick = 0
while time.time() < end:
    start = time.time()
    for index, account_id in enumerate(ids):
        if not burst:  # accounts beat at their own phase within the second, as EAs on their own timers do
            time.sleep(max(0.0, start + index / len(ids) - time.time()))
        figures = {"balance": "10000.00", "equity": f"{10000 + tick % 50}.25", "margin": "100"}
        publish_account_update(account_id, figures_payload(account_id, figures, []))
    tick += 1
    time.sleep(max(0.0, 1.0 - (time.time() - start)))
"""


def session_cookie(user) -> str:
    from dashboard_summary import _session_cookie  # the same logged-in browser session as that benchmark

    return _session_cookie(user)


async def listen(url: str, cookie: str, latencies: list, counts: list, stop: float, ready: asyncio.Event) -> None:
    import websockets

    async with websockets.connect(
        url, additional_headers={"Cookie": cookie, "Origin": "http://127.0.0.1"}, max_size=2**20, open_timeout=60
    ) as ws:
        await ws.recv()  # hello
        await ws.recv()  # catch-up of the account
        counts[0] += 1
        await ready.wait()
        # Plain recv (the task is cancelled at the end): a wait_for per message cost the client a task and a timer
        # each, CPU taken from the server on these 2 shared cores and counted in the latency of a burst.
        while time.time() < stop:
            raw = await ws.recv()
            data = json.loads(raw)
            if data.get("type") == "account":
                latencies.append((time.time() - data["sent_at"]) * 1000)


async def clients(ids: list[str], cookie: str) -> dict:
    latencies: list[float] = []
    connected = [0]
    ready = asyncio.Event()
    stop = time.time() + 3600
    tasks = []
    for i in range(SOCKETS):
        url = f"ws://127.0.0.1:{PORT}/ws/accounts/{ids[i % len(ids)]}/"
        tasks.append(asyncio.create_task(listen(url, cookie, latencies, connected, stop, ready)))
        if i % 50 == 49:
            await asyncio.sleep(0.05)
    while connected[0] < SOCKETS:
        await asyncio.sleep(0.2)
        failed = [t for t in tasks if t.done() and t.exception()]
        if failed:
            raise failed[0].exception()
    publisher = subprocess.Popen([common.PY, "-c", PUBLISHER, ",".join(ids), str(SECONDS)], cwd=ROOT, env=os.environ)
    begin = time.time()
    ready.set()
    await asyncio.to_thread(publisher.wait)
    await asyncio.sleep(1.0)
    elapsed = time.time() - begin
    for task in tasks:
        task.cancel()
    latencies.sort()
    expected = SOCKETS * int(SECONDS)
    return {
        "sockets": SOCKETS,
        "accounts": ACCOUNTS,
        "seconds": SECONDS,
        "server_workers": WORKERS,
        "publishing": "burst at the start of each second"
        if os.environ.get("BENCH_BURST") == "1"
        else "spread over each second",
        "updates_received": len(latencies),
        "updates_expected": expected,
        "per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies), 2),
        "p95_ms": round(latencies[int(len(latencies) * 0.95)], 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)], 2),
        "max_ms": round(latencies[-1], 2),
    }


def main() -> None:
    common.setup_environment()
    common.flush_redis()
    rows = common.seed_accounts(ACCOUNTS, first_login=9_600_000, email="ws-bench@example.com")
    from accounts.models import User

    cookie = session_cookie(User.objects.get(email="ws-bench@example.com"))
    server = common.start_server(workers=WORKERS, port=PORT)
    try:
        try:
            import uvloop  # the client's event loop; the server runs on uvloop too

            uvloop.install()
        except ImportError:
            pass
        result = asyncio.run(clients([r[0] for r in rows], cookie))
    finally:
        server.terminate()
        server.wait(timeout=20)
    result["load_average"] = os.getloadavg()[0]
    print(json.dumps(result, indent=2))
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "ws_fanout.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
