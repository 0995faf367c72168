"""Link the demo master to two slaves, with a rule and a template, and publish it as a signal (idempotent; run after
seed_demo)."""

from __future__ import annotations

from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from guardian.shortcuts import assign_perm

from accounts.models import TradingAccount
from copytrading.models import CopyLink, OrderTemplate, Rule, TradingSignal
from copytrading.selectors import bump_config_version
from copytrading.services import copy_link_create
from copytrading.signal_services import signal_publish

MASTER = ("bob@demo.local", 5200001, "MetaSim-Live")  # Bob master
SLAVES = [
    # Bob's own follower on another server (plain symbol names), sized by balance.
    (("bob@demo.local", 5200002, "MetaSim-Demo"), {"sizing_mode": "balance_ratio", "max_delay_seconds": 30}),
    # Alice follows Bob's shared master on a netting account of another broker ("m" suffix), half size.
    (
        ("alice@demo.local", 5100003, "OtherFX-Server"),
        {"sizing_mode": "multiplier", "multiplier": Decimal("0.5"), "max_delay_seconds": 30},
    ),
]


def _account(owner_email: str, login: int, server: str) -> TradingAccount:
    account = TradingAccount.objects.filter(owner__email=owner_email, login=login, server=server).first()
    if account is None:
        raise CommandError(
            f"demo account {login}@{server} of {owner_email} is missing: run `manage.py seed_demo` first"
        )
    return account


class Command(BaseCommand):
    help = (
        "Copy-trading demo: Bob's master copied to two slaves, an equity-stop rule, a template, and the master "
        "published as a signal (idempotent)."
    )

    def handle(self, *args, **options):
        master = _account(*MASTER)
        made = 0
        with transaction.atomic():
            for (email, login, server), values in SLAVES:
                slave = _account(email, login, server)
                if slave.owner_id != master.owner_id:
                    assign_perm("accounts.view_tradingaccount", slave.owner, master)  # Bob shares his master
                if not CopyLink.objects.filter(master=master, slave=slave).exists():
                    copy_link_create(user=slave.owner, master_id=master.pk, slave_id=slave.pk, **values)
                    made += 1
                Rule.objects.get_or_create(
                    account=slave,
                    kind="equity_stop",
                    defaults={
                        "threshold": (slave.equity or slave.balance) * Decimal("0.5"),
                        "action": "close_all_and_pause",
                    },
                )
            OrderTemplate.objects.get_or_create(
                owner=master.owner,
                name="BTC quick buy",
                defaults={
                    "symbol": "BTCUSD",
                    "side": "buy",
                    "volume": Decimal("0.10"),
                    "sl_points": 100000,
                    "tp_points": 200000,
                    "comment": "template",
                },
            )
            if not TradingSignal.objects.filter(master=master).exists():
                # Bob's master is also on the signal list (its page: figures from the synced history).
                signal_publish(
                    user=master.owner,
                    master_id=master.pk,
                    name="Bob's BTC and FX",
                    description="Bob's live master: the demo's signal. Follow it from Copy trading → Signals.",
                    min_deposit=Decimal("500"),
                    monthly_fee=Decimal("19"),
                    performance_fee_pct=Decimal("20"),
                )
            bump_config_version()
        self.stdout.write(
            self.style.SUCCESS(f"Copy demo ready: {master} copied to {len(SLAVES)} slaves ({made} new link(s)).")
        )
