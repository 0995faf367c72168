"""Open a burst of positions on the master through the simulated MT5 (``python -m tests.faults.burst``).

Each position carries the comment ``<tag>:<i>``. The burst rides out the faults it is run through: an open that
failed is tried again after backoff, and first looks for a deal with its comment, so a lost reply never opens a
second position.
"""

from __future__ import annotations

import argparse
import os
import time
from decimal import Decimal

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from config.resilience import Resilient  # noqa: E402
from mt5bridge import gateway as gw  # noqa: E402


def open_once(gateway: gw.MT5Gateway, login: int, symbol: str, comment: str, buy: bool) -> None:
    if gateway.deals_by_comment(login, comment):
        return  # opened by an earlier attempt whose reply was lost
    result = gateway.order_send(
        login,
        gw.OrderRequest(
            action=gw.TradeAction.DEAL,
            symbol=symbol,
            volume=Decimal("0.01"),
            type=gw.OrderType.BUY if buy else gw.OrderType.SELL,
            comment=comment,
        ),
    )
    if not result.ok:
        raise gw.GatewayUnavailable(f"open refused: {result.retcode} {result.comment}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("login", type=int)
    parser.add_argument("--tag", required=True)
    parser.add_argument("--count", type=int, default=12)
    parser.add_argument("--every", type=float, default=0.4)
    args = parser.parse_args()
    gateway = gw.get_gateway("simulated")
    guard = Resilient(f"burst {args.tag}", transient=(gw.GatewayUnavailable,), max_delay=2.0)
    symbol = None
    while symbol is None:
        ok, symbols = guard.call(gateway.symbols, args.login)
        symbol = next((s.name for s in symbols if s.name.upper().startswith("BTCUSD")), None) if ok else None
        time.sleep(guard.next_wait(0.0))
    for i in range(args.count):
        while not guard.call(open_once, gateway, args.login, symbol, f"{args.tag}:{i}", i % 2 == 0)[0]:
            time.sleep(guard.next_wait(0.0))
        print(f"{args.tag}:{i}", flush=True)
        time.sleep(args.every)


if __name__ == "__main__":
    main()
