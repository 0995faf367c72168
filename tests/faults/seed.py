"""Seed the fault suite's system: a trader, a master, its slaves, one more account for the demo trader, EA tokens.

Run by the harness in a subprocess against the throwaway database (``python -m tests.faults.seed N``); prints
one JSON object: the logins, the account ids and the EA tokens.
"""

from __future__ import annotations

import json
import os
import sys
from decimal import Decimal

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from django.contrib.auth.models import Group  # noqa: E402
from django.core.management import call_command  # noqa: E402

from accounts.choices import Role  # noqa: E402
from accounts.models import User  # noqa: E402
from accounts.services import trading_account_create  # noqa: E402
from copytrading.services import copy_link_create  # noqa: E402
from mt5bridge.ea.services import ea_token_issue  # noqa: E402
from mt5bridge.simulated.seeding import create_account  # noqa: E402

SERVER = "MetaSim-Live"
PASSWORD = "Fault-pass-123"


def _account(owner: User, login: int, name: str, balance: str):
    create_account(login=login, password=PASSWORD, server=SERVER, balance=Decimal(balance))
    return trading_account_create(owner=owner, login=login, password=PASSWORD, server=SERVER, name=name, sync_now=False)


def main(slaves: int) -> dict:
    call_command("setup_periodic_tasks", verbosity=0, stdout=open(os.devnull, "w"))  # noqa: SIM115 - beat's jobs
    owner = User.objects.create_user(email="faults@example.com", password=PASSWORD)
    owner.groups.add(*Group.objects.filter(name=Role.TRADER))
    master = _account(owner, 7700000, "fault master", "1000000")
    followers = [_account(owner, 7700001 + k, f"fault slave {k}", "1000000") for k in range(slaves)]
    for slave in followers:
        copy_link_create(user=owner, master_id=master.pk, slave_id=slave.pk, max_delay_seconds=600)
    trader = _account(owner, 7700100, "fault demo trader", "1000000")
    return {
        "master": master.login,
        "slaves": [s.login for s in followers],
        "trader": trader.login,
        "tokens": {str(a.login): ea_token_issue(account=a) for a in [master, *followers]},
    }


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]))))
