"""What the monitor calls each event: a full withdrawal is a withdrawal; a deposit before the first look earns its bonus."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from bonuses import reports
from bonuses.choices import AuditAction, BonusStatus
from bonuses.models import AuditLog, Bonus
from bonuses.monitor import Monitor
from bonuses.services.ending import bonus_cancel
from mt5bridge import gateway as gw
from mt5bridge.simulated import deposit, withdraw

from .conftest import account, credit_deals, make_account, make_campaign

pytestmark = pytest.mark.django_db


def _monitor() -> Monitor:
    return Monitor(gateway=gw.get_gateway("simulated"), worker="test-worker")


def test_a_full_withdrawal_is_recorded_as_a_withdrawal_not_a_drawdown():
    login = make_account(balance="0")
    make_campaign(bonus_percent=D("100"))
    monitor = _monitor()
    monitor.cycle()
    deposit(login, D("1000"))
    monitor.cycle()
    assert account(login).credit == D("1000.00")
    withdraw(login, D("1000"))
    result = monitor.cycle()
    monitor.cycle()
    bonus = Bonus.objects.get(login=login)
    assert bonus.status == BonusStatus.CANCELLED and bonus.cancel_reason == "withdrawal"
    assert result.withdrawals == 1 and result.drawdowns == 0
    assert not AuditLog.objects.filter(login=login, action=AuditAction.DRAWDOWN).exists()
    assert account(login).credit == D("0.00")
    (row,) = [r for r in reports.cancellations() if r["campaign"] == bonus.campaign.name]
    assert row["reason"] == "withdrawal" and row["reason_label"] == "Withdrawal" and row["bonuses"] == 1


def test_the_cancellations_report_groups_by_what_ended_the_bonus():
    login = make_account(balance="0")
    campaign = make_campaign(bonus_percent=D("10"), one_per_account=False)
    monitor = _monitor()
    monitor.cycle()
    for amount in ("100", "200"):
        deposit(login, D(amount))
        monitor.cycle()
    first, second = Bonus.objects.filter(login=login).order_by("id")
    bonus_cancel(actor="test", bonus=first)
    withdraw(login, account(login).balance)
    monitor.cycle()
    rows = {(r["reason"], r["campaign"]): r["bonuses"] for r in reports.cancellations()}
    assert rows[("manual", campaign.name)] == 1 and rows[("withdrawal", campaign.name)] == 1
    second.refresh_from_db()
    assert second.cancel_reason == "withdrawal"


def test_a_deposit_made_before_the_monitor_first_sees_the_account_earns_its_bonus_once():
    make_campaign(bonus_percent=D("50"))
    login = make_account(balance="0")  # registered now
    deposit(login, D("400"))  # before any cycle has looked at it
    monitor = _monitor()
    first = monitor.cycle()
    assert first.discovered >= 1 and first.deposits == 1
    bonus = Bonus.objects.get(login=login)
    assert bonus.amount == D("200.00") and bonus.deposit_amount == D("400.00")
    for _ in range(3):
        monitor.cycle()
    _monitor().cycle()  # a restarted monitor (its snapshots reloaded) does not grant it again
    assert Bonus.objects.filter(login=login).count() == 1
    assert len(credit_deals(login)) == 1
