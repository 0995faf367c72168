"""Heartbeat throughput: N simulated EAs (a separate load process on loopback) against PostgreSQL + Redis.

One run measures, served the same way (uvicorn, BENCH_WORKERS processes, DEBUG off):
- a bare Django async JSON endpoint (parse the body, answer a small JSON) — the floor;
- POST /api/ea/heartbeat with a realistic body (5 positions, 2 pending orders, floating equity that changes
  every beat), for BENCH_ACCOUNTS accounts, each beating in turn.
The load comes from wrk (BENCH_LOADGEN=wrk, the default: a C load generator, so that the 2 cores go to the server)
or from the asyncio client in ea_load.py (BENCH_LOADGEN=python), which on this machine takes a core of its own.
Usage: benchmarks/ea_heartbeat.py  (env: BENCH_ACCOUNTS=5000 BENCH_CONCURRENCY=64 BENCH_SECONDS=30 BENCH_WORKERS=2)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = os.environ.get("BENCH_DB", "mt5bo_bench_t4a")
ENV = {
    "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}",
    "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11"),
    "CACHE_KEY_PREFIX": "bencht4a",
    "DEBUG": "0",
    "SECRET_KEY": "bench-only-secret-key-bench-only-secret-key-bench-only-0123456789",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "LOG_LEVEL": "WARNING",
    "DJANGO_SETTINGS_MODULE": "ea_bench_settings",
    "PYTHONPATH": f"{ROOT}:{ROOT / 'benchmarks'}",
    "EA_THROTTLE_PER_SECOND": "1000",
    "DATABASE_POOL_MAX": "8",
    "FIELD_ENCRYPTION_KEYS": "YmVuY2gtb25seS1rZXktMDEyMzQ1Njc4OWFiY2RlZmc=",  # the development key is refused with DEBUG off
    "SECURE_SSL_REDIRECT": "0",  # loopback plain HTTP, as behind a TLS-terminating proxy
}
ACCOUNTS = int(os.environ.get("BENCH_ACCOUNTS", "5000"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "64"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "30"))
LOADGEN = os.environ.get("BENCH_LOADGEN", "wrk")
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
PORT = int(os.environ.get("BENCH_PORT", "18100"))
PEER_PORT = int(os.environ.get("BENCH_PEER_PORT", "18101"))
PEER = os.environ.get("BENCH_PEER", "1") == "1"  # also measure benchmarks/peer_heartbeat.py
# Each server process authenticates each token once through a worker thread (then answers it on the event loop):
# with 5,000 accounts and 2 processes, 40 s of warm-up left part of them unseen and the measured run collapsed into
# those first beats (468/s against 2,877/s after 90 s).
WARMUP_SECONDS = float(os.environ.get("BENCH_WARMUP_SECONDS", "90"))
FIRST_LOGIN = 9_400_000
PY = str(ROOT / ".venv" / "bin" / "python")


def setup_environment() -> None:
    os.environ.update(ENV)
    sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
    exists = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc", f"SELECT 1 FROM pg_database WHERE datname='{BENCH_DB}'"],
        capture_output=True,
        text=True,
    )
    if exists.stdout.strip() != "1":
        subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", BENCH_DB], check=True)
    subprocess.run(
        [PY, "manage.py", "migrate", "--noinput", "--skip-checks", "-v", "0"],
        cwd=ROOT,
        check=True,
        env=os.environ,
    )
    import django

    django.setup()


def seed_accounts(count: int, first_login: int = FIRST_LOGIN, email: str = "ea-bench@example.com") -> list[tuple]:
    """``count`` trading accounts with fresh EA tokens: [(account_id, login, token)]."""
    from accounts.models import TradingAccount, User
    from mt5bridge.ea.services import ea_token_issue

    owner, _ = User.objects.get_or_create(email=email)
    TradingAccount.objects.filter(owner=owner).delete()
    TradingAccount.objects.bulk_create(
        [
            TradingAccount(
                owner=owner,
                login=first_login + i,
                server="MetaSim-Demo",
                name=f"ea bench {i}",
                password_encrypted=b"",
                gateway_kind="simulated",
            )
            for i in range(count)
        ]
    )
    rows = []
    for account in TradingAccount.objects.filter(owner=owner).order_by("login"):
        rows.append((str(account.pk), account.login, ea_token_issue(account=account)))
    vacuum()
    return rows


def vacuum() -> None:
    """Start from the tables autovacuum keeps in production: this machine's PostgreSQL runs with autovacuum off, so
    the dead rows of every earlier run (each run deletes and re-seeds its accounts, and the cadence writes update
    three rows per account) piled up, and the third of three runs in a row wrote into tables several times their
    size (p99 68 ms against 20-22 ms in the first two, 2026-12-06)."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")


