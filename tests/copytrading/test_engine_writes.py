"""How the copy engine writes a master heartbeat: one SQL statement on PostgreSQL, the ORM elsewhere, same outcome."""

from __future__ import annotations

import re
from decimal import Decimal as D

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from copytrading import engine, planning
from copytrading.choices import CopyStatus
from copytrading.hooks import on_command_result, on_ea_state
from copytrading.models import CopiedPosition, CopyEvent, link_id_of
from copytrading.services import copy_link_create
from mt5bridge.ea import store
from mt5bridge.ea.models import Command

from .conftest import make_account
from .factories import pos, state

# Statements a master heartbeat sends once its links, symbol lists and figures are cached (issue 4, copy
# latency). Opening: the one write (commands, copy rows, skip log). Closing: the read of the copy rows too.
OPEN_STATEMENTS = 1
CLOSE_STATEMENTS = 2
postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the single statement is PostgreSQL's; other databases use the ORM"
)


def link(owner, master, slave, **values):
    return copy_link_create(user=owner, master_id=master.pk, slave_id=slave.pk, **values)


def beat(account, previous_positions=(), positions=()):
    on_ea_state(state(account.pk, previous_positions), state(account.pk, positions))


def execute(command, **result):
    Command.objects.filter(pk=command.pk).update(status="executed", retcode=10009, result=result)
    command.refresh_from_db()
    on_command_result(command)


def statements_of(action) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        action()
    return [q["sql"] for q in queries.captured_queries]


def slaves_of(owner, master, count: int, **values) -> list:
    slaves = [make_account(owner, "MetaSim-Demo", name=f"Slave {i}") for i in range(count)]
    for slave in slaves:
        link(owner, master, slave, **values)
    return slaves


# transaction=True: outside a test transaction, as in production, the statement is its own transaction (no
# BEGIN / SAVEPOINT / COMMIT around it) and the Redis push after commit runs at once.
@postgresql_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("count", [1, 10])
def test_a_master_open_is_one_sql_statement_whatever_the_number_of_slaves(owner, master, count):
    slaves = slaves_of(owner, master, count, sizing_mode="balance_ratio")
    beat(master, [], [pos(1, "BTCUSD.pro")])  # loads the links, symbol lists and slave figures

    sql = statements_of(lambda: beat(master, [], [pos(2, "BTCUSD.pro")]))

    assert len(sql) == OPEN_STATEMENTS, sql
    assert sql[0].startswith("WITH new_command AS (INSERT INTO")
    assert Command.objects.count() == CopiedPosition.objects.count() == 2 * count
    assert {store.client().hlen(store.queue_key(slave.pk)) for slave in slaves} == {2}


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_master_close_reads_the_copies_and_writes_in_one_more_statement(owner, master):
    slaves = slaves_of(owner, master, 10)
    beat(master, [], [pos(1, "BTCUSD.pro")])
    for ticket, command in enumerate(Command.objects.order_by("account_id"), start=500):
        execute(command, position=ticket)

    sql = statements_of(lambda: beat(master, [pos(1, "BTCUSD.pro")], []))

    assert len(sql) == CLOSE_STATEMENTS, sql
    closes = Command.objects.filter(kind="close")
    assert closes.count() == len(slaves)
    rows = CopiedPosition.objects.all()
    assert {(row.close_requested, row.close_command_id in {c.id for c in closes}) for row in rows} == {(True, True)}


@pytest.mark.django_db(transaction=True)
def test_a_slaves_executed_result_is_booked_in_one_statement_and_a_repeated_one_changes_nothing(owner, master, slave):
    link(owner, master, slave)
    beat(master, [], [pos(1, "BTCUSD.pro")])
    command = Command.objects.get()
    Command.objects.filter(pk=command.pk).update(
        status="executed", retcode=10009, result={"position": 77, "volume": "0.07"}
    )
    command.refresh_from_db()

    assert len(statements_of(lambda: on_command_result(command))) == 1
    on_command_result(command)  # the EA repeats its ack: the locked path sees the row booked and leaves it

    row = CopiedPosition.objects.get()
    assert (row.status, row.slave_ticket, row.slave_volume) == (CopyStatus.OPEN, 77, D("0.07"))
    beat(master, [pos(1, "BTCUSD.pro")], [])
    close = Command.objects.get(kind="close")
    Command.objects.filter(pk=close.pk).update(status="executed", retcode=10009, result={})
    close.refresh_from_db()
    assert len(statements_of(lambda: on_command_result(close))) == 2  # not an open; the close's UPDATE
    assert CopiedPosition.objects.get().status == CopyStatus.CLOSED


@pytest.mark.django_db(transaction=True)
def test_a_close_asked_while_the_open_was_in_flight_still_closes_the_copy_when_the_open_lands(owner, master, slave):
    link(owner, master, slave)
    beat(master, [], [pos(1, "BTCUSD.pro")])
    beat(master, [pos(1, "BTCUSD.pro")], [])  # the master closed before the slave answered
    assert CopiedPosition.objects.get().close_requested

    execute(Command.objects.get(kind="open_market"), position=78)

    assert CopiedPosition.objects.get().slave_ticket == 78
    assert Command.objects.filter(kind="close", params__ticket=78).exists()


@pytest.mark.django_db(transaction=True)
def test_a_repeated_heartbeat_stores_and_queues_each_command_once_outside_a_transaction(owner, master, slave):
    link(owner, master, slave)
    beat(master, [], [pos(1, "BTCUSD.pro")])
    beat(master, [], [pos(1, "BTCUSD.pro")])
    assert Command.objects.count() == CopiedPosition.objects.count() == 1
    assert store.client().hlen(store.queue_key(slave.pk)) == 1


