"""WebSocket fan-out: BENCH_SOCKETS (default 10,000) connected dashboards, each receiving one update per second.

BENCH_ACCOUNTS accounts (default one per 10 sockets) of one trader, each account page open in
BENCH_SOCKETS / BENCH_ACCOUNTS browsers (session-authenticated sockets on /ws/accounts/<id>/). A publisher process
pushes every account once a second through ``accounts.live.publish_account_update`` with the figures in hand (the EA
heartbeat's way), so every socket gets one update per second. The accounts are spread evenly over each second, as
EAs beating on their own timers are; BENCH_BURST=1 pushes all of them at the start of each second instead (the worst
case). Latency = receive time − the payload's ``sent_at`` (same machine clock). Server: uvicorn workers
(BENCH_WORKERS, default 2: the deploy's shape, several worker processes per machine) on config.asgi, channel layer
on Redis, PostgreSQL for sessions. The client (one process, uvloop) and the publisher share the same 2 cores.
Reported: p50/p99/max delivery latency, updates delivered / expected (every socket, every tick the publisher made),
RSS per socket of the server processes (and of the client), CPU seconds of server, client and publisher.
Goal: p99 delivery ≤ 100 ms, every update delivered. Database mt5bo_bench_ws, Redis db 10.
Usage: .venv/bin/python benchmarks/ws_fanout.py
  (env: BENCH_SOCKETS BENCH_ACCOUNTS BENCH_SECONDS=30 BENCH_BURST BENCH_WORKERS BENCH_PORT BENCH_COMPRESSION=1 BENCH_SERVER_DEFLATE=0
  BENCH_WARMUP_SECONDS=5)
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

import ea_heartbeat as common  # noqa: E402

SOCKETS = int(os.environ.get("BENCH_SOCKETS", "10000"))
ACCOUNTS = int(os.environ.get("BENCH_ACCOUNTS", str(max(1, SOCKETS // 10))))
SECONDS = float(os.environ.get("BENCH_SECONDS", "30"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
PORT = int(os.environ.get("BENCH_PORT", "8766"))
# Deliveries of the first seconds are counted (every update must arrive) but not in the percentiles: after the
# connection storm each server process makes one full garbage collection over the new sockets' objects (0.5-0.7 s,
# once, gc.callbacks 2026-12-06), and it comes with the first pushes; its figure is reported as warmup_max_ms.
WARMUP = float(os.environ.get("BENCH_WARMUP_SECONDS", "5"))
# Browsers offer permessage-deflate (so does this client, unless BENCH_COMPRESSION=0). The deployed WebSocket server,
# Daphne, never accepts it (autobahn's default), so the sockets are uncompressed; the server here answers the same
# (uvicorn --ws-per-message-deflate false) unless BENCH_SERVER_DEFLATE=1. Until 2026-12-06 it accepted, which cost
# 79 against 39 KiB per socket and p99 1,256 against 457 ms at 10,000 sockets (docs/benchmarks.md).
COMPRESSION = os.environ.get("BENCH_COMPRESSION", "1") == "1"
SERVER_DEFLATE = os.environ.get("BENCH_SERVER_DEFLATE", "0") == "1"
HANDSHAKES_IN_FLIGHT = 200  # sockets opening at once (a page load storm, bounded so the client does not time out)
common.ENV.update(
    {
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/mt5bo_bench_ws",
        "REDIS_URL": "redis://127.0.0.1:6379/10",
        "CACHE_KEY_PREFIX": "benchws",
    }
)
common.BENCH_DB = "mt5bo_bench_ws"

PUBLISHER = """
import json, os, sys, time, django
django.setup()
from accounts.live import figures_payload, publish_account_update
ids = sys.argv[1].split(",")
end = time.time() + float(sys.argv[2])
burst = os.environ.get("BENCH_BURST") == "1"
tick = 0
late = 0.0
while time.time() < end:
    start = time.time()
    for index, account_id in enumerate(ids):
        if not burst:  # accounts beat at their own phase within the second, as EAs on their own timers do
            time.sleep(max(0.0, start + index / len(ids) - time.time()))
        figures = {"balance": "10000.00", "equity": f"{10000 + tick % 50}.25", "margin": "100"}
        # As the heartbeat pushes: its swap has read that a dashboard watches the account.
        publish_account_update(account_id, figures_payload(account_id, figures, []), watched=True)
    tick += 1
    late = max(late, time.time() - start - 1.0)
    time.sleep(max(0.0, 1.0 - (time.time() - start)))
