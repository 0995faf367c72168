"""A master's change is never lost to a transient failure after the beat's state was swapped into Redis: a copy step
that fails is offered the same change with the next beat, and after Redis comes back empty the previous state is
the one stored in PostgreSQL (both found by the fault suite, tests/faults/)."""

from __future__ import annotations

import pytest

from copytrading import engine, hooks
from copytrading.models import CopiedPosition
from copytrading.services import copy_link_create
from mt5bridge.ea import store
from mt5bridge.ea.services import ea_token_issue

from .test_end_to_end import beat, position

pytestmark = pytest.mark.django_db


@pytest.fixture
def linked(owner, master, slave):
    copy_link_create(user=owner, master_id=master.pk, slave_id=slave.pk, max_delay_seconds=60)
    return ea_token_issue(account=master), ea_token_issue(account=slave)


def _copies(master) -> int:
    return CopiedPosition.objects.filter(link__master=master).count()


def test_a_copy_that_failed_once_is_made_with_the_next_beat(
    linked, master, monkeypatch, django_capture_on_commit_callbacks
):
    master_token, _ = linked
    beat(master_token, master.login)
    real, calls = engine.copy_master_state, []

    def fails_once(*args):
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("the database went away")
        return real(*args)

    monkeypatch.setattr(hooks, "copy_master_state", fails_once)
    opened = [position(7101, "BTCUSD.pro")]
    with django_capture_on_commit_callbacks(execute=True):
        beat(master_token, master.login, opened)  # the copy step fails: nothing copied yet
        assert _copies(master) == 0
        beat(master_token, master.login, opened)  # the same state again: the change is offered again
    assert _copies(master) == 1
    beat(master_token, master.login, opened)
    assert _copies(master) == 1  # and made once


def test_a_position_opened_while_redis_was_empty_is_copied(linked, master, django_capture_on_commit_callbacks):
    master_token, _ = linked
    beat(master_token, master.login)
    r = store.client()
    r.delete(store.state_key(master.pk), store.meta_key(master.pk))  # Redis restarted empty
    with django_capture_on_commit_callbacks(execute=True):
        beat(master_token, master.login, [position(7102, "BTCUSD.pro")])
    assert _copies(master) == 1
