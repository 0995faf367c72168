"""The bonus port: bonus_granted, bonus_cancelled (with its reason) and bonus_converted, after commit, once per change."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from django.utils import timezone

from bonuses import signals
from bonuses.choices import BonusType, CampaignStatus
from bonuses.models import Bonus
from bonuses.services.ending import bonus_cancel, bonus_force_convert, bonuses_expire
from bonuses.services.triggers import trigger_deposit
from mt5bridge.simulated import deposit

from .conftest import make_account, make_campaign

pytestmark = pytest.mark.django_db


@pytest.fixture
def heard():
    calls: list[tuple[str, int, dict]] = []

    def listener(name):
        def receive(sender, bonus, **kwargs):
            assert sender is Bonus
            calls.append((name, bonus.pk, {k: v for k, v in kwargs.items() if k != "signal"}))

        return receive

    receivers = {name: listener(name) for name in ("granted", "cancelled", "converted")}
    for name, receiver in receivers.items():
        getattr(signals, f"bonus_{name}").connect(receiver)
    yield calls
    for name, receiver in receivers.items():
        getattr(signals, f"bonus_{name}").disconnect(receiver)


def _granted(login: int, amount: str = "200", **campaign) -> Bonus:
    make_campaign(**campaign)
    deposit(login, D(amount))
    (result,) = trigger_deposit(login=login, amount=D(amount))
    return result.bonus


def test_a_grant_is_announced_once_after_commit(heard, django_capture_on_commit_callbacks):
    login = make_account(balance="0")
    with django_capture_on_commit_callbacks(execute=True):
        bonus = _granted(login)
        assert heard == []  # nothing before the commit
    with django_capture_on_commit_callbacks(execute=True):
        trigger_deposit(login=login, amount=D("200"))  # the same deposit again: no second grant
    assert heard == [("granted", bonus.pk, {})]


def test_a_cancel_is_announced_once_with_its_reason(heard, django_capture_on_commit_callbacks):
    login = make_account(balance="0")
    with django_capture_on_commit_callbacks(execute=True):
        bonus = _granted(login)
    with django_capture_on_commit_callbacks(execute=True):
        bonus_cancel(actor="test", bonus=bonus)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(Exception, match="already"):
        bonus_cancel(actor="test", bonus=bonus)
    assert heard == [("granted", bonus.pk, {}), ("cancelled", bonus.pk, {"reason": "manual"})]


def test_an_expiry_is_announced_as_a_cancel_with_reason_expiry(heard, django_capture_on_commit_callbacks):
    login = make_account(balance="0")
    with django_capture_on_commit_callbacks(execute=True):
        bonus = _granted(login)
    Bonus.objects.filter(pk=bonus.pk).update(expires_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        bonuses_expire()
        bonuses_expire()
    assert heard[1:] == [("cancelled", bonus.pk, {"reason": "expiry"})]


def test_a_conversion_is_announced_once_and_says_conversion(heard, django_capture_on_commit_callbacks):
    login = make_account(balance="0")
    with django_capture_on_commit_callbacks(execute=True):
        bonus = _granted(login, bonus_type=BonusType.CONVERTIBLE, status=CampaignStatus.ACTIVE)
    with django_capture_on_commit_callbacks(execute=True):
        bonus_force_convert(actor="test", bonus=bonus)
    bonus.refresh_from_db()
    assert bonus.cancel_reason == "conversion"
    assert heard == [("granted", bonus.pk, {}), ("converted", bonus.pk, {})]
