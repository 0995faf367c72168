"""The copy engine end to end through the heartbeat hook: intents become slave commands, results link them."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest

from copytrading.choices import CopyStatus
from copytrading.hooks import on_command_result, on_ea_state
from copytrading.models import CopiedPosition, CopyEvent
from copytrading.planning import copy_id
from copytrading.services import copy_link_create
from mt5bridge.ea.models import Command

from .factories import NOW, order, pos, state

pytestmark = pytest.mark.django_db


def link(owner, master, slave, **values):
    return copy_link_create(user=owner, master_id=master.pk, slave_id=slave.pk, **values)


def beat(account, previous_positions=(), positions=(), previous_orders=(), orders=(), **figures):
    previous = state(account.pk, previous_positions, previous_orders, **figures)
    current = state(account.pk, positions, orders, **figures)
    on_ea_state(previous, current)
    return current


def commands_for(account, **filters):
    return list(Command.objects.filter(account=account, **filters).order_by("created_at"))


def execute(command, **result):
    Command.objects.filter(pk=command.pk).update(status="executed", retcode=10009, result=result)
    command.refresh_from_db()
    on_command_result(command)


def test_master_open_becomes_one_market_command_with_mapped_symbol_and_copy_comment(owner, master, slave):
    lnk = link(owner, master, slave, multiplier=D("2"))
    beat(master, [], [pos(1001, "BTCUSD.pro", volume="0.10", sl="49000", tp="52000")])
    [command] = commands_for(slave)
    assert command.kind == "open_market" and command.origin == "copy" and command.origin_ref == f"copy-link:{lnk.id}"
    assert command.params["symbol"] == "BTCUSD" and command.params["side"] == "buy"
    assert D(command.params["volume"]) == D("0.20")
    assert D(command.params["sl"]) == D("49000") and D(command.params["tp"]) == D("52000")
    assert command.params["comment"] == copy_id(lnk.id, 1001) and len(copy_id(2**40, 2**63)) <= 31
    assert command.expires_at is not None
    row = CopiedPosition.objects.get(link=lnk)
    assert (row.master_ticket, row.status, row.open_command_id) == (1001, CopyStatus.PENDING, command.id)


def test_reverse_swaps_side_and_stops(owner, master, slave):
    link(owner, master, slave, reverse=True)
    beat(master, [], [pos(1, "BTCUSD.pro", type=0, sl="49000", tp="52000")])
    [command] = commands_for(slave)
    assert command.params["side"] == "sell"
    assert (D(command.params["sl"]), D(command.params["tp"])) == (D("52000"), D("49000"))


def test_copy_sltp_off_sends_no_stops(owner, master, slave):
    link(owner, master, slave, copy_sltp=False)
    beat(master, [], [pos(1, "BTCUSD.pro", sl="49000", tp="52000")])
    [command] = commands_for(slave)
    assert D(command.params.get("sl", "0")) == 0 and D(command.params.get("tp", "0")) == 0


@pytest.mark.parametrize(
    ("values", "position", "reason"),
    [
        ({"symbols_include": ["ETHUSD.pro"]}, pos(1, "BTCUSD.pro"), "symbol_not_included"),
        ({"symbols_exclude": ["BTCUSD.pro"]}, pos(1, "BTCUSD.pro"), "symbol_excluded"),
        ({"magics_include": [7]}, pos(1, "BTCUSD.pro", magic=8), "magic_not_included"),
        ({"magics_exclude": [8]}, pos(1, "BTCUSD.pro", magic=8), "magic_excluded"),
        ({"close_only": True}, pos(1, "BTCUSD.pro"), "link_close_only"),
        ({"symbol_overrides": {"BTCUSD.pro": ""}}, pos(1, "BTCUSD.pro"), "symbol_unmapped"),
    ],
)
def test_filters_skip_with_a_visible_reason(owner, master, slave, values, position, reason):
    link(owner, master, slave, **values)
    beat(master, [], [position])
    assert commands_for(slave) == []
    assert CopyEvent.objects.get(slave_account=slave).reason_code == reason


def test_filter_passes_the_included_symbol(owner, master, slave):
    link(owner, master, slave, symbols_include=["BTCUSD.pro"], magics_include=[8])
    beat(master, [], [pos(1, "BTCUSD.pro", magic=8)])
    assert len(commands_for(slave)) == 1


def test_master_trade_older_than_max_delay_is_skipped_with_reason(owner, master, slave):
    link(owner, master, slave, max_delay_seconds=10)
    beat(master, [], [pos(1, "BTCUSD.pro", age=60)])
    assert commands_for(slave) == []
    event = CopyEvent.objects.get(slave_account=slave)
    assert event.reason_code == "too_late" and "max delay of 10 s" in event.reason


def test_copy_expired_in_the_queue_is_recorded_as_skipped(owner, master, slave):
    link(owner, master, slave, max_delay_seconds=5)
    beat(master, [], [pos(1, "BTCUSD.pro", age=1)])
    [command] = commands_for(slave)
    assert command.expires_at <= NOW + timedelta(seconds=5)
    Command.objects.filter(pk=command.pk).update(status="expired")
    command.refresh_from_db()
    on_command_result(command)
    assert CopiedPosition.objects.get().status == CopyStatus.FAILED
    assert CopyEvent.objects.get(slave_account=slave).reason_code == "command_expired"


def test_contract_size_aware_mapping_converts_index_lots(owner, master, netting_slave):
    # US30.cash is 1 per point on MetaSim-Live, #US30 is 10 per point on OtherFX: 1.00 lot -> 0.10.
    link(owner, master, netting_slave)
    beat(master, [], [pos(1, "US30.cash", volume="1.00", price="39000")])
    [command] = commands_for(netting_slave)
    assert command.params["symbol"] == "#US30" and D(command.params["volume"]) == D("0.10")


def test_full_and_partial_close_close_exactly_the_linked_volume_on_hedging(owner, master, slave):
    link(owner, master, slave, multiplier=D("0.5"))
    beat(master, [], [pos(1, "BTCUSD.pro", volume="1.00")])
    [opened] = commands_for(slave)
    execute(opened, position=555, deal=1, order=555)
    row = CopiedPosition.objects.get()
    assert (row.status, row.slave_ticket, row.slave_volume) == (CopyStatus.OPEN, 555, D("0.5"))

    beat(master, [pos(1, "BTCUSD.pro", volume="1.00")], [pos(1, "BTCUSD.pro", volume="0.40")])
    partial = commands_for(slave, kind="close_partial")[0]
    assert partial.params == {"ticket": 555, "volume": "0.3"}  # 60 % of 0.5
    row.refresh_from_db()
    assert row.slave_volume == D("0.2")

    beat(master, [pos(1, "BTCUSD.pro", volume="0.40")], [])
    close = commands_for(slave, kind="close")[0]
    assert close.params == {"ticket": 555}
    execute(close)
    row.refresh_from_db()
    assert row.status == CopyStatus.CLOSED


def test_netting_slave_reduces_and_closes_with_opposite_deals(owner, master, netting_slave):
    link(owner, master, netting_slave)
    beat(master, [], [pos(1, "BTCUSD.pro", volume="1.00")])
    [opened] = commands_for(netting_slave)
    assert opened.params["symbol"] == "BTCUSDm"
    execute(opened, position=777)
    beat(master, [pos(1, "BTCUSD.pro", volume="1.00")], [pos(1, "BTCUSD.pro", volume="0.50")])
    beat(master, [pos(1, "BTCUSD.pro", volume="0.50")], [])
    reduce, close = commands_for(netting_slave)[1:]
    assert (reduce.kind, reduce.params["side"], D(reduce.params["volume"])) == ("open_market", "sell", D("0.5"))
    assert (close.kind, close.params["side"], D(close.params["volume"])) == ("open_market", "sell", D("0.5"))


def test_position_closed_by_hand_on_the_slave_is_not_reopened_nor_closed_again(owner, master, slave):
    link(owner, master, slave)
    beat(master, [], [pos(1, "BTCUSD.pro", volume="1.00")])
    execute(commands_for(slave)[0], position=900)
    # The slave's heartbeat no longer shows its position: closed by hand.
    on_ea_state(state(slave.pk, [pos(900, "BTCUSD")]), state(slave.pk, []))
    assert CopiedPosition.objects.get().status == CopyStatus.CLOSED_ON_SLAVE
    # The master keeps trading the same position: nothing reopens, nothing closes.
    beat(master, [pos(1, "BTCUSD.pro", volume="1.00")], [pos(1, "BTCUSD.pro", volume="1.50")])
    beat(master, [pos(1, "BTCUSD.pro", volume="1.50")], [])
    assert len(commands_for(slave)) == 1
    assert set(CopyEvent.objects.values_list("reason_code", flat=True)) == {"closed_on_slave"}


def test_master_closing_before_the_slave_filled_closes_the_copy_once_filled(owner, master, slave):
    link(owner, master, slave)
    beat(master, [], [pos(1, "BTCUSD.pro")])
    beat(master, [pos(1, "BTCUSD.pro")], [])
    assert len(commands_for(slave)) == 1
    execute(commands_for(slave)[0], position=42)
    late_close = commands_for(slave, kind="close")[0]
    assert late_close.params == {"ticket": 42}


def test_sltp_modification_is_copied_to_the_slave_position(owner, master, slave):
    link(owner, master, slave)
    beat(master, [], [pos(1, "BTCUSD.pro")])
    execute(commands_for(slave)[0], position=43)
    beat(master, [pos(1, "BTCUSD.pro")], [pos(1, "BTCUSD.pro", sl="48000", tp="0")])
    modify = commands_for(slave, kind="modify_sltp")[0]
    assert modify.params["ticket"] == 43 and D(modify.params["sl"]) == D("48000")


def test_pending_orders_copied_cancelled_and_triggered(owner, master, slave):
    link(owner, master, slave, copy_pending=True, reverse=True)
    beat(master, [], [], [], [order(50, "BTCUSD.pro", type=2, price="49000")])
    placed = commands_for(slave, kind="place_pending")[0]
    assert placed.params["type"] == 5  # buy limit reversed = sell stop
    execute(placed, order=60)
    beat(master, [], [], [order(50, "BTCUSD.pro", type=2, price="49000")], [])
    cancel = commands_for(slave, kind="cancel_pending")[0]
    assert cancel.params == {"ticket": 60}

    beat(master, [], [], [], [order(51, "BTCUSD.pro", type=2, price="49000")])
    execute(commands_for(slave, kind="place_pending")[1], order=61)
    beat(master, [], [pos(51, "BTCUSD.pro")], [order(51, "BTCUSD.pro")], [])
    row = CopiedPosition.objects.get(master_ticket=51)
    assert (row.kind, row.slave_ticket) == ("position", 61)
    beat(master, [pos(51, "BTCUSD.pro")], [])
    assert commands_for(slave, kind="close")[0].params == {"ticket": 61}


def test_pending_orders_not_copied_when_switched_off(owner, master, slave):
    link(owner, master, slave)
    beat(master, [], [], [], [order(50, "BTCUSD.pro")])
    assert commands_for(slave) == []


def test_every_active_link_gets_its_command_in_one_heartbeat(owner, master, slave, netting_slave):
    link(owner, master, slave)
    link(owner, master, netting_slave, active=False)
    beat(master, [], [pos(1, "BTCUSD.pro")])
    assert len(commands_for(slave)) == 1 and commands_for(netting_slave) == []


def test_same_heartbeat_processed_twice_copies_once(owner, master, slave):
    link(owner, master, slave)
    beat(master, [], [pos(1, "BTCUSD.pro")])
    beat(master, [], [pos(1, "BTCUSD.pro")])
    assert len(commands_for(slave)) == 1 and CopiedPosition.objects.count() == 1


def test_lower_priority_master_is_skipped_on_a_symbol_the_slave_holds(owner, master, slave):
    from .conftest import make_account

    other_master = make_account(owner, "MetaSim-Live", name="Other master")
    link(owner, master, slave, priority=1)
    link(owner, other_master, slave, priority=5)
    beat(master, [], [pos(1, "BTCUSD.pro")])
    beat(other_master, [], [pos(2, "BTCUSD.pro")])
    assert len(commands_for(slave)) == 1
    assert CopyEvent.objects.get().reason_code == "lower_priority"


def test_risk_sizing_without_sl_uses_the_default_distance_when_configured(owner, master, slave):
    link(
        owner, master, slave, sizing_mode="risk_percent", risk_percent=D("1"), no_sl="default", default_sl_points=100000
    )
    # BTCUSD: point 0.01, contract 1; 100,000 points = 1,000 USD per lot; 1 % of 5,000 = 50 -> 0.05 lots
    beat(master, [], [pos(1, "BTCUSD.pro")])
    assert D(commands_for(slave)[0].params["volume"]) == D("0.05")
