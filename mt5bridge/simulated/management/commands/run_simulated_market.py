"""The simulated MT5 server's market loop: fills pending orders, SL/TP and stop-outs every second.

A long-running, SIGTERM-aware worker. Accounts are also settled whenever they are read or
traded, so this loop only makes the market move for accounts nobody is looking at.
"""

from __future__ import annotations

import signal
import time

from django.core.management.base import BaseCommand
from django.db import close_old_connections

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
        while self.running:
            started = time.monotonic()
            close_old_connections()
            try:
                run = process_market()
                if run.accounts_settled:
                    self.stdout.write(f"settled {run.accounts_settled} of {run.accounts_checked} accounts")
            except Exception as exc:  # keep the market alive through a database hiccup
                self.stderr.write(f"market pass failed: {exc}")
            if once:
                return
            time.sleep(max(0.0, interval - (time.monotonic() - started)))

    def _stop(self, *_):
        self.running = False
