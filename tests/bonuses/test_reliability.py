"""Reliability: concurrent identical triggers, the insert-only audit log, one credit per bonus."""

from __future__ import annotations

import threading
from decimal import Decimal as D

import pytest
from django.db import DatabaseError, connection, connections, transaction

from bonuses.choices import AuditAction
from bonuses.models import AuditLog, Bonus
from bonuses.services.audit import audit_write
from bonuses.services.triggers import trigger_deposit
from mt5bridge.simulated import deposit

from .conftest import credit_deals, make_account, make_campaign


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_identical_deposit_triggers_give_one_bonus_and_one_credit_deal():
    login = make_account(balance="0")
    make_campaign()
    deposit(login, D("500"))
    barrier = threading.Barrier(50)
    outcomes: list = []
    errors: list = []

    def fire():
        try:
            barrier.wait(timeout=30)
            outcomes.append(trigger_deposit(login=login, amount=D("500")))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=fire) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert len(outcomes) == 50
    assert Bonus.objects.filter(login=login).count() == 1
    assert len(credit_deals(login)) == 1
    assert {o[0].bonus.pk for o in outcomes} == {Bonus.objects.get(login=login).pk}
    assert AuditLog.objects.filter(login=login, action=AuditAction.CREDIT_POSTED).count() == 1


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL-only")
def test_the_audit_log_refuses_update_at_the_database_level():
    row = audit_write(actor="test", action=AuditAction.MT5_SCANNED, after={"x": 1})
    with pytest.raises(DatabaseError, match="insert-only"), transaction.atomic():
        AuditLog.objects.filter(pk=row.pk).update(message="rewritten")
    with pytest.raises(DatabaseError, match="insert-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE bonuses_auditlog SET after = '{}' WHERE id = %s", [row.pk])
    assert AuditLog.objects.get(pk=row.pk).after == {"x": 1}


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL-only")
def test_the_audit_log_refuses_delete_at_the_database_level():
    row = audit_write(actor="test", action=AuditAction.MT5_SCANNED)
    with pytest.raises(DatabaseError, match="insert-only"), transaction.atomic():
        AuditLog.objects.filter(pk=row.pk).delete()
    with pytest.raises(DatabaseError, match="insert-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM bonuses_auditlog")
    assert AuditLog.objects.filter(pk=row.pk).exists()
