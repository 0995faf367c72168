"""A master (or slave) the account or billing gate refuses makes no copies, and the reason shows on the link and in
the copy history."""

from __future__ import annotations

import pytest
from django.test import Client

from copytrading.hooks import on_command_result, on_ea_state
from copytrading.models import CopyEvent, CopyLink
from copytrading.services import copy_link_create
from entitlements.catalog import seed_plans
from entitlements.models import Plan
from entitlements.selectors import forget_user_plan
from entitlements.services import active_accounts_choose, plan_assign_manual
from mt5bridge.ea.models import Command

from .conftest import make_account
from .factories import pos, state

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _plans(db, settings):
    seed_plans(Plan.objects)
    settings.STRIPE_TEST_SECRET_KEY = ""  # local mode: everyone on the default plan unless staff choose one
    settings.STRIPE_LIVE_SECRET_KEY = ""
    settings.BILLING_DEFAULT_PLAN = "pro"


def link(owner, master, slave):
    return copy_link_create(user=owner, master_id=master.pk, slave_id=slave.pk)


def master_opens(master, ticket: int = 1):
    on_ea_state(state(master.pk, []), state(master.pk, [pos(ticket, "BTCUSD.pro")]))


def copy_commands() -> int:
    return Command.objects.filter(origin="copy").count()


def refused_event(lnk) -> CopyEvent:
    return CopyEvent.objects.get(link=lnk, status="skipped")


def test_an_inactive_master_makes_no_copy_and_says_why(owner, master, slave):
    lnk = link(owner, master, slave)
    master.is_active = False
    master.save()

    master_opens(master)

    assert copy_commands() == 0
    event = refused_event(lnk)
    assert event.reason_code == "master_account_paused" and "master account" in event.reason
    lnk.refresh_from_db()
    assert lnk.refusal_code == "master_account_paused" and lnk.refused_at is not None
    assert lnk.refusal_reason == event.reason


def test_a_master_whose_plan_has_no_copy_trading_makes_no_copy(owner, master, slave):
    lnk = link(owner, master, slave)
    plan_assign_manual(user=owner, plan=Plan.objects.get(slug="free"))

    master_opens(master)

    assert copy_commands() == 0
    assert refused_event(lnk).reason_code == "master_plan_required"
    lnk.refresh_from_db()
    assert lnk.refusal_code == "master_plan_required" and "no copy trading" in lnk.refusal_reason


def test_a_master_paused_by_billing_makes_no_copy(owner, master, slave):
    lnk = link(owner, master, slave)
    active_accounts_choose(user=owner, account_ids=[slave.pk])  # the trader keeps the slave; the master is paused

    master_opens(master)

    assert copy_commands() == 0
    assert refused_event(lnk).reason_code == "master_account_paused"
    lnk.refresh_from_db()
    assert "billing page" in lnk.refusal_reason


def test_a_master_over_the_plans_account_limit_makes_no_copy(owner):
    slave = make_account(owner, "MetaSim-Demo", name="Older slave")
    master = make_account(owner, "MetaSim-Live", balance="100000", name="Newer master")
    lnk = link(owner, master, slave)
    Plan.objects.filter(slug="pro").update(limit_accounts=1)  # the plan shrank; no pause has run yet
    forget_user_plan(owner.pk)
    Plan.objects.get(slug="pro").save()  # the catalogue cache follows the edit, as from the admin

    master_opens(master)

    assert copy_commands() == 0
    assert refused_event(lnk).reason_code == "master_plan_limit"
    lnk.refresh_from_db()
    assert "1 MT5 accounts" in lnk.refusal_reason


def test_a_refused_slave_gets_no_copy_while_the_masters_other_slaves_do(owner, master, slave):
    other = make_account(owner, "MetaSim-Demo", name="Other slave")
    refused, copying = link(owner, master, slave), link(owner, master, other)
    slave.is_active = False
    slave.save()

    master_opens(master)

    assert list(Command.objects.values_list("account_id", flat=True)) == [other.pk]
    assert refused_event(refused).reason_code == "slave_account_paused"
    assert not CopyEvent.objects.filter(link=copying).exists()


def test_a_master_allowed_again_copies_again_and_the_link_no_longer_shows_the_refusal(owner, master, slave):
    lnk = link(owner, master, slave)
    master.is_active = False
    master.save()
    master_opens(master, 1)
    master.is_active = True
    master.save()

    master_opens(master, 2)

    assert copy_commands() == 1
    lnk.refresh_from_db()
    assert (lnk.refusal_code, lnk.refusal_reason) == ("", "") and lnk.refused_at is not None


