"""Load demo data (idempotent): staff per role, traders, MT5 accounts with months of history."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.choices import Role
from accounts.models import TradingAccount, User
from accounts.services import trading_account_create
from mt5bridge import gateway as gw
from mt5bridge.simulated.demo_flows import clients_ensure
from mt5bridge.simulated.seeding import create_account, generate_history
from mt5bridge.sync import account_sync

DEMO_PASSWORD = "demo-pass-123"
MT5_PASSWORD = "Mt5-demo-pass"


@dataclass(frozen=True)
class DemoPerson:
    email: str
    name: str
    role: str
    superuser: bool = False


@dataclass(frozen=True)
class DemoAccount:
    owner: str
    login: int
    server: str
    name: str
    category: str
    balance: str
    hedging: bool = True
    leverage: int = 500
    days: int = 150
    trades_per_day: int = 6


STAFF = [
    DemoPerson("admin@demo.local", "Ada Admin", Role.SUPER_ADMIN, superuser=True),
    DemoPerson("campaigns@demo.local", "Cam Campaigns", Role.CAMPAIGN_MANAGER),
    DemoPerson("support@demo.local", "Sam Support", Role.SUPPORT_AGENT),
    DemoPerson("readonly@demo.local", "Rita Readonly", Role.READ_ONLY),
]
TRADERS = [
    DemoPerson("alice@demo.local", "Alice Trader", Role.TRADER),
    DemoPerson("bob@demo.local", "Bob Signals", Role.TRADER),
    DemoPerson("carol@demo.local", "Carol Prop", Role.TRADER),
]
ACCOUNTS = [
    DemoAccount("alice@demo.local", 5100001, "MetaSim-Demo", "Alice swing", "demo", "10000"),
    DemoAccount("alice@demo.local", 5100002, "MetaSim-Live", "Alice live", "real", "25000", leverage=200),
    DemoAccount(
        "alice@demo.local", 5100003, "OtherFX-Server", "Alice netting", "funded", "50000", hedging=False, leverage=100
    ),
    DemoAccount(
        "bob@demo.local", 5200001, "MetaSim-Live", "Bob master", "real", "100000", leverage=100, trades_per_day=10
    ),
    DemoAccount("bob@demo.local", 5200002, "MetaSim-Demo", "Bob follower", "demo", "5000"),
    DemoAccount(
        "carol@demo.local", 5300001, "OtherFX-Server", "Carol challenge", "challenge", "100000", leverage=100, days=60
    ),
]
# Positions left open on each account so equity moves live (crypto trades around the clock).
OPEN_POSITIONS = [
    ("BTCUSD", "0.10", gw.OrderType.BUY),
    ("ETHUSD", "1.00", gw.OrderType.SELL),
    ("EURUSD", "0.50", gw.OrderType.BUY),
    ("XAUUSD", "0.20", gw.OrderType.SELL),
]


class Command(BaseCommand):
    help = "Create demo users, MT5 accounts on the simulated server with history, and sync them (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--list-logins", action="store_true", help="Print the demo logins and exit.")

    def handle(self, *args, list_logins: bool = False, **options):
        if list_logins:
            for person in STAFF + TRADERS:
                self.stdout.write(f"    {person.email:<24} {person.role}")
            return
        people = {person.email: self._person(person) for person in STAFF + TRADERS}
        created = 0
        for spec in ACCOUNTS:
            created += self._account(people[spec.owner], spec)
        clients_ensure()  # the bonus demo's broker clients (run_demo_flows moves their money)
        self.stdout.write(
            self.style.SUCCESS(f"Demo data ready: {len(people)} people, {len(ACCOUNTS)} MT5 accounts ({created} new).")
        )

    def _person(self, person: DemoPerson) -> User:
        user, created = User.objects.get_or_create(
            email=person.email,
            defaults={
                "display_name": person.name,
                "is_staff": person.role != Role.TRADER,
                "is_superuser": person.superuser,
            },
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
        user.groups.add(Group.objects.get(name=person.role))
        return user

    def _account(self, owner: User, spec: DemoAccount) -> int:
        if TradingAccount.objects.filter(owner=owner, login=spec.login, server=spec.server).exists():
            return 0
        with transaction.atomic():
            create_account(
                login=spec.login,
                password=MT5_PASSWORD,
                server=spec.server,
                balance=Decimal(spec.balance),
                leverage=spec.leverage,
                hedging=spec.hedging,
                name=owner.display_name,
                email=owner.email,
                country="DE",
                lead_source="demo",
            )
            generate_history(spec.login, days=spec.days, trades_per_day=spec.trades_per_day, seed=spec.login)
        self._open_positions(spec)
        account = trading_account_create(
            owner=owner,
            login=spec.login,
            password=MT5_PASSWORD,
            server=spec.server,
            category=spec.category,
            name=spec.name,
            sync_now=False,
        )
        account_sync(account_id=account.pk, trigger="seed")
        return 1

    def _open_positions(self, spec: DemoAccount) -> None:
        gateway = gw.get_gateway("simulated")
        gateway.login(gw.Credentials(login=spec.login, password=MT5_PASSWORD, server=spec.server))
        names = {symbol.name for symbol in gateway.symbols(spec.login)}
        for base, volume, side in OPEN_POSITIONS:
            symbol = next((name for name in sorted(names) if name.upper().startswith(base)), None)
            if symbol is None:
                continue
            # Outside market hours forex and metals answer 10018; the crypto positions still open.
            gateway.order_send(
                spec.login,
                gw.OrderRequest(
                    action=gw.TradeAction.DEAL,
                    symbol=symbol,
                    volume=Decimal(volume),
                    type=side,
                    magic=0,
                    comment="demo",
                ),
            )
