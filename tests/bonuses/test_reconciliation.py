"""Reconciliation of bonus operations with the credit deals synced from the simulated MT5.

Each mismatch is made the way it happens on a real server: a dealer deletes a bonus deal, a bridge sends a
posting twice or drops its cents, a dealer posts credit by hand. The account is then synced through the
product's own sync (mt5bridge.sync), and the run compares what the sync stored.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_DOWN
from decimal import Decimal as D
from io import StringIO

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.cache import cache
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from accounts.choices import Role
from accounts.services import trading_account_create
from bonuses.choices import OperationKind, OperationStatus
from bonuses.models import AuditLog, BonusOperation
from bonuses.reconciliation import (
    LOCK_KEY,
    Coverage,
    DealRow,
    OperationRow,
    compare,
    mismatches_review,
    reconciliation_execute,
    reconciliation_request,
    reconciliation_run_now,
)
from bonuses.reconciliation_models import (
    MISMATCH_REVIEWED,
    MismatchKind,
    MismatchStatus,
    ReconciliationMismatch,
    ReconciliationRun,
    RunStatus,
    RunTrigger,
)
from bonuses.services.triggers import trigger_deposit
from bonuses.tasks import reconcile_queue
from config.errors import ServiceError
from mt5bridge import gateway as gw
from mt5bridge.simulated import deposit
from mt5bridge.simulated.models import SimDeal
from mt5bridge.sync import account_sync
from tests.personas import UserFactory, api_client_for, staff_user

from .conftest import SIM_PASSWORD, make_account, make_campaign

pytestmark = pytest.mark.django_db

SERVER = "MetaSim-Demo"


class DropsCents:
    """The simulated gateway behind a bridge that posts whole units only (500.50 goes out as 500)."""

    def __init__(self):
        self.inner = gw.get_gateway("simulated")
        self.kind = self.inner.kind

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def balance_operation(self, login, amount, deal_type, comment, *, check_margin=True):
        whole = amount.quantize(D("1"), rounding=ROUND_DOWN)
        return self.inner.balance_operation(login, whole, deal_type, comment, check_margin=check_margin)


def _bonus_account(amount="1000", gateway=None):
    """An MT5 account that deposited ``amount`` and got the campaign's 50% credit; returns (login, credit op)."""
    login = make_account(balance="0")
    deposit(login, D(amount))
    (result,) = trigger_deposit(login=login, amount=D(amount), gateway=gateway)
    op = BonusOperation.objects.get(bonus=result.bonus, kind=OperationKind.CREDIT_IN)
    assert op.status == OperationStatus.DONE
    return login, op


def _synced(login):
    """The trader connects the account and it is synced: its deals land in accounts.Deal."""
    account = trading_account_create(
        owner=UserFactory(roles=[Role.TRADER]), login=login, password=SIM_PASSWORD, server=SERVER, sync_now=False
    )
    assert account_sync(account_id=account.pk).outcome == "ok"
    return account


def _sim():
    return gw.get_gateway("simulated")


def _mismatches(login):
    return list(ReconciliationMismatch.objects.filter(login=login).order_by("kind", "pk"))


@pytest.fixture(autouse=True)
def _campaign(db):
    return make_campaign(bonus_percent=D("50"))


# --- Each kind of mismatch, from synced data ---------------------------------------------------------------------


def test_a_posted_credit_with_its_deal_on_mt5_is_not_a_mismatch():
    login, _ = _bonus_account()
    _synced(login)
    run = reconciliation_run_now()
    assert run.status == RunStatus.DONE
    assert (run.accounts_checked, run.operations_checked, run.deals_checked, run.found) == (1, 1, 1, 0)
    assert _mismatches(login) == []


def test_a_credit_deal_deleted_on_mt5_is_found_missing():
    login, op = _bonus_account()
    SimDeal.objects.filter(account_id=login, comment=op.comment).delete()  # a dealer deleted it
    _synced(login)

    run = reconciliation_run_now()

    (mismatch,) = _mismatches(login)
    assert mismatch.kind == MismatchKind.MISSING and mismatch.status == MismatchStatus.OPEN
    assert mismatch.operation_id == op.pk and mismatch.bonus_id == op.bonus_id
    assert mismatch.expected_amount == D("500.00") and mismatch.found_amount is None
    assert run.found == 1 and run.new == 1