def test_a_master_refused_after_copying_still_closes_the_copies_already_made_and_opens_none(owner, master, slave):
    lnk = link(owner, master, slave)
    master_opens(master, 1)
    [opened] = Command.objects.all()
    Command.objects.filter(pk=opened.pk).update(status="executed", retcode=10009, result={"position": 77})
    opened.refresh_from_db()
    on_command_result(opened)
    plan_assign_manual(user=owner, plan=Plan.objects.get(slug="free"))

    on_ea_state(state(master.pk, [pos(1, "BTCUSD.pro")]), state(master.pk, []))

    close = Command.objects.exclude(pk=opened.pk).get()
    assert close.kind == "close" and close.params["ticket"] == 77
    assert CopyLink.objects.get(pk=lnk.pk).refusal_code == ""  # a close is not a refused copy
    master_opens(master, 2)  # the next new trade is refused
    assert copy_commands() == 2 and CopyLink.objects.get(pk=lnk.pk).refusal_code == "master_plan_required"


def test_the_api_shows_the_refusal_on_the_link_and_in_the_copy_history(owner, owner_client, master, slave):
    lnk = link(owner, master, slave)
    master.is_active = False
    master.save()
    master_opens(master)

    links = owner_client.get("/api/copy/links").json()
    events = owner_client.get(f"/api/copy/events?link={lnk.pk}").json()

    [shown] = [item for item in (links["results"] if isinstance(links, dict) else links) if item["id"] == lnk.pk]
    assert shown["refusal_code"] == "master_account_paused" and shown["refused_at"]
    rows = events["results"] if isinstance(events, dict) else events
    assert [(e["status"], e["reason_code"]) for e in rows] == [("skipped", "master_account_paused")]


def test_the_links_page_and_the_admin_show_why_a_link_copies_nothing(owner, super_admin, master, slave):
    lnk = link(owner, master, slave)
    master.is_active = False
    master.save()
    master_opens(master)
    trader, staff = Client(), Client()
    trader.force_login(owner)
    staff.force_login(super_admin)

    page = trader.get("/copy/").content.decode()
    changelist = staff.get("/admin/copytrading/copylink/?refused=yes").content.decode()
    change = staff.get(f"/admin/copytrading/copylink/{lnk.pk}/change/").content.decode()
    history = trader.get("/copy/history/").content.decode()

    assert "refused" in page and "the master account: this account is paused" in page
    assert "master_account_paused" in changelist
    assert "the master account: this account is paused" in change
    assert "the master account: this account is paused" in history


def test_a_plan_change_records_the_refusal_on_the_link_without_waiting_for_a_heartbeat(
    owner, master, slave, django_capture_on_commit_callbacks
):
    # A refused master's beats are answered "denied" by the bridge and never reach the copy engine.
    lnk = link(owner, master, slave)

    with django_capture_on_commit_callbacks(execute=True):
        plan_assign_manual(user=owner, plan=Plan.objects.get(slug="free"))
    with django_capture_on_commit_callbacks(execute=True):
        plan_assign_manual(user=owner, plan=Plan.objects.get(slug="free"), note="again")  # nothing new to record

    lnk.refresh_from_db()
    assert lnk.refusal_code == "master_plan_required" and lnk.refused_at is not None
    [event] = CopyEvent.objects.filter(link=lnk)
    assert (event.intent, event.status, event.reason_code) == ("refused", "skipped", "master_plan_required")

    with django_capture_on_commit_callbacks(execute=True):
        plan_assign_manual(user=owner, plan=None)  # back to the default plan (Pro)

    lnk.refresh_from_db()
    assert lnk.refusal_code == "" and CopyEvent.objects.filter(link=lnk).count() == 1


def test_switching_a_slave_off_records_the_refusal_on_its_link(
    owner, master, slave, django_capture_on_commit_callbacks
):
    lnk = link(owner, master, slave)
    on_ea_state(state(master.pk, []), state(master.pk, []))  # the master's configuration is cached

    with django_capture_on_commit_callbacks(execute=True):
        slave.is_active = False
        slave.save()

    lnk.refresh_from_db()
    assert lnk.refusal_code == "slave_account_paused"
