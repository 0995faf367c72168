"""The monitor with its postings on the account queue: the cycle only notices, the account task acts, in order."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from django.utils import timezone

from bonuses.choices import AuditAction, BonusStatus, OperationKind, OperationStatus
from bonuses.models import AuditLog, Bonus, BonusOperation, MonitoredAccount
from bonuses.monitor import Monitor
from bonuses.services.queued import AccountBusy, Dispatcher, account_work, postings_queued
from mt5bridge import gateway as gw
from mt5bridge.simulated import deposit, withdraw

from .conftest import account, credit_deals, make_account, make_campaign

pytestmark = pytest.mark.django_db


class Held:
    """A queue that holds the accounts it was sent until the test runs them (the worker, under control)."""

    def __init__(self):
        self.sent: list[int] = []

    def __call__(self, login: int) -> None:
        self.sent.append(login)

    def run(self) -> None:
        while self.sent:
            account_work(login=self.sent.pop(0), gateway=gw.get_gateway("simulated"))


def _queued_monitor(queue: Held) -> Monitor:
    return Monitor(
        gateway=gw.get_gateway("simulated"),
        worker="queued-worker",
        queued=True,
        dispatcher=Dispatcher(threaded=False, send=queue),
    )


def test_without_a_broker_postings_stay_inside_the_cycle(settings):
    settings.BONUS_OPERATIONS_QUEUED = "auto"
    assert postings_queued() is False  # the tests' Celery is eager
    settings.BONUS_OPERATIONS_QUEUED = "true"
    assert postings_queued() is True


def test_a_deposit_is_noticed_by_the_cycle_and_credited_once_by_the_account_task():
    login = make_account(balance="100")
    make_campaign(bonus_percent=D("50"), starts_at=timezone.now())
    queue = Held()
    monitor = _queued_monitor(queue)
    monitor.cycle()
    queue.run()  # the first look reads the deals since registration
    deposit(login, D("400"))
    monitor.cycle()
    # The cycle asked for the deals to be read and sent the account; it posted nothing itself.
    assert queue.sent == [login]
    assert not Bonus.objects.filter(login=login).exists() and account(login).credit == 0
    row = MonitoredAccount.objects.get(login=login)
    assert row.review_seq == row.reviewed_seq + 1
    queue.run()
    bonus = Bonus.objects.get(login=login)
    assert bonus.status == BonusStatus.ACTIVE and bonus.amount == D("200.00")
    assert account(login).credit == D("200.00")
    assert AuditLog.objects.filter(bonus=bonus, action=AuditAction.CREDIT_POSTED).count() == 1
    row.refresh_from_db()
    assert row.review_seq == row.reviewed_seq
    # The same account sent again (a resend, a redelivered message): nothing is credited twice.
    for _ in range(3):
        monitor.cycle()
        queue.sent.append(login)
        queue.run()
    assert len(credit_deals(login)) == 1


def test_a_lost_queue_message_is_sent_again_from_what_postgresql_holds():
    login = make_account(balance="100")
    make_campaign(bonus_percent=D("50"), starts_at=timezone.now())
    queue = Held()
    monitor = _queued_monitor(queue)
    monitor.cycle()
    queue.run()  # the first look reads the deals since registration
    deposit(login, D("400"))
    monitor.cycle()
    queue.sent.clear()  # Redis restarted empty: the message is gone
    monitor._next_sweep = 0.0
    monitor.cycle()
    assert queue.sent == []  # sent 5 s ago at most: the message may still be queued behind others
    sent, wait = monitor._sent_at[login]
    monitor._sent_at[login] = (sent - wait, wait)  # the resend delay has passed
    monitor._next_sweep = 0.0
    monitor.cycle()
    assert queue.sent == [login]
    assert monitor._sent_at[login][1] == 2 * wait  # the next resend waits twice as long
    queue.run()
    assert Bonus.objects.get(login=login).status == BonusStatus.ACTIVE


def test_a_restarted_monitor_finds_a_deposit_its_predecessor_saw_but_never_wrote():
    login = make_account(balance="100")
    make_campaign(bonus_percent=D("50"), starts_at=timezone.now())
    queue = Held()
    monitor = _queued_monitor(queue)
    monitor.cycle()
    queue.run()  # the first look reads the deals since registration
    deposit(login, D("400"))
    monitor.snapshots[login].balance = D("500")  # seen in memory, then the cycle failed before writing it
    monitor.reset()
    monitor.cycle()
    assert queue.sent == [login]
    queue.run()
    assert Bonus.objects.filter(login=login, status=BonusStatus.ACTIVE).count() == 1


def test_the_account_task_sends_postings_in_order_and_stops_at_one_not_done():
    login = make_account(balance="1000")
    make_campaign(bonus_percent=D("50"), starts_at=timezone.now())
    queue = Held()
    monitor = _queued_monitor(queue)
    monitor.cycle()
    queue.run()  # the first look reads the deals since registration
    deposit(login, D("200"))
    monitor.cycle()
    queue.run()
    bonus = Bonus.objects.get(login=login)
    waiting = BonusOperation.objects.create(bonus=bonus, login=login, kind=OperationKind.CREDIT_OUT, amount=D("10"))
    after = BonusOperation.objects.create(bonus=bonus, login=login, kind=OperationKind.CREDIT_OUT, amount=D("20"))
    BonusOperation.objects.filter(pk=waiting.pk).update(next_attempt_at=timezone.now() + timezone.timedelta(hours=1))
    work = account_work(login=login, gateway=gw.get_gateway("simulated"))
    assert work.posted == 0 and work.waiting == 1
    after.refresh_from_db()
    assert after.status == OperationStatus.PENDING  # never before the one recorded ahead of it
    BonusOperation.objects.filter(pk=waiting.pk).update(next_attempt_at=None)
    assert account_work(login=login, gateway=gw.get_gateway("simulated")).posted == 2
    assert account(login).credit == D("70.00")


def test_two_tasks_of_one_account_never_run_at_once():
    login = make_account(balance="100")
    MonitoredAccount.objects.create(login=login)
    from django.db import connections

    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [f"bonus-account:{login}"])
        with pytest.raises(AccountBusy):
            account_work(login=login, gateway=gw.get_gateway("simulated"))
        with other.cursor() as cursor:  # the other task ends
            cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [f"bonus-account:{login}"])
    finally:
        other.close()
    account_work(login=login, gateway=gw.get_gateway("simulated"))  # free again once the holder is done


def test_a_drawdown_is_protected_inside_the_cycle_and_its_credit_removal_queued():
    login = make_account(balance="100")
    make_campaign(bonus_percent=D("100"), starts_at=timezone.now())
    queue = Held()
    monitor = _queued_monitor(queue)
    monitor.cycle()
    queue.run()  # the first look reads the deals since registration
    deposit(login, D("100"))
    monitor.cycle()
    queue.run()
    assert account(login).credit == D("100.00")
    withdraw(login, D("200"), comment="loss")  # equity falls to the credit without a deposit or withdrawal deal read
    monitor.snapshots[login].balance = D("0")  # the cycle sees only the equity at the credit
    monitor.cycle()
    assert Bonus.objects.get(login=login).status == BonusStatus.CANCELLED  # decided in the cycle
    assert login in queue.sent
    queue.run()
    assert account(login).credit == 0
