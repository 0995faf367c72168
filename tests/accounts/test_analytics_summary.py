"""The stored statistics summary: folded on read when deals arrive, rebuilt (never stale) when history changes."""

from __future__ import annotations

import gc
from datetime import timedelta
from decimal import Decimal as D
from importlib import import_module

import numpy as np
import pytest
from django.db import connection

from accounts import sql
from accounts.analytics import columns, summary
from accounts.analytics.columns import history_state_of
from accounts.analytics.history import statistics_for_account, statistics_history
from accounts.analytics.report import report
from accounts.analytics.statistics import compute_statistics, history_state, period_bounds
from accounts.analytics.tables import CREDIT, MIN_TRADES
from accounts.models import AccountSnapshot, Deal
from tests.accounts.test_analytics import START, _account, _mixed_history

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module", autouse=True)
def _summary_table(django_db_setup, django_db_blocker):
    """The table and triggers come from migration accounts 0006; a run without migrations creates them here."""
    with django_db_blocker.unblock():
        if "accounts_analyticssummary" not in connection.introspection.table_names():
            with connection.cursor() as cursor:
                for sql in import_module("accounts.migrations.0006_analytics_summary")._CREATE:
                    cursor.execute(sql)


@pytest.fixture
def rebuilds(monkeypatch):
    """How many times the summary was rebuilt from the whole history."""
    calls = []
    original = summary._rebuild

    def counting(account, generation):
        calls.append(account.pk)
        return original(account, generation)

    monkeypatch.setattr(summary, "_rebuild", counting)
    return calls


def _whole(account) -> dict:
    deals, snapshots, opening = statistics_history(account)
    return compute_statistics(deals, snapshots, opening_balance=opening)


def _stored(account) -> tuple:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generation, state IS NOT NULL, last_deal_ticket FROM accounts_analyticssummary WHERE account_id = %s",
            [account.pk],
        )
        return cursor.fetchone()


@pytest.fixture
def account_in_two_parts(owner):
    """An account whose mixed history is cut in two: the later deals and snapshots are held back."""
    account = _account(owner)
    _mixed_history(account)
    cut = START + timedelta(days=20)
    later = list(Deal.objects.filter(account=account, time__gte=cut).order_by("time", "ticket"))
    later_snaps = list(AccountSnapshot.objects.filter(account=account, taken_at__gte=cut))
    Deal.objects.filter(account=account, time__gte=cut).delete()
    AccountSnapshot.objects.filter(account=account, taken_at__gte=cut).delete()
    for row in (*later, *later_snaps):
        row.pk = None
    return account, later, later_snaps


