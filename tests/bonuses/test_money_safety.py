"""Money safety: manual-assign caps, Idempotency-Key, one winner per bonus, postings that outlast their claim."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connections
from django.test import Client
from django.utils import timezone

from accounts.choices import Role
from bonuses import formulas, limits
from bonuses.choices import AuditAction, BonusStatus, BonusType, OperationKind, OperationStatus, Trigger
from bonuses.models import AuditLog, Bonus, BonusOperation
from bonuses.services.detection import account_trades_detected
from bonuses.services.ending import bonus_cancel, bonus_force_convert, bonuses_expire
from bonuses.services.manual import bonus_assign_manual
from bonuses.services.monitored import account_ensure
from bonuses.services.operations import operation_create, operations_resume
from bonuses.services.triggers import trigger_deposit
from config.errors import Conflict, NotAllowed
from mt5bridge import gateway as gw
from mt5bridge.simulated import deposit
from mt5bridge.simulated.models import SimDeal
from tests.personas import UserFactory, api_client_for, staff_user

from .conftest import account, credit_deals, make_account, make_campaign

ASSIGN = "/api/bonuses/assign"
ADMIN_ASSIGN = "/admin/bonuses/bonus/assign/"


def _bonus_balance_deals(login: int) -> list:
    return list(SimDeal.objects.filter(account_id=login, type=int(gw.DealType.BALANCE), comment__startswith="BONUS ")
                .order_by("ticket"))  # fmt: skip


def _post(client, body: dict, key: str | None = "k-1"):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post(ASSIGN, body, format="json", headers=headers)


class SlowGateway:
    """The simulated gateway whose money postings take ``delay`` seconds to reach MT5 (a slow bridge, retries)."""

    def __init__(self, delay: float):
        self.inner = gw.get_gateway("simulated")
        self.kind = self.inner.kind
        self.delay = delay
        self.in_flight = threading.Event()
        self.posted = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def balance_operation(self, *args, **kwargs):
        self.in_flight.set()
        time.sleep(self.delay)
        self.posted += 1
        return self.inner.balance_operation(*args, **kwargs)


def _in_threads(*targets) -> list:
    """Run each callable in its own thread with its own database connection; returns results or exceptions."""
    results: list = [None] * len(targets)

    def run(i, target):
        try:
            results[i] = target()
        except Exception as exc:  # collected: the caller asserts on them
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, t)) for i, t in enumerate(targets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    return results


# --- The campaign's amount rules (pure) ----------------------------------------------------


def test_the_manual_cap_is_what_the_campaigns_rule_gives():
    cap = formulas.manual_amount_cap
    assert cap(deposit=D("300"), percent=D("50"), max_bonus_amount=None, fixed_amount=None)[0] == D("150.00")
    assert cap(deposit=D("300"), percent=D("50"), max_bonus_amount=D("100"), fixed_amount=None)[0] == D("100")
    assert cap(deposit=None, percent=D("50"), max_bonus_amount=D("100"), fixed_amount=D("25"))[0] == D("25.00")
    assert cap(deposit=None, percent=D("50"), max_bonus_amount=D("20"), fixed_amount=D("25"))[0] == D("20.00")
    amount, rule = cap(deposit=None, percent=D("50"), max_bonus_amount=D("100"), fixed_amount=None)
    assert amount == D("0.00") and "no deposit" in rule


# --- Role limits ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_role_limits_come_from_settings_and_the_most_generous_role_counts(settings):
    settings.BONUS_MANUAL_LIMIT_SUPPORT_AGENT = D("250")
    settings.BONUS_MANUAL_LIMIT_SUPER_ADMIN = D("5000")
    agent = staff_user(Role.SUPPORT_AGENT)
    assert limits.manual_assign_limit(agent) == (True, D("250"), Role.SUPPORT_AGENT)
    both = UserFactory(is_staff=True, roles=[Role.SUPPORT_AGENT, Role.SUPER_ADMIN])
    assert limits.manual_assign_limit(both) == (True, D("5000"), Role.SUPER_ADMIN)
    settings.BONUS_MANUAL_LIMIT_SUPER_ADMIN = None
    both = UserFactory(is_staff=True, roles=[Role.SUPPORT_AGENT, Role.SUPER_ADMIN])
    assert limits.manual_assign_limit(both) == (True, None, Role.SUPER_ADMIN)
    assert limits.manual_assign_limit(staff_user(Role.READ_ONLY))[0] is False


def test_the_limit_settings_refuse_a_malformed_amount(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from config.env import envmoney

    monkeypatch.setenv("BONUS_MANUAL_LIMIT_SUPPORT_AGENT", "1000")
    assert envmoney("BONUS_MANUAL_LIMIT_SUPPORT_AGENT", "5") == D("1000")
    monkeypatch.setenv("BONUS_MANUAL_LIMIT_SUPPORT_AGENT", "")
    assert envmoney("BONUS_MANUAL_LIMIT_SUPPORT_AGENT", "5") is None
    for bad in ("lots", "-1", "10.001", "nan", "inf"):
        monkeypatch.setenv("BONUS_MANUAL_LIMIT_SUPPORT_AGENT", bad)
        with pytest.raises(ImproperlyConfigured, match="BONUS_MANUAL_LIMIT_SUPPORT_AGENT"):
            envmoney("BONUS_MANUAL_LIMIT_SUPPORT_AGENT", "5")


# --- Manual assign caps through the API -------------------------------------------------------


@pytest.mark.django_db
def test_a_support_agent_cannot_grant_above_the_role_limit_even_with_the_override_flag(support_agent):
    """Guards: any amount up to 1e9 was accepted, and the override flag let a Support Agent post arbitrary credit."""
    login = make_account(country="DE")
    campaign = make_campaign(name="FR VIP", triggers=[], target_countries=["FR"], fixed_amount=D("5000"))
    client = api_client_for(support_agent)
    body = {"login": login, "campaign_id": campaign.pk, "amount": "1500", "override_eligibility": True}
    response = _post(client, body)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "amount_above_role_limit" and "1000" in error["message"]
    assert error["details"]["cap"] == "1000"
    # No amount: the campaign's rule (5000 fixed) is itself above the limit.
    response = _post(client, {**body, "amount": None}, key="k-2")
    assert response.json()["error"]["code"] == "amount_above_role_limit"
    assert not Bonus.objects.filter(login=login).exists() and credit_deals(login) == []
    # Within the limit (and overriding the country check) it goes through.
    response = _post(client, {**body, "amount": "1000"}, key="k-3")
    assert response.status_code == 201 and response.json()["amount"] == "1000.00"
    assert account(login).credit == D("1000.00")


@pytest.mark.django_db
def test_an_amount_above_the_campaigns_rule_is_refused_whatever_the_role_and_the_override(super_admin):
    """Guards: manual assign took any amount whatever the campaign's percent, fixed amount and maximum."""
    login = make_account(country="DE")
    campaign = make_campaign(name="50% up to 200", triggers=[], bonus_percent=D("50"), max_bonus_amount=D("200"))
    client = api_client_for(super_admin)  # no role limit by default
    cases = [
        ({"deposit_amount": "100", "amount": "60"}, "50.00"),  # 50 % of 100
        ({"deposit_amount": "1000", "amount": "999999999"}, "200.00"),  # 50 % of 1000, at most 200
        ({"amount": "10"}, "0.00"),  # no deposit and no fixed amount: the campaign gives nothing
    ]
    for i, (extra, cap) in enumerate(cases):
        body = {"login": login, "campaign_id": campaign.pk, "override_eligibility": True, **extra}
        response = _post(client, body, key=f"cap-{i}")
        assert response.status_code == 400, (extra, response.content)
        error = response.json()["error"]
        assert error["code"] == "amount_above_campaign_cap" and error["details"]["cap"] == cap
        assert cap in error["message"]
    assert not Bonus.objects.filter(login=login).exists() and credit_deals(login) == []
    response = _post(client, {"login": login, "campaign_id": campaign.pk, "deposit_amount": "1000"}, key="ok")
    assert response.status_code == 201 and response.json()["amount"] == "200.00"


