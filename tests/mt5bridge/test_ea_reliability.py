"""Kill the web server and the command producer (SIGKILL) in the middle of a 1,000-command burst, restart them:
every command is executed once — none lost, none twice — by reference EAs trading on the simulated MT5."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.db.models import Count

from mt5bridge.ea.models import Command
from mt5bridge.ea.protocol import order_comment

# Transactional: the web server and the EAs are other processes. The flush at the end re-seeds roles and
# plans through post_migrate.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
BURST = int(os.environ.get("EA_RELIABILITY_BURST", "1000"))
SLAVES = 4

PRODUCER = """
import os, sys, django
django.setup()
from mt5bridge.commands import command_enqueue
ids = sys.argv[1].split(",")
for i in range(int(sys.argv[2])):
    command_enqueue(account_id=ids[i % len(ids)], kind="open_market", origin="copy", idempotency_key=f"burst:{i}",
                    params={"symbol": "BTCUSD", "side": "buy" if i % 2 else "sell", "volume": "0.01"})
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    db = settings.DATABASES["default"]
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "CACHE_KEY_PREFIX": settings.CACHE_KEY_PREFIX,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "EA_REDELIVER_SECONDS": "2",
        "EA_QUEUE_RECONCILE_SECONDS": "1",
        "EA_THROTTLE_PER_SECOND": "200",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }


def _start_web(port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [
            str(ROOT / ".venv/bin/uvicorn"),
            "config.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
            "--lifespan",
            "off",
        ],
        cwd=ROOT,
        env=_env(),
        start_new_session=True,
    )
    for _ in range(300):
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/ea/commands", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("web server did not start")


def _start_producer(slave_ids: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", PRODUCER, ",".join(slave_ids), str(BURST)], cwd=ROOT, env=_env(), start_new_session=True
    )


def _kill(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def test_sigkill_of_web_and_producer_mid_burst_loses_nothing_and_executes_nothing_twice(owner):
    from accounts.services import trading_account_create
    from mt5bridge.ea.services import ea_token_issue
    from mt5bridge.simulated import create_account
    from mt5bridge.simulated.models import SimDeal
    from tests.personas import SIM_PASSWORD, SIM_SERVER, next_login

    slaves, logins, tokens = [], [], []
    for k in range(SLAVES):
        login = next_login()
        create_account(login=login, password=SIM_PASSWORD, server=SIM_SERVER, balance=Decimal("10000000"))
        account = trading_account_create(
            owner=owner, login=login, password=SIM_PASSWORD, server=SIM_SERVER, name=f"slave {k}", sync_now=False
        )
        slaves.append(str(account.pk))
        logins.append(str(login))
        tokens.append(ea_token_issue(account=account))
    port = _free_port()
    web = _start_web(port)
    eas = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "run_ea_client",
            *logins,
            "--url",
            f"http://127.0.0.1:{port}",
            "--interval",
            "0.2",
            *[arg for t in tokens for arg in ("--token", t)],
        ],
        cwd=ROOT,
        env=_env(),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=open(os.environ.get("EA_RELIABILITY_LOG", os.devnull), "w"),  # noqa: SIM115
    )
    producer = _start_producer(slaves)
    try:
        deadline = time.monotonic() + 120
        while Command.objects.filter(idempotency_key__startswith="burst:").count() < BURST * 0.4:
            assert time.monotonic() < deadline, "the producer did not get going"
            time.sleep(0.05)
        _kill(web)
        _kill(producer)
        killed_at = Command.objects.filter(idempotency_key__startswith="burst:").count()
        time.sleep(1)
        web = _start_web(port)
        producer = _start_producer(slaves)  # replays the whole burst; idempotency keys drop what was committed
        producer.wait(timeout=300)
        assert producer.returncode == 0
        deadline = time.monotonic() + 300
        while Command.objects.filter(idempotency_key__startswith="burst:", status="executed").count() < BURST:
            assert time.monotonic() < deadline, Command.objects.values("status").annotate(n=Count("id"))
            time.sleep(0.5)
    finally:
        for proc in (eas, web, producer):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=60)
    commands = list(Command.objects.filter(idempotency_key__startswith="burst:"))
    assert BURST * 0.4 <= killed_at < BURST
    assert len(commands) == BURST and len({c.idempotency_key for c in commands}) == BURST
    assert all(c.status == "executed" for c in commands)
    comments = {order_comment(c.id) for c in commands}
    per_comment = dict(
        SimDeal.objects.filter(account_id__in=[int(x) for x in logins], comment__in=comments)
        .values_list("comment")
        .annotate(n=Count("pk"))
    )
    assert len(per_comment) == BURST, "some commands were never executed"
    assert max(per_comment.values()) == 1, "a command was executed twice"
