"""Run reference EAs (mt5bridge.ea_client) for given trading accounts against a server's EA endpoints."""

from __future__ import annotations

import logging
import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from accounts.models import TradingAccount
from mt5bridge.ea.services import ea_token_issue
from mt5bridge.ea_client import ReferenceEA


class Command(BaseCommand):
    help = "Run one reference EA per account (simulated MT5 by default) until SIGTERM/SIGINT."
    requires_system_checks: list = []  # a client of the server: the server's checks are not its business

    def add_arguments(self, parser):
        parser.add_argument("accounts", nargs="+", help="trading account ids (UUID) or MT5 logins")
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="server base URL")
        parser.add_argument("--interval", type=float, default=1.0, help="seconds between heartbeats")
        parser.add_argument("--long-poll", type=int, default=0, help="hold GET /api/ea/commands up to N s")
        parser.add_argument(
            "--token",
            action="append",
            default=[],
            help="EA token per account, in order (default: rotate and use a fresh one)",
        )

    def handle(self, *args, **options):
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per beat drowns the demo's output

        accounts = []
        for ref in options["accounts"]:
            query = (
                TradingAccount.objects.filter(login=int(ref))
                if ref.isdigit()
                else TradingAccount.objects.filter(pk=ref)
            )
            account = query.first()
            if account is None:
                raise CommandError(f"no trading account {ref}")
            accounts.append(account)
        tokens = options["token"] or [ea_token_issue(account=a) for a in accounts]
        if len(tokens) != len(accounts):
            raise CommandError("give one --token per account, or none")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        threads = []
        for account, token in zip(accounts, tokens, strict=True):
            ea = ReferenceEA(base_url=options["url"], token=token, login=account.login)
            thread = threading.Thread(
                target=ea.run,
                kwargs={"stop": stop, "interval": options["interval"], "long_poll": options["long_poll"]},
                daemon=True,
            )
            thread.start()
            threads.append(thread)
            self.stdout.write(f"EA for {account} running against {options['url']}")
        stop.wait()
        for thread in threads:
            thread.join(timeout=40)
