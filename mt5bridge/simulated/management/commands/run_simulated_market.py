"""The simulated MT5 server's market loop: fills pending orders, SL/TP and stop-outs every second.

A long-running, SIGTERM-aware worker. Accounts are also settled whenever they are read or
traded, so this loop only makes the market move for accounts nobody is looking at.
"""

from __future__ import annotations

import signal
import time

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from config.resilience import Resilient
from mt5bridge.simulated.engine import process_market


class Command(BaseCommand):
    help = "Run the simulated MT5 market loop (pending orders, SL/TP, stop-out)."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=1.0, help="Seconds between passes.")
        parser.add_argument("--once", action="store_true", help="Run one pass and exit.")

    def handle(self, *args, interval: float, once: bool, **options):
        self.running = True
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        guard = Resilient("simulated market")  # a database outage is waited out, logged once (config/resilience.py)
        while self.running:
            started = time.monotonic()
            close_old_connections()
            ok, run = guard.call(process_market)
            if ok and run.accounts_settled:
                self.stdout.write(f"settled {run.accounts_settled} of {run.accounts_checked} accounts")
            if once:
                return
            wait = guard.next_wait(interval) - (time.monotonic() - started if guard.healthy else 0.0)
            time.sleep(max(0.0, wait))

    def _stop(self, *_):
        self.running = False
