"""Money moving on the demo's broker clients: deposits, withdrawals and a little trading, through the gateway.

Three clients on the simulated server, one per bonus demo campaign: each campaign targets its client by the
MT5 Lead Source (an agent code, ``DEMO-A`` / ``DEMO-B`` / ``DEMO-C``, see ``seed_bonus_demo``). The flows only
touch MT5; the bonus monitor notices them as it would on a broker's server and lets the campaigns react:

- the type A client deposits and withdraws in turn: the first deposit grants a dynamic-leverage bonus, each
  withdrawal takes a share of its credit back and moves the leverage;
- the type B client does the same: a fixed-leverage credit that each withdrawal trims;
- the type C client deposits and trades a little every step: the lots convert its credit bit by bit (it never
  withdraws, which would cancel the convertible bonus).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal

from mt5bridge import gateway as gw

from .seeding import create_account

FLOW_MAGIC = 20261
PASSWORD = "Mt5-demo-pass"
SERVER = "MetaSim-Demo"
FIRST_DEPOSIT = Decimal("1000")
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Client:
    login: int
    name: str
    lead_source: str  # the agent code its campaign targets
    withdraws: bool
    trades: bool


CLIENTS = (
    Client(5900001, "Demo client A", "DEMO-A", withdraws=True, trades=False),
    Client(5900002, "Demo client B", "DEMO-B", withdraws=True, trades=False),
    Client(5900003, "Demo client C", "DEMO-C", withdraws=False, trades=True),
)


def clients_ensure() -> list[int]:
    """The demo clients on the simulated server, with no money yet (idempotent)."""
    for client in CLIENTS:
        create_account(
            login=client.login,
            password=PASSWORD,
            server=SERVER,
            balance=Decimal("0"),
            name=client.name,
            email=f"client{client.login}@demo.local",
            country="DE",
            lead_source=client.lead_source,
        )
    return [client.login for client in CLIENTS]


class DemoFlows:
    """One ``step()`` moves money on every client; call it every ~30 s."""

    def __init__(self, gateway: gw.MT5Gateway | None = None, *, seed: int | None = None, symbol: str = "BTCUSD"):
        self.gateway = gateway or gw.get_gateway("simulated")
        self.rng = random.Random(seed)
        self.symbol = symbol
        self.steps = 0

    def step(self) -> list[str]:
        lines = []
        for client in CLIENTS:
            try:
                lines.append(f"{client.login}: {self._move(client)}")
            except gw.GatewayError as exc:  # a refused posting (margin, market closed) is the demo's weather
                lines.append(f"{client.login}: {exc}")
        self.steps += 1
        return lines

    def _move(self, client: Client) -> str:
        balance = self.gateway.account_info(client.login).balance
        done = []
        if client.trades:
            done.append(self._round_trip(client.login))
        if balance <= 0:
            amount = FIRST_DEPOSIT
        elif client.withdraws and self.steps % 2 == 1:
            amount = -(balance * Decimal(self.rng.choice(["0.03", "0.05", "0.08"]))).quantize(CENT)
        elif client.withdraws or self.steps % 3 == 2:
            amount = Decimal(self.rng.choice(["100", "150", "250"]))
        else:
            return ", ".join(done) or "idle"
        comment = "Deposit" if amount > 0 else "Withdrawal"
        ticket = self.gateway.balance_operation(client.login, amount, gw.DealType.BALANCE, comment)
        done.append(f"{comment.lower()} {abs(amount)} (#{ticket})")
        return ", ".join(done)

    def _round_trip(self, login: int) -> str:
        """Open and close a small position: a closed lot for the convertible bonus to count."""
        symbol = next((s.name for s in self.gateway.symbols(login) if s.name.upper().startswith(self.symbol)), None)
        if symbol is None:
            return f"no {self.symbol} symbol"
        volume = Decimal("0.10")
        side = self.rng.choice([gw.OrderType.BUY, gw.OrderType.SELL])
        request = gw.OrderRequest(
            action=gw.TradeAction.DEAL, symbol=symbol, volume=volume, type=side, magic=FLOW_MAGIC, comment="demo flow"
        )
        opened = self.gateway.order_send(login, request)
        if not opened.ok:
            return f"open refused: {opened.retcode} {opened.comment}"
        position = next((p for p in self.gateway.positions(login) if p.magic == FLOW_MAGIC), None)
        if position is None:
            return "opened, no position to close"
        closed = self.gateway.order_send(
            login, gw.OrderRequest.closing(position, magic=FLOW_MAGIC, comment="demo flow")
        )
        return f"traded {volume} {symbol}" if closed.ok else f"close refused: {closed.retcode} {closed.comment}"
