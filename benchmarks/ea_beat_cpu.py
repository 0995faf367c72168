"""CPU per steady heartbeat, in process: the project's ASGI application against the FastAPI peer.

The HTTP benchmark (ea_heartbeat.py) measures throughput and latency through uvicorn and wrk, which on a shared
2-core machine swing with whatever else runs. This one calls both ASGI applications directly (no sockets, no HTTP
parsing: the same for both) from one event loop, with BENCH_CPU_CONCURRENCY beats in flight, and reports the CPU
time of the process per beat (``time.process_time``: the loop, the worker threads and the Redis client) and the
ratio of the two, measured in the same run. Both talk to the same Redis; ours also runs its batched periodic work
(cadence writes, queue checks, gate refreshes) inside the measured time, at the cadences of ea_bench_settings.
Usage: benchmarks/run.sh ea_beat_cpu   (env: BENCH_CPU_ACCOUNTS=500 BENCH_CPU_BEATS=20000 BENCH_CPU_CONCURRENCY=16)
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent)]

import ea_heartbeat as hb  # noqa: E402  (benchmarks/ is not a package)

ACCOUNTS = int(os.environ.get("BENCH_CPU_ACCOUNTS", "500"))
BEATS = int(os.environ.get("BENCH_CPU_BEATS", "20000"))
CONCURRENCY = int(os.environ.get("BENCH_CPU_CONCURRENCY", "16"))
RUNS = int(os.environ.get("BENCH_CPU_RUNS", "3"))


def _scope(token: str, body: bytes) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/ea/heartbeat",
        "raw_path": b"/api/ea/heartbeat",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }


async def _call(app, token: str, body: bytes) -> int:
    sent = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    await app(_scope(token, body), receive, send)
    return sent[0]["status"]


async def _drive(app, beats: list[tuple[str, bytes]]) -> dict:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue = iter(beats)

    async def worker():
        for token, body in queue:
            started = time.perf_counter()
            status = await _call(app, token, body)
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    latencies.sort()
    return {
        "beats": len(latencies),
        "cpu_us_per_beat": round(cpu / len(latencies) * 1e6, 1),
        "beats_per_cpu_second": round(len(latencies) / cpu),
        "wall_per_second": round(len(latencies) / wall),
        "p50_ms": round(statistics.median(latencies) * 1e3, 3),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1e3, 3),
        "statuses": statuses,
    }


def main() -> None:
    hb.setup_environment()
    hb.flush_redis()
    rows = hb.seed_accounts(ACCOUNTS, first_login=9_600_000, email="ea-cpu-bench@example.com")
    from mt5bridge.ea import store
    from mt5bridge.ea.services import token_hash

    r = store.client()
    pipe = r.pipeline(transaction=False)
    for account_id, login, token in rows:
        pipe.set(f"peer:tok:{token_hash(token)}", f"{account_id}|{login}", ex=3600)
    pipe.execute()
    os.environ["BENCH_REDIS_URL"] = hb.ENV["REDIS_URL"]
    import peer_heartbeat

    from config.asgi import application

    def beats(start: int, count: int) -> list[tuple[str, bytes]]:
        return [
            (rows[i % len(rows)][2], hb.heartbeat_body(rows[i % len(rows)][1], start + i // len(rows)))
            for i in range(count)
        ]

    warm = beats(0, len(rows) * 3)
    results: dict = {"machine": f"{os.cpu_count()} cores", "accounts": ACCOUNTS, "concurrency": CONCURRENCY}
    runs = []

    async def run_all():
        await _drive(application, warm)  # each token authenticated once, its state and gate cached
        await _drive(peer_heartbeat.app, warm)
        for n in range(RUNS):
            measured = beats(3 + n * 10, BEATS)
            ours = await _drive(application, measured)
            peer = await _drive(peer_heartbeat.app, measured)
            ratio = round(peer["cpu_us_per_beat"] / ours["cpu_us_per_beat"], 2)
            runs.append({"ours": ours, "peer": peer, "peer_cpu_over_ours": ratio})
            print(json.dumps(runs[-1]), flush=True)

    try:
        import uvloop

        uvloop.run(run_all())
    except ImportError:
        asyncio.run(run_all())
    ratios = [run["peer_cpu_over_ours"] for run in runs]
    results["runs"] = runs
    results["peer_cpu_over_ours"] = {"min": min(ratios), "max": max(ratios)}
    out = Path(hb.ROOT) / "benchmarks" / "results" / "ea_beat_cpu.json"
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results["peer_cpu_over_ours"]))


if __name__ == "__main__":
    main()
