"""Bonus monitor: one cycle over BENCH_ACCOUNTS (default 10,000) accounts, 1 shard and 2 shards side by side.

Run: `.venv/bin/python benchmarks/bonus_monitor.py` (PostgreSQL + Redis on 127.0.0.1; database
mt5bo_bench_bonuses, created and migrated when missing). Accounts are written to the simulated
server in bulk (10 % hold an open BTCUSD position, so their equity moves every second); then:
- steady state, 1 shard: BENCH_CYCLES cycles where nothing happens (the 0.3 s budget's case);
- busy cycles, 1 shard: 100 accounts deposit before each of BENCH_BUSY_CYCLES cycles, with the postings
  on the bonus_ops queue (BONUS_OPERATIONS_QUEUED) served by a Celery worker started here (BENCH_WORKERS
  processes); the cycle's p50/p99, and the time from each deposit to its credit posted (the operation's
  done_at); one busy cycle with the postings inline (the behaviour without a broker) for comparison;
- 2 shards: two processes each cycling its half at the same time.
Each monitor runs in its own process so its peak RSS is its own. Results: stdout and
benchmarks/results/bonus_monitor.json.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import resource
import statistics
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB = os.environ.get("BENCH_DB", "mt5bo_bench_bonuses")
os.environ.setdefault("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{DB}")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/13")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

ACCOUNTS = int(os.environ.get("BENCH_ACCOUNTS", "10000"))
CYCLES = int(os.environ.get("BENCH_CYCLES", "100"))
BUSY_CYCLES = int(os.environ.get("BENCH_BUSY_CYCLES", "10"))
DEPOSITS = int(os.environ.get("BENCH_DEPOSITS", "100"))
WORKERS = os.environ.get("BENCH_WORKERS", "2")
FIRST_LOGIN = 5_000_000
SERVER = "MetaSim-Demo"


def _ensure_database() -> None:
    exists = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-Atc",
                             f"SELECT 1 FROM pg_database WHERE datname = '{DB}'"],
                            capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    if not exists:
        subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", DB], check=True)
    subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "--noinput", "-v", "0"], check=True)


def _setup_django() -> None:
    import django

    django.setup()


def prepare() -> None:
    """Bulk-write the accounts (idempotent: kept between runs) and reset the bonus tables."""
    from django.db import connection
    from django.utils import timezone

    from bonuses.choices import BonusType, CampaignStatus, Trigger
    from bonuses.models import Campaign, MonitorCycle, MonitoredAccount, MonitorShard
    from mt5bridge import gateway as gw
    from mt5bridge.simulated import seeding
    from mt5bridge.simulated.models import SimAccount, SimDeal, SimGroup, SimPosition

    with connection.cursor() as cursor:  # the audit table refuses DELETE; TRUNCATE is the owner's reset
        cursor.execute("TRUNCATE bonuses_auditlog, bonuses_bonusoperation, bonuses_bonus, bonuses_accountevent, "
                       "bonuses_monitoredaccount, bonuses_monitorcycle, bonuses_monitorshard, bonuses_campaign "
                       "RESTART IDENTITY CASCADE")  # fmt: skip
    logins = range(FIRST_LOGIN, FIRST_LOGIN + ACCOUNTS)
    SimDeal.objects.filter(account_id__in=logins, comment__startswith="BONUS ").delete()
    SimDeal.objects.filter(account_id__in=logins, comment="bench deposit").delete()
    have = SimAccount.objects.filter(login__in=logins).count()
    if have != ACCOUNTS:
        SimAccount.objects.filter(login__in=logins).delete()
        seeding.ensure_server(SERVER)
        seeding.create_account(login=FIRST_LOGIN - 1, password="bench-pass-1", server=SERVER)  # the group row
        group = SimGroup.objects.filter(server__name=SERVER).order_by("id").first()
        password = seeding.hash_password("bench-pass-1")
        now = timezone.now()
        SimAccount.objects.bulk_create([
            SimAccount(login=login, password=password, server=SERVER, group=group, country=("DE", "FR", "IT")[i % 3],
                       leverage=500, balance=Decimal("1000"), credit=Decimal("0"), registration=now, checked_at=now)
            for i, login in enumerate(logins)
        ], batch_size=2000)  # fmt: skip
        tick = gw.get_gateway("simulated").tick("BTCUSD")
        SimPosition.objects.bulk_create([
            SimPosition(account_id=login, ticket=login, identifier=login, symbol="BTCUSD", type=0,
                        volume=Decimal("0.01"), price_open=tick.ask, time=now, time_update=now, swap_since=now)
            for login in logins[::10]
        ], batch_size=2000)  # fmt: skip
    SimAccount.objects.filter(login__in=logins).update(balance=Decimal("1000"), credit=Decimal("0"), leverage=500)
    # The monitor's rows as discovery leaves them; the first cycle takes the baseline.
    MonitoredAccount.objects.bulk_create([MonitoredAccount(login=login, server=SERVER) for login in logins],
                                         batch_size=2000)  # fmt: skip
    Campaign.objects.create(name="bench", bonus_type=BonusType.FIXED_LEVERAGE, bonus_percent=Decimal("50"),
                            status=CampaignStatus.ACTIVE, triggers=[Trigger.AUTO_DEPOSIT], max_concurrent=5,
                            starts_at=timezone.now() - timezone.timedelta(days=1))  # fmt: skip
    MonitorCycle.objects.all().delete()
    MonitorShard.objects.all().delete()


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))], 1)


def _busy(monitor, deposits: int) -> dict:
    """BUSY_CYCLES cycles with ``deposits`` new deposits before each; postings on the queue; then the waits."""
    from django.utils import timezone

    from bonuses.choices import OperationKind, OperationStatus
    from bonuses.models import BonusOperation
    from mt5bridge.simulated import deposit

    logins = list(monitor.snapshots)
    deposited_at: dict[int, object] = {}
    durations = []
    for i in range(BUSY_CYCLES):
        for login in logins[i * deposits : (i + 1) * deposits]:
            deposit(login, Decimal("200"), comment="bench deposit")
            deposited_at[login] = timezone.now()
        result = monitor.cycle()
        durations.append(result.duration_ms)
        time.sleep(max(0.0, 0.3 - result.duration_ms / 1000))
    deadline = time.monotonic() + 600
    credits = BonusOperation.objects.filter(login__in=list(deposited_at), kind=OperationKind.CREDIT_IN)
    while time.monotonic() < deadline:
        monitor.cycle()  # the sweep resends what the queue lost; drawdown goes on
        if credits.filter(status=OperationStatus.DONE).count() >= len(deposited_at):
            break
        time.sleep(0.3)
    waits = [
        (done_at - deposited_at[login]).total_seconds()
        for login, done_at in credits.filter(status=OperationStatus.DONE).values_list("login", "done_at")
    ]
    return {
        "cycles": len(durations), "deposits_per_cycle": deposits,
        "cycle_p50_ms": _percentile(durations, 0.5), "cycle_p99_ms": _percentile(durations, 0.99),
        "cycle_max_ms": round(max(durations), 1), "credits_posted": len(waits), "deposits": len(deposited_at),
        "deposit_to_credit_p50_s": _percentile(waits, 0.5) if waits else None,
        "deposit_to_credit_p99_s": _percentile(waits, 0.99) if waits else None,
        "deposit_to_credit_max_s": round(max(waits), 2) if waits else None,
    }  # fmt: skip


def run_monitor(shard: int, shards: int, cycles: int, deposits: int, start_at: float, queue) -> None:
    """One monitor process: baseline cycle, warm-up, then timed steady cycles (and the busy ones if asked)."""
    _setup_django()
    from django.conf import settings

    from bonuses.monitor import Monitor
    from mt5bridge.simulated import deposit

    settings.BONUS_MONITOR_DISCOVERY_SECONDS = 10**9  # accounts are already registered
    monitor = Monitor(shard=shard, shards=shards, worker=f"bench-{shard}-{shards}", queued=bool(deposits))
    monitor._next_discovery = time.monotonic() + 10**9
    baseline = monitor.cycle().duration_ms
    monitor.cycle()  # warm: the gateway's row cache and the monitor's snapshots are in memory
    while time.time() < start_at:  # shards start together so they compete for the 2 cores
        time.sleep(0.005)
    steady = []
    for _ in range(cycles):
        result = monitor.cycle()
        steady.append(result.duration_ms)
        time.sleep(max(0.0, 0.3 - result.duration_ms / 1000))
    busy = inline = None
    steady_all = sorted(steady)
    if deposits:
        busy = _busy(monitor, deposits)
        # The same burst with the postings inside the cycle (no broker), on accounts not used above.
        monitor.queued = False
        for login in list(monitor.snapshots)[-deposits:]:
            deposit(login, Decimal("200"), comment="bench deposit")
        result = monitor.cycle()
        inline = {"duration_ms": round(result.duration_ms, 1), "deposits": result.deposits}
    queue.put({
        "shard": shard, "shards": shards, "accounts": len(monitor.active), "baseline_cycle_ms": round(baseline, 1),
        "steady_median_ms": round(statistics.median(steady), 1),
        "steady_p95_ms": round(sorted(steady)[int(len(steady) * 0.95) - 1], 1),
        "steady_p99_ms": _percentile(steady_all, 0.99),
        "steady_max_ms": round(max(steady), 1), "busy": busy, "busy_inline": inline,
        "peak_rss_mb": round(_rss_mb(), 1),
    })  # fmt: skip


def _run(shards: int, deposits: int) -> list[dict]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    start_at = time.time() + 25
    procs = [ctx.Process(target=run_monitor, args=(i, shards, CYCLES, deposits, start_at, queue))
             for i in range(shards)]  # fmt: skip
    for p in procs:
        p.start()
    results = [queue.get(timeout=1800) for _ in procs]
    for p in procs:
        p.join()
    return sorted(results, key=lambda r: r["shard"])


def main() -> None:
    _ensure_database()
    _setup_django()
    started = time.perf_counter()
    prepare()
    print(f"prepared {ACCOUNTS} accounts in {time.perf_counter() - started:.1f} s", flush=True)
    from django.db import connections

    connections.close_all()
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "bonus_ops", "-c", WORKERS,
         "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env={**os.environ, "BONUS_OPERATIONS_QUEUED": "true"},
    )  # fmt: skip
    try:
        one = _run(1, deposits=DEPOSITS)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    print("1 shard:", json.dumps(one, indent=1), flush=True)
    prepare()
    connections.close_all()
    two = _run(2, deposits=0)
    print("2 shards:", json.dumps(two, indent=1), flush=True)
    out = {"accounts": ACCOUNTS, "cycles": CYCLES, "cores": os.cpu_count(), "one_shard": one, "two_shards": two}
    path = ROOT / "benchmarks" / "results" / "bonus_monitor.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    print(f"written {path}")


if __name__ == "__main__":
    main()
