"""Bonus services against the simulated MT5: credit, leverage, idempotency, withdrawals, type C, drawdown, expiry."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.utils import timezone

from bonuses.choices import AuditAction, BonusStatus, BonusType, CampaignStatus, OperationStatus, Trigger
from bonuses.models import AuditLog, Bonus, BonusOperation
from bonuses.services.assignment import eligibility_check
from bonuses.services.campaigns import campaign_archive, campaign_duplicate, campaign_set_status, campaign_update
from bonuses.services.detection import account_drawdown_protect, account_trades_detected, account_withdrawal_detected
from bonuses.services.ending import bonus_cancel, bonus_force_convert, bonus_override_leverage, bonuses_expire
from bonuses.services.manual import bonus_assign_manual
from bonuses.services.operations import operations_resume
from bonuses.services.triggers import trigger_deposit, trigger_promo_code, trigger_registration
from config.errors import Conflict, ServiceError
from mt5bridge import gateway as gw
from mt5bridge.simulated import deposit, withdraw

from .conftest import TimesOutAfterPosting, account, credit_deals, make_account, make_campaign

pytestmark = pytest.mark.django_db


def _deposit_trigger(login, amount, **kwargs):
    deposit(login, D(amount))
    return trigger_deposit(login=login, amount=D(amount), **kwargs)


def test_a_deposit_trigger_posts_the_credit_with_the_bonus_id_in_the_comment():
    login = make_account(balance="0")
    make_campaign(bonus_percent=D("50"))
    (result,) = _deposit_trigger(login, "1000")
    bonus = result.bonus
    assert bonus.status == BonusStatus.ACTIVE
    assert bonus.amount == D("500.00") and bonus.credit_outstanding == D("500.00")
    (deal,) = credit_deals(login)
    assert deal.profit == D("500.00")
    assert deal.comment.startswith(f"BONUS {bonus.pk} ")
    assert account(login).credit == D("500.00")
    actions = set(AuditLog.objects.filter(bonus=bonus).values_list("action", flat=True))
    assert {AuditAction.BONUS_ASSIGNED, AuditAction.CREDIT_POSTED} <= actions


def test_repeating_the_same_deposit_trigger_gives_one_bonus():
    login = make_account(balance="0")
    make_campaign()
    deposit(login, D("200"))
    first = trigger_deposit(login=login, amount=D("200"))
    second = trigger_deposit(login=login, amount=D("200"))
    assert first[0].bonus.pk == second[0].bonus.pk
    assert second[0].created is False
    assert len(credit_deals(login)) == 1


def test_a_deposit_not_in_the_mt5_history_is_refused():
    login = make_account(balance="100")
    make_campaign()
    with pytest.raises(Conflict) as exc:
        trigger_deposit(login=login, amount=D("777"))
    assert exc.value.code == "deposit_not_confirmed"
    assert not Bonus.objects.filter(login=login).exists()


def test_credit_timed_out_after_posting_is_not_posted_again_on_retry():
    login = make_account(balance="0")
    campaign = make_campaign()
    deposit(login, D("300"))
    flaky = TimesOutAfterPosting()
    with pytest.raises(gw.GatewayUnavailable):
        trigger_deposit(login=login, amount=D("300"), gateway=flaky)
    bonus = Bonus.objects.get(login=login, campaign=campaign)
    assert bonus.status == BonusStatus.PENDING
    assert len(credit_deals(login)) == 1  # MT5 did post it
    retried = trigger_deposit(login=login, amount=D("300"), gateway=flaky)
    assert retried[0].bonus.pk == bonus.pk
    assert retried[0].bonus.status == BonusStatus.ACTIVE
    assert retried[0].bonus.credit_outstanding == D("300.00")
    assert len(credit_deals(login)) == 1
    assert flaky.posted == 1
    assert account(login).credit == D("300.00")


def test_the_pending_operation_is_finished_by_the_resume_job_without_a_second_post(settings):
    settings.BONUS_OPERATION_RETRY_SECONDS = 0  # the job sends it once its backoff has run out
    login = make_account(balance="0")
    make_campaign()
    deposit(login, D("300"))
    with pytest.raises(gw.GatewayUnavailable):
        trigger_deposit(login=login, amount=D("300"), gateway=TimesOutAfterPosting())
    assert operations_resume() == 1
    assert len(credit_deals(login)) == 1
    assert Bonus.objects.get(login=login).status == BonusStatus.ACTIVE


def test_type_a_bonus_of_100_percent_sets_1_to_500_to_1_to_250_and_cancel_restores_it():
    login = make_account(balance="0", leverage=500)
    make_campaign(bonus_type=BonusType.DYNAMIC_LEVERAGE, bonus_percent=D("100"))
    (result,) = _deposit_trigger(login, "1000")
    assert account(login).leverage == 250
    assert result.bonus.applied_leverage == 250 and result.bonus.original_leverage == 500
    bonus_cancel(actor="test", bonus=result.bonus)
    info = account(login)
    assert info.leverage == 500 and info.credit == D("0.00")
    bonus = Bonus.objects.get(pk=result.bonus.pk)
    assert bonus.status == BonusStatus.CANCELLED and bonus.credit_outstanding == 0


def test_type_a_bonus_of_50_percent_gives_1_to_333():
    login = make_account(balance="0", leverage=500)
    make_campaign(bonus_type=BonusType.DYNAMIC_LEVERAGE, bonus_percent=D("50"))
    _deposit_trigger(login, "1000")
    assert account(login).leverage == 333


def test_withdrawing_ten_percent_removes_ten_percent_of_each_bonus_and_recalculates_type_a():
    login = make_account(balance="0", leverage=500)
    a = make_campaign(name="A", bonus_type=BonusType.DYNAMIC_LEVERAGE, bonus_percent=D("100"))
    b = make_campaign(name="B", bonus_type=BonusType.FIXED_LEVERAGE, bonus_percent=D("20"))
    _deposit_trigger(login, "1000")  # A: 1000 credit, B: 200 credit
    ticket = withdraw(login, D("100"))
    deal = next(d for d in gw.get_gateway("simulated").deals_by_comment(login, "Withdrawal") if d.ticket == ticket)
    account_withdrawal_detected(login=login, deal=deal, balance_after=D("900"))
    bonus_a, bonus_b = Bonus.objects.get(campaign=a), Bonus.objects.get(campaign=b)
    assert bonus_a.credit_outstanding == D("900.00") and bonus_a.removed_amount == D("100.00")
    assert bonus_b.credit_outstanding == D("180.00")
    info = account(login)
    assert info.credit == D("1080.00")
    assert info.leverage == 250  # 900 credit on 900 balance: still 100 %
    # The same withdrawal seen again changes nothing.
    assert account_withdrawal_detected(login=login, deal=deal, balance_after=D("900")) is None
    assert account(login).credit == D("1080.00")


def test_a_full_withdrawal_cancels_every_bonus_and_restores_leverage():
    login = make_account(balance="0", leverage=400)
    make_campaign(bonus_type=BonusType.DYNAMIC_LEVERAGE, bonus_percent=D("100"))
    _deposit_trigger(login, "500")
    assert account(login).leverage == 200
    ticket = withdraw(login, D("500"))
    deal = next(d for d in gw.get_gateway("simulated").deals_by_comment(login, "Withdrawal") if d.ticket == ticket)
    account_withdrawal_detected(login=login, deal=deal, balance_after=D("0"))
    bonus = Bonus.objects.get(login=login)
    assert bonus.status == BonusStatus.CANCELLED and bonus.cancel_reason == "withdrawal"
    info = account(login)
    assert info.credit == D("0.00") and info.leverage == 400


def _closing_deal(ticket: int, volume: str, *, symbol="BTCUSD", when=None):
    return gw.Deal(
        ticket=ticket, order=ticket, time=when or timezone.now() + timedelta(seconds=1), type=gw.DealType.SELL,
        entry=gw.DealEntry.OUT, magic=0, position_id=ticket, reason=0, volume=D(volume), price=D("1"),
        commission=D("0"), swap=D("0"), profit=D("0"), fee=D("0"), symbol=symbol, comment="",
    )  # fmt: skip


def test_type_c_converts_credit_to_balance_per_lot_in_steps():
    login = make_account(balance="0")
    make_campaign(bonus_type=BonusType.CONVERTIBLE, bonus_percent=D("10"), lots_per_unit=D("0.1"),
                  unit_amount=D("1"))  # fmt: skip
    (result,) = _deposit_trigger(login, "1000")  # 100 credit, 10 lots to convert all
    bonus = result.bonus
    assert bonus.lots_required == D("10")
    steps = account_trades_detected(login=login, deals=[_closing_deal(900001, "2.5")])
    assert steps == 1
    bonus.refresh_from_db()
    assert bonus.converted_amount == D("25.00") and bonus.credit_outstanding == D("75.00")
    info = account(login)
    assert info.balance == D("1025.00") and info.credit == D("75.00")
    # The same deal again counts nothing; new lots convert the next step; the cap is the bonus.
    assert account_trades_detected(login=login, deals=[_closing_deal(900001, "2.5")]) == 0
    account_trades_detected(login=login, deals=[_closing_deal(900002, "20")])
    bonus.refresh_from_db()
    assert bonus.status == BonusStatus.CONVERTED and bonus.converted_amount == D("100.00")
    info = account(login)
    assert info.balance == D("1100.00") and info.credit == D("0.00")


def test_type_c_ignores_deals_of_other_symbols_and_below_the_minimum_lot():
    login = make_account(balance="0")
    make_campaign(bonus_type=BonusType.CONVERTIBLE, bonus_percent=D("10"), counting_symbols=["XAUUSD"],
                  min_lot=D("0.10"))  # fmt: skip
    _deposit_trigger(login, "1000")
    deals = [_closing_deal(900010, "5", symbol="EURUSD"), _closing_deal(900011, "0.05", symbol="XAUUSD"),
             _closing_deal(900012, "1", symbol="XAUUSD.pro")]  # fmt: skip
    account_trades_detected(login=login, deals=deals)
    assert Bonus.objects.get(login=login).lots_traded == D("1")


def test_a_withdrawal_cancels_the_unconverted_part_of_a_type_c_bonus():
    login = make_account(balance="0")
    make_campaign(bonus_type=BonusType.CONVERTIBLE, bonus_percent=D("10"))
    _deposit_trigger(login, "1000")
    account_trades_detected(login=login, deals=[_closing_deal(900020, "5")])  # half converted
    ticket = withdraw(login, D("50"))
    deal = next(d for d in gw.get_gateway("simulated").deals_by_comment(login, "Withdrawal") if d.ticket == ticket)
    account_withdrawal_detected(login=login, deal=deal, balance_after=account(login).balance)
    bonus = Bonus.objects.get(login=login)
    assert bonus.status == BonusStatus.CANCELLED and bonus.converted_amount == D("50.00")
    assert account(login).credit == D("0.00")


def test_force_convert_moves_all_remaining_credit_to_balance():
    login = make_account(balance="0")
    make_campaign(bonus_type=BonusType.CONVERTIBLE, bonus_percent=D("10"))
    (result,) = _deposit_trigger(login, "1000")
    bonus = bonus_force_convert(actor="test", bonus=result.bonus)
    assert bonus.status == BonusStatus.CONVERTED and bonus.converted_amount == D("100.00")
    info = account(login)
    assert info.balance == D("1100.00") and info.credit == D("0.00")


def test_force_convert_refuses_other_types():
    login = make_account(balance="0")
    make_campaign()
    (result,) = _deposit_trigger(login, "100")
    with pytest.raises(ServiceError):
        bonus_force_convert(actor="test", bonus=result.bonus)


def test_override_leverage_sets_the_requested_leverage():
    login = make_account(balance="0", leverage=500)
    make_campaign(bonus_type=BonusType.DYNAMIC_LEVERAGE)
    (result,) = _deposit_trigger(login, "100")
    bonus = bonus_override_leverage(actor="test", bonus=result.bonus, leverage=100)
    assert bonus.applied_leverage == 100 and account(login).leverage == 100


def test_expiry_cancels_bonuses_past_their_date():
    login = make_account(balance="0")
    make_campaign(expiry_days=30)
    (result,) = _deposit_trigger(login, "100")
    assert bonuses_expire(now=timezone.now() + timedelta(days=29)) == 0
    assert bonuses_expire(now=timezone.now() + timedelta(days=31)) == 1
    bonus = Bonus.objects.get(pk=result.bonus.pk)
    assert bonus.status == BonusStatus.EXPIRED and account(login).credit == D("0.00")


def test_drawdown_closes_positions_cancels_bonuses_and_removes_credit():
    login = make_account(balance="0", leverage=500)
    make_campaign(bonus_type=BonusType.DYNAMIC_LEVERAGE)
    _deposit_trigger(login, "1000")
    sim = gw.get_gateway("simulated")
    result = sim.order_send(login, gw.OrderRequest(action=gw.TradeAction.DEAL, symbol="BTCUSD", volume=D("0.01"),
                                                   type=gw.OrderType.BUY))  # fmt: skip
    assert result.ok
    assert account_drawdown_protect(login=login) is True
    assert sim.positions(login) == []
    bonus = Bonus.objects.get(login=login)
    assert bonus.status == BonusStatus.CANCELLED and bonus.cancel_reason == "drawdown"
    info = account(login)
    assert info.credit == D("0.00") and info.leverage == 500
    assert AuditLog.objects.filter(login=login, action=AuditAction.DRAWDOWN).exists()


def test_agent_code_campaign_fires_only_for_a_matching_lead_source():
    matching = make_account(balance="0", lead_source="IB-42")
    other = make_account(balance="0", lead_source="google")
    make_campaign(triggers=[Trigger.AGENT_CODE], agent_codes=["ib-42"])
    (result,) = _deposit_trigger(matching, "100")
    assert result.bonus.trigger == Trigger.AGENT_CODE
    assert _deposit_trigger(other, "100") == []


def test_not_eligible_assignment_answers_with_every_failure_and_override_assigns():
    login = make_account(balance="1000", country="DE")
    campaign = make_campaign(target_countries=["FR"], min_deposit=D("500"), triggers=[])
    with pytest.raises(Conflict) as exc:
        bonus_assign_manual(actor="test", campaign=campaign, login=login, deposit=D("100"),
                                     idempotency_key="k1")  # fmt: skip
    checks = [f["check"] for f in exc.value.details["failures"]]
    assert checks == ["country_mismatch", "deposit_below_min"]
    result = bonus_assign_manual(actor="test", campaign=campaign, login=login, deposit=D("100"),
                                          override=True, idempotency_key="k1")  # fmt: skip
    assert result.bonus.overridden_checks == checks
    assert AuditLog.objects.filter(bonus=result.bonus, action=AuditAction.BONUS_OVERRIDE).exists()


def test_override_never_skips_a_paused_campaign():
    login = make_account()
    campaign = make_campaign(status=CampaignStatus.PAUSED, fixed_amount=D("10"))
    with pytest.raises(Conflict):
        bonus_assign_manual(actor="test", campaign=campaign, login=login, amount=D("10"), override=True,
                                     idempotency_key="k1")  # fmt: skip


def test_unknown_login_is_account_not_found():
    campaign = make_campaign()
    failures = eligibility_check(campaign=campaign, login=987654321)
    assert [f.check for f in failures] == ["account_not_found"]


def test_promo_code_and_registration_triggers_give_the_fixed_amount():
    login = make_account()
    make_campaign(name="promo", triggers=[Trigger.PROMO_CODE], promo_codes=["SPRING"], fixed_amount=D("25"))
    make_campaign(name="reg", triggers=[Trigger.REGISTRATION], fixed_amount=D("10"),
                  starts_at=timezone.now() - timedelta(days=400))  # fmt: skip
    (promo,) = trigger_promo_code(login=login, code="spring")
    assert promo.bonus.amount == D("25.00")
    (reg,) = trigger_registration(login=login)
    assert reg.bonus.amount == D("10.00")
    assert account(login).credit == D("35.00")
    with pytest.raises(ServiceError):
        trigger_promo_code(login=login, code="NOPE")


def test_campaign_lifecycle_allows_only_the_listed_transitions():
    campaign = make_campaign(status=CampaignStatus.DRAFT)
    with pytest.raises(Conflict):
        campaign_set_status(actor="test", campaign=campaign, status=CampaignStatus.ENDED)
    for step in (CampaignStatus.ACTIVE, CampaignStatus.PAUSED, CampaignStatus.ACTIVE, CampaignStatus.ENDED,
                 CampaignStatus.ARCHIVED):  # fmt: skip
        campaign = campaign_set_status(actor="test", campaign=campaign, status=step)
    with pytest.raises(Conflict):
        campaign_set_status(actor="test", campaign=campaign, status=CampaignStatus.ACTIVE)
    with pytest.raises(Conflict):
        campaign_update(actor="test", campaign=campaign, name="x")


def test_duplicate_makes_a_draft_copy_and_archive_ends_first():
    campaign = make_campaign(target_groups=["real\\vip"])
    copy = campaign_duplicate(actor="test", campaign=campaign)
    assert copy.status == CampaignStatus.DRAFT and copy.target_groups == ["real\\vip"] and copy.pk != campaign.pk
    archived = campaign_archive(actor="test", campaign=campaign)
    assert archived.status == CampaignStatus.ARCHIVED


def test_refused_credit_marks_the_bonus_failed():
    login = make_account(balance="0")
    campaign = make_campaign(triggers=[], fixed_amount=D("10"))

    class Refuses(TimesOutAfterPosting):
        def balance_operation(self, *args, **kwargs):
            raise gw.GatewayError("10019 no money")

    result = bonus_assign_manual(actor="test", campaign=campaign, login=login, amount=D("10"),
                                          idempotency_key="k1", gateway=Refuses())  # fmt: skip
    assert result.bonus.status == BonusStatus.FAILED
    assert BonusOperation.objects.get(bonus=result.bonus).status == OperationStatus.REFUSED