def test_a_posting_sent_twice_is_found_duplicated():
    login, op = _bonus_account()
    second = _sim().balance_operation(login, op.amount, gw.DealType.CREDIT, op.comment)  # the bridge resent it
    _synced(login)

    reconciliation_run_now()

    (mismatch,) = _mismatches(login)
    assert mismatch.kind == MismatchKind.DUPLICATED
    assert sorted(mismatch.deal_tickets) == sorted([op.deal_ticket, second])
    assert mismatch.expected_amount == D("500.00") and mismatch.found_amount == D("1000.00")


def test_a_deal_of_another_amount_is_found_with_both_amounts():
    login, op = _bonus_account("1001", gateway=DropsCents())  # 500.50 recorded, 500 posted
    _synced(login)

    reconciliation_run_now()

    (mismatch,) = _mismatches(login)
    assert mismatch.kind == MismatchKind.AMOUNT
    assert (mismatch.expected_amount, mismatch.found_amount) == (D("500.50"), D("500.00"))
    assert mismatch.deal_tickets == [op.deal_ticket]


def test_credit_posted_by_hand_on_a_bonus_account_is_an_orphan():
    login, _ = _bonus_account()
    ticket = _sim().balance_operation(login, D("75"), gw.DealType.CREDIT, "Manual credit")
    _synced(login)

    reconciliation_run_now()

    (mismatch,) = _mismatches(login)
    assert mismatch.kind == MismatchKind.ORPHAN and mismatch.key == f"orphan:{login}:{ticket}"
    assert mismatch.operation_id is None and mismatch.found_amount == D("75.00")
    assert "Manual credit" in mismatch.message


def test_a_removal_sent_as_the_wrong_sign_is_found():
    login, op = _bonus_account()
    out = BonusOperation.objects.create(
        bonus=op.bonus, login=login, kind=OperationKind.CREDIT_OUT, amount=D("100"), status=OperationStatus.DONE,
        done_at=timezone.now(),
    )  # fmt: skip
    _sim().balance_operation(login, D("100"), gw.DealType.CREDIT, out.comment)  # +100 where -100 was meant
    _synced(login)

    reconciliation_run_now()

    (mismatch,) = _mismatches(login)
    assert (mismatch.kind, mismatch.expected_amount, mismatch.found_amount) == (
        MismatchKind.AMOUNT,
        D("-100.00"),
        D("100.00"),
    )


# --- What is not a mismatch ----------------------------------------------------------------------------------------


def test_an_account_never_synced_is_counted_not_judged():
    login, op = _bonus_account()
    SimDeal.objects.filter(account_id=login, comment=op.comment).delete()
    run = reconciliation_run_now()
    assert (run.accounts_checked, run.accounts_not_synced, run.found) == (0, 1, 0)


def test_a_credit_posted_after_the_last_sync_waits_for_the_next_sync():
    login = make_account(balance="0")
    account = _synced(login)
    deposit(login, D("1000"))
    trigger_deposit(login=login, amount=D("1000"))
    assert reconciliation_run_now().found == 0  # its deal is not synced yet: not missing
    account_sync(account_id=account.pk)
    run = reconciliation_run_now()
    assert (run.operations_checked, run.deals_checked, run.found) == (1, 1, 0)


def test_pure_compare_ignores_in_flight_operations_and_flags_deals_of_refused_ones():
    now = timezone.now()
    coverage = Coverage(start=now - timedelta(days=1), end=now + timedelta(minutes=1))
    pending = OperationRow(7, 1, OperationKind.CREDIT_IN, OperationStatus.PENDING, D("10"), None, None)
    refused = OperationRow(8, 1, OperationKind.CREDIT_IN, OperationStatus.REFUSED, D("20"), None, None)
    deals = [DealRow(100, now, D("10"), "BONUS 1 op 7"), DealRow(101, now, D("20"), "BONUS 1 op 8")]
    (finding,) = compare(5, [pending, refused], deals, coverage)
    assert finding.kind == MismatchKind.ORPHAN and finding.operation_id == 8 and finding.tickets == (101,)
    zero = OperationRow(9, 1, OperationKind.CREDIT_OUT, OperationStatus.DONE, D("0"), None, now)
    assert compare(5, [zero], [], coverage) == []  # a removal of nothing posts nothing


# --- Reruns, review, clearing ----------------------------------------------------------------------------------------


