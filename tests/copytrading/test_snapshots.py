"""The copy engine's per-process snapshots (config.caches memos): what drops them and what they answer."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.models import TradingAccount
from config.caches import clear_all_memos
from copytrading import selectors
from copytrading.models import CopyLink

pytestmark = pytest.mark.django_db


def test_a_new_link_is_seen_after_the_version_bump(master, slave):
    assert not selectors.account_config(master.pk).links_out
    CopyLink.objects.create(master=master, slave=slave)
    selectors.bump_config_version()  # what every change to links does
    assert [link.slave_id for link in selectors.account_config(master.pk).links_out] == [slave.pk]


def test_the_in_memory_answer_never_reads_and_follows_the_last_read(master, monkeypatch):
    monkeypatch.setattr(selectors, "VERSION_TTL", 3600.0)  # no new slice of time during the test
    assert selectors.account_config_in_memory(master.pk) is None  # nothing read yet: no query made to answer
    read = selectors.account_config(master.pk)
    assert selectors.account_config_in_memory(master.pk) is read
    clear_all_memos()
    assert selectors.account_config_in_memory(master.pk) is None


def test_slave_figures_are_read_again_once_the_memos_are_cleared(slave, monkeypatch):
    monkeypatch.setattr(selectors, "FIGURES_TTL_SECONDS", 3600.0)  # no new slice of time during the test
    assert selectors.slave_figures([str(slave.pk)])[str(slave.pk)].equity == Decimal("5000")
    TradingAccount.objects.filter(pk=slave.pk).update(equity=Decimal("4200"))
    assert selectors.slave_figures([str(slave.pk)])[str(slave.pk)].equity == Decimal("5000")  # seconds-old is fine
    clear_all_memos()
    assert selectors.slave_figures([str(slave.pk)])[str(slave.pk)].equity == Decimal("4200")


def test_a_new_slice_of_time_keeps_the_last_answer_while_a_thread_reads_the_version(master, monkeypatch):
    """Guards the heartbeat benchmark's collapse: at each new VERSION_TTL slice every beat went to a worker thread
    only to learn that nothing changed. The slice before answers while one thread reads the new one."""
    import time

    now = [1000]
    monkeypatch.setattr(selectors, "_time_slice", lambda seconds: now[0])
    read = selectors.account_config(master.pk)
    now[0] += 1  # the next slice: no version read in it yet
    assert selectors.account_config_in_memory(master.pk) is read
    deadline = time.monotonic() + 10
    while selectors.VERSIONS.peek(1001) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert selectors.VERSIONS.peek(1001) == selectors.VERSIONS.peek(1000)  # read once, in the background
    now[0] += 5  # long after: no answer from this process's memory
    assert selectors.account_config_in_memory(master.pk) is None
