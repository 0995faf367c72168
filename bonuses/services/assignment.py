"""Giving a bonus: eligibility, the bonus row, its credit and (type A) its leverage, once per idempotency key."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from config.errors import Conflict, ServiceError
from mt5bridge import gateway as gw

from .. import formulas
from ..choices import (
    OPEN_BONUS_STATUSES,
    AuditAction,
    BonusStatus,
    BonusType,
    OperationKind,
)
from ..eligibility import AccountFacts, Failure, blocking, check_eligibility
from ..formulas import ZERO
from ..models import Bonus, BonusOperation, Campaign, GrantApproval, MonitoredAccount
from .audit import SYSTEM, audit_write, bonus_state
from .controls import (
    BudgetRefused,
    abuse_signals_update,
    budget_refusal,
    budget_refused_audit,
    budget_refused_error,
    campaign_budget_lock,
)
from .leverage import leverage_operation, leverage_plan
from .monitored import account_ensure, account_lock, broker_user, default_gateway
from .operations import operation_create, operations_resume, operations_run


@dataclass
class Assignment:
    campaign: Campaign
    bonus: Bonus | None = None
    failures: list[Failure] = field(default_factory=list)
    created: bool = False
    # A manual grant above BONUS_APPROVAL_THRESHOLD: no bonus yet, it waits for a second staff member.
    approval: GrantApproval | None = None


def _facts(account: MonitoredAccount | None, user: gw.BrokerUser | None, campaign: Campaign) -> AccountFacts | None:
    if user is None:
        return None
    bonuses = Bonus.objects.filter(login=user.login).exclude(status=BonusStatus.FAILED)
    return AccountFacts(
        group=user.group,
        country=user.country,
        previous_bonuses=bonuses.filter(campaign=campaign).count(),
        open_bonuses=bonuses.filter(status__in=OPEN_BONUS_STATUSES).count(),
    )


def eligibility_check(*, campaign: Campaign, login: int, deposit: Decimal | None = None, gateway=None) -> list[Failure]:
    """Every reason ``login`` cannot get ``campaign``'s bonus now (the API's check-eligibility)."""
    gateway = gateway or default_gateway()
    user = broker_user(gateway, login)
    return _failures(campaign, user, deposit)


def _failures(campaign: Campaign, user: gw.BrokerUser | None, deposit: Decimal | None) -> list[Failure]:
    return check_eligibility(
        status=campaign.status,
        starts_at=campaign.starts_at,
        ends_at=campaign.ends_at,
        target_groups=campaign.target_groups,
        target_countries=campaign.target_countries,
        min_deposit=campaign.min_deposit,
        max_deposit=campaign.max_deposit,
        one_per_account=campaign.one_per_account,
        max_concurrent=campaign.max_concurrent,
        account=_facts(None, user, campaign),
        deposit=deposit,
        now=timezone.now(),
    )


def bonus_assign(
    *,
    campaign: Campaign,
    login: int,
    trigger: str,
    idempotency_key: str,
    actor=SYSTEM,
    deposit: Decimal | None = None,
    deposit_deal: int | None = None,
    amount: Decimal | None = None,
    promo_code: str = "",
    override: bool = False,
    gateway=None,
    user: gw.BrokerUser | None = None,
    request_hash: str = "",
) -> Assignment:
    """Give ``login`` the campaign's bonus once per ``idempotency_key``: credit, then leverage (type A).

    Refuses with 409 and every failed check when the account is not eligible (``override``
    skips the overridable ones). A repeat of the same key returns the first bonus and only
    finishes what is still pending, so a retried trigger never credits twice; a repeat whose
    ``request_hash`` differs from the first one's is refused (409), as the key is the request's.
    """
    gateway = gateway or default_gateway()
    user = user or broker_user(gateway, login)
    if user is not None:
        account_ensure(login=login, user=user)
    try:
        return _assign(
            campaign=campaign,
            login=login,
            trigger=trigger,
            idempotency_key=idempotency_key,
            actor=actor,
            deposit=deposit,
            deposit_deal=deposit_deal,
            amount=amount,
            promo_code=promo_code,
            override=override,
            gateway=gateway,
            user=user,
            request_hash=request_hash,
        )
    except BudgetRefused as exc:
        # Audited after the grant's transaction rolled back, so the refusal and its reason stay on record.
        budget_refused_audit(actor=actor, campaign=campaign, login=login, error=exc)
        raise


def _assign(
    *,
    campaign,
    login,
    trigger,
    idempotency_key,
    actor,
    deposit,
    deposit_deal,
    amount,
    promo_code,
    override,
    gateway,
    user,
    request_hash,
) -> Assignment:
    with transaction.atomic():
        account = account_lock(login) if user is not None else None
        existing = Bonus.objects.filter(idempotency_key=idempotency_key).first()
        if existing is None:
            failures = _failures(campaign, user, deposit)
            stop = blocking(failures, override=override)
            if stop:
                raise Conflict(
                    "The account is not eligible for this bonus.",
                    code="not_eligible",
                    details={
                        "failures": [f.as_dict() for f in failures],
                        "overridable": all(f.overridable for f in stop),
                    },
                )
            amount = grant_amount(campaign, deposit=deposit, amount=amount)
            campaign_budget_lock(campaign)
            refusal = budget_refusal(campaign=campaign, login=login, amount=amount)
            if refusal is not None:
                raise budget_refused_error(refusal, amount)
            bonus, operations = _bonus_create(
                campaign=campaign,
                account=account,
                user=user,
                trigger=trigger,
                key=idempotency_key,
                actor=actor,
                deposit=deposit,
                deposit_deal=deposit_deal,
                amount=amount,
                promo_code=promo_code,
                overridden=[f.check for f in failures],
                request_hash=request_hash,
            )
            abuse_signals_update(campaign=campaign, login=login, actor=actor)
        elif existing.request_hash != request_hash:
            raise key_reused_error(existing)
        else:
            bonus, operations = existing, None
    if operations is None:
        operations_resume(bonus=bonus, actor=actor, gateway=gateway, when_due=False)
        bonus.refresh_from_db()
        return Assignment(campaign=campaign, bonus=bonus, created=False)
    operations_run(operations, actor=actor, gateway=gateway)
    bonus.refresh_from_db()
    return Assignment(campaign=campaign, bonus=bonus, created=True)


def grant_amount(campaign: Campaign, *, deposit: Decimal | None, amount: Decimal | None) -> Decimal:
    """The credit a grant gives: ``amount``, else the campaign's percent of the deposit, else its fixed amount."""
    if amount is None:
        if deposit is not None and deposit > 0:
            amount = formulas.bonus_amount(deposit, campaign.bonus_percent, campaign.max_bonus_amount)
        else:
            amount = campaign.fixed_amount or ZERO
    amount = formulas.cents_down(Decimal(amount))
    if amount <= 0:
        raise ServiceError("The bonus amount would be zero: give a deposit or an amount.", code="zero_amount")
    return amount


