"""`manage.py run_bonus_monitor [--shard i --shards n]`: the 0.3 s account monitor, until SIGTERM.

It also takes over the shards of the same split whose monitor died (bonuses/leases.py).
"""

from __future__ import annotations

import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from bonuses.monitor import Monitor


class Command(BaseCommand):
    help = "Watch the MT5 accounts of one shard every BONUS_MONITOR_INTERVAL seconds (stops cleanly on SIGTERM)."

    def add_arguments(self, parser):
        parser.add_argument("--shard", type=int, default=0, help="This worker's shard (0-based)")
        parser.add_argument("--shards", type=int, default=1, help="How many shards the accounts are split into")
        parser.add_argument("--interval", type=float, default=None, help="Seconds between cycles")
        parser.add_argument("--cycles", type=int, default=None, help="Stop after this many cycles (tests, benchmarks)")
        parser.add_argument(
            "--trace", default=None, help="Append one JSON line per cycle (held shards, start, end) to this file"
        )

    def handle(self, *args, shard: int, shards: int, interval: float | None, cycles: int | None, trace=None, **options):
        if shards < 1 or not 0 <= shard < shards:
            raise CommandError(f"--shard must be between 0 and {shards - 1}")
        if interval is not None and interval < 0:
            raise CommandError("--interval must not be negative")
        stop = threading.Event()

        def _stop(signum, frame):
            self.stdout.write(f"signal {signum}: finishing the current cycle")
            stop.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        monitor = Monitor(shard=shard, shards=shards, trace=trace)
        mode = f"postings queued on {settings.BONUS_OPERATIONS_QUEUE}" if monitor.queued else "postings inline"
        self.stdout.write(f"bonus monitor {monitor.worker} on shard {shard}/{shards} ({mode})", ending="\n")
        self.stdout.flush()
        ran = monitor.run(stop=stop, interval=interval, max_cycles=cycles)
        self.stdout.write(f"bonus monitor stopped after {ran} cycles")
