"""copytrading.sql: a master heartbeat's plan written in one PostgreSQL statement, and written once only."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from django.db import connection
from django.utils import timezone

from copytrading import sql
from copytrading.engine import prepare_commands
from copytrading.models import CopiedPosition, CopyEvent
from copytrading.planning import NewCopy, Plan, Skip
from copytrading.services import copy_link_create
from mt5bridge.commands import CommandSpec
from mt5bridge.ea.models import Command

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the single statement is PostgreSQL's"),
]


def a_plan(link, key: str = "copy:test:1") -> Plan:
    params = {"symbol": "BTCUSD", "side": "buy", "volume": "0.10", "sl": "0", "tp": "0", "comment": "cp1.1"}
    plan = Plan(links={link.id: link})
    plan.specs.append(CommandSpec(str(link.slave_id), "open_market", params, "copy", None, key, f"copy-link:{link.id}"))
    plan.new_rows.append(
        NewCopy(
            key=key,
            link_id=link.id,
            slave_account_id=str(link.slave_id),
            kind="position",
            master_ticket=1,
            master_symbol="BTCUSD.pro",
            master_volume=D("1"),
            slave_symbol="BTCUSD",
            slave_side="buy",
            slave_volume=D("0.10"),
            copy_id="cp1.1",
        )
    )
    plan.events.append(
        Skip(
            link_id=link.id,
            master_account_id=str(link.master_id),
            slave_account_id=str(link.slave_id),
            intent="open",
            reason_code="symbol_excluded",
            reason="ETHUSD is excluded by the link",
            master_ticket=2,
            symbol="ETHUSD",
        )
    )
    return plan


def test_heartbeat_write_stores_the_command_its_copy_row_and_the_skip_in_one_statement(owner, master, slave):
    link = copy_link_create(user=owner, master_id=master.pk, slave_id=slave.pk)
    plan = a_plan(link)
    now = timezone.now()

    new = sql.heartbeat_write(plan, prepare_commands(plan, now), now)

    command = Command.objects.get()
    copy = CopiedPosition.objects.get()
    assert [c.id for c in new] == [command.id]
    assert copy.open_command_id == command.id and copy.slave_volume == D("0.10") and copy.status == "pending"
    assert CopyEvent.objects.get().reason_code == "symbol_excluded"


def test_heartbeat_write_of_the_same_plan_again_stores_no_second_command_or_copy(owner, master, slave):
    link = copy_link_create(user=owner, master_id=master.pk, slave_id=slave.pk)
    for _ in range(2):
        plan = a_plan(link)
        now = timezone.now()
        sql.heartbeat_write(plan, prepare_commands(plan, now), now)

    assert Command.objects.count() == CopiedPosition.objects.count() == 1