@pytest.mark.django_db
def test_the_super_admin_limit_applies_when_it_is_set(super_admin, settings):
    settings.BONUS_MANUAL_LIMIT_SUPER_ADMIN = D("50")
    login = make_account()
    campaign = make_campaign(triggers=[], fixed_amount=D("500"))
    response = _post(api_client_for(super_admin), {"login": login, "campaign_id": campaign.pk, "amount": "60"})
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"cap": "50", "role": Role.SUPER_ADMIN, "requested": "60.00"}


@pytest.mark.django_db
def test_a_role_without_a_declared_limit_cannot_grant_at_all():
    """A group given the assign permission but missing from bonuses/limits.py fails closed."""
    group = Group.objects.create(name="Broker desk")
    group.permissions.add(Permission.objects.get(codename="assign_bonus"))
    desk = UserFactory(is_staff=True, roles=["Broker desk"])
    login = make_account()
    campaign = make_campaign(triggers=[], fixed_amount=D("10"))
    with pytest.raises(NotAllowed) as exc:
        bonus_assign_manual(actor=desk, campaign=campaign, login=login, amount=D("1"), idempotency_key="x")
    assert exc.value.code == "no_manual_assign_limit"
    assert not Bonus.objects.filter(login=login).exists()


# --- Idempotency-Key ----------------------------------------------------------------------


