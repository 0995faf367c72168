"""Push price-driven equity changes of simulated accounts to live dashboards, every second.

A long-running, SIGTERM-aware loop: one bulk ``accounts_info`` call per simulated server,
and a live update for each account whose figures moved.
"""

from __future__ import annotations

import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from config.resilience import Resilient
from mt5bridge.gateway import GatewayUnavailable
from mt5bridge.live_prices import live_prices_pass


class Command(BaseCommand):
    help = "Publish live equity of simulated accounts with open positions (the demo's moving market)."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=None, help="Seconds between passes.")
        parser.add_argument("--once", action="store_true", help="Run one pass and exit.")

    def handle(self, *args, interval: float | None, once: bool, **options):
        interval = interval or settings.LIVE_PRICES_INTERVAL
        self.running = True
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        # A database, Redis or gateway outage is waited out and logged once (config/resilience.py).
        guard = Resilient("live prices", transient=(GatewayUnavailable,))
        while self.running:
            started = time.monotonic()
            close_old_connections()
            ok, published = guard.call(live_prices_pass)
            if ok and published and options.get("verbosity", 1) > 1:
                self.stdout.write(f"published {published} accounts")
            if once:
                return
            wait = guard.next_wait(interval) - (time.monotonic() - started if guard.healthy else 0.0)
            time.sleep(max(0.0, wait))

    def _stop(self, *_):
        self.running = False
