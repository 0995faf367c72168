"""Riding out outages in long-running loops: one step at a time, a transient error logged once, backoff, recovery.

Every loop of the system (the simulated market, live prices, the reference EA client, the demo trader) runs
its work through one :class:`Resilient` guard::

    guard = Resilient("market", transient=(GatewayUnavailable,))
    while running:
        ok, value = guard.call(process_market)
        time.sleep(guard.next_wait(interval))

A step that raises a transient error (PostgreSQL or Redis unreachable, a connection terminated, a timeout, plus
what the caller adds, such as an MT5 gateway that is down) is not fatal: the first failure of an outage is logged
once as a warning, the database connections the error left unusable are closed (the next step opens fresh ones),
and the loop waits with exponential backoff and jitter (``base_delay`` doubling up to ``max_delay``). The first
step that succeeds again logs the recovery once, with how long the outage lasted. Any other exception is a bug,
logged with its traceback each time and retried with the same backoff, so a loop never dies of one bad pass;
a process that does exit is restarted by the process supervisor (docs/reliability.md).

Work committed by a failed step stays committed; a step must be safe to run again (each loop's step is: a market
pass, a live-prices pass, an EA beat whose commands are executed once by command id).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import redis.exceptions
from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections

logger = logging.getLogger("config.resilience")

# Errors of an outage, not of the code: the connection or the server went away, or answered too late.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,  # connection refused or terminated (pg_terminate_backend, restart, failover)
    InterfaceError,  # a connection already closed under us
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,  # a restarted Redis loading its data
    ConnectionError,  # sockets of other clients (HTTP to the web process, MT5 bridges)
    TimeoutError,
)


def reset_database_connections() -> None:
    """Close the connections an error left unusable, so the next query opens a fresh one."""
    try:
        close_old_connections()
    except DatabaseError:  # closing a connection the server already dropped can itself fail
        logger.debug("closing a broken database connection failed", exc_info=True)


class Resilient:
    """Runs one step of a loop; logs an outage once and its recovery once; says how long to wait next."""

    def __init__(
        self,
        name: str,
        *,
        transient: tuple[type[BaseException], ...] = (),
        base_delay: float = 0.5,
        max_delay: float = 15.0,
        log: logging.Logger | None = None,
    ):
        self.name = name
        self.transient = TRANSIENT_ERRORS + tuple(transient)
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.log = log or logger
        self.failures = 0  # consecutive failed steps; 0 while healthy
        self.outage_started: float | None = None
        self.outages = 0  # how many outages this guard has seen (tests and health pages read it)

    @property
    def healthy(self) -> bool:
        return self.failures == 0

    def call(self, step: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[bool, Any]:
        """Run ``step``; (True, its value), or (False, None) after an error that was logged and handled."""
        try:
            value = step(*args, **kwargs)
        except self.transient as exc:
            self._failed(exc, transient=True)
            return False, None
        except Exception as exc:
            self._failed(exc, transient=False)
            return False, None
        if self.failures:
            self._recovered()
        return True, value

    def next_wait(self, interval: float) -> float:
        """Seconds until the next step: the loop's interval while healthy, else the backoff (with jitter)."""
        if not self.failures:
            return max(0.0, interval)
        delay = min(self.max_delay, self.base_delay * 2 ** min(self.failures - 1, 16))
        return max(interval, delay * (0.5 + random.random() / 2))

    def run(self, step: Callable[[], Any], *, interval: float, stop: threading.Event) -> None:
        """Call ``step`` every ``interval`` s (measured from the start of a step) until ``stop`` is set."""
        while not stop.is_set():
            started = time.monotonic()
            self.call(step)
            wait = self.next_wait(interval)
            if self.healthy:
                wait -= time.monotonic() - started
            stop.wait(max(0.0, wait))

    def _failed(self, exc: BaseException, *, transient: bool) -> None:
        reset_database_connections()
        self.failures += 1
        if self.failures == 1:
            self.outage_started = time.monotonic()
            self.outages += 1
        if not transient:
            self.log.exception("%s: step failed (%s); retrying with backoff", self.name, type(exc).__name__)
        elif self.failures == 1:
            self.log.warning(
                "%s: outage: %s: %s; retrying with backoff until it recovers",
                self.name,
                type(exc).__name__,
                str(exc).strip().splitlines()[0] if str(exc).strip() else "",
            )

    def _recovered(self) -> None:
        lasted = time.monotonic() - (self.outage_started or time.monotonic())
        self.log.warning("%s: recovered after %.1f s (%d failed attempts)", self.name, lasted, self.failures)
        self.failures = 0
        self.outage_started = None
