"""The account monitor against the simulated MT5: discovery, deposits, withdrawals, drawdown, type C, outages."""

from __future__ import annotations

import threading
from decimal import Decimal as D

import pytest
from django.core.management import call_command
from django.utils import timezone

from bonuses.choices import AuditAction, BonusStatus, BonusType, MonitorStatus, Trigger
from bonuses.models import AuditLog, Bonus, MonitorCycle, MonitoredAccount, MonitorShard
from bonuses.monitor import Monitor, fallback_cycle
from bonuses.services.monitored import monitoring_reset_errors
from bonuses.services.triggers import trigger_deposit
from mt5bridge import gateway as gw
from mt5bridge.simulated import deposit, withdraw

from .conftest import Outage, account, credit_deals, make_account, make_campaign

pytestmark = pytest.mark.django_db


def _monitor(gateway=None, **kwargs) -> Monitor:
    return Monitor(gateway=gateway or gw.get_gateway("simulated"), worker="test-worker", **kwargs)


def test_the_first_cycle_discovers_accounts_and_takes_their_baseline():
    login = make_account(balance="250")
    monitor = _monitor()
    result = monitor.cycle()
    assert result.discovered >= 1
    row = MonitoredAccount.objects.get(login=login)
    assert row.balance == D("250.00") and row.group and row.snapshot_at is not None
    assert MonitorShard.objects.get(shard=0, shards=1).cycles == 1
    assert MonitorCycle.objects.filter(discovered__gte=1).exists()


def test_discovery_fires_registration_campaigns():
    make_campaign(triggers=[Trigger.REGISTRATION], fixed_amount=D("15"))
    login = make_account(balance="0")
    _monitor().cycle()
    bonus = Bonus.objects.get(login=login)
    assert bonus.trigger == Trigger.REGISTRATION and account(login).credit == D("15.00")


def test_a_deposit_is_detected_confirmed_and_bonused_once():
    login = make_account(balance="100")  # funded before the campaign started: not a deposit it rewards
    make_campaign(bonus_percent=D("50"), starts_at=timezone.now())
    monitor = _monitor()
    monitor.cycle()
    deposit(login, D("400"))
    result = monitor.cycle()
    assert result.deposits == 1
    bonus = Bonus.objects.get(login=login)
    assert bonus.amount == D("200.00") and bonus.deposit_amount == D("400.00")
    monitor.cycle()
    monitor.cycle()
    assert len(credit_deals(login)) == 1
    assert MonitoredAccount.objects.get(login=login).credit == D("200.00")


def test_a_withdrawal_is_detected_and_removes_credit_proportionally():
    login = make_account(balance="0")
    make_campaign(bonus_percent=D("100"))
    monitor = _monitor()
    monitor.cycle()
    deposit(login, D("1000"))
    monitor.cycle()
    withdraw(login, D("100"))
    result = monitor.cycle()
    assert result.withdrawals == 1
    assert Bonus.objects.get(login=login).credit_outstanding == D("900.00")
    assert account(login).credit == D("900.00")


def test_drawdown_is_detected_and_takes_the_credit_back():
    login = make_account(balance="0")
    make_campaign(bonus_percent=D("1000"))
    monitor = _monitor()
    monitor.cycle()
    deposit(login, D("10"))
    monitor.cycle()
    assert account(login).credit == D("100.00")
    # The trader loses their own money (a hedged pair costs the spread): the equity falls below the credit.
    sim = gw.get_gateway("simulated")
    for side in (gw.OrderType.BUY, gw.OrderType.SELL):
        request = gw.OrderRequest(action=gw.TradeAction.DEAL, symbol="BTCUSD", volume=D("0.2"), type=side)
        assert sim.order_send(login, request).ok
    assert account(login).equity < D("100")
    result = monitor.cycle()
    assert result.drawdowns == 1
    assert Bonus.objects.get(login=login).status == BonusStatus.CANCELLED
    assert account(login).credit == D("0.00")


