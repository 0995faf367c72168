"""A demo trader on the simulated market: opens and closes positions on given accounts, so that the copy-trading
demo has a master whose trades the slaves copy live."""

from __future__ import annotations

import random
import signal
import threading
from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError

from accounts.models import TradingAccount
from accounts.vault import decrypt
from config.resilience import Resilient
from mt5bridge import gateway as gw

DEMO_MAGIC = 20260


class Command(BaseCommand):
    help = "Trade the given simulated accounts: open a position every --every s, keep at most --max-open (demo)."

    def add_arguments(self, parser):
        parser.add_argument("logins", nargs="+", type=int, help="MT5 logins on the simulated server")
        parser.add_argument("--every", type=float, default=20.0, help="seconds between trading decisions")
        parser.add_argument("--max-open", type=int, default=3, help="positions kept open at most per account")
        parser.add_argument("--symbol", default="BTCUSD", help="base symbol to trade (crypto trades 24/7)")
        parser.add_argument("--once", action="store_true", help="one decision per account, then exit")

    def handle(self, *args, **options):
        gateway = gw.get_gateway("simulated")
        accounts = []
        for login in options["logins"]:
            account = TradingAccount.objects.filter(login=login, gateway_kind="simulated").first()
            if account is None:
                raise CommandError(f"no simulated trading account with login {login}")
            gateway.login(
                gw.Credentials(login=login, password=decrypt(account.password_encrypted), server=account.server)
            )
            accounts.append(account)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        rng = random.Random()
        # A database or gateway outage skips a decision instead of ending the demo (config/resilience.py): the
        # outage is logged once, the next decision waits with backoff, and the recovery is logged once.
        guard = Resilient("demo trader", transient=(gw.GatewayUnavailable,))
        while not stop.is_set():
            for account in accounts:
                ok, message = guard.call(self.decide, gateway, account.login, options, rng)
                if ok:
                    self.stdout.write(f"{account.login}: {message}")
            if options["once"]:
                return
            stop.wait(guard.next_wait(options["every"]))

    def decide(self, gateway: gw.MT5Gateway, login: int, options: dict, rng: random.Random) -> str:
        mine = sorted((p for p in gateway.positions(login) if p.magic == DEMO_MAGIC), key=lambda p: p.time)
        if len(mine) >= options["max_open"] or (mine and rng.random() < 0.35):
            position = mine[0]
            result = gateway.order_send(
                login, gw.OrderRequest.closing(position, magic=DEMO_MAGIC, comment="demo close")
            )
            return f"close #{position.ticket}: {result.retcode} {result.comment}"
        symbol = next(
            (s.name for s in gateway.symbols(login) if s.name.upper().startswith(options["symbol"].upper())), None
        )
        if symbol is None:
            return f"no {options['symbol']} symbol on this server"
        side = rng.choice([gw.OrderType.BUY, gw.OrderType.SELL])
        volume = Decimal(rng.choice(["0.10", "0.20", "0.30"]))
        result = gateway.order_send(
            login,
            gw.OrderRequest(
                action=gw.TradeAction.DEAL,
                symbol=symbol,
                volume=volume,
                type=side,
                magic=DEMO_MAGIC,
                comment="demo trader",
            ),
        )
        return f"open {side.name} {volume} {symbol}: {result.retcode} {result.comment}"
