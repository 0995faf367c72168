"""Shard leases: a live monitor takes over a shard whose holder stopped renewing, and hands it back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from bonuses.models import MonitorShard
from bonuses.monitor import Monitor
from mt5bridge import gateway as gw

from .conftest import make_account

pytestmark = pytest.mark.django_db


def _shard(shard: int, worker: str) -> Monitor:
    return Monitor(shard=shard, shards=2, gateway=gw.get_gateway("simulated"), worker=worker, queued=False)


def _die(shard: int) -> None:
    """The holder was killed: its lease is no longer renewed and runs out."""
    MonitorShard.objects.filter(shard=shard, shards=2).update(lease_until=timezone.now() - timedelta(seconds=1))


def test_a_shard_whose_holder_died_is_taken_over_and_handed_back_when_its_process_returns():
    logins = [make_account() for _ in range(4)]
    zero, one = _shard(0, "worker-a"), _shard(1, "worker-b")
    zero.cycle()
    one.cycle()
    odd = {login for login in logins if login % 2}
    assert odd and not odd & set(zero.snapshots)
    _die(1)
    zero.cycle()
    assert zero.slots == {0, 1} and odd <= set(zero.snapshots)
    row = MonitorShard.objects.get(shard=1, shards=2)
    assert row.holder == "worker-a" and row.epoch == 2  # claimed by b, then taken over by a
    back = _shard(1, "worker-b2")  # the shard's process started again
    assert back.cycle().skipped  # a holds it on a live lease: b2 asks for it back and waits
    zero.cycle()  # hands it back before reading it
    assert zero.slots == {0} and not odd & set(zero.snapshots)
    assert back.cycle().skipped is False and back.slots == {1}
    assert odd <= set(back.snapshots)


def test_a_shard_that_never_had_a_holder_is_left_to_its_own_process():
    make_account()
    zero = _shard(0, "worker-a")
    zero.cycle()
    zero.cycle()
    assert zero.slots == {0}