def test_a_rerun_finds_the_same_rows_and_adds_none():
    login, op = _bonus_account()
    _sim().balance_operation(login, D("75"), gw.DealType.CREDIT, "Manual credit")
    SimDeal.objects.filter(account_id=login, comment=op.comment).delete()
    _synced(login)
    first = reconciliation_run_now()
    before = {m.key: m.pk for m in _mismatches(login)}

    second = reconciliation_run_now()

    after = {m.key: m.pk for m in _mismatches(login)}
    assert after == before and len(after) == 2
    assert (first.new, second.found, second.new, second.cleared) == (2, 2, 0, 0)
    assert all(m.last_run_id == second.pk and m.first_run_id == first.pk for m in _mismatches(login))


def test_a_reviewed_mismatch_stays_reviewed_and_audited_across_reruns(super_admin):
    login, op = _bonus_account()
    SimDeal.objects.filter(account_id=login, comment=op.comment).delete()
    _synced(login)
    reconciliation_run_now()
    (mismatch,) = _mismatches(login)

    with pytest.raises(ServiceError) as exc:
        mismatches_review(actor=super_admin, mismatches=[mismatch.pk], note="   ")
    assert exc.value.code == "note_required"
    assert mismatches_review(actor=super_admin, mismatches=[mismatch.pk], note="Re-posted by the dealer") == 1
    assert mismatches_review(actor=super_admin, mismatches=[mismatch.pk], note="again") == 0
    reconciliation_run_now()

    (mismatch,) = _mismatches(login)
    assert mismatch.status == MismatchStatus.REVIEWED and mismatch.review_note == "Re-posted by the dealer"
    assert mismatch.reviewed_by == super_admin
    (entry,) = AuditLog.objects.filter(action=MISMATCH_REVIEWED, login=login)
    assert entry.actor_label == super_admin.email and entry.bonus_id == op.bonus_id
    assert entry.before == {"status": "open"} and entry.after["note"] == "Re-posted by the dealer"


def test_a_mismatch_fixed_on_mt5_is_cleared_by_the_next_run_and_reopened_if_it_returns():
    login, op = _bonus_account()
    SimDeal.objects.filter(account_id=login, comment=op.comment).delete()
    account = _synced(login)
    reconciliation_run_now()
    _sim().balance_operation(login, op.amount, gw.DealType.CREDIT, op.comment)  # the dealer posts it again
    account_sync(account_id=account.pk)

    cleared = reconciliation_run_now()

    (mismatch,) = _mismatches(login)
    assert (cleared.found, cleared.cleared) == (0, 1)
    assert mismatch.status == MismatchStatus.CLEARED and mismatch.cleared_at is not None
    account.deals.filter(comment=op.comment).delete()  # gone from the synced history again
    reopened = reconciliation_run_now()
    (mismatch,) = _mismatches(login)
    assert (reopened.found, reopened.new) == (1, 0)
    assert mismatch.status == MismatchStatus.OPEN and mismatch.cleared_at is None


def test_runs_one_at_a_time_and_once_each():
    run = reconciliation_request(actor="test", trigger=RunTrigger.API)
    assert reconciliation_execute(run_id=run.pk).status == RunStatus.DONE
    assert reconciliation_execute(run_id=run.pk).finished_at is not None  # a second delivery does nothing
    cache.set(LOCK_KEY, -1, 60)  # another run holds the lock
    other = reconciliation_request(actor="test", trigger=RunTrigger.API)
    assert reconciliation_execute(run_id=other.pk).status == RunStatus.SKIPPED
    cache.delete(LOCK_KEY)


# --- Nightly, on demand, and who may ---------------------------------------------------------------------------------


def test_the_nightly_schedule_is_installed_as_a_crontab_at_half_past_two():
    from django_celery_beat.models import PeriodicTask

    call_command("setup_periodic_tasks", stdout=StringIO())
    task = PeriodicTask.objects.get(task="bonuses.tasks.reconcile_nightly")
    assert (task.crontab.minute, task.crontab.hour, task.interval) == ("30", "2", None)


def test_the_management_command_runs_and_reports(capsys):
    login, op = _bonus_account()
    SimDeal.objects.filter(account_id=login, comment=op.comment).delete()
    _synced(login)
    out = StringIO()
    call_command("reconcile_bonuses", "--login", str(login), stdout=out)
    assert "1 mismatch(es), 1 new" in out.getvalue()
    assert ReconciliationRun.objects.get().trigger == RunTrigger.COMMAND


