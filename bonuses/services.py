"""Write paths of the bonuses app: campaigns, assignment, MT5 operations, withdrawals, drawdown, audit."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from config.errors import Conflict, NotAllowed, ServiceError
from mt5bridge import gateway as gw

from . import formulas, limits
from .choices import (
    CAMPAIGN_TRANSITIONS,
    OPEN_BONUS_STATUSES,
    AuditAction,
    BonusStatus,
    BonusType,
    CampaignStatus,
    CancelReason,
    MonitorStatus,
    OperationKind,
    OperationStatus,
    Trigger,
)
from .eligibility import AccountFacts, Failure, blocking, check_eligibility
from .models import (
    AccountEvent,
    AuditLog,
    Bonus,
    BonusOperation,
    Campaign,
    MonitoredAccount,
    Mt5Scan,
)

logger = logging.getLogger(__name__)

ZERO = formulas.ZERO
MONITOR = "monitor"
SYSTEM = "system"

CAMPAIGN_FIELDS = (
    "name", "description", "bonus_type", "bonus_percent", "max_bonus_amount", "fixed_amount", "min_deposit",
    "max_deposit", "starts_at", "ends_at", "expiry_days", "target_groups", "target_countries", "agent_codes",
    "promo_codes", "triggers", "one_per_account", "max_concurrent", "lots_per_unit", "unit_amount",
    "counting_symbols", "min_lot", "only_after_bonus",
)  # fmt: skip


def default_gateway() -> gw.MT5Gateway:
    """The broker-side gateway the bonus engine uses (configuration: BONUS_MT5_GATEWAY / BONUS_MT5_SERVER)."""
    return gw.get_gateway(settings.BONUS_MT5_GATEWAY or None, server=settings.BONUS_MT5_SERVER)


# --- Audit ----------------------------------------------------------------------------


def _label(actor) -> str:
    if actor is None:
        return SYSTEM
    if isinstance(actor, str):
        return actor
    return actor.email


def _json(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    return value


def bonus_state(bonus: Bonus) -> dict:
    return _json({
        "status": bonus.status, "amount": bonus.amount, "credit_outstanding": bonus.credit_outstanding,
        "converted_amount": bonus.converted_amount, "removed_amount": bonus.removed_amount,
        "lots_traded": bonus.lots_traded, "applied_leverage": bonus.applied_leverage,
    })  # fmt: skip


def campaign_state(campaign: Campaign) -> dict:
    return _json({name: getattr(campaign, name) for name in ("status", *CAMPAIGN_FIELDS)})


def audit_write(
    *,
    actor,
    action: str,
    login: int | None = None,
    bonus: Bonus | None = None,
    campaign: Campaign | None = None,
    before: dict | None = None,
    after: dict | None = None,
    message: str = "",
) -> AuditLog:
    """Append one audit row (the table refuses updates and deletes on PostgreSQL)."""
    return AuditLog.objects.create(
        actor=actor if actor is not None and not isinstance(actor, str) else None,
        actor_label=_label(actor)[:254],
        action=action,
        login=login if login is not None else (bonus.login if bonus else None),
        bonus=bonus,
        campaign=campaign or (bonus.campaign if bonus else None),
        before=_json(before or {}),
        after=_json(after or {}),
        message=message[:255],
    )


# --- Campaigns --------------------------------------------------------------------------


def validate_campaign(values: dict) -> None:
    if values.get("bonus_type") not in BonusType.values:
        raise ServiceError("Unknown bonus type.", code="invalid_bonus_type")
    percent = values.get("bonus_percent")
    if percent is None or percent < 0 or percent > 1000:
        raise ServiceError("The bonus percent must be between 0 and 1000.", code="invalid_percent")
    if values.get("max_deposit") is not None and values["max_deposit"] < (values.get("min_deposit") or 0):
        raise ServiceError("The maximum deposit is below the minimum.", code="invalid_deposit_range")
    if values.get("ends_at") and values.get("starts_at") and values["ends_at"] <= values["starts_at"]:
        raise ServiceError("The campaign must end after it starts.", code="invalid_dates")
    from .choices import CAMPAIGN_TRIGGERS

    unknown = set(values.get("triggers") or []) - set(CAMPAIGN_TRIGGERS)
    if unknown:
        raise ServiceError(f"Unknown triggers: {', '.join(sorted(unknown))}.", code="invalid_triggers")
    if values.get("bonus_type") == BonusType.CONVERTIBLE and (values.get("unit_amount") or 0) <= 0:
        raise ServiceError("Type C needs a positive unit amount.", code="invalid_unit_amount")


@transaction.atomic
def campaign_create(*, actor, **values) -> Campaign:
    values = {k: v for k, v in values.items() if k in CAMPAIGN_FIELDS}
    defaults = {f: Campaign._meta.get_field(f).get_default() for f in CAMPAIGN_FIELDS}
    validate_campaign({**defaults, **values})
    campaign = Campaign.objects.create(created_by=actor if not isinstance(actor, str) else None, **values)
    audit_write(actor=actor, action=AuditAction.CAMPAIGN_CREATED, campaign=campaign, after=campaign_state(campaign))
    return campaign


@transaction.atomic
def campaign_update(*, actor, campaign: Campaign, **values) -> Campaign:
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status == CampaignStatus.ARCHIVED:
        raise Conflict("An archived campaign cannot be edited.", code="campaign_archived")
    before = campaign_state(campaign)
    for name, value in values.items():
        if name in CAMPAIGN_FIELDS:
            setattr(campaign, name, value)
    validate_campaign({f: getattr(campaign, f) for f in CAMPAIGN_FIELDS})
    campaign.save()
    audit_write(actor=actor, action=AuditAction.CAMPAIGN_UPDATED, campaign=campaign, before=before,
                after=campaign_state(campaign))  # fmt: skip
    return campaign


@transaction.atomic
def campaign_set_status(*, actor, campaign: Campaign, status: str) -> Campaign:
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if status not in CampaignStatus.values:
        raise ServiceError(f"Unknown status {status!r}.", code="invalid_status")
    if status not in CAMPAIGN_TRANSITIONS[campaign.status]:
        allowed = ", ".join(sorted(CAMPAIGN_TRANSITIONS[campaign.status])) or "none"
        raise Conflict(f"A {campaign.status} campaign cannot become {status} (allowed: {allowed}).",
                       code="invalid_transition")  # fmt: skip
    before = {"status": campaign.status}
    campaign.status = status
    campaign.save(update_fields=["status", "updated_at"])
    audit_write(actor=actor, action=AuditAction.CAMPAIGN_STATUS, campaign=campaign, before=before,
                after={"status": status})  # fmt: skip
    return campaign


def campaign_archive(*, actor, campaign: Campaign) -> Campaign:
    """Archive: an active or paused campaign is ended first (two audited steps)."""
    if campaign.status in (CampaignStatus.ACTIVE, CampaignStatus.PAUSED):
        campaign = campaign_set_status(actor=actor, campaign=campaign, status=CampaignStatus.ENDED)
    return campaign_set_status(actor=actor, campaign=campaign, status=CampaignStatus.ARCHIVED)


@transaction.atomic
def campaign_duplicate(*, actor, campaign: Campaign) -> Campaign:
    """A draft copy of the campaign (same settings, new name, no bonuses)."""
    values = {f: getattr(campaign, f) for f in CAMPAIGN_FIELDS}
    values["name"] = f"{campaign.name} (copy)"[:120]
    copy = Campaign.objects.create(created_by=actor if not isinstance(actor, str) else None, **values)
    audit_write(actor=actor, action=AuditAction.CAMPAIGN_DUPLICATED, campaign=copy,
                before={"source": campaign.pk}, after=campaign_state(copy))  # fmt: skip
    return copy


# --- Accounts ---------------------------------------------------------------------------


def _user_or_none(gateway, login: int) -> gw.BrokerUser | None:
    try:
        return gateway.user(login)
    except gw.NotFound:
        return None


def _monitored_from_user(user: gw.BrokerUser) -> dict:
    return {"group": user.group, "country": user.country, "lead_source": user.lead_source,
            "registration": user.registration, "leverage": user.leverage}  # fmt: skip


def account_ensure(*, login: int, user: gw.BrokerUser | None = None) -> MonitoredAccount:
    """The monitored-account row of ``login`` (created, and refreshed from ``user`` when given)."""
    values = _monitored_from_user(user) if user else {}
    account, created = MonitoredAccount.objects.get_or_create(login=login, defaults=values)
    if user and not created and any(getattr(account, k) != v for k, v in values.items()):
        MonitoredAccount.objects.filter(pk=account.pk).update(**values)
        for k, v in values.items():
            setattr(account, k, v)
    return account


def _lock(login: int) -> MonitoredAccount:
    return MonitoredAccount.objects.select_for_update().get(login=login)


def monitoring_register(*, actor, login: int, gateway=None) -> MonitoredAccount:
    gateway = gateway or default_gateway()
    user = _user_or_none(gateway, login)
    if user is None:
        raise ServiceError(f"Login {login} does not exist on MT5.", code="account_not_found", status_code=404)
    with transaction.atomic():
        existed = MonitoredAccount.objects.filter(login=login).exists()
        account = account_ensure(login=login, user=user)
        if not existed:
            audit_write(actor=actor, action=AuditAction.ACCOUNT_REGISTERED, login=login,
                        after=_monitored_from_user(user))  # fmt: skip
    return account


@transaction.atomic
def monitoring_reset_errors(*, actor, login: int) -> MonitoredAccount:
    try:
        account = _lock(login)
    except MonitoredAccount.DoesNotExist:
        raise ServiceError(f"Login {login} is not monitored.", code="not_monitored", status_code=404) from None
    before = {"status": account.status, "consecutive_errors": account.consecutive_errors}
    account.status, account.consecutive_errors, account.last_error = MonitorStatus.ACTIVE, 0, ""
    account.save(update_fields=["status", "consecutive_errors", "last_error"])
    audit_write(actor=actor, action=AuditAction.ACCOUNT_RESUMED, login=login, before=before,
                after={"status": account.status, "consecutive_errors": 0})  # fmt: skip
    return account


def mt5_scan(*, actor, gateway=None) -> Mt5Scan:
    """Refresh the groups and countries MT5 knows (for campaign targeting) and register new accounts."""
    gateway = gateway or default_gateway()
    users = gateway.users("*")
    groups = sorted({g.name for g in gateway.groups()} | {u.group for u in users})
    countries = sorted({u.country for u in users if u.country})
    with transaction.atomic():
        known = set(MonitoredAccount.objects.values_list("login", flat=True))
        MonitoredAccount.objects.bulk_create(
            [MonitoredAccount(login=u.login, **_monitored_from_user(u)) for u in users if u.login not in known],
            ignore_conflicts=True, batch_size=1000,
        )  # fmt: skip
        scan = Mt5Scan.objects.create(scanned_by=actor if not isinstance(actor, str) else None, groups=groups,
                                      countries=countries, accounts=len(users))  # fmt: skip
        audit_write(actor=actor, action=AuditAction.MT5_SCANNED,
                    after={"groups": len(groups), "countries": len(countries), "accounts": len(users)})  # fmt: skip
    return scan


# --- MT5 operations (idempotent) ----------------------------------------------------------


def _operation_create(bonus: Bonus, kind: str, *, amount: Decimal = ZERO, leverage: int | None = None):
    return BonusOperation.objects.create(bonus=bonus, login=bonus.login, kind=kind, amount=amount, leverage=leverage)


_CREDIT_LEAVING = (OperationKind.CREDIT_OUT, OperationKind.CREDIT_CONVERTED)


def _movable_credit(bonus: Bonus) -> Decimal:
    """The bonus's credit not yet promised to a removal or a conversion (call with the bonus row locked).

    ``credit_outstanding`` only drops once MT5 has confirmed a removal, so a removal or a
    conversion planned by another actor and still in flight is subtracted here: a cancel, a
    force-convert and the monitor's conversion of one bonus never plan the same credit twice.
    """
    leaving = (BonusOperation.objects.filter(bonus=bonus, status=OperationStatus.PENDING, kind__in=_CREDIT_LEAVING)
               .aggregate(s=Sum("amount"))["s"] or ZERO)  # fmt: skip
    return max(ZERO, bonus.credit_outstanding - leaving)


_DEAL_TYPES = {
    OperationKind.CREDIT_IN: (gw.DealType.CREDIT, 1),
    OperationKind.CREDIT_OUT: (gw.DealType.CREDIT, -1),
    OperationKind.CREDIT_CONVERTED: (gw.DealType.CREDIT, -1),
    OperationKind.BALANCE_IN: (gw.DealType.BALANCE, 1),
}


def _claim_seconds() -> float:
    return settings.BONUS_OPERATION_CLAIM_SECONDS


class _ClaimHeld:
    """Keeps an operation's claim alive while this worker sends it, so it cannot lapse mid-call.

    A gateway call can outlast the claim (the manager bridge retries with backoff, a slow
    server answers late). Were the claim to lapse, another worker would find no deal with the
    comment yet and post a second time. A background thread renews the claim every third of
    its length for as long as the call runs; a renewal only touches the claim taken with this
    worker's attempt number (a fencing token). If the worker dies the renewals stop and the
    claim lapses, and the next worker finds the deal by its comment before posting again.
    """

    def __init__(self, pk: int, attempt: int):
        self.pk, self.attempt, self.seconds = pk, attempt, _claim_seconds()
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"bonus-operation-{pk}-claim", daemon=True)

    def __enter__(self) -> _ClaimHeld:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def _renew(self) -> None:
        from django.db import connection

        try:
            while not self._stop.wait(self.seconds / 3):
                renewed = BonusOperation.objects.filter(
                    pk=self.pk, status=OperationStatus.PENDING, attempts=self.attempt
                ).update(claimed_until=timezone.now() + timedelta(seconds=self.seconds))
                if not renewed:
                    self.lost = not self._stop.is_set()
                    return
        except Exception:  # noqa: BLE001 — a failed renewal must not kill the call it guards
            logger.exception("could not renew the claim of bonus operation %s", self.pk)
        finally:
            connection.close()


def operation_execute(*, operation: BonusOperation, actor=MONITOR, gateway=None) -> bool:
    """Send one recorded operation to MT5 once; True when it is done (now or earlier).

    The row is claimed with a conditional UPDATE so two processes never send it together, and
    the claim is renewed for as long as the gateway call runs (``_ClaimHeld``). Before posting,
    the deal history is searched for the operation's comment, so a post whose answer was lost
    (timeout) is recognised instead of being sent again.
    """
    gateway = gateway or default_gateway()
    now = timezone.now()
    claimed = (
        BonusOperation.objects.filter(pk=operation.pk, status=OperationStatus.PENDING)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .update(claimed_until=now + timedelta(seconds=_claim_seconds()), attempts=F("attempts") + 1)
    )
    operation.refresh_from_db()
    if not claimed:
        return operation.status == OperationStatus.DONE
    mine = BonusOperation.objects.filter(pk=operation.pk, attempts=operation.attempts)
    follow_up = None
    with _ClaimHeld(operation.pk, operation.attempts) as held:
        ticket = None
        try:
            if operation.kind == OperationKind.LEVERAGE:
                gateway.set_leverage(operation.login, int(operation.leverage))
            else:
                found = gateway.deals_by_comment(operation.login, operation.comment)
                if found:
                    ticket = found[0].ticket
                elif operation.kind == OperationKind.CREDIT_IN and not _bonus_open(operation.bonus_id):
                    # Cancelled (drawdown, staff, expiry) before its credit went out: never post it.
                    mine.filter(status=OperationStatus.PENDING).update(
                        status=OperationStatus.REFUSED, claimed_until=None,
                        error="the bonus ended before its credit was posted",
                    )  # fmt: skip
                    return False
                else:
                    deal_type, sign = _DEAL_TYPES[operation.kind]
                    amount = operation.amount
                    if sign < 0:
                        # Never ask MT5 to remove more credit than the account holds (it would refuse).
                        info = gateway.accounts_info([operation.login]).get(operation.login)
                        if info is not None and info.credit < amount:
                            amount = max(ZERO, info.credit)
                            BonusOperation.objects.filter(pk=operation.pk).update(amount=amount)
                            operation.amount = amount
                    if amount > 0:
                        ticket = gateway.balance_operation(operation.login, amount * sign, deal_type,
                                                           operation.comment)  # fmt: skip
        except gw.GatewayUnavailable as exc:
            mine.update(claimed_until=None, error=str(exc)[:255])
            raise
        except gw.GatewayError as exc:
            _operation_refused(operation, str(exc), actor=actor)
            return False
        finally:
            if held.lost:
                logger.error("bonus operation %s: its claim was taken over during the gateway call", operation.pk)
        follow_up = _operation_done(operation, ticket, actor=actor)
    if follow_up is not None:
        try:
            operation_execute(operation=follow_up, actor=actor, gateway=gateway)
        except gw.GatewayUnavailable:
            logger.warning(
                "MT5 unavailable taking back credit of ended bonus %s; the monitor retries", follow_up.bonus_id
            )
    return True


def _bonus_open(bonus_id: int) -> bool:
    return Bonus.objects.filter(pk=bonus_id, status__in=OPEN_BONUS_STATUSES).exists()


@transaction.atomic
def _operation_refused(operation: BonusOperation, error: str, *, actor) -> None:
    retryable = operation.kind != OperationKind.CREDIT_IN and "money" in error.lower()
    if retryable:
        # Drawdown: credit cannot leave while positions still hold margin; the next cycle retries.
        BonusOperation.objects.filter(pk=operation.pk).update(claimed_until=None, error=error[:255])
        return
    BonusOperation.objects.filter(pk=operation.pk).update(status=OperationStatus.REFUSED, error=error[:255],
                                                          claimed_until=None)  # fmt: skip
    bonus = Bonus.objects.select_for_update().get(pk=operation.bonus_id)
    if operation.kind == OperationKind.CREDIT_IN and bonus.status == BonusStatus.PENDING:
        before = bonus_state(bonus)
        bonus.status, bonus.ended_at = BonusStatus.FAILED, timezone.now()
        bonus.save(update_fields=["status", "ended_at"])
        audit_write(actor=actor, action=AuditAction.CREDIT_POSTED, bonus=bonus, before=before,
                    after=bonus_state(bonus), message=f"MT5 refused the credit: {error}")  # fmt: skip


@transaction.atomic
def _operation_done(operation: BonusOperation, ticket: int | None, *, actor) -> BonusOperation | None:
    """Apply a posted operation to its bonus (one transaction, audited); returns a follow-up to send, if any."""
    updated = BonusOperation.objects.filter(pk=operation.pk, status=OperationStatus.PENDING).update(
        status=OperationStatus.DONE, deal_ticket=ticket, done_at=timezone.now(), claimed_until=None, error=""
    )
    if not updated:
        return None
    if operation.kind == OperationKind.LEVERAGE:
        # The account row before the bonus row: the order every other writer takes them in.
        MonitoredAccount.objects.filter(login=operation.login).update(leverage=operation.leverage)
    bonus = Bonus.objects.select_for_update().get(pk=operation.bonus_id)
    before = bonus_state(bonus)
    amount = operation.amount
    if operation.kind == OperationKind.CREDIT_IN:
        bonus.credit_outstanding += amount
        if bonus.status == BonusStatus.PENDING:
            bonus.status = BonusStatus.ACTIVE
        action = AuditAction.CREDIT_POSTED
    elif operation.kind == OperationKind.CREDIT_OUT:
        bonus.credit_outstanding = max(ZERO, bonus.credit_outstanding - amount)
        bonus.removed_amount += amount
        action = AuditAction.CREDIT_REMOVED
    elif operation.kind == OperationKind.CREDIT_CONVERTED:
        bonus.credit_outstanding = max(ZERO, bonus.credit_outstanding - amount)
        action = AuditAction.CREDIT_REMOVED
    elif operation.kind == OperationKind.BALANCE_IN:
        bonus.converted_amount += amount
        action = AuditAction.CONVERTED
    else:
        bonus.applied_leverage = operation.leverage
        action = AuditAction.LEVERAGE_CHANGED
    bonus.save()
    message = f"deal #{ticket}" if ticket else ""
    if operation.kind == OperationKind.LEVERAGE:
        message = f"leverage 1:{operation.leverage}"
    audit_write(actor=actor, action=action, bonus=bonus, before=before, after=bonus_state(bonus),
                message=f"{operation.comment}: {amount} {message}".strip())  # fmt: skip
    if operation.kind == OperationKind.CREDIT_IN and not bonus.is_open and amount > 0:
        # The bonus ended while its credit was in flight: the credit it never should have had goes back.
        return _operation_create(bonus, OperationKind.CREDIT_OUT, amount=amount)
    return None


def operations_resume(*, login: int | None = None, bonus: Bonus | None = None, actor=MONITOR, gateway=None) -> int:
    """Send the operations still pending (after a timeout or a crash); returns how many are done now."""
    pending = BonusOperation.objects.filter(status=OperationStatus.PENDING).order_by("id")
    if bonus is not None:
        pending = pending.filter(bonus=bonus)
    elif login is not None:
        pending = pending.filter(login=login)
    done = 0
    for operation in pending:
        if operation_execute(operation=operation, actor=actor, gateway=gateway):
            done += 1
    return done


def _run(operations: list[BonusOperation], *, actor, gateway) -> None:
    for operation in operations:
        if not operation_execute(operation=operation, actor=actor, gateway=gateway):
            # An operation still pending blocks the ones after it (a leverage after its credit).
            if BonusOperation.objects.filter(pk=operation.pk, status=OperationStatus.PENDING).exists():
                return


# --- Leverage ---------------------------------------------------------------------------


def _leverage_plan(account: MonitoredAccount, *, balance: Decimal, exclude: set[int] = frozenset()) -> int | None:
    """The leverage the account should have for its open type A bonuses (None: nothing to do)."""
    if account.original_leverage is None:
        return None
    open_a = Bonus.objects.filter(login=account.login, bonus_type=BonusType.DYNAMIC_LEVERAGE,
                                  status__in=OPEN_BONUS_STATUSES).exclude(pk__in=exclude)  # fmt: skip
    credit = open_a.aggregate(s=Sum("credit_outstanding"))["s"] or ZERO
    if not open_a.exists():
        return account.original_leverage
    return formulas.type_a_leverage_for(account.original_leverage, credit, balance)


def _leverage_operation(account: MonitoredAccount, bonus: Bonus, target: int | None) -> BonusOperation | None:
    if target is None or target == account.leverage:
        return None
    return _operation_create(bonus, OperationKind.LEVERAGE, leverage=target)


# --- Assignment -------------------------------------------------------------------------


@dataclass
class Assignment:
    campaign: Campaign
    bonus: Bonus | None = None
    failures: list[Failure] = field(default_factory=list)
    created: bool = False


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
    user = _user_or_none(gateway, login)
    return _failures(campaign, user, deposit)


def _failures(campaign: Campaign, user: gw.BrokerUser | None, deposit: Decimal | None) -> list[Failure]:
    return check_eligibility(
        status=campaign.status, starts_at=campaign.starts_at, ends_at=campaign.ends_at,
        target_groups=campaign.target_groups, target_countries=campaign.target_countries,
        min_deposit=campaign.min_deposit, max_deposit=campaign.max_deposit,
        one_per_account=campaign.one_per_account, max_concurrent=campaign.max_concurrent,
        account=_facts(None, user, campaign), deposit=deposit, now=timezone.now(),
    )  # fmt: skip


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
    user = user or _user_or_none(gateway, login)
    if user is not None:
        account_ensure(login=login, user=user)
    with transaction.atomic():
        account = _lock(login) if user is not None else None
        existing = Bonus.objects.filter(idempotency_key=idempotency_key).first()
        if existing is None:
            failures = _failures(campaign, user, deposit)
            stop = blocking(failures, override=override)
            if stop:
                raise Conflict(
                    "The account is not eligible for this bonus.", code="not_eligible",
                    details={"failures": [f.as_dict() for f in failures],
                             "overridable": all(f.overridable for f in stop)},
                )  # fmt: skip
            bonus, operations = _bonus_create(campaign=campaign, account=account, user=user, trigger=trigger,
                                              key=idempotency_key, actor=actor, deposit=deposit,
                                              deposit_deal=deposit_deal, amount=amount, promo_code=promo_code,
                                              overridden=[f.check for f in failures],
                                              request_hash=request_hash)  # fmt: skip
        elif existing.request_hash != request_hash:
            raise _key_reused(existing)
        else:
            bonus, operations = existing, None
    if operations is None:
        operations_resume(bonus=bonus, actor=actor, gateway=gateway)
        bonus.refresh_from_db()
        return Assignment(campaign=campaign, bonus=bonus, created=False)
    _run(operations, actor=actor, gateway=gateway)
    bonus.refresh_from_db()
    return Assignment(campaign=campaign, bonus=bonus, created=True)


def _bonus_create(*, campaign, account, user, trigger, key, actor, deposit, deposit_deal, amount, promo_code,
                  overridden, request_hash="") -> tuple[Bonus, list[BonusOperation]]:  # fmt: skip
    if amount is None:
        if deposit is not None and deposit > 0:
            amount = formulas.bonus_amount(deposit, campaign.bonus_percent, campaign.max_bonus_amount)
        else:
            amount = campaign.fixed_amount or ZERO
    amount = formulas.cents_down(Decimal(amount))
    if amount <= 0:
        raise ServiceError("The bonus amount would be zero: give a deposit or an amount.", code="zero_amount")
    now = timezone.now()
    lots_required = ZERO
    if campaign.bonus_type == BonusType.CONVERTIBLE:
        lots_required = formulas.type_c_lots_required(amount, campaign.lots_per_unit, campaign.unit_amount)
    original = None
    if campaign.bonus_type == BonusType.DYNAMIC_LEVERAGE:
        open_a = Bonus.objects.filter(login=user.login, bonus_type=BonusType.DYNAMIC_LEVERAGE,
                                      status__in=OPEN_BONUS_STATUSES).exists()  # fmt: skip
        if account.original_leverage is None or not open_a:
            account.original_leverage = user.leverage
            account.save(update_fields=["original_leverage"])
        original = account.original_leverage
    try:
        with transaction.atomic():
            bonus = Bonus.objects.create(
                campaign=campaign, login=user.login, bonus_type=campaign.bonus_type, trigger=trigger,
                idempotency_key=key, request_hash=request_hash, deposit_amount=deposit or ZERO, deposit_deal=deposit_deal, amount=amount,
                lots_required=lots_required, original_leverage=original, overridden_checks=overridden,
                promo_code=promo_code, assigned_by=actor if not isinstance(actor, str) else None,
                expires_at=now + timedelta(days=campaign.expiry_days) if campaign.expiry_days else None,
            )  # fmt: skip
    except IntegrityError:
        raise Conflict("This trigger was already processed.", code="duplicate_trigger") from None
    audit_write(actor=actor, action=AuditAction.BONUS_ASSIGNED, bonus=bonus, after=bonus_state(bonus),
                message=f"{trigger}: {amount} on deposit {deposit or 0}")  # fmt: skip
    if overridden:
        audit_write(actor=actor, action=AuditAction.BONUS_OVERRIDE, bonus=bonus,
                    after={"overridden": overridden})  # fmt: skip
    operations = [_operation_create(bonus, OperationKind.CREDIT_IN, amount=amount)]
    if campaign.bonus_type == BonusType.DYNAMIC_LEVERAGE:
        target = formulas.type_a_leverage(original, campaign.bonus_percent)
        if Bonus.objects.filter(login=user.login, bonus_type=BonusType.DYNAMIC_LEVERAGE,
                                status__in=OPEN_BONUS_STATUSES).exclude(pk=bonus.pk).exists():  # fmt: skip
            balance = user.balance if user.balance > 0 else (deposit or ZERO)
            credit = (Bonus.objects.filter(login=user.login, bonus_type=BonusType.DYNAMIC_LEVERAGE,
                                           status__in=OPEN_BONUS_STATUSES).exclude(pk=bonus.pk)
                      .aggregate(s=Sum("credit_outstanding"))["s"] or ZERO) + amount  # fmt: skip
            target = formulas.type_a_leverage_for(original, credit, balance)
        account.leverage = user.leverage
        op = _leverage_operation(account, bonus, target)
        if op:
            operations.append(op)
    return bonus, operations


# --- Triggers ---------------------------------------------------------------------------


def _running_campaigns():
    now = timezone.now()
    return Campaign.objects.filter(status=CampaignStatus.ACTIVE, starts_at__lte=now).filter(
        Q(ends_at__isnull=True) | Q(ends_at__gt=now)
    )


def _agent_ok(campaign: Campaign, lead_source: str) -> bool:
    # A campaign with agent codes fires only for accounts whose MT5 Lead Source is one of them.
    codes = {c.strip().lower() for c in campaign.agent_codes or [] if c.strip()}
    return not codes or lead_source.strip().lower() in codes


def _try_assign(results: list[Assignment], campaign: Campaign, **kwargs) -> None:
    try:
        results.append(bonus_assign(campaign=campaign, **kwargs))
    except Conflict as exc:
        failures = (exc.details or {}).get("failures", [])
        results.append(Assignment(campaign=campaign, failures=[Failure(f["check"], f["message"]) for f in failures]))


def deposit_confirm(*, login: int, amount: Decimal, deal_ticket: int | None = None, gateway=None) -> gw.Deal:
    """The BALANCE deal of exactly ``amount`` in the account's recent history (the deposit's proof)."""
    gateway = gateway or default_gateway()
    to = timezone.now() + timedelta(minutes=1)
    since = to - timedelta(days=settings.BONUS_DEPOSIT_LOOKBACK_DAYS)
    try:
        deals = gateway.deals(login, since, to)
    except gw.NotFound:
        raise ServiceError(f"Login {login} does not exist on MT5.", code="account_not_found",
                           status_code=404) from None  # fmt: skip
    matches = [d for d in deals if d.type == gw.DealType.BALANCE and d.profit == amount
               and not d.comment.startswith("BONUS ")]  # fmt: skip
    if deal_ticket is not None:
        matches = [d for d in matches if d.ticket == deal_ticket]
    if not matches:
        raise Conflict(f"No deposit of {amount} found in the MT5 history of {login}.", code="deposit_not_confirmed")
    return matches[-1]


def trigger_deposit(
    *, login: int, amount: Decimal, deal_ticket: int | None = None, actor=SYSTEM, gateway=None
) -> list[Assignment]:
    """A deposit happened: every running auto-deposit or agent-code campaign that matches gives its bonus once."""
    gateway = gateway or default_gateway()
    deal = deposit_confirm(login=login, amount=amount, deal_ticket=deal_ticket, gateway=gateway)
    return _deposit_campaigns(login=login, deal=deal, actor=actor, gateway=gateway)


def _deposit_campaigns(*, login: int, deal: gw.Deal, actor, gateway, user=None) -> list[Assignment]:
    user = user or _user_or_none(gateway, login)
    if user is None:
        raise ServiceError(f"Login {login} does not exist on MT5.", code="account_not_found", status_code=404)
    results: list[Assignment] = []
    for campaign in _running_campaigns().order_by("id"):
        fires = campaign.has_trigger(Trigger.AUTO_DEPOSIT) or (
            campaign.has_trigger(Trigger.AGENT_CODE) and campaign.agent_codes
        )
        if not fires or not _agent_ok(campaign, user.lead_source):
            continue
        trigger = Trigger.AGENT_CODE if campaign.agent_codes else Trigger.AUTO_DEPOSIT
        _try_assign(results, campaign, login=login, trigger=trigger, actor=actor, deposit=deal.profit,
                    deposit_deal=deal.ticket, idempotency_key=f"deposit:{login}:{deal.ticket}:{campaign.pk}",
                    gateway=gateway, user=user)  # fmt: skip
    return results


def trigger_registration(*, login: int, actor=SYSTEM, gateway=None, user=None) -> list[Assignment]:
    gateway = gateway or default_gateway()
    user = user or _user_or_none(gateway, login)
    if user is None:
        raise ServiceError(f"Login {login} does not exist on MT5.", code="account_not_found", status_code=404)
    results: list[Assignment] = []
    for campaign in _running_campaigns().order_by("id"):
        if not campaign.has_trigger(Trigger.REGISTRATION) or not _agent_ok(campaign, user.lead_source):
            continue
        if user.registration and user.registration < campaign.starts_at:
            continue  # registered before the campaign: not a registration it rewards
        _try_assign(results, campaign, login=login, trigger=Trigger.REGISTRATION, actor=actor,
                    idempotency_key=f"registration:{login}:{campaign.pk}", gateway=gateway, user=user)  # fmt: skip
    return results


def trigger_promo_code(
    *, login: int, code: str, deposit: Decimal | None = None, actor=SYSTEM, gateway=None
) -> list[Assignment]:
    gateway = gateway or default_gateway()
    wanted = code.strip().lower()
    campaigns = [
        c for c in _running_campaigns().order_by("id")
        if c.has_trigger(Trigger.PROMO_CODE) and wanted in {p.strip().lower() for p in c.promo_codes or []}
    ]  # fmt: skip
    if not campaigns:
        raise ServiceError("Unknown or expired promo code.", code="unknown_promo_code", status_code=404)
    user = _user_or_none(gateway, login)
    if user is None:
        raise ServiceError(f"Login {login} does not exist on MT5.", code="account_not_found", status_code=404)
    results: list[Assignment] = []
    for campaign in campaigns:
        if not _agent_ok(campaign, user.lead_source):
            continue
        _try_assign(results, campaign, login=login, trigger=Trigger.PROMO_CODE, actor=actor, deposit=deposit,
                    promo_code=code.strip(), idempotency_key=f"promo:{login}:{campaign.pk}:{wanted}",
                    gateway=gateway, user=user)  # fmt: skip
    return results


# A client's Idempotency-Key: what a UUID, a ULID or a "ticket-123:retry" looks like.
MANUAL_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def _actor_scope(actor) -> str:
    if actor is None or isinstance(actor, str):
        return _label(actor)
    pk = actor.pk
    return pk.hex if hasattr(pk, "hex") else str(pk)


def manual_request_hash(*, campaign_id: int, login: int, deposit: Decimal | None, amount: Decimal | None,
                        override: bool) -> str:  # fmt: skip
    """A digest of what a manual assignment asked for (amounts to the cent: "20" and "20.00" are the same)."""

    def money(value):
        return None if value is None else str(formulas.cents(Decimal(value)))

    body = {"campaign": campaign_id, "login": login, "deposit": money(deposit), "amount": money(amount),
            "override": bool(override)}  # fmt: skip
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _key_reused(existing: Bonus) -> Conflict:
    return Conflict(
        f"This idempotency key was already used for a different request (bonus #{existing.pk}); "
        "send a new key for a new assignment.",
        code="idempotency_key_reused", details={"bonus": existing.pk},
    )  # fmt: skip


def manual_amount_check(*, actor, campaign: Campaign, deposit: Decimal | None, amount: Decimal | None) -> Decimal:
    """The credit a manual assignment gives, refused (400, naming the cap) above the campaign's rules or the role's limit.

    No amount: what the campaign's rule gives (percent of the deposit, or the fixed amount,
    at most the campaign's maximum). An amount: at most that. Then at most the limit of the
    actor's role (``bonuses/limits.py``). Internal callers (an actor given as a string) have
    no role, so only the campaign's rules apply to them.
    """
    cap, rule = formulas.manual_amount_cap(deposit=deposit, percent=campaign.bonus_percent,
                                           max_bonus_amount=campaign.max_bonus_amount,
                                           fixed_amount=campaign.fixed_amount)  # fmt: skip
    if amount is None:
        granted = cap
    else:
        granted = formulas.cents_down(Decimal(amount))
        if granted > cap:
            raise ServiceError(
                f"The amount {granted} is above this campaign's cap of {cap} ({rule}).",
                code="amount_above_campaign_cap", details={"cap": str(cap), "rule": rule, "requested": str(granted)},
            )  # fmt: skip
    if granted <= 0:
        raise ServiceError(f"The bonus amount would be zero ({rule}): give the deposit or an amount.",
                           code="zero_amount")  # fmt: skip
    if actor is not None and not isinstance(actor, str):
        declared, limit, role = limits.manual_assign_limit(actor)
        if not declared:
            raise NotAllowed("No manual-assign limit is declared for your role (bonuses/limits.py).",
                             code="no_manual_assign_limit")  # fmt: skip
        if limit is not None and granted > limit:
            raise ServiceError(
                f"The amount {granted} is above the {role} limit of {limit} per manual assignment.",
                code="amount_above_role_limit", details={"cap": str(limit), "role": role, "requested": str(granted)},
            )  # fmt: skip
    return granted


def bonus_assign_manual(
    *, actor, campaign: Campaign, login: int, idempotency_key: str, deposit: Decimal | None = None,
    amount: Decimal | None = None, override: bool = False, gateway=None,
) -> Assignment:  # fmt: skip
    """Staff give ``login`` a bonus by hand, once per (actor, ``idempotency_key``).

    The amount is capped by the campaign's amount rules and the actor's role limit
    (``manual_amount_check``); ``override`` lifts overridable eligibility checks only, never a
    cap. The key comes from the client (the API's ``Idempotency-Key`` header, the admin form's
    one-time hidden field): a repeat with the same request returns the first bonus without a
    second posting; the same key with a different request is refused (409).
    """
    key = (idempotency_key or "").strip()
    if not MANUAL_KEY.match(key):
        raise ServiceError("A manual assignment needs an idempotency key of 1 to 64 letters, digits or ._:- "
                           "(the Idempotency-Key header).", code="idempotency_key_required")  # fmt: skip
    scoped = f"manual:{_actor_scope(actor)}:{key}"
    request_hash = manual_request_hash(campaign_id=campaign.pk, login=login, deposit=deposit, amount=amount,
                                       override=override)  # fmt: skip
    existing = Bonus.objects.filter(idempotency_key=scoped).first()
    if existing is not None:
        if existing.request_hash != request_hash:
            raise _key_reused(existing)
        granted = existing.amount  # a repeat: the first request was checked, nothing new is posted
    else:
        granted = manual_amount_check(actor=actor, campaign=campaign, deposit=deposit, amount=amount)
    return bonus_assign(campaign=campaign, login=login, trigger=Trigger.MANUAL, idempotency_key=scoped, actor=actor,
                        deposit=deposit, amount=granted, override=override, gateway=gateway,
                        request_hash=request_hash)  # fmt: skip


# --- Ending bonuses ---------------------------------------------------------------------


def _end_bonuses(
    *, login: int, bonuses: list[Bonus], status: str, reason: str, actor, gateway, balance: Decimal | None = None
) -> list[BonusOperation]:
    """Mark bonuses ended and plan the removal of their credit and the leverage restore (in a transaction)."""
    account = _lock(login)
    operations: list[BonusOperation] = []
    ended = set()
    for bonus in bonuses:
        bonus = Bonus.objects.select_for_update().get(pk=bonus.pk)
        if not bonus.is_open:
            continue
        before = bonus_state(bonus)
        bonus.status, bonus.cancel_reason, bonus.ended_at = status, reason, timezone.now()
        bonus.save(update_fields=["status", "cancel_reason", "ended_at"])
        ended.add(bonus.pk)
        action = AuditAction.BONUS_EXPIRED if status == BonusStatus.EXPIRED else AuditAction.BONUS_CANCELLED
        audit_write(actor=actor, action=action, bonus=bonus, before=before, after=bonus_state(bonus),
                    message=reason)  # fmt: skip
        movable = _movable_credit(bonus)
        if movable > 0:
            operations.append(_operation_create(bonus, OperationKind.CREDIT_OUT, amount=movable))
    last = next((b for b in bonuses if b.bonus_type == BonusType.DYNAMIC_LEVERAGE and b.pk in ended), None)
    if last is not None:
        if balance is None:
            info = gateway.accounts_info([login]).get(login)
            balance = info.balance if info else ZERO
        target = _leverage_plan(account, balance=balance, exclude=ended)
        op = _leverage_operation(account, last, target)
        if op:
            operations.append(op)
    return operations


def bonus_cancel(*, actor, bonus: Bonus, reason: str = CancelReason.MANUAL, gateway=None) -> Bonus:
    """Cancel one open bonus and take back its credit.

    The state is checked with the bonus row locked (after the account row, the order every
    writer takes them in), so a cancel racing a force-convert or the monitor's conversion of
    the same bonus either wins or answers 409: the credit is never both converted and removed.
    """
    gateway = gateway or default_gateway()
    operations_resume(bonus=bonus, actor=actor, gateway=gateway)
    with transaction.atomic():
        account_ensure(login=bonus.login)
        _lock(bonus.login)
        bonus = Bonus.objects.select_for_update().get(pk=bonus.pk)
        if not bonus.is_open:
            raise Conflict(f"The bonus is already {bonus.status}.", code="bonus_not_active")
        operations = _end_bonuses(login=bonus.login, bonuses=[bonus], status=BonusStatus.CANCELLED, reason=reason,
                                  actor=actor, gateway=gateway)  # fmt: skip
    _run(operations, actor=actor, gateway=gateway)
    bonus.refresh_from_db()
    return bonus


def bonuses_expire(*, now: datetime | None = None, gateway=None) -> int:
    """Cancel every open bonus past its expiry (the hourly job); returns how many expired."""
    gateway = gateway or default_gateway()
    now = now or timezone.now()
    count = 0
    for bonus in Bonus.objects.filter(status__in=OPEN_BONUS_STATUSES, expires_at__lte=now).order_by("id"):
        with transaction.atomic():
            operations = _end_bonuses(login=bonus.login, bonuses=[bonus], status=BonusStatus.EXPIRED,
                                      reason=CancelReason.EXPIRY, actor=SYSTEM, gateway=gateway)  # fmt: skip
        count += 1
        try:
            _run(operations, actor=SYSTEM, gateway=gateway)
        except gw.GatewayUnavailable:
            logger.warning("MT5 unavailable while expiring bonus %s; the monitor retries", bonus.pk)
    return count


def bonus_convert(*, actor, bonus: Bonus, amount: Decimal | None, gateway) -> list[BonusOperation]:
    """Plan one type C conversion step: a balance deal of ``amount`` and the same credit out (in a transaction).

    ``amount`` None converts all the credit still movable. With the bonus row locked, the step
    is capped at the credit no other removal or conversion has claimed yet; the step that
    leaves nothing to move marks the bonus converted.
    """
    bonus = Bonus.objects.select_for_update().get(pk=bonus.pk)
    if not bonus.is_open:
        return []
    movable = _movable_credit(bonus)
    amount = movable if amount is None else min(amount, movable)
    if amount <= 0:
        return []
    out = _operation_create(bonus, OperationKind.CREDIT_CONVERTED, amount=amount)
    into = _operation_create(bonus, OperationKind.BALANCE_IN, amount=amount)
    if movable - amount <= 0:
        before = bonus_state(bonus)
        bonus.status, bonus.ended_at = BonusStatus.CONVERTED, timezone.now()
        bonus.save(update_fields=["status", "ended_at"])
        audit_write(actor=actor, action=AuditAction.CONVERTED, bonus=bonus, before=before,
                    after=bonus_state(bonus), message="fully converted")  # fmt: skip
    return [out, into]


def bonus_force_convert(*, actor, bonus: Bonus, gateway=None) -> Bonus:
    gateway = gateway or default_gateway()
    if bonus.bonus_type != BonusType.CONVERTIBLE:
        raise ServiceError("Only type C bonuses convert.", code="not_convertible")
    operations_resume(bonus=bonus, actor=actor, gateway=gateway)
    with transaction.atomic():
        # Checked with the row locked: a cancel or a conversion that got there first wins, this one answers 409.
        bonus = Bonus.objects.select_for_update().get(pk=bonus.pk)
        if bonus.status != BonusStatus.ACTIVE:
            raise Conflict(f"The bonus is {bonus.status}, not active.", code="bonus_not_active")
        operations = bonus_convert(actor=actor, bonus=bonus, amount=None, gateway=gateway)
        if not operations:
            raise Conflict("The bonus has no credit left to convert.", code="nothing_to_convert")
    _run(operations, actor=actor, gateway=gateway)
    bonus.refresh_from_db()
    return bonus


def bonus_override_leverage(*, actor, bonus: Bonus, leverage: int, gateway=None) -> Bonus:
    gateway = gateway or default_gateway()
    if bonus.bonus_type != BonusType.DYNAMIC_LEVERAGE:
        raise ServiceError("Only type A bonuses adjust leverage.", code="not_dynamic_leverage")
    if not 1 <= leverage <= 1000:
        raise ServiceError("Leverage must be between 1 and 1000.", code="invalid_leverage")
    with transaction.atomic():
        bonus = Bonus.objects.select_for_update().get(pk=bonus.pk)
        if not bonus.is_open:
            raise Conflict(f"The bonus is {bonus.status}, not active.", code="bonus_not_active")
        op = _operation_create(bonus, OperationKind.LEVERAGE, leverage=leverage)
    _run([op], actor=actor, gateway=gateway)
    bonus.refresh_from_db()
    return bonus


# --- What the monitor detects -------------------------------------------------------------


def _record_event(login: int, deal: gw.Deal, kind: str, balance_after: Decimal | None = None) -> bool:
    """Remember a deal was acted on; False when it already was (another worker, a retried cycle)."""
    _, created = AccountEvent.objects.get_or_create(
        login=login, deal_ticket=deal.ticket,
        defaults={"kind": kind, "amount": deal.profit, "volume": deal.volume, "balance_after": balance_after},
    )  # fmt: skip
    return created


def account_deposit_detected(*, login: int, deal: gw.Deal, actor=MONITOR, gateway=None) -> list[Assignment]:
    gateway = gateway or default_gateway()
    with transaction.atomic():
        if not _record_event(login, deal, AccountEvent.DEPOSIT):
            return []
    return _deposit_campaigns(login=login, deal=deal, actor=actor, gateway=gateway)


def account_withdrawal_detected(
    *, login: int, deal: gw.Deal, balance_after: Decimal, actor=MONITOR, gateway=None
) -> list[BonusOperation] | None:
    """A withdrawal took a share of the balance: the same share of each open bonus's credit goes.

    Type C bonuses lose all their unconverted credit; a full withdrawal ends everything; type A
    leverage follows the new credit/balance ratio.
    """
    gateway = gateway or default_gateway()
    withdrawn = -deal.profit
    with transaction.atomic():
        account_ensure(login=login)
        account = _lock(login)
        if not _record_event(login, deal, AccountEvent.WITHDRAWAL, balance_after):
            return None
        fraction = formulas.withdrawal_fraction(withdrawn, balance_after + withdrawn)
        bonuses = list(Bonus.objects.select_for_update().filter(login=login, status=BonusStatus.ACTIVE).order_by("id"))
        ending = [b for b in bonuses if fraction >= 1 or b.bonus_type == BonusType.CONVERTIBLE]
        operations = _end_bonuses(login=login, bonuses=ending, status=BonusStatus.CANCELLED,
                                  reason=CancelReason.WITHDRAWAL, actor=actor, gateway=gateway,
                                  balance=balance_after)  # fmt: skip
        ended = {b.pk for b in ending}
        remaining_a: Bonus | None = None
        for bonus in bonuses:
            if bonus.pk in ended:
                continue
            removal = formulas.proportional_credit_removal(_movable_credit(bonus), fraction)
            if removal > 0:
                operations.append(_operation_create(bonus, OperationKind.CREDIT_OUT, amount=removal))
            if bonus.bonus_type == BonusType.DYNAMIC_LEVERAGE:
                remaining_a = bonus
        if remaining_a is not None and account.original_leverage:
            credit = sum((b.credit_outstanding - formulas.proportional_credit_removal(b.credit_outstanding, fraction)
                          for b in bonuses if b.bonus_type == BonusType.DYNAMIC_LEVERAGE and b.pk not in ended),
                         ZERO)  # fmt: skip
            target = formulas.type_a_leverage_for(account.original_leverage, credit, balance_after)
            op = _leverage_operation(account, remaining_a, target)
            if op:
                operations.append(op)
    _run(operations, actor=actor, gateway=gateway)
    return operations


def account_drawdown_protect(*, login: int, actor=MONITOR, gateway=None) -> bool:
    """Equity fell to the credit: close every position, cancel every bonus, take the credit back.

    Returns True when the account is settled (no open bonus credit left to remove). The
    monitor calls it again on the next cycles until MT5 has let the credit go.
    """
    gateway = gateway or default_gateway()
    open_bonuses = list(Bonus.objects.filter(login=login, status__in=OPEN_BONUS_STATUSES))
    if open_bonuses:
        results = gateway.close_all_positions(login)
        with transaction.atomic():
            account_ensure(login=login)
            operations = _end_bonuses(login=login, bonuses=open_bonuses, status=BonusStatus.CANCELLED,
                                      reason=CancelReason.DRAWDOWN, actor=actor, gateway=gateway)  # fmt: skip
            audit_write(actor=actor, action=AuditAction.DRAWDOWN, login=login,
                        after={"closed_positions": len(results), "bonuses": [b.pk for b in open_bonuses]})  # fmt: skip
        _run(operations, actor=actor, gateway=gateway)
    operations_resume(login=login, actor=actor, gateway=gateway)
    return not BonusOperation.objects.filter(login=login, status=OperationStatus.PENDING).exists()


_CLOSING = (gw.DealEntry.OUT, gw.DealEntry.INOUT, gw.DealEntry.OUT_BY)


def _counts(campaign: Campaign, bonus: Bonus, deal: gw.Deal) -> bool:
    if deal.type not in (gw.DealType.BUY, gw.DealType.SELL) or deal.entry not in _CLOSING:
        return False
    if deal.volume < campaign.min_lot:
        return False
    if campaign.only_after_bonus and deal.time < bonus.created_at:
        return False
    symbols = [s.upper() for s in campaign.counting_symbols or []]
    # Broker suffixes (EURUSD.pro, EURUSDm) count for the plain name.
    return not symbols or any(deal.symbol.upper().startswith(s) for s in symbols)


def account_trades_detected(*, login: int, deals: list[gw.Deal], actor=MONITOR, gateway=None) -> int:
    """Closed deals add lots to open type C bonuses; each lot converts its share of credit. Returns steps posted."""
    gateway = gateway or default_gateway()
    operations: list[BonusOperation] = []
    with transaction.atomic():
        bonuses = list(Bonus.objects.select_for_update().select_related("campaign")
                       .filter(login=login, status=BonusStatus.ACTIVE, bonus_type=BonusType.CONVERTIBLE))  # fmt: skip
        fresh = [d for d in deals if _record_event(login, d, AccountEvent.TRADE)]
        for bonus in bonuses:
            lots = sum((d.volume for d in fresh if _counts(bonus.campaign, bonus, d)), Decimal(0))
            if not lots:
                continue
            before = bonus_state(bonus)
            bonus.lots_traded += lots
            bonus.save(update_fields=["lots_traded"])
            audit_write(actor=actor, action=AuditAction.CONVERTED, bonus=bonus, before=before,
                        after=bonus_state(bonus), message=f"{lots} lots traded")  # fmt: skip
            pending = (BonusOperation.objects.filter(bonus=bonus, kind=OperationKind.BALANCE_IN,
                                                     status=OperationStatus.PENDING)
                       .aggregate(s=Sum("amount"))["s"] or ZERO)  # fmt: skip
            step = formulas.type_c_step(bonus.amount - bonus.removed_amount, bonus.converted_amount + pending,
                                        bonus.lots_traded, bonus.lots_required)  # fmt: skip
            if step > 0:
                operations += bonus_convert(actor=actor, bonus=bonus, amount=step, gateway=gateway)
    _run(operations, actor=actor, gateway=gateway)
    return len(operations) // 2