@pytest.mark.django_db
def test_manual_assign_without_an_idempotency_key_is_a_400_asking_for_it(support_agent):
    login = make_account()
    campaign = make_campaign(triggers=[], fixed_amount=D("20"))
    response = _post(api_client_for(support_agent), {"login": login, "campaign_id": campaign.pk}, key=None)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "idempotency_key_required"
    assert "Idempotency-Key" in response.json()["error"]["message"]
    bad = _post(api_client_for(support_agent), {"login": login, "campaign_id": campaign.pk}, key="no spaces allowed")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "idempotency_key_required"
    assert not Bonus.objects.filter(login=login).exists()


@pytest.mark.django_db
def test_a_retry_with_the_same_key_returns_the_same_bonus_without_posting_again(support_agent):
    """Guards: each manual assign made its own key, so a client retry doubled the bonus."""
    login = make_account()
    campaign = make_campaign(triggers=[], fixed_amount=D("40"), one_per_account=False, max_concurrent=5)
    client = api_client_for(support_agent)
    body = {"login": login, "campaign_id": campaign.pk, "amount": "40"}
    first = _post(client, body, key="retry-me")
    again = _post(client, {**body, "amount": "40.00"}, key="retry-me")
    assert first.status_code == 201 and again.status_code == 200
    assert again.json() == first.json()
    assert len(credit_deals(login)) == 1 and account(login).credit == D("40.00")
    assert AuditLog.objects.filter(login=login, action=AuditAction.BONUS_ASSIGNED).count() == 1


@pytest.mark.django_db
def test_the_same_key_with_a_different_body_is_a_409(support_agent):
    login = make_account()
    campaign = make_campaign(triggers=[], fixed_amount=D("40"), one_per_account=False, max_concurrent=5)
    client = api_client_for(support_agent)
    body = {"login": login, "campaign_id": campaign.pk, "amount": "40"}
    first = _post(client, body, key="one-key")
    changed = _post(client, {**body, "amount": "30"}, key="one-key")
    assert changed.status_code == 409
    assert changed.json()["error"] == {
        "code": "idempotency_key_reused",
        "message": changed.json()["error"]["message"],
        "details": {"bonus": first.json()["id"]},
    }
    assert Bonus.objects.filter(login=login).count() == 1 and len(credit_deals(login)) == 1


@pytest.mark.django_db
def test_the_key_belongs_to_the_person_who_sent_it(support_agent):
    other_agent = staff_user(Role.SUPPORT_AGENT)
    login = make_account()
    campaign = make_campaign(triggers=[], fixed_amount=D("10"), one_per_account=False, max_concurrent=5)
    body = {"login": login, "campaign_id": campaign.pk}
    mine = _post(api_client_for(support_agent), body, key="shared")
    theirs = _post(api_client_for(other_agent), body, key="shared")
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]


