"""Full statistics for one account with 100,000 deals (and a year of 15-minute snapshots).

Measured in one run, each the median of BENCH_REPEAT runs (default 7):
- the pure computation (`compute_statistics` over columns already in memory);
- the database read alone (`accounts.analytics.history.statistics_history`: one query);
- the whole `statistics_for_account` (read + compute), and its JSON encoding.
Goal: <= 0.5 s. Runs against PostgreSQL database mt5bo_bench_t3a (DATABASE_URL overrides).
Usage: .venv/bin/python benchmarks/analytics_stats.py
"""

from __future__ import annotations

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


def main() -> dict:
    from accounts.analytics.history import statistics_for_account, statistics_history
    from accounts.analytics.statistics import compute_statistics

    ensure_database()
    t0 = time.perf_counter()
    account = seed_account()
    seeded = time.perf_counter() - t0
    deals, snapshots, opening = statistics_history(account)
    result = statistics_for_account(account)
    body = json.dumps(result)
    figures = {
        "deals": len(deals),
        "snapshots": len(snapshots),
        "closed_trades": result["trades_count"],
        "pure_compute": timed(lambda: compute_statistics(deals, snapshots, opening_balance=opening)),
        "db_read": timed(lambda: statistics_history(account)),
        "statistics_for_account": timed(lambda: statistics_for_account(account)),
        "statistics_for_account_plus_json": timed(lambda: json.dumps(statistics_for_account(account))),
        "json_bytes": len(body),
        "cores": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "seed_seconds": round(seeded, 1),
    }
    print(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
