"""Seed and drive the bonus fault scenarios (run in a subprocess against the throwaway database).

``python -m tests.faults.bonus_seed seed N``: N simulated MT5 accounts already registered with the monitor (no
MT5 registration time, so the first cycle only takes their baseline) and one running auto-deposit campaign;
prints the logins as JSON. ``python -m tests.faults.bonus_seed deposit --every S LOGIN...``: one deposit of 100 on
each login, S seconds apart; a database error (a fault injected meanwhile) is retried until the deposit is made.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from decimal import Decimal

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from django.db import OperationalError, connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from bonuses.choices import BonusType, CampaignStatus, Trigger  # noqa: E402
from bonuses.models import Campaign, MonitoredAccount  # noqa: E402
from mt5bridge.simulated.seeding import create_account, deposit  # noqa: E402

FIRST_LOGIN = 7_300_000
SERVER = "MetaSim-Demo"


def seed(count: int) -> list[int]:
    logins = [FIRST_LOGIN + i for i in range(count)]
    for login in logins:
        create_account(login=login, password="Fault-pass-123", server=SERVER, balance=Decimal("1000"))
    MonitoredAccount.objects.bulk_create([MonitoredAccount(login=login, server=SERVER) for login in logins])
    Campaign.objects.create(
        name="fault burst", bonus_type=BonusType.FIXED_LEVERAGE, bonus_percent=Decimal("50"),
        status=CampaignStatus.ACTIVE, triggers=[Trigger.AUTO_DEPOSIT], max_concurrent=5,
        starts_at=timezone.now() - timezone.timedelta(days=1),
    )  # fmt: skip
    return logins


def deposit_each(logins: list[int], every: float) -> None:
    for login in logins:
        while True:
            try:
                deposit(login, Decimal("100"))
                break
            except OperationalError:
                connection.close()
                time.sleep(0.2)
        time.sleep(every)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("seed").add_argument("count", type=int)
    dep = sub.add_parser("deposit")
    dep.add_argument("--every", type=float, default=0.05)
    dep.add_argument("logins", type=int, nargs="+")
    args = parser.parse_args()
    if args.what == "seed":
        print(json.dumps(seed(args.count)))
    else:
        deposit_each(args.logins, args.every)