@pytest.mark.django_db(transaction=True)
def test_a_repeated_close_points_the_copy_at_the_close_command_stored_first(owner, master, slave):
    link(owner, master, slave)
    beat(master, [], [pos(1, "BTCUSD.pro")])
    execute(Command.objects.get(), position=77)
    beat(master, [pos(1, "BTCUSD.pro")], [])
    beat(master, [pos(1, "BTCUSD.pro")], [])
    close = Command.objects.get(kind="close")
    assert CopiedPosition.objects.get().close_command_id == close.id


@postgresql_only
@pytest.mark.django_db
def test_the_statement_fills_every_column_of_the_tables_it_inserts_into(owner, master, slave, netting_slave):
    """The raw INSERTs name their columns: a field added to a model must be added to them too (or this fails)."""
    link(owner, master, slave)
    link(owner, master, netting_slave, symbols_exclude=["BTCUSD.pro"])
    [sql] = [s for s in statements_of(lambda: beat(master, [], [pos(1, "BTCUSD.pro")])) if s.startswith("WITH")]
    inserted = {
        table: {column.strip() for column in columns.split(",")}
        for table, columns in re.findall(r"INSERT INTO (\w+) \(([^)]*)\)", sql)
    }
    expected = {
        m._meta.db_table: {f.column for f in m._meta.concrete_fields} for m in (Command, CopiedPosition, CopyEvent)
    }
    for model in (CopiedPosition, CopyEvent):  # their ids come from the database; a command's id is made in Python
        expected[model._meta.db_table].remove("id")
    assert inserted == expected


@pytest.mark.django_db
def test_one_impossible_order_is_skipped_with_its_reason_and_the_other_slaves_still_copy(owner, master, slave):
    other = make_account(owner, "MetaSim-Demo", name="Other slave")
    link(owner, master, slave, symbol_overrides={"BTCUSD.pro": "X" * 70})  # longer than any MT5 symbol
    link(owner, master, other)
    beat(master, [], [pos(1, "BTCUSD.pro")])
    assert not Command.objects.filter(account=slave).exists()
    event = CopyEvent.objects.get(slave_account=slave)
    assert event.reason_code == "invalid_order" and "symbol" in event.reason
    assert Command.objects.filter(account=other).count() == 1
    assert CopiedPosition.objects.get().slave_account_id == other.pk


@pytest.mark.django_db
def test_copies_differing_only_in_their_comment_each_keep_their_own_comment(owner, master):
    slaves = slaves_of(owner, master, 3)
    beat(master, [], [pos(1, "BTCUSD.pro", volume="0.50")])
    commands = {link_id_of(c.origin_ref): c for c in Command.objects.all()}
    assert {c.params["comment"] for c in commands.values()} == {planning.copy_id(i, 1) for i in commands}
    assert {c.params["volume"] for c in commands.values()} == {"0.5"} and len(commands) == len(slaves)


@pytest.fixture(params=["one_statement", "orm"])
def write_path(request, monkeypatch):
    """Both ways of writing a heartbeat: PostgreSQL's single statement and the ORM (SQLite, the embedded default)."""
    if request.param == "orm":
        monkeypatch.setattr(engine, "writes_in_one_statement", lambda: False)
    return request.param


@pytest.mark.django_db
def test_both_write_paths_open_skip_reduce_and_close_alike(owner, master, slave, netting_slave, write_path):
    link(owner, master, slave, multiplier=D("0.5"))
    link(owner, master, netting_slave, symbols_exclude=["ETHUSD.pro"])
    opened = [pos(1, "BTCUSD.pro", volume="1.00"), pos(2, "ETHUSD.pro", volume="1.00")]
    beat(master, [], opened)
    beat(master, [], opened)  # processed twice: no command twice (the skip is logged again)
    assert set(CopyEvent.objects.values_list("reason_code", flat=True)) == {"symbol_excluded"}
    hedged = {c.params["symbol"]: c for c in Command.objects.filter(account=slave)}
    assert set(hedged) == {"BTCUSD", "ETHUSD"} and Command.objects.count() == 3
    [netted] = Command.objects.filter(account=netting_slave)
    execute(hedged["BTCUSD"], position=555)
    execute(netted, position=777)

    reduced = [pos(1, "BTCUSD.pro", volume="0.40"), opened[1]]
    beat(master, opened, reduced)
    partial = Command.objects.get(kind="close_partial")
    assert partial.params == {"ticket": 555, "volume": "0.3"}  # 60 % of the slave's 0.5
    assert CopiedPosition.objects.get(slave_ticket=555).slave_volume == D("0.2")
    [netting_reduce] = Command.objects.filter(account=netting_slave, params__side="sell")
    assert D(netting_reduce.params["volume"]) == D("0.6")

    beat(master, reduced, reduced[1:])
    close = Command.objects.get(kind="close")
    assert close.params == {"ticket": 555}
    assert CopiedPosition.objects.get(slave_ticket=555).close_command_id == close.id
    execute(close)
    assert CopiedPosition.objects.get(slave_ticket=555).status == CopyStatus.CLOSED


@pytest.mark.django_db
def test_a_lost_configuration_version_does_not_bring_back_a_snapshot_taken_before_the_link(owner, master, slave):
    from django.core.cache import cache

    from copytrading import selectors

    beat(master, [], [])  # the master, not linked yet, is remembered as idle under the version of the moment
    link(owner, master, slave)
    cache.delete(selectors.VERSION_KEY)  # Redis flushed or restarted
    selectors.forget_config_version()
    beat(master, [], [pos(1, "BTCUSD.pro")])
    assert Command.objects.filter(account=slave).count() == 1