def flush_redis() -> None:
    from mt5bridge.ea import store

    r = store.client()
    keys = list(r.scan_iter(f"{ENV['CACHE_KEY_PREFIX']}:*", count=5000)) + list(r.scan_iter("bench:*"))
    for i in range(0, len(keys), 1000):
        r.delete(*keys[i : i + 1000])


def start_server(
    workers: int = WORKERS, port: int = PORT, extra_env: dict | None = None, extra_args: tuple[str, ...] = ()
) -> subprocess.Popen:
    env = {**os.environ, **(extra_env or {})}
    proc = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "uvicorn"),
            "config.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
            "--log-level",
            "warning",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--lifespan",
            "off",
            *extra_args,
        ],
        cwd=ROOT,
        env=env,
    )
    import httpx

    for _ in range(200):
        try:
            if httpx.post(f"http://127.0.0.1:{port}/bench/bare", content=b"{}", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError("server did not start")
    return proc


def run_peer(rows: list[tuple], beats: list[str]) -> dict:
    """The same load, bodies and accounts against the FastAPI + pydantic + redis-py peer (peer_heartbeat.py), served
    the same way (uvicorn, BENCH_WORKERS processes, uvloop, httptools)."""
    from mt5bridge.ea import store
    from mt5bridge.ea.services import token_hash

    r = store.client()
    pipe = r.pipeline(transaction=False)
    for account_id, login, token in rows:
        pipe.set(f"peer:tok:{token_hash(token)}", f"{account_id}|{login}", ex=3600)
    pipe.execute()
    command = [str(ROOT / ".venv" / "bin" / "uvicorn"), "peer_heartbeat:app", "--host", "127.0.0.1"]
    command += ["--port", str(PEER_PORT), "--workers", str(WORKERS), "--no-access-log", "--log-level", "warning"]
    command += ["--loop", "uvloop", "--http", "httptools", "--lifespan", "off"]
    proc = subprocess.Popen(command, cwd=ROOT / "benchmarks", env={**os.environ, "BENCH_REDIS_URL": ENV["REDIS_URL"]})
    import httpx

    try:
        for _ in range(200):
            try:
                if httpx.post(f"http://127.0.0.1:{PEER_PORT}/bench/bare", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError("the peer did not start")
        run_load("/api/ea/heartbeat", beats, seconds=10, port=PEER_PORT)  # warm-up, not measured
        return {
            "server": "FastAPI + pydantic + redis-py (benchmarks/peer_heartbeat.py), uvicorn, same workers",
            "heartbeat": run_load("/api/ea/heartbeat", beats, port=PEER_PORT),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        keys = list(r.scan_iter("peer:*", count=5000))
        for i in range(0, len(keys), 1000):
            r.delete(*keys[i : i + 1000])


def heartbeat_body(login: int, beat: int) -> bytes:
    now = int(time.time())
    positions = [
        {
            "ticket": login * 10 + k,
            "symbol": ("BTCUSD", "ETHUSD", "EURUSD", "XAUUSD", "GBPUSD")[k],
            "type": k % 2,
            "volume": "0.10",
            "price_open": "1.2345",
            "sl": "0",
            "tp": "0",
            "magic": 7,
            "comment": "",
            "profit": f"{(beat % 7) - 3}.25",
            "time": now - 3600,
            "identifier": login * 10 + k,
        }
        for k in range(5)
    ]
    orders = [
        {
            "ticket": login * 10 + 8 + k,
            "symbol": "EURUSD",
            "type": 2 + k,
            "volume": "0.20",
            "price_open": "1.1000",
            "sl": "0",
            "tp": "0",
            "magic": 7,
            "comment": "",
            "time_setup": now - 600,
        }
        for k in range(2)
    ]
    body = {
        "v": 1,
        "ea_version": "bench",
        "login": login,
        "server_time": now,
        "account": {
            "balance": "10000.00",
            "credit": "0",
            "equity": f"{10000 + (beat % 7) - 3}.25",
            "margin": "250.00",
            "margin_free": "9750.00",
            "leverage": 100,
        },
        "positions": positions,
        "orders": orders,
        "terminal": {"build": 4755, "connected": True},
        "results": [],
    }
    return json.dumps(body, separators=(",", ":")).encode()


def raw_request(path: str, token: str, body: bytes) -> str:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return (head.encode() + body).decode("latin1")


def run_load(
    path: str, requests: list[str], *, concurrency: int = CONCURRENCY, seconds: float = SECONDS, port: int = PORT
) -> dict:
    if LOADGEN == "wrk":
        return run_wrk(requests, concurrency=concurrency, seconds=seconds, port=port)
    spec = {
        "host": "127.0.0.1",
        "port": port,
        "path": path,
        "requests": requests,
        "concurrency": concurrency,
        "duration": seconds,
        "warmup": 2.0,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(spec, fh)
    out = subprocess.run(
        [PY, str(ROOT / "benchmarks" / "ea_load.py"), fh.name], capture_output=True, text=True, check=True
    )
    os.unlink(fh.name)
    return json.loads(out.stdout)


def run_wrk(requests: list[str], *, concurrency: int, seconds: float, port: int, threads: int = 1) -> dict:
    """The same load from wrk: ``requests`` are raw requests as ``raw_request`` builds them (path, token, body
    are taken back out of them for wrk's own request builder)."""
    with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False) as fh:
        for raw in requests:
            head, body = raw.split("\r\n\r\n", 1)
            path = head.split(" ", 2)[1]
            token = head.split("Authorization: Bearer ", 1)[1].split("\r\n", 1)[0]
            fh.write(f"{path}\t{token}\t{body}\n")
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{concurrency}",
            f"-d{int(seconds)}s",
            "--timeout",
            "5s",
            "-s",
            str(ROOT / "benchmarks" / "ea_wrk.lua"),
            f"http://127.0.0.1:{port}/",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "BENCH_REQUESTS": fh.name, "BENCH_THREADS": str(threads)},
    )
    os.unlink(fh.name)
    line = next(line for line in out.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def main() -> None:
    setup_environment()
    flush_redis()
    rows = seed_accounts(ACCOUNTS)
    beats = [
        raw_request("/api/ea/heartbeat", token, heartbeat_body(login, k)) for k in range(3) for _, login, token in rows
    ]
    bare = [raw_request("/bench/bare", token, heartbeat_body(login, 0)) for _, login, token in rows[:200]]
    server = start_server()
    try:
        results = {
            "machine": f"{os.cpu_count()} cores (server workers, load generator and databases share them)",
            "workers": WORKERS,
            "concurrency": CONCURRENCY,
            "seconds": SECONDS,
            "accounts": ACCOUNTS,
            "server": "uvicorn (uvloop, httptools); bare: Django ASGI with the full middleware stack; "
            "heartbeat: its lean ASGI path (mt5bridge/ea/fast.py)",
            "load_generator": "wrk, 1 thread" if LOADGEN == "wrk" else "benchmarks/ea_load.py (asyncio, uvloop)",
        }
        # Warm-up through the server: every account beats several times (its first beat authenticates from the
        # database, writes the state to PostgreSQL and asks the billing gate), so each server process knows its
        # tokens and copy configuration, as in production where each account beats every second. Not measured.
        # The periodic work falls inside the measured run at its production rate: the state writes of the
        # warm-up's first beats come due again (60 s cadence), billing-gate refreshes and queue checks recur (30 s).
        run_load("/api/ea/heartbeat", beats, seconds=WARMUP_SECONDS)
        results["bare_async_endpoint"] = run_load("/bench/bare", bare)
        results["heartbeat"] = run_load("/api/ea/heartbeat", beats)
        results["ratio_heartbeat_to_bare"] = round(
            results["heartbeat"]["per_second"] / results["bare_async_endpoint"]["per_second"], 3
        )
    finally:
        server.terminate()
        server.wait(timeout=20)
    if PEER:
        results["peer"] = run_peer(rows, beats)
        ours, peer = results["heartbeat"], results["peer"]["heartbeat"]
        results["ours_vs_peer"] = {
            "throughput_ratio": round(ours["per_second"] / peer["per_second"], 3),
            "p99_ms_ours": ours["p99_ms"],
            "p99_ms_peer": peer["p99_ms"],
        }
    print(json.dumps(results, indent=2))
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "ea_heartbeat.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