print(json.dumps({"ticks": tick, "cpu_s": time.process_time(), "latest_tick_overrun_s": late}))
"""


def session_cookie(user) -> str:
    from dashboard_summary import _session_cookie  # the same logged-in browser session as that benchmark
    from django.contrib.auth.models import Group

    from accounts.choices import Role

    user.groups.add(*Group.objects.filter(name=Role.TRADER))  # as sign-up does: a trader views their accounts
    return _session_cookie(user)


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the server processes inherit it
    if hard < SOCKETS + 1000:
        raise SystemExit(f"{SOCKETS} sockets need ~{SOCKETS + 1000} file descriptors; the hard limit is {hard}")


async def listen(url: str, cookie: str, state: dict, index: int, ready: asyncio.Event, gate: asyncio.Semaphore):
    import websockets

    latencies, sent_times, counts = state["latencies"], state["sent"], state["counts"]
    async with gate:
        ws = await websockets.connect(
            url,
            additional_headers={"Cookie": cookie, "Origin": "http://127.0.0.1"},
            max_size=2**20,
            open_timeout=120,
            ping_interval=None,  # browsers answer the server's pings but send none of their own
            compression="deflate" if COMPRESSION else None,
        )
        await ws.recv()  # hello
        await ws.recv()  # catch-up of the account
        state["connected"] += 1
    async with ws:
        await ready.wait()
        # Plain recv (the task is cancelled at the end): a wait_for per message cost the client a task and a timer
        # each, CPU taken from the server on these 2 shared cores and counted in the latency of a burst.
        while True:
            data = json.loads(await ws.recv())
            if data.get("type") == "account":
                # Two lists of floats, not a tuple per update: 300,000 tuples would be objects for the client's
                # garbage collector to walk, and its walks were what this benchmark must leave out (below).
                latencies.append((time.time() - data["sent_at"]) * 1000)
                sent_times.append(data["sent_at"])
                counts[index] += 1


async def clients(ids: list[str], cookie: str, server_pids: list[int]) -> dict:
    state = {"latencies": [], "sent": [], "counts": [0] * SOCKETS, "connected": 0}
    ready = asyncio.Event()
    gate = asyncio.Semaphore(HANDSHAKES_IN_FLIGHT)
    rss_before = sum(_rss_kib(pid) for pid in server_pids)
    client_rss_before = _rss_kib(os.getpid())
    began_connecting = time.time()
    tasks = []
    for i in range(SOCKETS):
        url = f"ws://127.0.0.1:{PORT}/ws/accounts/{ids[i % len(ids)]}/"
        tasks.append(asyncio.create_task(listen(url, cookie, state, i, ready, gate)))
    while state["connected"] < SOCKETS:
        await asyncio.sleep(0.2)
        failed = [t for t in tasks if t.done() and t.exception()]
        if failed:
            raise failed[0].exception()
    connect_s = time.time() - began_connecting
    await asyncio.sleep(2.0)  # let the last catch-ups settle before the memory is read
    rss_connected = sum(_rss_kib(pid) for pid in server_pids)
    client_rss = _rss_kib(os.getpid())
    # The 10,000 browsers are one process here, so one garbage collector walks all their sockets: every ~8.6 s a
    # full collection of 400-500 ms and every 0.8 s one of the middle generation of 50-90 ms (gc.callbacks,
    # 2026-12-06), each seen as late deliveries. Real browsers are separate processes: the client's connected
    # sockets leave the collector's generations, as the server's start-up objects do (config/asgi.py).
    gc.freeze()
    cpu_before = {pid: _cpu_s(pid) for pid in server_pids}
    client_cpu_before = time.process_time()
    publisher = subprocess.Popen(
        [common.PY, "-c", PUBLISHER, ",".join(ids), str(SECONDS + WARMUP)],
        cwd=ROOT,
        env=os.environ,
        stdout=subprocess.PIPE,
    )
    begin = time.time()
    ready.set()
    out, _ = await asyncio.to_thread(publisher.communicate)
    await asyncio.sleep(1.0)
    elapsed = time.time() - begin
    server_cpu = sum(_cpu_s(pid) - cpu_before[pid] for pid in server_pids)
    client_cpu = time.process_time() - client_cpu_before
    for task in tasks:
        task.cancel()
    published = json.loads(out.decode().strip().splitlines()[-1])
    received = list(zip(state["sent"], state["latencies"], strict=True))
    measured_from = begin + WARMUP
    latencies = sorted(ms for sent, ms in received if sent >= measured_from)
    warm = sorted(ms for sent, ms in received if sent < measured_from) or [0.0]
    expected = SOCKETS * published["ticks"]
    short = sum(1 for c in state["counts"] if c < published["ticks"])
    return {
        "sockets": SOCKETS,
        "accounts": ACCOUNTS,
        "sockets_per_account": round(SOCKETS / len(ids), 1),
        "seconds": SECONDS,
        "server_workers": WORKERS,
        "compression": "permessage-deflate" if COMPRESSION and SERVER_DEFLATE else "none",
        "client_offers_deflate": COMPRESSION,
        "publishing": "burst at the start of each second"
        if os.environ.get("BENCH_BURST") == "1"
        else "spread over each second",
        "connect_seconds": round(connect_s, 1),
        "updates_received": len(received),
        "updates_expected": expected,
        "sockets_missing_updates": short,
        "per_second": round(len(received) / elapsed, 1),
        "warmup_seconds": WARMUP,
        "warmup_p99_ms": round(warm[int(len(warm) * 0.99)], 2),
        "warmup_max_ms": round(warm[-1], 2),
        "p50_ms": round(statistics.median(latencies), 2),
        "p95_ms": round(latencies[int(len(latencies) * 0.95)], 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)], 2),
        "max_ms": round(latencies[-1], 2),
        "server_rss_mib": round(rss_connected / 1024, 1),
        "server_rss_per_socket_kib": round((rss_connected - rss_before) / SOCKETS, 1),
        "client_rss_per_socket_kib": round((client_rss - client_rss_before) / SOCKETS, 1),
        "cpu_seconds": {
            "server": round(server_cpu, 1),
            "client": round(client_cpu, 1),
            "publisher": round(published["cpu_s"], 1),
            "of_wall": round(elapsed, 1),
        },
        "publisher_latest_tick_overrun_s": round(published["latest_tick_overrun_s"], 3),
    }


def main() -> None:
    _raise_fd_limit()
    load = os.getloadavg()[0]
    common.setup_environment()
    common.flush_redis()
    rows = common.seed_accounts(ACCOUNTS, first_login=9_600_000, email="ws-bench@example.com")
    from accounts.models import User

    cookie = session_cookie(User.objects.get(email="ws-bench@example.com"))
    server = common.start_server(
        workers=WORKERS, port=PORT, extra_args=("--ws-per-message-deflate", "true" if SERVER_DEFLATE else "false")
    )
    try:
        try:
            import uvloop  # the client's event loop; the server runs on uvloop too

            uvloop.install()
        except ImportError:
            pass
        result = asyncio.run(clients([r[0] for r in rows], cookie, _children(server.pid)))
    finally:
        server.terminate()
        server.wait(timeout=30)
    result["load_average_at_start"] = load
    result["load_average"] = os.getloadavg()[0]
    print(json.dumps(result, indent=2))
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "ws_fanout.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
