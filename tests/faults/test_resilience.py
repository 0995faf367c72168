"""The loop guard (config/resilience.py) and the reference EA riding out an MT5 gateway that is down or slow."""

from __future__ import annotations

import logging
import threading
import time

import httpx
import pytest
from django.db import OperationalError

from config.resilience import Resilient
from mt5bridge import gateway as gw
from mt5bridge.ea_client import ReferenceEA
from tests.faults.harness import wait_until
from tests.personas import sim_login  # noqa: F401 - fixture

pytestmark = [pytest.mark.faults, pytest.mark.django_db]  # the guard closes broken database connections


def test_an_outage_is_logged_once_and_its_recovery_once(caplog):
    guard = Resilient("market", base_delay=0.01, max_delay=0.04)
    calls = iter([OperationalError("terminating connection")] * 5 + [None])

    def step():
        error = next(calls)
        if error:
            raise error
        return "settled"

    with caplog.at_level(logging.WARNING, logger="config.resilience"):
        results = [guard.call(step) for _ in range(6)]
    assert results[:5] == [(False, None)] * 5 and results[5] == (True, "settled")
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "outage" in m]) == 1
    assert len([m for m in messages if "recovered" in m and "5 failed attempts" in m]) == 1
    assert guard.healthy and guard.outages == 1


def test_backoff_grows_to_its_cap_and_returns_to_the_interval_after_recovery():
    guard = Resilient("loop", base_delay=0.5, max_delay=4.0)
    boom = lambda: (_ for _ in ()).throw(OperationalError("down"))  # noqa: E731
    waits = []
    for _ in range(8):
        guard.call(boom)
        waits.append(guard.next_wait(0.0))
    assert waits[0] <= 0.5 and waits[-1] >= 2.0 and max(waits) <= 4.0
    guard.call(lambda: None)
    assert guard.next_wait(1.0) == 1.0


def test_a_bug_in_a_step_is_logged_with_its_traceback_and_the_loop_goes_on(caplog):
    guard = Resilient("loop")
    with caplog.at_level(logging.WARNING, logger="config.resilience"):
        ok, _ = guard.call(lambda: 1 / 0)
    assert not ok and caplog.records[-1].exc_info is not None
    assert guard.call(lambda: 2) == (True, 2)


class FlakyGateway:
    """The simulated MT5 behind a switch: down (GatewayUnavailable) or slow (each call waits)."""

    def __init__(self, inner: gw.MT5Gateway):
        self.inner = inner
        self.down = False
        self.delay = 0.0
        self.calls = 0

    def __getattr__(self, name):
        method = getattr(self.inner, name)

        def call(*args, **kwargs):
            self.calls += 1
            time.sleep(self.delay)
            if self.down:
                raise gw.GatewayUnavailable("MT5 server unreachable")
            return method(*args, **kwargs)

        return call


@pytest.mark.django_db(transaction=True)
def test_the_reference_ea_rides_out_a_gateway_that_is_down_then_slow(sim_login, caplog):  # noqa: F811
    beats = []

    def server(request: httpx.Request) -> httpx.Response:
        beats.append(time.monotonic())
        return httpx.Response(200, json={"commands": [], "acks": []})

    gateway = FlakyGateway(gw.get_gateway("simulated"))
    ea = ReferenceEA(
        base_url="http://ea.test",
        token="t",
        login=sim_login,
        gateway=gateway,
        http=httpx.Client(transport=httpx.MockTransport(server)),
    )
    stop = threading.Event()
    thread = threading.Thread(target=ea.run, kwargs={"stop": stop, "interval": 0.05}, daemon=True)
    with caplog.at_level(logging.WARNING, logger="mt5bridge.ea_client"):
        thread.start()
        try:
            wait_until(lambda: len(beats) >= 3, timeout=20, what="first beats")
            gateway.down = True
            time.sleep(1.0)
            during = len(beats)
            time.sleep(0.5)
            assert len(beats) == during  # no beat without the account's state
            gateway.down = False
            wait_until(lambda: len(beats) >= during + 3, timeout=20, what="beats after the gateway came back")
            gateway.delay = 0.2  # slow: beats go on, slower, without errors
            slow_from = len(beats)
            wait_until(lambda: len(beats) >= slow_from + 2, timeout=20, what="beats through a slow gateway")
            assert thread.is_alive()
        finally:
            stop.set()
            thread.join(timeout=10)
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "outage" in m and "GatewayUnavailable" in m]) == 1
    assert len([m for m in messages if "recovered" in m]) == 1
