"""Drawdown ends with the broker's credit back in MT5; MT5 postings back off, fail to a person, and are settled."""

from __future__ import annotations

import logging
from decimal import Decimal as D

import pytest
from django.test import Client

from bonuses import selectors
from bonuses.choices import AuditAction, BonusStatus, OperationKind, OperationStatus, Trigger
from bonuses.models import AuditLog, Bonus, BonusOperation, MonitorCycle, MonitorShard
from bonuses.monitor import Monitor
from bonuses.services.ending import bonus_cancel
from bonuses.services.operations import operation_resolve, operations_resume
from bonuses.services.triggers import trigger_deposit, trigger_registration
from mt5bridge import gateway as gw
from mt5bridge.simulated import deposit
from mt5bridge.simulated.models import SimDeal

from .conftest import RefusesCreditRemoval, account, make_account, make_campaign

pytestmark = pytest.mark.django_db


def _monitor() -> Monitor:
    return Monitor(gateway=gw.get_gateway("simulated"), worker="test-worker")


def _hedge(login: int, volume: str = "0.5") -> None:
    sim = gw.get_gateway("simulated")
    for side in (gw.OrderType.BUY, gw.OrderType.SELL):
        request = gw.OrderRequest(action=gw.TradeAction.DEAL, symbol="BTCUSD", volume=D(volume), type=side)
        assert sim.order_send(login, request).ok


def _account_in_drawdown() -> int:
    """Balance 20 at 1:500 with a fixed 1,000 credit; a hedged 0.5 BTCUSD pair costs the spread (equity < credit)."""
    login = make_account(balance="20", leverage=500)
    make_campaign(triggers=[Trigger.REGISTRATION], fixed_amount=D("1000"))
    trigger_registration(login=login)
    assert account(login).credit == D("1000.00")
    _hedge(login)
    info = account(login)
    assert info.equity < info.credit
    return login


def _corrections(login: int) -> list[SimDeal]:
    return list(SimDeal.objects.filter(account_id=login, type=int(gw.DealType.CORRECTION)))


def test_drawdown_takes_the_whole_credit_back_and_corrects_the_negative_balance_once():
    login = _account_in_drawdown()
    monitor = _monitor()
    for _ in range(6):
        monitor.cycle()
    info = account(login)
    assert info.credit == D("0.00")
    assert info.balance == D("0.00")  # the spread took the balance below zero; the correction brings it back
    assert gw.get_gateway("simulated").positions(login) == []
    bonus = Bonus.objects.get(login=login)
    assert bonus.status == BonusStatus.CANCELLED and bonus.cancel_reason == "drawdown"
    assert bonus.credit_outstanding == D("0.00") and bonus.removed_amount == D("1000.00")
    assert AuditLog.objects.filter(login=login, action=AuditAction.CREDIT_REMOVED).count() == 1
    (correction,) = _corrections(login)
    audit = AuditLog.objects.get(login=login, action=AuditAction.BALANCE_CORRECTED)
    assert D(audit.after["correction"]) == correction.profit > 0
    # One event, counted once, one cycle row for it, however many cycles see the account afterwards.
    assert AuditLog.objects.filter(login=login, action=AuditAction.DRAWDOWN).count() == 1
    assert MonitorShard.objects.get(shard=0, shards=1).drawdowns == 1
    assert MonitorCycle.objects.filter(drawdowns__gt=0).count() == 1
    operations_resume(login=login, when_due=False)
    assert len(_corrections(login)) == 1


def test_drawdown_with_the_leave_policy_removes_the_credit_and_leaves_the_balance(settings):
    settings.BONUS_NEGATIVE_BALANCE_POLICY = "leave"
    login = _account_in_drawdown()
    monitor = _monitor()
    for _ in range(3):
        monitor.cycle()
    info = account(login)
    assert info.credit == D("0.00") and info.balance < 0
    assert _corrections(login) == []