def test_new_deals_and_snapshots_are_folded_into_the_stored_summary_with_the_same_result(
    account_in_two_parts, rebuilds, monkeypatch
):
    monkeypatch.setattr(summary, "SAVE_AFTER_ROWS", 1)  # store the folded state at every read
    account, later, later_snaps = account_in_two_parts
    first = summary.whole_history_statistics(account)
    assert first == _whole(account) and rebuilds == [account.pk]
    # They arrive in three syncs, deals and snapshots in their own statements.
    for k in range(3):
        part = later[k * len(later) // 3 : (k + 1) * len(later) // 3]
        Deal.objects.bulk_create(part)
        AccountSnapshot.objects.bulk_create([s for s in later_snaps if s.taken_at <= part[-1].time and s.pk is None])
        assert summary.whole_history_statistics(account) == _whole(account)
        assert _stored(account)[2] == part[-1].ticket  # the watermark moved: folded, not rebuilt
    assert rebuilds == [account.pk]
    assert summary.whole_history_statistics(account)["summary"]["deals"] == Deal.objects.filter(account=account).count()


def test_a_few_new_rows_are_folded_on_each_read_and_stored_once_enough_arrived(
    account_in_two_parts, rebuilds, monkeypatch
):
    monkeypatch.setattr(summary, "SAVE_AFTER_ROWS", 50)
    account, later, _ = account_in_two_parts
    assert len(later) > 70
    summary.whole_history_statistics(account)
    stored = _stored(account)
    Deal.objects.bulk_create(later[:20])
    for _ in range(2):  # the same 20 deals folded again: the stored state waits for more
        assert summary.whole_history_statistics(account) == _whole(account)
        assert _stored(account)[2] == stored[2]
    Deal.objects.bulk_create(later[20 : summary.SAVE_AFTER_ROWS + 20])
    assert summary.whole_history_statistics(account) == _whole(account)
    assert _stored(account)[2] == later[summary.SAVE_AFTER_ROWS + 19].ticket
    assert rebuilds == [account.pk]


@pytest.mark.parametrize(
    "change",
    ["deal-changed", "deal-deleted", "older-deal-imported", "snapshot-deleted", "snapshot-changed", "late-snapshot"],
)
def test_a_change_to_history_already_summarised_rebuilds_it_never_stale(account_in_two_parts, rebuilds, change):
    account, later, _ = account_in_two_parts
    summary.whole_history_statistics(account)
    assert _stored(account)[1] is True
    old = Deal.objects.filter(account=account, deal_type__in=(0, 1), entry=1).order_by("time")[3]
    snapshot = AccountSnapshot.objects.filter(account=account).order_by("taken_at")[2]
    if change == "deal-changed":
        Deal.objects.filter(pk=old.pk).update(profit=old.profit + D("1000.00"))
    elif change == "deal-deleted":
        old.delete()
    elif change == "older-deal-imported":  # a statement import brings a deal older than the summary
        Deal.objects.create(account=account, ticket=10**9, time=old.time - timedelta(seconds=1), deal_type=2,
                            profit=D("-250.00"))  # fmt: skip
    elif change == "snapshot-deleted":
        snapshot.delete()
    elif change == "snapshot-changed":
        AccountSnapshot.objects.filter(pk=snapshot.pk).update(equity=snapshot.equity - D("900.00"))
    else:
        AccountSnapshot.objects.create(account=account, taken_at=snapshot.taken_at + timedelta(seconds=1),
                                       balance=D("1.00"), equity=D("1.00"))  # fmt: skip
    assert _stored(account)[1] is False  # the database cleared it in the same statement
    result = summary.whole_history_statistics(account)
    assert rebuilds == [account.pk, account.pk]
    assert result == _whole(account)


def test_an_unchanged_rewrite_or_a_change_past_the_summary_keeps_it(account_in_two_parts, rebuilds):
    account, later, _ = account_in_two_parts
    summary.whole_history_statistics(account)
    old = Deal.objects.filter(account=account).order_by("time")[5]
    Deal.objects.filter(pk=old.pk).update(profit=old.profit)  # the same values written again
    assert _stored(account)[1] is True
    Deal.objects.bulk_create(later[:10])
    Deal.objects.filter(pk=later[5].pk).update(profit=D("12.34"))  # not folded yet: nothing to clear
    assert _stored(account)[1] is True
    assert summary.whole_history_statistics(account) == _whole(account)
    assert rebuilds == [account.pk]


def test_a_state_computed_while_the_history_moved_is_not_saved(account_in_two_parts):
    account, later, _ = account_in_two_parts
    summary.whole_history_statistics(account)
    generation = _stored(account)[0]
    Deal.objects.bulk_create(later[:5])  # a sync writes while a read computes
    stale = summary.whole_history_state(account)
    stale.deals = -1
    summary._save(account.pk, generation, stale)  # the read saves with the generation it started from
    assert summary.whole_history_statistics(account)["summary"]["deals"] == Deal.objects.filter(account=account).count()


def test_a_short_history_is_computed_whole_in_one_query(owner, super_admin, django_assert_num_queries):
    account = _account(owner)
    _mixed_history(account, positions=10)
    statistics_for_account(account, viewer=super_admin)  # the viewer's roles are cached from here on
    for _ in range(2):
        with django_assert_num_queries(1):
            statistics_for_account(account, viewer=super_admin)
    assert summary.noted_history_size(account) is None


def test_deleting_the_account_removes_its_summary(account_in_two_parts):
    account, _, _ = account_in_two_parts
    summary.whole_history_statistics(account)
    account.delete()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM accounts_analyticssummary WHERE account_id = %s", [account.pk])
        assert cursor.fetchone()[0] == 0


def test_a_long_history_is_read_through_the_summary_from_its_second_whole_read(
    account_in_two_parts, rebuilds, super_admin, monkeypatch
):
    account, later, _ = account_in_two_parts
    viewer = super_admin  # staff see the whole history, whatever the owner's plan
    monkeypatch.setattr(summary, "SUMMARY_MIN_ROWS", 100)  # the fixture's history counts as long
    statistics_for_account(account, viewer=viewer)  # read whole: found long
    assert rebuilds == []
    first = statistics_for_account(account, viewer=viewer)  # summarised
    Deal.objects.bulk_create(later[:40])
    second = statistics_for_account(account, viewer=viewer)
    assert rebuilds == [account.pk]
    assert second["summary"]["deals"] == first["summary"]["deals"] + 40
    assert {k: v for k, v in second.items() if k not in ("account_id", "currency", "date_from", "date_to")} == (
        _whole(account)
    )


def test_the_syncs_statement_shape_keeps_or_clears_the_summary_as_it_should(account_in_two_parts, rebuilds):
    """The sync inserts deals in one statement of data-modifying CTEs, ON CONFLICT DO NOTHING (mt5bridge.sql)."""
    account, later, _ = account_in_two_parts
    summary.whole_history_statistics(account)
    old = Deal.objects.filter(account=account).order_by("time")[4]

    def sync_insert(ticket, time):
        with connection.cursor() as cursor:
            cursor.execute(
                "WITH d AS (SELECT %s::uuid AS account_id, %s::bigint AS ticket, %s::timestamptz AS time), "
                "w AS (INSERT INTO accounts_deal (account_id, ticket, time, deal_type, entry, magic, position_id, "
                'reason, volume, price, commission, swap, profit, fee, symbol, comment, external_id, "order") '
                "SELECT account_id, ticket, time, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1.00, 0, '', '', '', 0 FROM d "
                "ON CONFLICT (account_id, ticket) DO NOTHING RETURNING 1) SELECT count(*) FROM w",
                [account.pk, ticket, time],
            )
            return cursor.fetchone()[0]

    assert sync_insert(old.ticket, old.time) == 0  # a deal the sync already wrote: nothing changes
    assert _stored(account)[1] is True
    assert sync_insert(10**9 + 1, later[0].time) == 1  # a new deal: folded on the next read
    assert _stored(account)[1] is True
    assert summary.whole_history_statistics(account) == _whole(account) and rebuilds == [account.pk]
    assert sync_insert(10**9 + 2, old.time) == 1  # a late deal inside the summarised history: cleared
    assert _stored(account)[1] is False
    assert summary.whole_history_statistics(account) == _whole(account) and rebuilds == [account.pk, account.pk]


@pytest.mark.parametrize("parts", [1, 2, 3, 7])
def test_a_history_read_and_folded_in_parts_gives_the_whole_computation(owner, parts):
    account = _account(owner)
    _mixed_history(account)
    deals, snapshots, _ = statistics_history(account)
    state, rows = history_state_of(account, parts=parts)
    assert rows == len(deals) + len(snapshots) > 300
    assert report(state, MIN_TRADES) == _whole(account)


def test_parts_cover_every_deal_once_and_arrive_one_by_one(owner):
    account = _account(owner)
    _mixed_history(account)
    parts = list(sql.statistics_history_parts(account.pk, start=None, end=None, credit=CREDIT, parts=5))
    assert len(parts) == 5  # the padding rows between them stay inside
    assert parts[0][0] and all(part[0] is None for part in parts[1:])  # the symbols come once
    assert sum(part[2] for part in parts) == Deal.objects.filter(account=account).count()
    assert sum(part[5] for part in parts) == AccountSnapshot.objects.filter(account=account).count()
    assert all(part[2] for part in parts[1:-1])  # the deals' time span is cut evenly: no empty middle part


def test_a_part_the_fold_cannot_append_makes_the_whole_history_fold_in_one_batch(owner, monkeypatch):
    whole_folds = []
    monkeypatch.setattr(columns, "history_state", lambda *a, **k: whole_folds.append(1) or history_state(*a, **k))
    account = _account(owner)
    _mixed_history(account)
    last = Deal.objects.filter(account=account, symbol="EURUSD").latest("time", "ticket")
    # A later EURUSD price with one more digit than any before: the earlier parts' pips were counted with fewer.
    Deal.objects.create(
        account=account, ticket=last.ticket + 10_000, time=last.time + timedelta(days=3), deal_type=0, entry=0,
        position_id=last.ticket + 10_000, symbol="EURUSD", volume=D("0.10"), price=D("1.1000123"),
    )  # fmt: skip
    assert report(history_state_of(account, parts=4)[0], MIN_TRADES) == _whole(account)
    assert whole_folds == [1]


def test_an_account_without_deals_keeps_its_snapshots_in_the_first_part(owner):
    account = _account(owner)
    AccountSnapshot.objects.bulk_create(
        [AccountSnapshot(account=account, taken_at=START + timedelta(hours=k), balance=D(100 + k), equity=D(101 + k))
         for k in range(5)]
    )  # fmt: skip
    parts = list(sql.statistics_history_parts(account.pk, start=None, end=None, credit=CREDIT, parts=3))
    assert [part[5] for part in parts] == [5, 0, 0]
    assert report(history_state_of(account, parts=3)[0], MIN_TRADES) == _whole(account)


def test_a_period_of_a_history_seen_long_is_read_in_parts_and_gives_the_one_batch_result(owner, monkeypatch):
    account = _account(owner)
    _mixed_history(account)
    monkeypatch.setattr(summary, "SUMMARY_MIN_ROWS", 100)
    monkeypatch.setattr(summary, "PART_ROWS", 60)
    asked = []
    parts_of = sql.statistics_history_parts
    monkeypatch.setattr(
        sql, "statistics_history_parts", lambda *a, **k: asked.append(k.get("parts", 1)) or parts_of(*a, **k)
    )
    window = {"date_from": (START + timedelta(days=10)).date(), "date_to": (START + timedelta(days=40)).date()}
    first = statistics_for_account(account, **window)  # not seen long yet: one part, then noted
    second = statistics_for_account(account, **window)
    assert asked[0] == 1 and asked[1] > 2
    start, end = period_bounds(window["date_from"], window["date_to"])
    deals, snapshots, opening = statistics_history(account, start=start, end=end)
    assert first == second
    assert {k: v for k, v in second.items() if k not in ("account_id", "currency", "date_from", "date_to")} == (
        compute_statistics(deals, snapshots, opening_balance=opening)
    )


def test_prices_read_as_integers_are_the_floats_nearest_their_decimals_at_any_size():
    texts = [
        "1.08123000",
        "0.00000001",
        "65000.12345678",
        "-3.10000000",
        "90071992.54740991",
        "1600000000.12345678",
        "37088017594.93319391",
        "-32179699125.68481190",
    ]  # fmt: skip  (the last two: float(n) / 10**8 is 1 ulp off)
    units = np.array([int(t.replace(".", "")) for t in texts], dtype=np.int64)
    assert columns._prices(units).tolist() == [float(D(t)) for t in texts]


def test_a_failure_while_folding_a_part_leaves_the_connection_usable(owner, monkeypatch):
    account = _account(owner)
    _mixed_history(account)

    def failing(*args, **kwargs):
        raise RuntimeError("fold failed")

    monkeypatch.setattr(columns, "fold", failing)
    with pytest.raises(RuntimeError, match="fold failed") as raised:
        history_state_of(account, parts=4)
    assert raised.traceback  # the failed read's frames are still held, as an error handler holds them
    # A statement left streaming holds the connection's lock: the next query would wait on it for ever.
    lock = connection.connection.lock
    if not lock.acquire(blocking=False):
        del raised  # let the stream go (its frames freed, its generator closed) so the test database can be reset
        gc.collect()
        pytest.fail("the connection was still busy with the failed read's statement")
    lock.release()
    assert Deal.objects.filter(account=account).count() > 200  # the next query runs on the same connection
