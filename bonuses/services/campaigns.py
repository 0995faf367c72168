"""Campaign write paths: create, edit, lifecycle steps (activate, pause, end, archive), duplicate."""

from __future__ import annotations

from django.db import transaction

from config.errors import Conflict, ServiceError
from mt5bridge.groups import mask_problems

from ..choices import (
    CAMPAIGN_TRANSITIONS,
    CAMPAIGN_TRIGGERS,
    AuditAction,
    BonusType,
    CampaignStatus,
)
from ..models import Campaign
from .audit import _json, audit_write

CAMPAIGN_FIELDS = (
    "name",
    "description",
    "bonus_type",
    "bonus_percent",
    "max_bonus_amount",
    "fixed_amount",
    "min_deposit",
    "max_deposit",
    "starts_at",
    "ends_at",
    "expiry_days",
    "target_groups",
    "target_countries",
    "agent_codes",
    "promo_codes",
    "triggers",
    "one_per_account",
    "max_concurrent",
    "lots_per_unit",
    "unit_amount",
    "counting_symbols",
    "min_lot",
    "only_after_bonus",
    "budget_total",
    "client_credit_cap",
)


def campaign_state(campaign: Campaign) -> dict:
    return _json({name: getattr(campaign, name) for name in ("status", *CAMPAIGN_FIELDS)})


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
    problems = mask_problems(values.get("target_groups") or [])
    if problems:
        raise ServiceError(f"Target groups: {' '.join(problems)}", code="invalid_group_mask")
    unknown = set(values.get("triggers") or []) - set(CAMPAIGN_TRIGGERS)
    if unknown:
        raise ServiceError(f"Unknown triggers: {', '.join(sorted(unknown))}.", code="invalid_triggers")
    for cap in ("budget_total", "client_credit_cap"):
        if values.get(cap) is not None and values[cap] <= 0:
            raise ServiceError("A budget cap must be positive (empty: no cap).", code="invalid_budget")
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
    audit_write(
        actor=actor,
        action=AuditAction.CAMPAIGN_UPDATED,
        campaign=campaign,
        before=before,
        after=campaign_state(campaign),
    )
    return campaign


@transaction.atomic
def campaign_set_status(*, actor, campaign: Campaign, status: str) -> Campaign:
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if status not in CampaignStatus.values:
        raise ServiceError(f"Unknown status {status!r}.", code="invalid_status")
    if status not in CAMPAIGN_TRANSITIONS[campaign.status]:
        allowed = ", ".join(sorted(CAMPAIGN_TRANSITIONS[campaign.status])) or "none"
        raise Conflict(
            f"A {campaign.status} campaign cannot become {status} (allowed: {allowed}).", code="invalid_transition"
        )
    before = {"status": campaign.status}
    campaign.status = status
    campaign.save(update_fields=["status", "updated_at"])
    audit_write(
        actor=actor, action=AuditAction.CAMPAIGN_STATUS, campaign=campaign, before=before, after={"status": status}
    )
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
    audit_write(
        actor=actor,
        action=AuditAction.CAMPAIGN_DUPLICATED,
        campaign=copy,
        before={"source": campaign.pk},
        after=campaign_state(copy),
    )
    return copy
