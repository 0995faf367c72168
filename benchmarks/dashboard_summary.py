"""GET /api/dashboard/summary for a trader with 50 accounts, over HTTP on 127.0.0.1.

The server is the production command from the Procfile (gunicorn + uvicorn workers, DEBUG off),
started by this script with its own URLconf: the project's URLs plus two views that exist only
here: a bare Django JSON view (``/bench/bare``) and a DRF no-op view with the same session
authentication, throttles and permission check as the summary (``/bench/drf-bare``), which separates the
framework's share from the summary's. One keep-alive client cycles through the three so all see
the same machine load; every answer must be 200. The report gives p50/p95/p99 of each and the summary's
p95 ratio to the bare view, and is written to benchmarks/results/dashboard.json. Goals: summary p95 <= 50 ms
and <= 2x the bare view's. Database mt5bo_bench_t3a (DATABASE_URL overrides), server port BENCH_PORT.
Usage: .venv/bin/python benchmarks/dashboard_summary.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mt5bo_bench_t3a")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/6")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")


def bare(request):
    from django.http import JsonResponse

    return JsonResponse({"ok": True})


if os.environ.get("BENCH_SERVER") == "1":
    # Imported by gunicorn in the server process: the project's URLs plus the bare view.
    import django
    from django.conf import settings
    from django.urls import include, path

    django.setup()
    from rest_framework.response import Response
    from rest_framework.views import APIView

    class DrfBare(APIView):
        """The same authentication, throttles, permission check and renderer as the summary, and no work."""

        capabilities = "accounts.view"

        def get(self, request):
            return Response({"ok": True})

    urlpatterns = [
        path("bench/bare", bare),
        path("bench/drf-bare", DrfBare.as_view()),
        path("", include("config.urls")),
    ]
    settings.ROOT_URLCONF = __name__
    from config.asgi import application  # noqa: F401


ACCOUNTS = int(os.environ.get("BENCH_ACCOUNTS", "50"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "500"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
PORT = int(os.environ.get("BENCH_PORT", "8763"))


def seed() -> str:
    """A trader with ACCOUNTS accounts: 3 days of 15-minute snapshots, this month's deals, positions."""
    from datetime import timedelta
    from decimal import Decimal

    from django.contrib.auth.models import Group
    from django.utils import timezone

    from accounts import vault
    from accounts.choices import Role
    from accounts.models import AccountSnapshot, Deal, Position, TradingAccount, User

    user, _ = User.objects.get_or_create(email="dashboard-bench@example.com")
    user.groups.add(*Group.objects.filter(name=Role.TRADER))  # as sign-up does: the trader role
    cookie = _session_cookie(user)
    if TradingAccount.objects.filter(owner=user).count() == ACCOUNTS:
        return cookie
    TradingAccount.objects.filter(owner=user).delete()
    now = timezone.now()
    password = vault.encrypt("x")
    accounts = TradingAccount.objects.bulk_create(
        [
            TradingAccount(
                owner=user,
                login=9_400_000 + i,
                server="MetaSim-Demo",
                name=f"Account {i:02d}",
                password_encrypted=password,
                balance=Decimal("10000") + i,
                equity=Decimal("10050") + i,
                floating_profit=Decimal("50"),
                margin=Decimal("500"),
                margin_level=Decimal("2010"),
                sync_status="ok",
                last_sync_at=now,
            )
            for i in range(ACCOUNTS)
        ]
    )
    snapshots, deals, positions = [], [], []
    for account in accounts:
        for k in range(288):
            snapshots.append(
                AccountSnapshot(
                    account=account,
                    taken_at=now - timedelta(minutes=15 * k),
                    balance=Decimal("10000"),
                    equity=Decimal("10000") + k % 40,
                    floating_profit=Decimal(k % 40),
                )
            )
        deals.append(
            Deal(account=account, ticket=1, time=now - timedelta(days=40), deal_type=2, profit=Decimal("10000"))
        )
        for k in range(60):
            when = now - timedelta(hours=6 * k)
            deals.append(
                Deal(
                    account=account,
                    ticket=10 + 2 * k,
                    time=when - timedelta(minutes=30),
                    deal_type=0,
                    entry=0,
                    position_id=10 + k,
                    symbol="EURUSD",
                    volume=Decimal("0.1"),
                    price=Decimal("1.08012"),
                )
            )
            deals.append(
                Deal(
                    account=account,
                    ticket=11 + 2 * k,
                    time=when,
                    deal_type=1,
                    entry=1,
                    position_id=10 + k,
                    symbol="EURUSD",
                    volume=Decimal("0.1"),
                    price=Decimal("1.08112"),
                    profit=Decimal("10.00"),
                    commission=Decimal("-0.70"),
                )
            )
        for k in range(3):
            positions.append(
                Position(
                    account=account,
                    ticket=900 + k,
                    symbol="EURUSD",
                    side=0,
                    volume=Decimal("0.1"),
                    price_open=Decimal("1.08"),
                    price_current=Decimal("1.0805"),
                    profit=Decimal("5"),
                    opened_at=now,
                    updated_at=now,
                )
            )
    AccountSnapshot.objects.bulk_create(snapshots, batch_size=5000)
    Deal.objects.bulk_create(deals, batch_size=5000)
    Position.objects.bulk_create(positions)
    return cookie


