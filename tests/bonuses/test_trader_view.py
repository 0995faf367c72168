"""The trader's Bonuses page and API: each type's figures, the withdrawal preview against the monitor, the emails."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from accounts.models import TradingAccount
from bonuses.choices import BonusStatus, BonusType, EmailEvent
from bonuses.email_tasks import send_bonus_email
from bonuses.models import Bonus, BonusEmail, MonitoredAccount
from bonuses.services.detection import account_drawdown_protect, account_trades_detected, account_withdrawal_detected
from bonuses.services.ending import bonus_cancel
from bonuses.services.triggers import trigger_deposit
from mt5bridge import gateway as gw
from mt5bridge.simulated import deposit, withdraw
from tests.personas import api_client_for

from .conftest import account, make_account, make_campaign

pytestmark = pytest.mark.django_db


def _connect(owner, login: int) -> TradingAccount:
    """The trader's web-app account for an MT5 login the broker's bonus engine watches."""
    return TradingAccount.objects.create(
        owner=owner, login=login, server="MetaSim-Demo", name=f"Main {login}", password_encrypted=b"-"
    )


def _granted(login: int, amount: str) -> list[Bonus]:
    deposit(login, D(amount))
    results = trigger_deposit(login=login, amount=D(amount))
    return [r.bonus for r in results if r.bonus is not None]


def _closing_deal(ticket: int, volume: str):
    return gw.Deal(
        ticket=ticket, order=ticket, time=timezone.now() + timedelta(seconds=1), type=gw.DealType.SELL,
        entry=gw.DealEntry.OUT, magic=0, position_id=ticket, reason=0, volume=D(volume), price=D("1"),
        commission=D("0"), swap=D("0"), profit=D("0"), fee=D("0"), symbol="BTCUSD", comment="",
    )  # fmt: skip


@pytest.fixture
def three_types(owner):
    """One account per bonus type, each with its campaign (routed by the MT5 lead source)."""
    made = {}
    for kind, percent in ((BonusType.DYNAMIC_LEVERAGE, "50"), (BonusType.FIXED_LEVERAGE, "20"),
                          (BonusType.CONVERTIBLE, "10")):  # fmt: skip
        code = f"TV-{kind}"
        login = make_account(balance="1000", leverage=500, lead_source=code)
        make_campaign(name=f"Type {kind}", bonus_type=kind, bonus_percent=D(percent), agent_codes=[code],
                      lots_per_unit=D("0.1"), unit_amount=D("1"))  # fmt: skip
        (bonus,) = _granted(login, "1000")
        made[kind] = (_connect(owner, login), bonus)
    return made


def test_the_api_shows_each_types_figures(owner, three_types):
    client = api_client_for(owner)
    a_account, a_bonus = three_types[BonusType.DYNAMIC_LEVERAGE]
    body = client.get(reverse("trader-account-bonuses", args=[a_account.pk])).json()
    (row,) = body["bonuses"]
    # 50 % of 1,000 is 500 of credit on a balance of 2,000: floor(500 / 1.25) = 1:400.
    assert row["credit_outstanding"] == "500.00" and row["bonus_type"] == "A"
    assert body["leverage"] == 400 and body["original_leverage"] == 500 and body["live"] is True
    assert body["credit_outstanding"] == "500.00" and row["campaign_terms"]["bonus_percent"] == "50.00"

    b_account, _ = three_types[BonusType.FIXED_LEVERAGE]
    body = client.get(reverse("trader-account-bonuses", args=[b_account.pk])).json()
    assert body["bonuses"][0]["credit_outstanding"] == "200.00" and body["leverage"] == 500

    c_account, c_bonus = three_types[BonusType.CONVERTIBLE]
    account_trades_detected(login=c_account.login, deals=[_closing_deal(990001, "2.5")])
    body = client.get(reverse("trader-account-bonuses", args=[c_account.pk])).json()
    (row,) = body["bonuses"]
    # 100 of credit, 10 lots to convert all; 2.5 lots traded converted 25.
    assert row["lots_required"] == "10.0000" and row["lots_traded"] == "2.5000" and row["lot_progress"] == "25.00"
    assert row["converted_amount"] == "25.00" and row["credit_outstanding"] == "75.00"


def test_the_page_shows_each_types_figures(client, owner, three_types):
    c_account, _ = three_types[BonusType.CONVERTIBLE]
    account_trades_detected(login=c_account.login, deals=[_closing_deal(990002, "5")])
    client.force_login(owner)
    page = client.get(reverse("bonus-web-list")).content.decode()
    assert 'data-stat="bonus_leverage">1:400<' in page
    assert 'data-stat="bonus_credit">200.00<' in page
    assert "5 / 10 lots (50.00%)" in page
    assert 'href="/bonuses/"' in page  # the main navigation names the page


def test_an_outsider_sees_none_of_it(outsider, outsider_client, three_types, client):
    a_account, _ = three_types[BonusType.DYNAMIC_LEVERAGE]
    assert outsider_client.get(reverse("trader-account-bonuses", args=[a_account.pk])).status_code == 404
    client.force_login(outsider)
    page = client.get(reverse("bonus-web-list")).content.decode()
    assert str(a_account.login) not in page and "No MT5 account yet" in page


def _mixed_account(owner):
    code = "TV-MIX"
    login = make_account(balance="1000", leverage=500, lead_source=code)
    make_campaign(name="Mixed A", bonus_type=BonusType.DYNAMIC_LEVERAGE, bonus_percent=D("50"), agent_codes=[code])
    make_campaign(name="Mixed B", bonus_type=BonusType.FIXED_LEVERAGE, bonus_percent=D("15"), agent_codes=[code])
    make_campaign(name="Mixed C", bonus_type=BonusType.CONVERTIBLE, bonus_percent=D("10"), agent_codes=[code])
    assert len(_granted(login, "1000")) == 3
    return _connect(owner, login)


@pytest.mark.parametrize("amount", ["333.33", "2000.00"])
def test_the_withdrawal_preview_is_what_the_monitor_then_does(owner, amount):
    trading = _mixed_account(owner)
    login = trading.login
    preview = (
        api_client_for(owner)
        .get(reverse("trader-account-bonuses", args=[trading.pk]), {"withdraw": amount})
        .json()["withdrawal_preview"]
    )
    assert preview["amount"] == amount and preview["balance_before"] == "2000.00"

    # The monitor's snapshot records MT5's leverage each cycle; no cycle runs here, so record it as one would
    # (the grants of one deposit refresh the row from one MT5 read taken before the type A leverage changed).
    MonitoredAccount.objects.filter(login=login).update(leverage=account(login).leverage)
    ticket = withdraw(login, D(amount))
    deal = next(d for d in gw.get_gateway("simulated").deals_by_comment(login, "Withdrawal") if d.ticket == ticket)
    account_withdrawal_detected(login=login, deal=deal, balance_after=account(login).balance)

    for row in preview["bonuses"]:
        bonus = Bonus.objects.get(pk=row["bonus_id"])
        assert bonus.credit_outstanding == D(row["credit_after"]), bonus.bonus_type
        assert (bonus.status == BonusStatus.CANCELLED) == row["ends"]
    assert account(login).leverage == preview["leverage_after"]
    assert account(login).credit == D("750.00") - D(preview["credit_removed"])
    if amount == "2000.00":
        assert preview["leverage_after"] == 500 and all(r["ends"] for r in preview["bonuses"])


def test_a_preview_larger_than_the_balance_or_not_an_amount_is_a_400(owner):
    trading = _mixed_account(owner)
    url = reverse("trader-account-bonuses", args=[trading.pk])
    client = api_client_for(owner)
    too_much = client.get(url, {"withdraw": "2000.01"})
    assert too_much.status_code == 400 and too_much.json()["error"]["code"] == "amount_above_balance"
    assert client.get(url, {"withdraw": "abc"}).status_code == 400
    assert client.get(url, {"withdraw": "1.001"}).status_code == 400


def test_the_page_previews_a_withdrawal_and_shows_a_form_error(client, owner):
    trading = _mixed_account(owner)
    client.force_login(owner)
    page = client.get(reverse("bonus-web-list"), {"account": str(trading.pk), "withdraw": "200"}).content.decode()
    assert 'data-stat="preview_removed">' in page and "Withdrawing <strong>200.00</strong>" in page
    page = client.get(reverse("bonus-web-list"), {"account": str(trading.pk), "withdraw": "99999"}).content.decode()
    assert "a withdrawal cannot be larger" in page


# --- emails -----------------------------------------------------------------------------------


def test_a_grant_mails_the_owner_once(owner, django_capture_on_commit_callbacks):
    login = make_account(balance="0")
    _connect(owner, login)
    make_campaign(bonus_percent=D("10"))
    with django_capture_on_commit_callbacks(execute=True):
        (bonus,) = _granted(login, "1000")
    assert [m.to for m in mail.outbox] == [[owner.email]]
    assert str(login) in mail.outbox[0].subject and "100.00" in mail.outbox[0].subject
    send_bonus_email(bonus.pk, EmailEvent.GRANTED)  # a redelivered task
    assert len(mail.outbox) == 1 and BonusEmail.objects.filter(bonus=bonus).count() == 1


def test_conversion_cancellation_and_drawdown_each_mail_once(owner, django_capture_on_commit_callbacks):
    logins = [make_account(balance="0", lead_source=f"TVM-{n}") for n in range(3)]
    for n, login in enumerate(logins):
        _connect(owner, login)
        kind = BonusType.CONVERTIBLE if n == 0 else BonusType.FIXED_LEVERAGE
        make_campaign(name=f"Mail {n}", bonus_type=kind, bonus_percent=D("10"), agent_codes=[f"TVM-{n}"],
                      lots_per_unit=D("0.1"), unit_amount=D("1"))  # fmt: skip
        with django_capture_on_commit_callbacks(execute=True):
            _granted(login, "1000")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        account_trades_detected(login=logins[0], deals=[_closing_deal(990010, "20")])
        bonus_cancel(actor="test", bonus=Bonus.objects.get(login=logins[1]))
        sim = gw.get_gateway("simulated")
        sim.order_send(logins[2], gw.OrderRequest(action=gw.TradeAction.DEAL, symbol="BTCUSD", volume=D("0.01"),
                                                  type=gw.OrderType.BUY))  # fmt: skip
        assert account_drawdown_protect(login=logins[2]) is True
        assert account_drawdown_protect(login=logins[2]) is False
    subjects = sorted(m.subject for m in mail.outbox)
    assert len(subjects) == 3
    assert any("is now balance" in s and str(logins[0]) in s for s in subjects)
    assert any("has ended" in s and str(logins[1]) in s for s in subjects)
    assert any("positions closed" in s and str(logins[2]) in s for s in subjects)
    for bonus in Bonus.objects.filter(login__in=logins):
        for event in EmailEvent.values:
            send_bonus_email(bonus.pk, event)  # redelivered tasks, and tasks of events that did not happen
    assert len(mail.outbox) == 3
    assert BonusEmail.objects.filter(bonus__login__in=logins).count() == 6  # a grant and an end each