@pytest.mark.django_db(transaction=True)
def test_ten_simultaneous_submits_with_one_key_give_one_bonus_and_one_credit_deal():
    """Guards: a double submit racing itself posted the credit twice."""
    agent = staff_user(Role.SUPPORT_AGENT)
    login = make_account()
    campaign = make_campaign(triggers=[], fixed_amount=D("75"), one_per_account=False, max_concurrent=20)
    barrier = threading.Barrier(10)

    def submit():
        barrier.wait(timeout=30)
        return bonus_assign_manual(actor=agent, campaign=campaign, login=login, idempotency_key="dbl-click")

    results = _in_threads(*[submit] * 10)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert {r.bonus.pk for r in results} == {Bonus.objects.get(login=login).pk}
    assert sum(r.created for r in results) == 1
    assert len(credit_deals(login)) == 1 and account(login).credit == D("75.00")


# --- The admin form ---------------------------------------------------------------------------


def _admin(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_a_double_submit_of_the_admin_form_posts_once(support_agent):
    login = make_account()
    campaign = make_campaign(triggers=[], fixed_amount=D("30"), one_per_account=False, max_concurrent=5)
    client = _admin(support_agent)
    key = client.get(ADMIN_ASSIGN).context["form"].initial["idempotency_key"]
    assert key and key != client.get(ADMIN_ASSIGN).context["form"].initial["idempotency_key"]
    body = {"login": login, "campaign": campaign.pk, "idempotency_key": key}
    assert client.post(ADMIN_ASSIGN, body).status_code == 302
    assert client.post(ADMIN_ASSIGN, body).status_code == 302  # the second click: the same bonus
    assert Bonus.objects.filter(login=login).count() == 1 and len(credit_deals(login)) == 1
    # The same rendered form sent again with another amount is refused on the form.
    page = client.post(ADMIN_ASSIGN, {**body, "amount": "10"})
    assert page.status_code == 200 and "already used" in page.context["form"].non_field_errors()[0]
    assert Bonus.objects.filter(login=login).count() == 1


@pytest.mark.django_db
def test_an_admin_form_without_its_one_time_key_is_refused(support_agent):
    login = make_account()
    campaign = make_campaign(triggers=[], fixed_amount=D("30"))
    page = _admin(support_agent).post(ADMIN_ASSIGN, {"login": login, "campaign": campaign.pk})
    assert page.status_code == 200 and "expired" in str(page.context["form"].errors)
    assert not Bonus.objects.filter(login=login).exists()


@pytest.mark.django_db
def test_the_admin_form_names_the_cap_an_amount_is_above(support_agent):
    login = make_account(country="DE")
    campaign = make_campaign(triggers=[], fixed_amount=D("5000"), target_countries=["FR"])
    client = _admin(support_agent)
    page = client.get(ADMIN_ASSIGN)
    assert "1000" in page.content.decode()  # the agent sees their limit before trying
    body = {"login": login, "campaign": campaign.pk, "amount": "1500", "override": "1", "idempotency_key": "f-1"}
    page = client.post(ADMIN_ASSIGN, body)
    assert page.status_code == 200
    assert "Support Agent limit of 1000" in page.context["form"].errors["amount"][0]
    page = client.post(ADMIN_ASSIGN, {**body, "amount": "", "idempotency_key": "f-2", "deposit_amount": ""})
    assert "limit of 1000" in page.context["form"].errors["amount"][0]  # the campaign's 5000 is above it too
    assert not Bonus.objects.filter(login=login).exists()


# --- One winner per bonus: conversion, force-convert, cancel --------------------------------------


def _closing_deal(ticket: int, volume: str):
    return gw.Deal(
        ticket=ticket, order=ticket, time=timezone.now() + timedelta(seconds=1), type=gw.DealType.SELL,
        entry=gw.DealEntry.OUT, magic=0, position_id=ticket, reason=0, volume=D(volume), price=D("1"),
        commission=D("0"), swap=D("0"), profit=D("0"), fee=D("0"), symbol="BTCUSD", comment="",
    )  # fmt: skip


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("monitor_first", [True, False], ids=["monitor-step-in-flight", "all-at-once"])
def test_conversion_force_convert_and_cancel_of_one_bonus_race_and_each_credit_moves_once(monitor_first):
    """Guards: a force-convert racing the monitor's conversion converted credit already being converted
    (the balance got more than the bonus), and a cancel racing either removed credit that was converted.

    The monitor's MT5 postings are slowed down so its conversion step is still in flight while a
    staff member force-converts and another cancels the same bonus, in threads on PostgreSQL.
    """
    login = make_account(balance="0")
    make_campaign(bonus_type=BonusType.CONVERTIBLE, bonus_percent=D("10"), lots_per_unit=D("0.1"),
                  unit_amount=D("1"))  # fmt: skip
    deposit(login, D("1000"))
    (result,) = trigger_deposit(login=login, amount=D("1000"))  # 100 credit, 10 lots to convert all
    bonus = result.bonus
    slow = SlowGateway(delay=0.4)
    start = threading.Barrier(3)

    def monitor_conversion():
        start.wait(timeout=30)
        return account_trades_detected(login=login, deals=[_closing_deal(990001, "3")], gateway=slow)

    def staff(action):
        def run():
            start.wait(timeout=30)
            if monitor_first:
                slow.in_flight.wait(timeout=30)  # the monitor's step is planned and being posted
            return action(actor="staff", bonus=Bonus.objects.get(pk=bonus.pk))

        return run

    results = _in_threads(monitor_conversion, staff(bonus_force_convert), staff(bonus_cancel))
    _, converted, cancelled = results
    assert not isinstance(results[0], Exception), results[0]
    # Exactly one of the two staff actions won; the other was told so (409).
    assert [isinstance(r, Conflict) for r in (converted, cancelled)].count(True) == 1, results
    operations_resume()  # anything a lost race left pending is finished (nothing should be)
    bonus.refresh_from_db()
    assert bonus.status in (BonusStatus.CONVERTED, BonusStatus.CANCELLED)
    # Every unit of credit was either converted or removed, once.
    assert bonus.converted_amount + bonus.removed_amount == D("100.00"), (bonus.converted_amount,
                                                                           bonus.removed_amount)  # fmt: skip
    assert bonus.credit_outstanding == D("0.00")
    info = account(login)
    assert info.credit == D("0.00")
    assert info.balance == D("1000.00") + bonus.converted_amount
    assert sum(d.profit for d in _bonus_balance_deals(login)) == bonus.converted_amount
    comments = [d.comment for d in credit_deals(login) + _bonus_balance_deals(login)]
    assert len(comments) == len(set(comments))  # no operation posted twice
    assert not BonusOperation.objects.filter(bonus=bonus).exclude(status=OperationStatus.DONE).exists()
    # The audit trail shows one outcome.
    outcomes = AuditLog.objects.filter(bonus=bonus, action__in=[AuditAction.BONUS_CANCELLED, AuditAction.CONVERTED])
    finals = [a for a in outcomes if a.action == AuditAction.BONUS_CANCELLED or a.message == "fully converted"]
    assert len(finals) == 1
    expected = AuditAction.BONUS_CANCELLED if bonus.status == BonusStatus.CANCELLED else AuditAction.CONVERTED
    assert finals[0].action == expected


@pytest.mark.django_db(transaction=True)
def test_a_cancel_while_the_credit_is_in_flight_takes_that_credit_back():
    """Guards: a cancel during the credit's posting saw no credit yet; the credit then landed on a cancelled bonus."""
    login = make_account(balance="0")
    campaign = make_campaign(triggers=[], fixed_amount=D("60"))
    slow = SlowGateway(delay=0.8)

    def assign():
        return bonus_assign_manual(actor="test", campaign=campaign, login=login, idempotency_key="slow",
                                            gateway=slow)  # fmt: skip

    def cancel():
        slow.in_flight.wait(timeout=30)
        return bonus_cancel(actor="staff", bonus=Bonus.objects.get(login=login))

    assigned, cancelled = _in_threads(assign, cancel)
    assert not isinstance(assigned, Exception) and not isinstance(cancelled, Exception), (assigned, cancelled)
    bonus = Bonus.objects.get(login=login)
    assert bonus.status == BonusStatus.CANCELLED
    assert account(login).credit == D("0.00")
    assert bonus.credit_outstanding == D("0.00") and bonus.removed_amount == D("60.00")
    actions = list(AuditLog.objects.filter(bonus=bonus).order_by("id").values_list("action", flat=True))
    assert actions.index(AuditAction.CREDIT_POSTED) < actions.index(AuditAction.CREDIT_REMOVED)


@pytest.mark.django_db
def test_a_credit_still_pending_when_its_bonus_expires_is_never_posted(settings):
    settings.BONUS_OPERATION_RETRY_SECONDS = 0  # the job sends it once its backoff has run out
    login = make_account(balance="0")
    campaign = make_campaign(triggers=[], fixed_amount=D("60"), expiry_days=1)

    class Down(SlowGateway):
        def balance_operation(self, *args, **kwargs):
            raise gw.GatewayUnavailable("MT5 manager unreachable")

    with pytest.raises(gw.GatewayUnavailable):
        bonus_assign_manual(actor="test", campaign=campaign, login=login, idempotency_key="x",
                                     gateway=Down(0))  # fmt: skip
    Bonus.objects.filter(login=login).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert bonuses_expire() == 1
    operations_resume()
    assert credit_deals(login) == [] and account(login).credit == D("0.00")
    (operation,) = BonusOperation.objects.filter(login=login)
    assert operation.status == OperationStatus.REFUSED and "ended" in operation.error


# --- A posting whose gateway call outlasts its claim -----------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_posting_whose_gateway_call_outlasts_its_claim_is_posted_once(settings):
    """Guards: a 30 s claim could lapse during a slow gateway call (bridge retries); the resume job then found
    no deal with the comment yet and posted the credit a second time.

    The claim is shortened to 1 s and the first posting takes 3 s; meanwhile the resume job (what
    the monitor and the Celery task run) tries the same operation again and again.
    """
    settings.BONUS_OPERATION_CLAIM_SECONDS = 1.0
    login = make_account(balance="0")
    deposit(login, D("200"))
    make_campaign(bonus_percent=D("50"), triggers=[Trigger.AUTO_DEPOSIT])
    slow = SlowGateway(delay=3.0)
    done = threading.Event()

    def first_posting():
        try:
            return trigger_deposit(login=login, amount=D("200"), gateway=slow)
        finally:
            done.set()

    def resume_job():
        slow.in_flight.wait(timeout=30)
        tries = 0
        while not done.is_set():
            time.sleep(0.25)
            operations_resume()
            tries += 1
        return tries

    (assigned,), tries = _in_threads(first_posting, resume_job)
    assert tries >= 8  # the resume job ran well past the 1 s claim
    assert len(credit_deals(login)) == 1 and slow.posted == 1
    assert account(login).credit == D("100.00")
    bonus = Bonus.objects.get(pk=assigned.bonus.pk)
    assert bonus.status == BonusStatus.ACTIVE and bonus.credit_outstanding == D("100.00")
    assert AuditLog.objects.filter(bonus=bonus, action=AuditAction.CREDIT_POSTED).count() == 1


@pytest.mark.django_db
def test_a_posting_left_behind_by_a_dead_worker_is_finished_once_its_claim_lapses(settings):
    settings.BONUS_OPERATION_CLAIM_SECONDS = 1.0
    login = make_account(balance="0")
    campaign = make_campaign(triggers=[], fixed_amount=D("15"))
    bonus = Bonus.objects.create(campaign=campaign, login=login, bonus_type=campaign.bonus_type,
                                 trigger=Trigger.MANUAL, idempotency_key="dead-worker", amount=D("15"))  # fmt: skip
    account_ensure(login=login)
    operation = operation_create(bonus, OperationKind.CREDIT_IN, amount=D("15"))
    # A worker claimed it and died before calling MT5: nobody renews the claim.
    BonusOperation.objects.filter(pk=operation.pk).update(claimed_until=timezone.now() + timedelta(seconds=1),
                                                          attempts=1)  # fmt: skip
    assert operations_resume() == 0
    time.sleep(1.1)
    assert operations_resume() == 1
    assert len(credit_deals(login)) == 1
