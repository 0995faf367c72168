"""The demo's money flows: deposits, withdrawals and a little trading on the demo clients every ~30 s."""

from __future__ import annotations

import signal
import threading

from django.core.management.base import BaseCommand

from config.resilience import Resilient
from mt5bridge import gateway as gw
from mt5bridge.simulated.demo_flows import DemoFlows, clients_ensure


class Command(BaseCommand):
    help = "Move money on the demo clients (5900001-5900003) every --every s, so the bonus campaigns fire (demo)."

    def add_arguments(self, parser):
        parser.add_argument("--every", type=float, default=30.0, help="seconds between steps")
        parser.add_argument("--steps", type=int, default=0, help="stop after this many steps (0: run until stopped)")
        parser.add_argument("--seed", type=int, default=None, help="random seed of the amounts")

    def handle(self, *args, every: float, steps: int, seed: int | None, **options):
        clients_ensure()
        flows = DemoFlows(seed=seed)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        # A database or gateway outage skips a step, logged once (config/resilience.py), instead of ending the demo.
        guard = Resilient("demo flows", transient=(gw.GatewayUnavailable,))
        while not stop.is_set():
            ok, lines = guard.call(flows.step)
            for line in lines if ok else []:
                self.stdout.write(line)
            if steps and flows.steps >= steps:
                return
            stop.wait(guard.next_wait(every))
