"""Two nodes of each role sharing one PostgreSQL and one Redis: SIGKILL one web node and one Celery worker node in
the middle of a burst of copies and of queued tasks. The other web node serves (behind a proxy that skips a dead
node, as a load balancer does), every copy is executed once, and every queued task runs on the other worker,
the one that was running on the killed worker too (acks late: it goes back to the queue after the visibility
timeout)."""

from __future__ import annotations

import time

import pytest
from celery import Celery

from tests.faults.copies import copy_ledger
from tests.faults.harness import FailoverProxy, System, report, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.faults, pytest.mark.django_db, pytest.mark.xdist_group("faults-nodes")]

TASKS = 12
VISIBILITY_TIMEOUT = 4  # seconds before a task taken by a dead worker is delivered again (CELERY_VISIBILITY_TIMEOUT)


def test_sigkill_of_one_web_node_and_one_worker_node_leaves_the_system_working(fault_system_factory):
    system: System = fault_system_factory(env={"CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT)})
    info = system.seed(slaves=2)
    a, b = system.start_web("web-a"), system.start_web("web-b")
    for name in ("worker-1", "worker-2"):
        system.start_role(
            name,
            system.celery(
                "worker",
                "-n",
                f"{name}@%h",
                "-Q",
                "default",
                "-c",
                "1",
                "-I",
                "tests.faults.probe_tasks",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "WARNING",
            ),
        )
    proxy = FailoverProxy([a, b])
    try:
        for name in ("web-a", "web-b"):
            wait_until(lambda name=name: system.web_answers(name), timeout=180, what=f"{name} to answer")
        logins = [str(info["master"]), *map(str, info["slaves"])]
        tokens = [arg for login in logins for arg in ("--token", info["tokens"][login])]
        system.start_role(
            "eas", system.manage("run_ea_client", *logins, "--url", proxy.url(), "--interval", "0.3", *tokens)
        )

        system.wait_for_eas([info["master"], *info["slaves"]])
        app = Celery(broker=system.redis.url(), set_as_current=False)  # the tests after this one keep the project app
        for number in range(TASKS):
            app.send_task("faults.probe", args=[number, 1.0], queue="default")
        burst = system.burst(info["master"], tag="nodes", count=8, every=0.3)
        redis = system.redis.client()
        wait_until(lambda: redis.hlen("faults:probe") >= 2, timeout=60, what="the workers to take tasks")
        system.kill_role("web-a")  # SIGKILL of the whole node: its process group
        system.kill_role("worker-1")
        killed_at = time.monotonic()

        burst.wait(timeout=120)
        assert burst.returncode == 0
        wait_until(
            lambda: (
                copy_ledger(system, master=info["master"], slaves=info["slaves"], tag="nodes").complete
                and copy_ledger(system, master=info["master"], slaves=info["slaves"], tag="nodes").master_positions == 8
            ),
            timeout=90,
            what="every copy through the surviving web node",
        )
        copies_after = time.monotonic() - killed_at
        wait_until(lambda: redis.hlen("faults:probe") == TASKS, timeout=90, what="every task on the surviving worker")
        tasks_after = time.monotonic() - killed_at
        report(f"RECOVERY nodes: copies {copies_after:.1f} s, tasks {tasks_after:.1f} s after the SIGKILL")
    finally:
        proxy.stop()

    ledger = copy_ledger(system, master=info["master"], slaves=info["slaves"], tag="nodes")
    assert ledger.executed == 8 * 2 and ledger.executed_twice == []
    runs = {int(k): int(v) for k, v in system.redis.client().hgetall("faults:probe").items()}
    assert sorted(runs) == list(range(TASKS))  # no queued task lost with its worker
    assert system.web_answers("web-b")
    assert system.alive()["worker-2"] is None and system.alive()["web-b"] is None
