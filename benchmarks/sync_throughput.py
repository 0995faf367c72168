"""Sync throughput: account syncs per second against the simulated gateway and PostgreSQL.

Each account holds about 200 deals. Three passes over the same accounts, in one run:
- gateway read only (login, account info, positions, orders, deals; nothing stored): the baseline;
- first sync (every deal is new: bulk insert);
- re-sync (nothing new: the steady state of the 15-minute schedule).
Work is split over BENCH_PROCESSES processes (default 2, one per core).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.db import connections  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts import vault  # noqa: E402
from accounts.models import Deal, TradingAccount, User  # noqa: E402
from mt5bridge import gateway as gw  # noqa: E402
from mt5bridge.simulated import create_account, generate_history  # noqa: E402
from mt5bridge.simulated.models import SimAccount, SimDeal  # noqa: E402
from mt5bridge.sync import account_sync  # noqa: E402

ACCOUNTS = int(os.environ.get("BENCH_ACCOUNTS", "400"))
PROCESSES = int(os.environ.get("BENCH_PROCESSES", "2"))
FIRST_LOGIN = 9_100_000
SERVER = "MetaSim-Demo"
PASSWORD = "bench-pass-1"


def prepare() -> list[str]:
    owner, _ = User.objects.get_or_create(email="bench@example.com")
    TradingAccount.objects.filter(owner=owner).delete()
    # Every run starts from the same history: earlier runs' simulated accounts (and their deals) are dropped
    # first, because the history generator runs once per simulated account.
    SimAccount.objects.filter(login__gte=FIRST_LOGIN, login__lt=FIRST_LOGIN + ACCOUNTS).delete()
    for i in range(ACCOUNTS):
        login = FIRST_LOGIN + i
        create_account(login=login, password=PASSWORD, server=SERVER, balance=Decimal("10000"))
        # ~100 round trips (in + out) = ~200 deals inside the default history window (the goal's size).
        generate_history(login, days=25, trades_per_day=5, seed=login)
    token = vault.encrypt(PASSWORD)
    TradingAccount.objects.bulk_create(
        [
            TradingAccount(
                owner=owner,
                login=FIRST_LOGIN + i,
                server=SERVER,
                name=f"bench {i}",
                password_encrypted=token,
                gateway_kind="simulated",
            )
            for i in range(ACCOUNTS)
        ]
    )
    return [str(pk) for pk in TradingAccount.objects.filter(owner=owner).order_by("login").values_list("pk", flat=True)]


def read_only(ids: list[str]) -> None:
    gateway = gw.get_gateway("simulated")
    now = timezone.now()
    for account in TradingAccount.objects.filter(pk__in=ids).only("login", "server", "password_encrypted"):
        gateway.login(
            gw.Credentials(
                login=account.login, password=vault.decrypt(account.password_encrypted), server=account.server
            )
        )
        gateway.positions(account.login)
        gateway.orders(account.login)
        gateway.deals(account.login, now - timedelta(days=365), now + timedelta(days=1))


def sync_all(ids: list[str]) -> None:
    for pk in ids:
        result = account_sync(account_id=pk, trigger="bench")
        assert result.outcome == "ok", result


def _worker(target, ids, start, done):
    connections.close_all()
    start.wait()
    target(ids)
    connections.close_all()
    done.put(time.perf_counter())


def timed(target, ids: list[str]) -> float:
    """Wall seconds for PROCESSES processes to run ``target`` over their share of ``ids``."""
    connections.close_all()
    ctx = mp.get_context("fork")
    start, done = ctx.Event(), ctx.Queue()
    shares = [ids[i::PROCESSES] for i in range(PROCESSES)]
    procs = [ctx.Process(target=_worker, args=(target, share, start, done)) for share in shares]
    for proc in procs:
        proc.start()
    time.sleep(0.5)
    began = time.perf_counter()
    start.set()
    finished = max(done.get() for _ in procs)
    for proc in procs:
        proc.join()
        assert proc.exitcode == 0, "a benchmark process failed"
    return finished - began


def main() -> None:
    t0 = time.perf_counter()
    ids = prepare()
    prep = time.perf_counter() - t0
    deals_per_account = (
        SimDeal.objects.filter(account__login__gte=FIRST_LOGIN, account__login__lt=FIRST_LOGIN + ACCOUNTS).count()
        / ACCOUNTS
    )
    read_s = timed(read_only, ids)
    first_s = timed(sync_all, ids)
    stored = Deal.objects.filter(account_id__in=ids).count()
    resync_s = timed(sync_all, ids)
    result = {
        "benchmark": "sync_throughput",
        "accounts": ACCOUNTS,
        "processes": PROCESSES,
        "cores": os.cpu_count(),
        "deals_per_account": round(deals_per_account, 1),
        "deals_stored": stored,
        "prepare_seconds": round(prep, 1),
        "gateway_reads_per_s": round(ACCOUNTS / read_s, 1),
        "first_syncs_per_s": round(ACCOUNTS / first_s, 1),
        "resyncs_per_s": round(ACCOUNTS / resync_s, 1),
        "first_sync_vs_read_ratio": round(read_s / first_s, 2),
        "resync_vs_read_ratio": round(read_s / resync_s, 2),
    }
    out = Path(__file__).parent / "results" / "sync_throughput.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