def _session_cookie(user) -> str:
    """A logged-in browser session (the dashboard's own client; API tokens are a plan feature)."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    store = import_module(settings.SESSION_ENGINE).SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "accounts.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.save()
    return f"{settings.SESSION_COOKIE_NAME}={store.session_key}"


def _in_process(repeat: int = 50) -> dict:
    """dashboard_summary() called directly: wall and CPU time, and its query count."""
    import statistics
    import time

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.dashboard import dashboard_summary
    from accounts.models import User

    user = User.objects.get(email="dashboard-bench@example.com")
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        with CaptureQueriesContext(connection) as queries:
            dashboard_summary(user)
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return {
        "median_ms": round(statistics.median(wall), 2),
        "median_cpu_ms": round(statistics.median(cpu), 2),
        "queries": len(queries.captured_queries),
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def summary(values: list[float]) -> dict:
    return {
        "p50_ms": round(percentile(values, 50), 2),
        "p95_ms": round(percentile(values, 95), 2),
        "p99_ms": round(percentile(values, 99), 2),
        "max_ms": round(max(values), 2),
        "n": len(values),
    }


def main() -> dict:
    import http.client
    import json
    import subprocess
    import time

    import django

    django.setup()
    from django.conf import settings

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from analytics_stats import ensure_database

    load_before = [round(x, 2) for x in os.getloadavg()]
    ensure_database()
    cookie = seed()
    in_process = _in_process()
    # The user throttle keeps a minute of request times: a run straight after another starts from none.
    from django.core.cache import cache

    from accounts.models import User

    cache.delete(f"throttle_user_{User.objects.get(email='dashboard-bench@example.com').pk}")
    # The session cookie is signed here, so the server shares this process's SECRET_KEY.
    env = {
        **os.environ,
        "BENCH_SERVER": "1",
        "DEBUG": "false",
        "SECRET_KEY": settings.SECRET_KEY,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": "WARNING",
        # Production mode wants real keys; the summary never decrypts, so a throwaway one does.
        "FIELD_ENCRYPTION_KEYS": "YmVuY2gtb25seS1rZXktMDEyMzQ1Njc4OWFiY2RlZmc=",
        # What config/asgi.py sets for the web process (this server module loads settings before it).
        "DATABASE_POOL_MAX": os.environ.get("DATABASE_POOL_MAX", "8"),
    }
    command = [
        str(ROOT / ".venv/bin/gunicorn"),
        "dashboard_summary:application",
        "-k",
        "uvicorn.workers.UvicornWorker",
        "--workers",
        str(WORKERS),
        "--bind",
        f"127.0.0.1:{PORT}",
        "--chdir",
        str(Path(__file__).resolve().parent),
        "--log-level",
        "warning",
    ]
    server = subprocess.Popen(command, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                probe = http.client.HTTPConnection("127.0.0.1", PORT, timeout=2)
                probe.request("GET", "/bench/bare")
                if probe.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the server did not start")
            time.sleep(0.3)
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
        headers = {"Cookie": cookie, "Host": "127.0.0.1"}

        def get(url: str) -> tuple[float, int, bytes]:
            t0 = time.perf_counter()
            conn.request("GET", url, headers=headers)
            response = conn.getresponse()
            body = response.read()
            return (time.perf_counter() - t0) * 1000, response.status, body

        for _ in range(50):  # warm both workers' connections and caches
            get("/bench/bare")
            get("/api/dashboard/summary")
        _, status, body = get("/api/dashboard/summary")
        assert status == 200 and len(json.loads(body)["accounts"]) == ACCOUNTS, body[:300]
        bare_ms, drf_ms, summary_ms = [], [], []
        statuses: dict[int, int] = {}
        for _ in range(REQUESTS):
            for url, times in (
                ("/bench/bare", bare_ms),
                ("/bench/drf-bare", drf_ms),
                ("/api/dashboard/summary", summary_ms),
            ):
                ms, status, _ = get(url)
                times.append(ms)
                statuses[status] = statuses.get(status, 0) + 1
        if set(statuses) != {200}:
            raise SystemExit(f"answers other than 200 (throttled?): {statuses}")
        figures = {
            "accounts": ACCOUNTS,
            "workers": WORKERS,
            "cores": os.cpu_count(),
            "summary_bytes": len(body),
            "bare": summary(bare_ms),
            "drf_bare_same_auth": summary(drf_ms),
            "dashboard_summary": summary(summary_ms),
            "in_process_dashboard_summary": in_process,
            "p95_ratio_to_bare": round(percentile(summary_ms, 95) / percentile(bare_ms, 95), 2),
            "p50_ratio_to_bare": round(percentile(summary_ms, 50) / percentile(bare_ms, 50), 2),
            "load_average_before": load_before,
            "load_average": [round(x, 2) for x in os.getloadavg()],
        }
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(json.dumps(figures, indent=2))
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "dashboard.json").write_text(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