def test_super_admin_queues_a_run_through_the_api_and_read_only_and_support_cannot(django_capture_on_commit_callbacks):
    login, op = _bonus_account()
    SimDeal.objects.filter(account_id=login, comment=op.comment).delete()
    _synced(login)
    url = reverse("bonus-reconciliation-runs")
    for role in (Role.READ_ONLY, Role.SUPPORT_AGENT, Role.CAMPAIGN_MANAGER):
        assert api_client_for(staff_user(role)).post(url, {}, format="json").status_code == 403
    assert not ReconciliationRun.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        response = api_client_for(staff_user(Role.SUPER_ADMIN)).post(url, {"logins": [login]}, format="json")
    assert response.status_code == 202
    run = ReconciliationRun.objects.get(pk=response.json()["id"])
    assert (run.status, run.trigger, run.found) == (RunStatus.DONE, RunTrigger.API, 1)

    listing = api_client_for(staff_user(Role.READ_ONLY)).get(
        reverse("bonus-reconciliation-mismatches"), {"kind": "missing"}
    )
    assert listing.status_code == 200 and listing.json()["results"][0]["operation"] == op.pk
    assert (
        api_client_for(staff_user(Role.SUPPORT_AGENT)).get(reverse("bonus-reconciliation-mismatches")).status_code
        == 403
    )
    bad = api_client_for(staff_user(Role.SUPER_ADMIN)).post(url, {"logins": ["x"]}, format="json")
    assert bad.status_code == 400


def test_review_through_the_api_needs_the_manage_capability_and_a_note():
    login, op = _bonus_account()
    SimDeal.objects.filter(account_id=login, comment=op.comment).delete()
    _synced(login)
    reconciliation_run_now()
    (mismatch,) = _mismatches(login)
    url = reverse("bonus-reconciliation-review", kwargs={"pk": mismatch.pk})
    assert api_client_for(staff_user(Role.READ_ONLY)).post(url, {"note": "x"}, format="json").status_code == 403
    admin_client = api_client_for(staff_user(Role.SUPER_ADMIN))
    assert admin_client.post(url, {}, format="json").status_code == 400
    done = admin_client.post(url, {"note": "Dealer deleted it by mistake; re-posted"}, format="json")
    assert done.status_code == 200 and done.json()["status"] == "reviewed"
    again = admin_client.post(url, {"note": "twice"}, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_reviewed"


def test_admin_lists_filters_and_marks_reviewed_and_read_only_can_only_look(client, django_capture_on_commit_callbacks):
    login, op = _bonus_account()
    SimDeal.objects.filter(account_id=login, comment=op.comment).delete()
    _sim().balance_operation(login, D("75"), gw.DealType.CREDIT, "Manual credit")
    _synced(login)
    reconciliation_run_now()
    changelist = reverse("admin:bonuses_reconciliationmismatch_changelist")

    client.force_login(staff_user(Role.READ_ONLY))
    page = client.get(changelist, {"kind__exact": "missing"})
    assert page.status_code == 200
    assert f"operation #{op.pk}" in page.content.decode() and "Manual credit" not in page.content.decode()
    assert client.get(reverse("admin:bonuses_reconciliation_run")).status_code == 403
    for role in (Role.SUPPORT_AGENT, Role.CAMPAIGN_MANAGER):
        client.force_login(staff_user(role))
        assert client.get(changelist).status_code == 403

    client.force_login(staff_user(Role.SUPER_ADMIN))
    missing = ReconciliationMismatch.objects.get(kind=MismatchKind.MISSING)
    form = {"action": "mark_reviewed", ACTION_CHECKBOX_NAME: [missing.pk]}
    asked = client.post(changelist, form)
    assert asked.status_code == 200 and "Mark reviewed" in asked.content.decode()
    client.post(changelist, {**form, "apply": "1", "note": "Dealer deleted it; re-posted as #1"})
    missing.refresh_from_db()
    assert missing.status == MismatchStatus.REVIEWED and missing.review_note == "Dealer deleted it; re-posted as #1"

    assert client.get(reverse("admin:bonuses_reconciliation_run")).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("admin:bonuses_reconciliation_run"))
    run = ReconciliationRun.objects.order_by("-pk").first()
    assert (run.trigger, run.status, run.new) == (RunTrigger.ADMIN, RunStatus.DONE, 0)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(changelist, {"action": "recheck_accounts", ACTION_CHECKBOX_NAME: [missing.pk]})
    assert ReconciliationRun.objects.order_by("-pk").first().logins == [login]


def test_the_queued_task_makes_the_run(django_capture_on_commit_callbacks):
    run = reconciliation_request(actor="test", trigger=RunTrigger.ADMIN)
    with django_capture_on_commit_callbacks(execute=True):
        reconcile_queue(run)
    run.refresh_from_db()
    assert run.status == RunStatus.DONE
