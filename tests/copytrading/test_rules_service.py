"""Rules on heartbeats: each fires once per crossing, applies its action and is re-armed when it clears."""

from __future__ import annotations

from datetime import time, timedelta
from decimal import Decimal as D

import pytest

from copytrading.choices import AccountMode
from copytrading.hooks import on_ea_state
from copytrading.models import AccountCopyState, Rule, RuleHit
from copytrading.selectors import bump_config_version
from mt5bridge.ea.models import Command

from .factories import NOW, pos, state

pytestmark = pytest.mark.django_db


def heartbeat(account, **kw):
    on_ea_state(None, state(account.pk, **kw))


def mode(account):
    return AccountCopyState.objects.get(account=account).mode


def test_equity_stop_fires_once_per_crossing_and_closes_all(slave):
    Rule.objects.create(account=slave, kind="equity_stop", threshold=D("4000"), action="close_all_and_pause")
    bump_config_version()
    heartbeat(slave, balance="5000", equity="4100")
    assert not RuleHit.objects.exists()
    heartbeat(slave, balance="5000", equity="3990")
    heartbeat(slave, balance="5000", equity="3900")
    [hit] = RuleHit.objects.all()
    assert hit.action == "close_all_and_pause" and "3990" in hit.detail
    assert Command.objects.get(account=slave).kind == "close_all" and hit.command_id is not None
    assert mode(slave) == AccountMode.PAUSED
    heartbeat(slave, balance="5000", equity="4500")  # clears: re-armed
    heartbeat(slave, balance="5000", equity="3000")
    assert RuleHit.objects.count() == 2 and Command.objects.filter(kind="close_all").count() == 2


def test_daily_loss_percent_sets_close_only(slave):
    Rule.objects.create(
        account=slave, kind="daily_loss", threshold=D("5"), threshold_is_percent=True, action="close_only"
    )
    bump_config_version()
    heartbeat(slave, equity="10000")  # the day's first beat sets the starting equity
    heartbeat(slave, equity="9600")
    assert not RuleHit.objects.exists()
    heartbeat(slave, equity="9400")  # 6 % down
    assert RuleHit.objects.get().action == "close_only" and mode(slave) == AccountMode.CLOSE_ONLY
    assert not Command.objects.exists()


def test_daily_loss_amount_resets_with_the_day(slave):
    Rule.objects.create(account=slave, kind="daily_loss", threshold=D("300"), action="pause")
    bump_config_version()
    heartbeat(slave, equity="10000")
    next_day = NOW + timedelta(days=1)
    on_ea_state(None, state(slave.pk, equity="9800", received_at=next_day))  # new day starts at 9,800
    on_ea_state(None, state(slave.pk, equity="9600", received_at=next_day))
    assert not RuleHit.objects.exists()
    on_ea_state(None, state(slave.pk, equity="9450", received_at=next_day))
    assert RuleHit.objects.count() == 1


def test_max_open_trades_pauses_copying(slave):
    Rule.objects.create(account=slave, kind="max_open_trades", max_open_trades=2, action="pause")
    bump_config_version()
    heartbeat(slave, positions=[pos(1), pos(2)])
    assert not RuleHit.objects.exists()
    heartbeat(slave, positions=[pos(1), pos(2), pos(3)])
    heartbeat(slave, positions=[pos(1), pos(2), pos(3), pos(4)])
    assert RuleHit.objects.count() == 1 and mode(slave) == AccountMode.PAUSED


def test_symbol_deny_list_fires_on_a_denied_symbol(slave):
    Rule.objects.create(account=slave, kind="symbol_filter", symbols_deny=["ETHUSD"], action="close_all_and_pause")
    bump_config_version()
    heartbeat(slave, positions=[pos(1, "BTCUSD")])
    heartbeat(slave, positions=[pos(1, "BTCUSD"), pos(2, "ETHUSD")])
    assert "ETHUSD" in RuleHit.objects.get().detail


def test_trading_hours_outside_the_window_fires(slave):
    # NOW is 12:00 UTC = 21:00 in Tokyo; the window is 09:00-17:00 Tokyo.
    Rule.objects.create(
        account=slave,
        kind="trading_hours",
        hours_start=time(9),
        hours_end=time(17),
        timezone="Asia/Tokyo",
        action="close_only",
    )
    bump_config_version()
    heartbeat(slave)
    assert RuleHit.objects.get().kind == "trading_hours"


def test_paused_slave_gets_no_new_copies_but_closes(owner, master, slave):
    from copytrading.services import copy_link_create, copy_mode_set

    from .test_engine import beat, commands_for, execute

    copy_link_create(user=owner, master_id=master.pk, slave_id=slave.pk)
    beat(master, [], [pos(1, "BTCUSD.pro")])
    execute(commands_for(slave)[0], position=11)
    copy_mode_set(account=slave, mode="paused")
    beat(master, [pos(1, "BTCUSD.pro")], [pos(1, "BTCUSD.pro"), pos(2, "BTCUSD.pro")])
    beat(master, [pos(1, "BTCUSD.pro"), pos(2, "BTCUSD.pro")], [pos(2, "BTCUSD.pro")])
    kinds = [c.kind for c in commands_for(slave)]
    assert kinds == ["open_market", "close"]