def _bonus_create(
    *,
    campaign,
    account,
    user,
    trigger,
    key,
    actor,
    deposit,
    deposit_deal,
    amount,
    promo_code,
    overridden,
    request_hash="",
) -> tuple[Bonus, list[BonusOperation]]:
    now = timezone.now()
    lots_required = ZERO
    if campaign.bonus_type == BonusType.CONVERTIBLE:
        lots_required = formulas.type_c_lots_required(amount, campaign.lots_per_unit, campaign.unit_amount)
    original = None
    if campaign.bonus_type == BonusType.DYNAMIC_LEVERAGE:
        open_a = Bonus.objects.filter(
            login=user.login, bonus_type=BonusType.DYNAMIC_LEVERAGE, status__in=OPEN_BONUS_STATUSES
        ).exists()
        if account.original_leverage is None or not open_a:
            account.original_leverage = user.leverage
            account.save(update_fields=["original_leverage"])
        original = account.original_leverage
    try:
        with transaction.atomic():
            bonus = Bonus.objects.create(
                campaign=campaign,
                login=user.login,
                bonus_type=campaign.bonus_type,
                trigger=trigger,
                idempotency_key=key,
                request_hash=request_hash,
                deposit_amount=deposit or ZERO,
                deposit_deal=deposit_deal,
                amount=amount,
                lots_required=lots_required,
                original_leverage=original,
                overridden_checks=overridden,
                promo_code=promo_code,
                assigned_by=actor if not isinstance(actor, str) else None,
                expires_at=now + timedelta(days=campaign.expiry_days) if campaign.expiry_days else None,
            )
    except IntegrityError:
        raise Conflict("This trigger was already processed.", code="duplicate_trigger") from None
    audit_write(
        actor=actor,
        action=AuditAction.BONUS_ASSIGNED,
        bonus=bonus,
        after=bonus_state(bonus),
        message=f"{trigger}: {amount} on deposit {deposit or 0}",
    )
    if overridden:
        audit_write(actor=actor, action=AuditAction.BONUS_OVERRIDE, bonus=bonus, after={"overridden": overridden})
    operations = [operation_create(bonus, OperationKind.CREDIT_IN, amount=amount)]
    if campaign.bonus_type == BonusType.DYNAMIC_LEVERAGE:
        # The one type A rule (formulas.type_a_leverage_for): the actual credit/balance ratio once this
        # credit is posted, bounded by the campaign's percent, whether it is the first bonus or not.
        balance = user.balance if user.balance > 0 else (deposit or ZERO)
        target = leverage_plan(account, balance=balance, credit_after={bonus.pk: amount})
        account.leverage = user.leverage
        op = leverage_operation(account, bonus, target)
        if op:
            operations.append(op)
    return bonus, operations


def key_reused_error(existing: Bonus) -> Conflict:
    return Conflict(
        f"This idempotency key was already used for a different request (bonus #{existing.pk}); "
        "send a new key for a new assignment.",
        code="idempotency_key_reused",
        details={"bonus": existing.pk},
    )
