"""Eligibility: every failure at once, each marked overridable exactly as the seed's table (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from bonuses.eligibility import NOT_OVERRIDABLE, OVERRIDABLE, AccountFacts, blocking, check_eligibility

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)


def _check(**overrides):
    values = dict(
        status="active", starts_at=NOW - timedelta(days=1), ends_at=None, target_groups=[], target_countries=[],
        min_deposit=D("0"), max_deposit=None, one_per_account=True, max_concurrent=1,
        account=AccountFacts(group="real\\std", country="DE", previous_bonuses=0, open_bonuses=0),
        deposit=D("500"), now=NOW,
    )  # fmt: skip
    values.update(overrides)
    return check_eligibility(**values)


def test_the_seed_table_is_split_exactly():
    assert set(NOT_OVERRIDABLE) == {"campaign_status", "campaign_ended", "account_not_found"}
    assert set(OVERRIDABLE) == {"group_mismatch", "country_mismatch", "deposit_below_min", "deposit_above_max",
                                "duplicate_bonus", "max_concurrent"}  # fmt: skip


def test_an_eligible_account_has_no_failures():
    assert _check() == []


def test_every_overridable_failure_is_reported_at_once():
    failures = _check(
        target_groups=["real\\vip"], target_countries=["FR", "IT"], min_deposit=D("1000"), max_deposit=D("100"),
        account=AccountFacts(group="real\\std", country="DE", previous_bonuses=1, open_bonuses=1),
    )  # fmt: skip
    assert [f.check for f in failures] == ["group_mismatch", "country_mismatch", "deposit_below_min",
                                           "deposit_above_max", "duplicate_bonus", "max_concurrent"]  # fmt: skip
    assert all(f.overridable for f in failures)
    assert blocking(failures, override=True) == []
    assert len(blocking(failures, override=False)) == 6


def test_campaign_state_failures_are_never_overridable():
    failures = _check(status="paused", ends_at=NOW - timedelta(minutes=1), account=None)
    assert [f.check for f in failures] == ["campaign_status", "campaign_ended", "account_not_found"]
    assert not any(f.overridable for f in failures)
    assert blocking(failures, override=True) == failures


def test_override_skips_only_the_overridable_ones():
    failures = _check(status="draft", target_countries=["FR"])
    assert [f.check for f in blocking(failures, override=True)] == ["campaign_status"]


def test_countries_compare_without_case():
    assert _check(target_countries=["de"]) == []


def test_no_deposit_skips_the_deposit_range():
    assert _check(deposit=None, min_deposit=D("100")) == []


def test_as_dict_carries_the_overridable_flag():
    (failure,) = _check(target_groups=["x"])
    assert failure.as_dict() == {"check": "group_mismatch", "message": failure.message, "overridable": True}
