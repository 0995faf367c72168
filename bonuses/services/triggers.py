"""Triggers: deposits (confirmed from MT5 history), registrations and promo codes fire running campaigns."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from config.errors import Conflict, ServiceError
from mt5bridge import gateway as gw

from ..choices import (
    CampaignStatus,
    Trigger,
)
from ..eligibility import Failure
from ..models import Campaign
from .assignment import Assignment, bonus_assign
from .audit import SYSTEM
from .monitored import broker_user, default_gateway


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
        raise ServiceError(f"Login {login} does not exist on MT5.", code="account_not_found", status_code=404) from None
    matches = [
        d for d in deals if d.type == gw.DealType.BALANCE and d.profit == amount and not d.comment.startswith("BONUS ")
    ]
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
    return deposit_campaigns(login=login, deal=deal, actor=actor, gateway=gateway)


def deposit_campaigns(*, login: int, deal: gw.Deal, actor, gateway, user=None) -> list[Assignment]:
    user = user or broker_user(gateway, login)
    if user is None:
        raise ServiceError(f"Login {login} does not exist on MT5.", code="account_not_found", status_code=404)
    results: list[Assignment] = []
    for campaign in _running_campaigns().order_by("id"):
        fires = campaign.has_trigger(Trigger.AUTO_DEPOSIT) or (
            campaign.has_trigger(Trigger.AGENT_CODE) and campaign.agent_codes
        )
        if not fires or not _agent_ok(campaign, user.lead_source):
            continue
        if deal.time < campaign.starts_at:
            continue  # deposited before the campaign started: not a deposit it rewards
        trigger = Trigger.AGENT_CODE if campaign.agent_codes else Trigger.AUTO_DEPOSIT
        _try_assign(
            results,
            campaign,
            login=login,
            trigger=trigger,
            actor=actor,
            deposit=deal.profit,
            deposit_deal=deal.ticket,
            idempotency_key=f"deposit:{login}:{deal.ticket}:{campaign.pk}",
            gateway=gateway,
            user=user,
        )
    return results


def trigger_registration(*, login: int, actor=SYSTEM, gateway=None, user=None) -> list[Assignment]:
    gateway = gateway or default_gateway()
    user = user or broker_user(gateway, login)
    if user is None:
        raise ServiceError(f"Login {login} does not exist on MT5.", code="account_not_found", status_code=404)
    results: list[Assignment] = []
    for campaign in _running_campaigns().order_by("id"):
        if not campaign.has_trigger(Trigger.REGISTRATION) or not _agent_ok(campaign, user.lead_source):
            continue
        if user.registration and user.registration < campaign.starts_at:
            continue  # registered before the campaign: not a registration it rewards
        _try_assign(
            results,
            campaign,
            login=login,
            trigger=Trigger.REGISTRATION,
            actor=actor,
            idempotency_key=f"registration:{login}:{campaign.pk}",
            gateway=gateway,
            user=user,
        )
    return results


def trigger_promo_code(
    *, login: int, code: str, deposit: Decimal | None = None, actor=SYSTEM, gateway=None
) -> list[Assignment]:
    gateway = gateway or default_gateway()
    wanted = code.strip().lower()
    campaigns = [
        c
        for c in _running_campaigns().order_by("id")
        if c.has_trigger(Trigger.PROMO_CODE) and wanted in {p.strip().lower() for p in c.promo_codes or []}
    ]
    if not campaigns:
        raise ServiceError("Unknown or expired promo code.", code="unknown_promo_code", status_code=404)
    user = broker_user(gateway, login)
    if user is None:
        raise ServiceError(f"Login {login} does not exist on MT5.", code="account_not_found", status_code=404)
    results: list[Assignment] = []
    for campaign in campaigns:
        if not _agent_ok(campaign, user.lead_source):
            continue
        _try_assign(
            results,
            campaign,
            login=login,
            trigger=Trigger.PROMO_CODE,
            actor=actor,
            deposit=deposit,
            promo_code=code.strip(),
            idempotency_key=f"promo:{login}:{campaign.pk}:{wanted}",
            gateway=gateway,
            user=user,
        )
    return results
