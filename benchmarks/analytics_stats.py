"""Full statistics for one account with 100,000 deals (and a year of 15-minute snapshots).

Measured in one run, each the median of BENCH_REPEAT runs (default 7):
- the pure computation (`compute_statistics` over columns already in memory);
- the database read alone (`accounts.analytics.history.statistics_history`: one query);
and BENCH_RUNS runs (default 3) each, with their spread, of `statistics_for_account` over the whole history
(viewed by staff, so no plan window):
- whole, cold: no stored summary, so it reads and folds the whole history and stores the summary
  (``statistics_for_account``, also ``whole_cold``): read in parts of its time span, each folded while PostgreSQL
  computes the next (`accounts.analytics.columns.history_state_of`);
- incremental: 100 new deals (50 positions opened and closed) arrived since the summary was stored
  (``incremental_plus_100``: folded, not stored again, as below 500 new rows; ``incremental_plus_100_stored``:
  also storing the folded state), and its parts: the read, parsing, the fold, the payload, the save;
- warm: nothing new since the summary (``warm_nothing_new``).
Goals (issue 18): whole <= 250 ms, incremental <= 20 ms. Start-up's objects are frozen out of the garbage
collector after seeding, as in the web process (config/asgi.py). Runs against PostgreSQL database mt5bo_bench_t3a
(DATABASE_URL overrides); the load average is printed with the figures (the machine is shared).
Usage: .venv/bin/python benchmarks/analytics_stats.py
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mt5bo_bench_t3a")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/6")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from django.db import connection  # noqa: E402

DEALS = int(os.environ.get("BENCH_DEALS", "100000"))
SNAPSHOTS = int(os.environ.get("BENCH_SNAPSHOTS", "35040"))  # a year at 15 minutes
REPEAT = int(os.environ.get("BENCH_REPEAT", "7"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
NEW_DEALS = 100
SYMBOLS = [
    ("EURUSD", 5, 1.08),
    ("GBPUSD", 5, 1.27),
    ("USDJPY", 3, 150.0),
    ("XAUUSD", 2, 2300.0),
    ("BTCUSD", 2, 65000.0),
]


def ensure_database() -> None:
    """Create the benchmark database if needed and its tables straight from the models.

    The database is disposable, so the schema is built from the models (as the test runner's
    no-migrations mode does) rather than by replaying every migration.
    """
    import psycopg
    from django.conf import settings
    from django.core.management import call_command

    db = settings.DATABASES["default"]
    admin = psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )
    exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]).fetchone()
    if not exists:
        admin.execute(f'CREATE DATABASE "{db["NAME"]}"')
    admin.close()
    if "accounts_deal" in connection.introspection.table_names():
        return

    class NoMigrations:
        def __contains__(self, item):
            return True

        def __getitem__(self, item):
            return None

    settings.MIGRATION_MODULES = NoMigrations()
    call_command("migrate", run_syncdb=True, verbosity=0, interactive=False)


def ensure_summary_table() -> None:
    """The summary table and its triggers (a migration's SQL: the schema above is built without migrations)."""
    import importlib

    if "accounts_analyticssummary" in connection.introspection.table_names():
        return
    migration = importlib.import_module("accounts.migrations.0006_analytics_summary")
    with connection.cursor() as cursor:
        for sql in migration._CREATE:
            cursor.execute(sql)


def seed_account(email: str = "analytics-bench@example.com"):
    """One account with DEALS deals (a deposit, then opening/closing pairs) and SNAPSHOTS snapshots."""
    from accounts import vault
    from accounts.models import AccountSnapshot, Deal, TradingAccount, User

    owner, _ = User.objects.get_or_create(email=email)
    account, _ = TradingAccount.objects.get_or_create(
        owner=owner,
        login=9_300_001,
        server="MetaSim-Demo",
        defaults={"password_encrypted": vault.encrypt("x"), "name": "100k deals"},
    )
    if Deal.objects.filter(account=account).count() == DEALS and (
        AccountSnapshot.objects.filter(account=account).count() == SNAPSHOTS
    ):
        return account
    Deal.objects.filter(account=account).delete()
    AccountSnapshot.objects.filter(account=account).delete()
    rng = np.random.default_rng(42)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    positions = (DEALS - 1) // 2
    opens = np.sort(rng.uniform(0, 364 * 86400, positions))
    holds = rng.uniform(60, 2 * 86400, positions)
    rows = [
        Deal(
            account=account,
            ticket=1,
            time=start - timedelta(hours=1),
            deal_type=2,
            profit=Decimal("100000"),
            comment="deposit",
        )
    ]
    for i in range(positions):
        name, digits, level = SYMBOLS[int(rng.integers(0, len(SYMBOLS)))]
        long = bool(rng.integers(0, 2))
        volume = Decimal(int(rng.integers(1, 200))) / 100
        p_open = round(level * (1 + rng.normal(0, 0.01)), digits)
        p_close = round(p_open * (1 + rng.normal(0.0002, 0.002)), digits)
        profit = Decimal(str(round(float(rng.normal(5, 120)), 2)))
        commission = -(volume * Decimal("3.5")).quantize(Decimal("0.01"))
        magic = int(rng.integers(0, 6)) * 1000
        pid = 1000 + i
        rows.append(
            Deal(
                account=account,
                ticket=2 * pid,
                time=start + timedelta(seconds=float(opens[i])),
                deal_type=0 if long else 1,
                entry=0,
                position_id=pid,
                magic=magic,
                symbol=name,
                volume=volume,
                price=Decimal(str(p_open)),
                commission=commission,
            )
        )
        rows.append(
            Deal(
                account=account,
                ticket=2 * pid + 1,
                time=start + timedelta(seconds=float(opens[i] + holds[i])),
                deal_type=1 if long else 0,
                entry=1,
                position_id=pid,
                magic=magic,
                symbol=name,
                volume=volume,
                price=Decimal(str(p_close)),
                commission=commission,
                profit=profit,
                swap=Decimal("-0.40") if holds[i] > 86400 else Decimal("0"),
            )
        )
    while len(rows) < DEALS:
        rows.append(
            Deal(
                account=account,
                ticket=10**9 + len(rows),
                time=start + timedelta(days=365),
                deal_type=8,
                profit=Decimal("-1.00"),
            )
        )
    Deal.objects.bulk_create(rows, batch_size=5000)
    equity = 100000 + np.cumsum(rng.normal(3, 150, SNAPSHOTS))
    AccountSnapshot.objects.bulk_create(
        [
            AccountSnapshot(
                account=account,
                taken_at=start + timedelta(minutes=15 * k),
                balance=Decimal(str(round(float(equity[k]), 2))),
                equity=Decimal(str(round(float(equity[k] + rng.normal(0, 50)), 2))),
            )
            for k in range(SNAPSHOTS)
        ],
        batch_size=5000,
    )
    return account


def timed(fn, repeat: int = REPEAT) -> dict:
    """Wall time, and this process's CPU time (less sensitive to other load on the machine)."""
    runs, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        runs.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return {
        "median_ms": round(statistics.median(runs), 1),
        "min_ms": round(min(runs), 1),
        "max_ms": round(max(runs), 1),
        "median_cpu_ms": round(statistics.median(cpu), 1),
    }


def runs_of(fn, prepare, runs: int = RUNS, after=None) -> dict:
    """``runs`` timed calls of ``fn``, each after an untimed ``prepare`` (and before an untimed ``after``)."""
    walls, cpus = [], []
    for _ in range(runs):
        prepare()
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append((time.perf_counter() - t0) * 1000)
        cpus.append((time.process_time() - c0) * 1000)
        if after:
            after()
    return {
        "runs_ms": [round(w, 1) for w in walls],
        "median_ms": round(statistics.median(walls), 1),
        "min_ms": round(min(walls), 1),
        "max_ms": round(max(walls), 1),
        "spread_ms": round(max(walls) - min(walls), 1),
        "median_cpu_ms": round(statistics.median(cpus), 1),
    }


def new_deals(account, base_ticket: int, at: datetime) -> list:
    """NEW_DEALS deals after the seeded history: NEW_DEALS / 2 positions opened and closed, a minute apart."""
    from accounts.models import Deal

    rows = []
    for k in range(NEW_DEALS // 2):
        pid = base_ticket + k
        common = {"account": account, "position_id": pid, "symbol": "EURUSD", "volume": Decimal("0.10"), "magic": 1000}
        opened = at + timedelta(minutes=2 * k)
        rows.append(Deal(ticket=2 * pid, time=opened, deal_type=0, entry=0, price=Decimal("1.08123"), **common))
        rows.append(
            Deal(
                ticket=2 * pid + 1,
                time=opened + timedelta(minutes=1),
                deal_type=1,
                entry=1,
                price=Decimal("1.08153"),
                profit=Decimal("3.00") if k % 3 else Decimal("-4.10"),
                commission=Decimal("-0.35"),
                **common,
            )
        )
    return rows


def main() -> dict:
    from accounts.analytics import summary
    from accounts.analytics.history import statistics_for_account, statistics_history
    from accounts.analytics.report import report
    from accounts.analytics.running import fold
    from accounts.analytics.statistics import compute_statistics
    from accounts.analytics.tables import DealTable, SnapshotTable
    from accounts.models import Deal, User

    ensure_database()
    ensure_summary_table()
    load_before = [round(x, 2) for x in os.getloadavg()]
    t0 = time.perf_counter()
    account = seed_account()
    seeded = time.perf_counter() - t0
    # As the web process that serves the statistics does (config/asgi.py): what start-up loaded (Django, the apps,
    # numpy: ~230,000 objects) leaves the collector's generations, so a full collection no longer walks it. Without
    # it, the first timed run of each invocation took a 130 ms full collection (measured with gc.callbacks).
    gc.collect()
    gc.freeze()
    staff, _ = User.objects.get_or_create(email="analytics-bench-staff@example.com", defaults={"is_superuser": True})
    deals, snapshots, opening = statistics_history(account)
    Deal.objects.filter(account=account, ticket__gte=2 * 10**12).delete()  # a run stopped half-way
    whole = lambda: statistics_for_account(account, viewer=staff)  # noqa: E731

    def forget() -> None:
        with connection.cursor() as cursor:
            cursor.execute("UPDATE accounts_analyticssummary SET state = NULL WHERE account_id = %s", [account.pk])

    result = whole()
    body = json.dumps(result)
    assert result["summary"]["deals"] == DEALS, result["summary"]["deals"]
    cold = runs_of(whole, forget)
    arrive_at = datetime(2026, 1, 5, tzinfo=UTC)
    added: list = []

    def arrive() -> None:
        forget()
        whole()  # the summary as the last read left it
        added[:] = Deal.objects.bulk_create(new_deals(account, 10**12 + len(added), arrive_at))

    def leave() -> None:
        Deal.objects.filter(account=account, ticket__gte=2 * 10**12).delete()

    incremental = runs_of(whole, arrive, after=leave)
    saving = summary.SAVE_AFTER_ROWS
    summary.SAVE_AFTER_ROWS = 1  # the same, storing the folded state (done once 500 rows arrived)
    incremental_saved = runs_of(whole, arrive, after=leave)
    summary.SAVE_AFTER_ROWS = saving
    # The parts of one incremental read, for the record.
    arrive()
    parts = {}
    t = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(summary._READ_SQL, {"account": account.pk, "limit": summary.MAX_FOLD_ROWS + 1})
        generation, raw, _, _, _, deal_json, snapshot_json = cursor.fetchone()
    parts["read_ms"] = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    state = summary.Running.from_bytes(bytes(raw))
    fresh = DealTable.from_records(
        {**dict(zip(summary.DEAL_FIELDS, r, strict=True)), "time": datetime.fromisoformat(r[0])}
        for r in json.loads(deal_json, parse_float=Decimal)
    )
    parts["parse_ms"] = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    assert fold(state, fresh, SnapshotTable.from_records([])) and len(fresh) == NEW_DEALS
    parts["fold_ms"] = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    payload = report(state, 30)
    parts["report_ms"] = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    summary._save(account.pk, generation, state)
    parts["save_ms"] = (time.perf_counter() - t) * 1000
    parts = {k: round(v, 1) for k, v in parts.items()}
    parts["state_bytes"] = len(raw)
    assert payload["summary"]["deals"] == DEALS + NEW_DEALS
    leave()
    whole()  # rebuilt after the deletion above
    warm = runs_of(whole, lambda: None)
    figures = {
        "deals": len(deals),
        "snapshots": len(snapshots),
        "closed_trades": result["trades_count"],
        "pure_compute": timed(lambda: compute_statistics(deals, snapshots, opening_balance=opening)),
        "db_read": timed(lambda: statistics_history(account)),
        "statistics_for_account": cold,
        "whole_cold": cold,
        "incremental_plus_100": incremental,
        "incremental_plus_100_stored": incremental_saved,
        "incremental_parts": parts,
        "warm_nothing_new": warm,
        "statistics_for_account_plus_json": timed(lambda: json.dumps(whole()), repeat=RUNS),
        "json_bytes": len(body),
        "cores": os.cpu_count(),
        "load_average_before": load_before,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "seed_seconds": round(seeded, 1),
    }
    print(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
