"""The pure plan rules: which plan a state gives at a moment, past_due spells, which accounts stay active."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from entitlements.resolution import PlanState, accounts_to_keep, best_subscription, past_due_since, resolve_plan

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
GRACE = timedelta(days=7)


def resolve(state: PlanState, *, local: bool = False, now: datetime = NOW) -> tuple[str, str]:
    return resolve_plan(state, local_mode=local, default_slug="pro", free_slug="free", grace=GRACE, now=now)


def test_local_mode_puts_everyone_on_the_default_plan_even_with_a_subscription():
    assert resolve(PlanState(subscribed_slug="basic", status="active"), local=True) == ("pro", "local_mode")


def test_staff_choice_wins_over_local_mode_and_subscription_until_it_ends():
    state = PlanState(
        manual_slug="enterprise", manual_until=NOW + timedelta(hours=1), subscribed_slug="basic", status="active"
    )
    assert resolve(state, local=True) == ("enterprise", "staff")
    assert resolve(state, now=NOW + timedelta(hours=2)) == ("basic", "active")


def test_no_subscription_with_stripe_is_free():
    assert resolve(PlanState()) == ("free", "no_subscription")


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("active", ("pro", "active")),
        ("trialing", ("pro", "trialing")),
        ("canceled", ("free", "canceled")),
        ("incomplete", ("free", "incomplete")),
        ("incomplete_expired", ("free", "incomplete_expired")),
        ("unpaid", ("free", "unpaid")),
        ("paused", ("free", "paused")),
    ],
)
def test_subscription_status_decides_between_the_subscribed_plan_and_free(status, expected):
    assert resolve(PlanState(subscribed_slug="pro", status=status)) == expected


def test_past_due_keeps_the_plan_for_seven_days_then_falls_to_free():
    state = PlanState(subscribed_slug="pro", status="past_due", past_due_since=NOW)
    assert resolve(state, now=NOW + timedelta(days=6, hours=23)) == ("pro", "past_due_grace")
    assert resolve(state, now=NOW + timedelta(days=7)) == ("free", "past_due_grace_over")


def test_trial_that_ended_more_than_the_grace_ago_without_news_from_stripe_is_free():
    state = PlanState(subscribed_slug="basic", status="trialing", trial_end=NOW - timedelta(days=8))
    assert resolve(state) == ("free", "trial_over")
    assert resolve(PlanState(subscribed_slug="basic", status="trialing", trial_end=NOW - timedelta(days=6))) == (
        "basic",
        "trialing",
    )


def test_past_due_since_starts_on_the_first_past_due_and_keeps_its_start_then_clears():
    first = past_due_since(previous_status="active", previous_since=None, status="past_due", now=NOW)
    assert first == NOW
    later = past_due_since(
        previous_status="past_due", previous_since=NOW, status="past_due", now=NOW + timedelta(days=3)
    )
    assert later == NOW
    assert past_due_since(previous_status="past_due", previous_since=NOW, status="active", now=NOW) is None


def test_accounts_to_keep_takes_the_preferred_then_the_oldest_up_to_the_limit():
    assert accounts_to_keep(["a", "b", "c", "d", "e"], 1) == ["a"]
    assert accounts_to_keep(["a", "b", "c"], 2, preferred=["c"]) == ["c", "a"]
    assert accounts_to_keep(["a", "b"], None) == ["a", "b"]
    assert accounts_to_keep(["a", "b"], 2, preferred=["zz"]) == ["a", "b"]


def test_best_subscription_prefers_active_then_richer_plan_then_newer():
    subs = [
        {"id": "old-canceled-enterprise", "status": "canceled", "rank": 3, "created": 1},
        {"id": "basic-active", "status": "active", "rank": 1, "created": 2},
        {"id": "pro-active", "status": "active", "rank": 2, "created": 3},
        {"id": "pro-trial", "status": "trialing", "rank": 2, "created": 4},
    ]
    assert best_subscription(subs)["id"] == "pro-active"
    assert best_subscription([subs[0]])["id"] == "old-canceled-enterprise"
    assert best_subscription([]) is None