def test_type_c_lots_from_closed_trades_convert_credit():
    login = make_account(balance="0", leverage=500)
    make_campaign(bonus_type=BonusType.CONVERTIBLE, bonus_percent=D("10"), lots_per_unit=D("0.01"),
                  unit_amount=D("1"))  # fmt: skip
    monitor = _monitor()
    monitor.cycle()
    deposit(login, D("5000"))
    monitor.cycle()  # 500 credit, 5 lots to convert
    sim = gw.get_gateway("simulated")
    opened = sim.order_send(login, gw.OrderRequest(action=gw.TradeAction.DEAL, symbol="BTCUSD", volume=D("0.5"),
                                                   type=gw.OrderType.BUY))  # fmt: skip
    assert opened.ok
    (position,) = sim.positions(login)
    closed = sim.order_send(login, gw.OrderRequest(action=gw.TradeAction.DEAL, symbol="BTCUSD", volume=D("0.5"),
                                                   type=gw.OrderType.SELL, position=position.ticket))  # fmt: skip
    assert closed.ok
    monitor.cycle()
    bonus = Bonus.objects.get(login=login)
    assert bonus.lots_traded == D("0.5")
    assert bonus.converted_amount == D("50.00")


def test_a_gateway_outage_counts_errors_pauses_at_five_and_reset_resumes_without_double_posting():
    login = make_account(balance="0")
    make_campaign(bonus_percent=D("100"))
    outage = Outage()
    monitor = _monitor(outage)
    monitor.cycle()
    deposit(login, D("100"))
    outage.down = True
    for _ in range(5):
        result = monitor.cycle()  # the loop keeps going
        assert result.errors >= 1 and "unreachable" in result.error
    row = MonitoredAccount.objects.get(login=login)
    assert row.status == MonitorStatus.PAUSED and row.consecutive_errors == 5
    assert AuditLog.objects.filter(login=login, action=AuditAction.ACCOUNT_PAUSED).exists()
    outage.down = False
    monitor.cycle()
    assert not Bonus.objects.filter(login=login).exists()  # paused: not read
    monitoring_reset_errors(actor="test", login=login)
    monitor._next_status_reload = 0
    monitor.cycle()
    monitor.cycle()
    assert Bonus.objects.filter(login=login).count() == 1
    assert len(credit_deals(login)) == 1
    assert MonitoredAccount.objects.get(login=login).consecutive_errors == 0


def test_two_workers_on_the_same_shard_do_not_both_run():
    make_account()
    first, second = _monitor(), Monitor(gateway=gw.get_gateway("simulated"), worker="other-worker")
    assert first.cycle().skipped is False
    assert second.cycle().skipped is True
    first.release()
    assert second.cycle().skipped is False


def test_shards_split_the_accounts_by_login():
    logins = [make_account() for _ in range(4)]
    zero, one = _monitor(shard=0, shards=2), _monitor(shard=1, shards=2)
    zero.cycle()
    one.cycle()
    assert set(zero.snapshots) & set(one.snapshots) == set()
    assert set(logins) <= set(zero.snapshots) | set(one.snapshots)
    assert all(login % 2 == 0 for login in zero.snapshots)


def test_the_fallback_cycle_runs_only_without_a_live_worker():
    make_account()
    assert fallback_cycle() is not None
    _monitor().cycle()
    assert fallback_cycle() is None


def test_the_command_stops_after_its_cycles():
    make_account()
    call_command("run_bonus_monitor", "--cycles", "2", "--interval", "0")
    assert MonitorShard.objects.get(shard=0, shards=1).cycles == 2


def test_run_stops_when_asked():
    stop = threading.Event()
    stop.set()
    assert _monitor().run(stop=stop, interval=0) == 0


def test_the_hourly_task_expires_bonuses_and_the_fallback_task_cycles():
    from datetime import timedelta

    from django.utils import timezone

    from bonuses import tasks

    login = make_account(balance="0")
    make_campaign(expiry_days=1)
    deposit(login, D("100"))
    (result,) = trigger_deposit(login=login, amount=D("100"))
    Bonus.objects.filter(pk=result.bonus.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert tasks.expire_bonuses.delay().get() == 1
    assert Bonus.objects.get(pk=result.bonus.pk).status == BonusStatus.EXPIRED
    assert account(login).credit == D("0.00")
    assert tasks.monitor_fallback_cycle.delay().get() >= 1
    assert tasks.resume_operations.delay().get() == 0


def test_schedule_declares_the_fallback_and_the_hourly_expiry():
    from bonuses.schedule import PERIODIC_JOBS

    every = {job["task"]: job["every"] for job in PERIODIC_JOBS}
    assert every["bonuses.tasks.expire_bonuses"] == 3600
    assert every["bonuses.tasks.monitor_fallback_cycle"] <= 10
