"""copytrading.signals.copy_command_failed: sent once per failed copy, after the booking commits."""

from __future__ import annotations

import pytest

from copytrading.hooks import on_command_result, on_ea_state
from copytrading.models import CopiedPosition
from copytrading.services import copy_link_create
from copytrading.signals import copy_command_failed
from mt5bridge.ea.models import Command

from .factories import pos, state

pytestmark = pytest.mark.django_db


@pytest.fixture
def received():
    calls = []

    def receiver(sender, **kwargs):
        calls.append({"sender": sender, **kwargs})

    copy_command_failed.connect(receiver, dispatch_uid="test.copy_command_failed")
    yield calls
    copy_command_failed.disconnect(dispatch_uid="test.copy_command_failed")


def copied_open(owner, master, slave) -> Command:
    copy_link_create(user=owner, master_id=master.pk, slave_id=slave.pk)
    on_ea_state(state(master.pk, []), state(master.pk, [pos(1, "BTCUSD.pro")]))
    return Command.objects.get()


def finish(command: Command, status: str, retcode=None, message="", **result) -> Command:
    Command.objects.filter(pk=command.pk).update(status=status, retcode=retcode, message=message, result=result)
    command.refresh_from_db()
    return command


def test_a_copy_the_slave_refuses_is_announced_once_with_the_copy_retcode_and_reason(
    owner, master, slave, received, django_capture_on_commit_callbacks
):
    command = finish(copied_open(owner, master, slave), "failed", 10019, "no money")

    with django_capture_on_commit_callbacks(execute=True):
        on_command_result(command)
    with django_capture_on_commit_callbacks(execute=True):
        on_command_result(command)  # a repeated result books nothing and announces nothing

    [call] = received
    assert call["sender"] is CopiedPosition
    assert call["copy"] == CopiedPosition.objects.get() and call["copy"].status == "failed"
    assert call["retcode"] == 10019 and "retcode 10019 no money" in call["reason"]


def test_a_copy_the_slave_never_took_is_announced_without_a_retcode(
    owner, master, slave, received, django_capture_on_commit_callbacks
):
    command = finish(copied_open(owner, master, slave), "expired")

    with django_capture_on_commit_callbacks(execute=True):
        on_command_result(command)

    [call] = received
    assert call["retcode"] is None and "max delay" in call["reason"]


def test_a_failed_close_of_a_copy_is_announced(owner, master, slave, received, django_capture_on_commit_callbacks):
    opened = finish(copied_open(owner, master, slave), "executed", 10009, position=55)
    on_command_result(opened)
    on_ea_state(state(master.pk, [pos(1, "BTCUSD.pro")]), state(master.pk, []))
    close = finish(Command.objects.get(kind="close"), "failed", 10018, "market closed")

    with django_capture_on_commit_callbacks(execute=True):
        on_command_result(close)

    [call] = received
    assert call["copy"].slave_ticket == 55 and call["retcode"] == 10018


def test_an_executed_copy_is_not_announced(owner, master, slave, received, django_capture_on_commit_callbacks):
    command = finish(copied_open(owner, master, slave), "executed", 10009, position=9)

    with django_capture_on_commit_callbacks(execute=True):
        on_command_result(command)

    assert received == []


def test_the_announcement_waits_for_the_commit(owner, master, slave, received, django_capture_on_commit_callbacks):
    command = finish(copied_open(owner, master, slave), "failed", 10019)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        on_command_result(command)

    assert received == [] and len(callbacks) == 1
    callbacks[0]()
    assert len(received) == 1
