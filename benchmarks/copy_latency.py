"""Server-side copy latency: a master heartbeat with one new position -> every slave's command stored and queued.

Times ``copytrading.hooks.on_ea_state`` (diff, sizing, symbol mapping, bulk insert of the commands and copy
rows in one transaction, the Redis queue push after commit) for a master with 1 and with 100 slaves, and a
heartbeat of an account without links for reference. Goals: p50 <= 1 ms (1 slave), p99 <= 20 ms (100 slaves).
Runs against PostgreSQL database mt5bo_bench_copy and Redis db 12 on 127.0.0.1 (DATABASE_URL / REDIS_URL override).
Usage: .venv/bin/python benchmarks/copy_latency.py
"""

from __future__ import annotations

import itertools
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mt5bo_bench_copy")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/12")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

# Measure what production runs: with DEBUG on (the development default) every query is also logged in memory.
settings.DEBUG = False

ROUNDS = {1: int(os.environ.get("BENCH_ROUNDS_1", "1000")), 100: int(os.environ.get("BENCH_ROUNDS_100", "300"))}
WARMUP = 30


def ensure_database() -> None:
    """Create the disposable benchmark database and its tables straight from the models."""
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
    if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]).fetchone():
        admin.execute(f'CREATE DATABASE "{db["NAME"]}"')
    admin.close()
    if "copytrading_copylink" in connection.introspection.table_names():
        return

    class NoMigrations:
        def __contains__(self, item):
            return True

        def __getitem__(self, item):
            return None

    settings.MIGRATION_MODULES = NoMigrations()
    call_command("migrate", run_syncdb=True, verbosity=0, interactive=False)


def setup(slaves: int):
    """A master on MetaSim-Live and ``slaves`` slaves on MetaSim-Demo (fresh rows each run)."""
    from accounts.models import TradingAccount, User
    from copytrading.models import CopyLink
    from copytrading.selectors import bump_config_version
    from mt5bridge.simulated import create_account
    from mt5bridge.simulated.models import SimAccount

    owner, _ = User.objects.get_or_create(email="copy-bench@example.com")
    TradingAccount.objects.filter(owner=owner).delete()
    base = 9_700_000 + slaves * 1000

    def account(login: int, server: str, name: str) -> TradingAccount:
        if not SimAccount.objects.filter(login=login).exists():
            create_account(login=login, password="Bench-pass-1", server=server, balance=Decimal("10000"))
        return TradingAccount.objects.create(
            owner=owner,
            login=login,
            server=server,
            name=name,
            password_encrypted=b"-",
            balance=Decimal("10000"),
            equity=Decimal("10000"),
            margin_free=Decimal("10000"),
        )

    master = account(base, "MetaSim-Live", "bench master")
    links = []
    for i in range(slaves):
        slave = account(base + 1 + i, "MetaSim-Demo", f"bench slave {i}")
        links.append(CopyLink(master=master, slave=slave, created_by=owner, sizing_mode="balance_ratio"))
    CopyLink.objects.bulk_create(links)
    bump_config_version()
    return master


TICKETS = itertools.count(10_000_000)  # a new master position every heartbeat, never one seen before


def measure(master, rounds: int) -> tuple[list[float], list[float]]:
    from copytrading.hooks import on_ea_state
    from mt5bridge.ea.state import EAPosition, EAState

    def state(positions):
        now = datetime.now(UTC)
        return EAState(
            account_id=str(master.pk),
            login=master.login,
            received_at=now,
            server_time=now,
            balance=Decimal("100000"),
            credit=Decimal("0"),
            equity=Decimal("100000"),
            margin=Decimal("0"),
            margin_free=Decimal("100000"),
            leverage=100,
            positions=tuple(positions),
            orders=(),
        )

    timings, cpu = [], []
    for i in range(WARMUP + rounds):
        ticket = next(TICKETS)
        position = EAPosition(
            ticket=ticket,
            symbol="BTCUSD.pro",
            type=0,
            volume=Decimal("1.00"),
            price_open=Decimal("65000"),
            sl=Decimal("64000"),
            tp=Decimal("67000"),
            magic=0,
            comment="",
            profit=Decimal("0"),
            time=datetime.now(UTC) - timedelta(milliseconds=50),
            identifier=ticket,
        )
        previous, current = state([]), state([position])
        start, start_cpu = time.perf_counter(), time.process_time()
        on_ea_state(previous, current)
        elapsed, elapsed_cpu = time.perf_counter() - start, time.process_time() - start_cpu
        if i >= WARMUP:
            timings.append(elapsed * 1000)
            cpu.append(elapsed_cpu * 1000)
    return timings, cpu


def idle_heartbeat(rounds: int = 2000) -> list[float]:
    """An account with no links and no rules: the cost every other heartbeat pays."""
    import uuid

    from copytrading.hooks import on_ea_state
    from mt5bridge.ea.state import EAState

    now = datetime.now(UTC)
    s = EAState(
        account_id=str(uuid.uuid4()),
        login=1,
        received_at=now,
        server_time=now,
        balance=Decimal("1"),
        credit=Decimal("0"),
        equity=Decimal("1"),
        margin=Decimal("0"),
        margin_free=Decimal("1"),
        leverage=1,
        positions=(),
        orders=(),
    )
    on_ea_state(s, s)
    timings = []
    for _ in range(rounds):
        start = time.perf_counter()
        on_ea_state(s, s)
        timings.append((time.perf_counter() - start) * 1000)
    return timings


def summary(name: str, timings: list[float]) -> str:
    ordered = sorted(timings)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]

    return (
        f"{name:<28} n={len(ordered):>5}  p50={pct(50):7.3f} ms  p90={pct(90):7.3f} ms  "
        f"p99={pct(99):7.3f} ms  max={ordered[-1]:7.3f} ms  mean={statistics.fmean(ordered):7.3f} ms"
    )


def statements_per_heartbeat(master) -> float:
    """Round trips to PostgreSQL per master heartbeat, transaction control (BEGIN, SAVEPOINT, COMMIT) included,
    counted over WARMUP heartbeats with warm caches (an occasional refresh of cached figures shows as a fraction)."""
    from django.test.utils import CaptureQueriesContext

    measure(master, 0)  # warm the caches for this master's links
    connection.queries_log.clear()  # the log keeps 9,000 entries: start empty so the count is not cut
    with CaptureQueriesContext(connection) as queries:
        measure(master, 0)
    return len(queries.captured_queries) / WARMUP


def main() -> None:
    from mt5bridge.ea.models import Command

    ensure_database()
    print(
        f"CPU cores: {os.cpu_count()}; load average {os.getloadavg()[0]:.1f}; "
        f"PostgreSQL {connection.cursor().connection.info.server_version}; "
        f"database {connection.settings_dict['NAME']}"
    )
    print(summary("idle heartbeat (no links)", idle_heartbeat()))
    for slaves, rounds in ROUNDS.items():
        master = setup(slaves)
        before = Command.objects.count()
        timings, cpu = measure(master, rounds)
        made = Command.objects.count() - before
        expected = (WARMUP + rounds) * slaves
        print(summary(f"master -> {slaves} slave(s)", timings) + f"  commands={made}/{expected}")
        print(
            summary("  of which this process's CPU", cpu)
            + f"  SQL statements per heartbeat={statements_per_heartbeat(master):g}"
        )
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