def _cancelled_with_refused_removal(gateway) -> BonusOperation:
    login = make_account(balance="0")
    make_campaign()
    deposit(login, D("500"))
    (result,) = trigger_deposit(login=login, amount=D("500"))
    bonus_cancel(actor="test", bonus=result.bonus, gateway=gateway)
    return BonusOperation.objects.get(bonus=result.bonus, kind=OperationKind.CREDIT_OUT)


def test_a_refused_posting_backs_off_instead_of_retrying_every_cycle(settings):
    settings.BONUS_OPERATION_RETRY_SECONDS = 60
    gateway = RefusesCreditRemoval()
    operation = _cancelled_with_refused_removal(gateway)
    for _ in range(5):
        operations_resume(login=operation.login, gateway=gateway)
    operation.refresh_from_db()
    assert gateway.refused == 1 and operation.attempts == 1
    assert operation.status == OperationStatus.PENDING and operation.next_attempt_at is not None


def test_a_posting_refused_every_time_fails_to_a_person_with_an_alert(settings, caplog, super_admin, read_only):
    settings.BONUS_OPERATION_RETRY_SECONDS = 0
    settings.BONUS_OPERATION_MAX_ATTEMPTS = 3
    gateway = RefusesCreditRemoval()
    operation = _cancelled_with_refused_removal(gateway)
    with caplog.at_level(logging.ERROR, logger="bonuses.services.operations"):
        for _ in range(10):
            operations_resume(login=operation.login, gateway=gateway)
    operation.refresh_from_db()
    assert gateway.refused == 3 and operation.status == OperationStatus.FAILED
    assert any(r.levelno == logging.ERROR and "failed after 3 attempts" in r.getMessage() for r in caplog.records)
    assert AuditLog.objects.filter(bonus=operation.bonus, action=AuditAction.OPERATION_FAILED).count() == 1

    admin = Client()
    admin.force_login(super_admin)
    page = admin.get("/admin/bonuses/bonus/").content.decode()
    assert "1 MT5 posting(s) failed after every retry" in page
    assert admin.get("/admin/bonuses/bonus/monitoring/").status_code == 200
    assert selectors.monitoring_status()["failed_operations"] == 1

    # Read-Only may see the posting, not retry it.
    viewer = Client()
    viewer.force_login(read_only)
    viewer.post("/admin/bonuses/bonusoperation/", {"action": "retry_now", "_selected_action": [operation.pk]})
    operation.refresh_from_db()
    assert operation.status == OperationStatus.FAILED

    # Super Admin retries it now against an MT5 that takes it: done, audited, the credit is gone.
    admin.post("/admin/bonuses/bonusoperation/", {"action": "retry_now", "_selected_action": [operation.pk]})
    operation.refresh_from_db()
    assert operation.status == OperationStatus.DONE
    assert account(operation.login).credit == D("0.00")
    retried = AuditLog.objects.get(bonus=operation.bonus, action=AuditAction.OPERATION_RETRIED)
    assert retried.actor == super_admin and retried.before["status"] == OperationStatus.FAILED


def test_a_failed_posting_marked_resolved_is_closed_audited_and_never_sent(settings, super_admin):
    settings.BONUS_OPERATION_RETRY_SECONDS = 0
    settings.BONUS_OPERATION_MAX_ATTEMPTS = 1
    gateway = RefusesCreditRemoval()
    operation = _cancelled_with_refused_removal(gateway)
    operation.refresh_from_db()
    assert operation.status == OperationStatus.FAILED
    admin = Client()
    admin.force_login(super_admin)
    admin.post("/admin/bonuses/bonusoperation/", {"action": "mark_resolved", "_selected_action": [operation.pk]})
    operation.refresh_from_db()
    assert operation.status == OperationStatus.RESOLVED
    assert AuditLog.objects.filter(bonus=operation.bonus, action=AuditAction.OPERATION_RESOLVED).count() == 1
    operations_resume(login=operation.login, when_due=False)
    assert gateway.refused == 1
    assert Bonus.objects.get(pk=operation.bonus_id).status == BonusStatus.CANCELLED
    with pytest.raises(Exception, match="not failed"):
        operation_resolve(actor="test", operation=operation)
