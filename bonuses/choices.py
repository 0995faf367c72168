"""Choices of the bonuses app: bonus types, campaign lifecycle, triggers, statuses, audit actions."""

from __future__ import annotations

from django.db import models


class BonusType(models.TextChoices):
    DYNAMIC_LEVERAGE = "A", "A: dynamic leverage"
    FIXED_LEVERAGE = "B", "B: fixed leverage"
    CONVERTIBLE = "C", "C: convertible"


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    ENDED = "ended", "Ended"
    ARCHIVED = "archived", "Archived"


# Draft -> Active -> Paused -> Ended -> Archived, with the steps back that make sense
# (a paused campaign can be resumed; a draft can be archived without ever running).
CAMPAIGN_TRANSITIONS: dict[str, frozenset[str]] = {
    CampaignStatus.DRAFT: frozenset({CampaignStatus.ACTIVE, CampaignStatus.ARCHIVED}),
    CampaignStatus.ACTIVE: frozenset({CampaignStatus.PAUSED, CampaignStatus.ENDED}),
    CampaignStatus.PAUSED: frozenset({CampaignStatus.ACTIVE, CampaignStatus.ENDED}),
    CampaignStatus.ENDED: frozenset({CampaignStatus.ARCHIVED}),
    CampaignStatus.ARCHIVED: frozenset(),
}


class Trigger(models.TextChoices):
    AUTO_DEPOSIT = "auto_deposit", "Auto on deposit"
    PROMO_CODE = "promo_code", "Promo code"
    REGISTRATION = "registration", "On registration"
    AGENT_CODE = "agent_code", "Agent code"
    MANUAL = "manual", "Manual assignment"


CAMPAIGN_TRIGGERS = [t for t in Trigger if t != Trigger.MANUAL]


class BonusStatus(models.TextChoices):
    PENDING = "pending", "Credit being posted"
    ACTIVE = "active", "Active"
    CONVERTED = "converted", "Fully converted"
    CANCELLED = "cancelled", "Cancelled"
    EXPIRED = "expired", "Expired"
    FAILED = "failed", "Posting refused"


OPEN_BONUS_STATUSES = (BonusStatus.PENDING, BonusStatus.ACTIVE)


class CancelReason(models.TextChoices):
    """Why a bonus ended (the field is named for cancellations; a conversion is an end too)."""

    MANUAL = "manual", "Cancelled by staff"
    WITHDRAWAL = "withdrawal", "Withdrawal"
    DRAWDOWN = "drawdown", "Drawdown protection"
    EXPIRY = "expiry", "Expired"
    CONVERSION = "conversion", "Converted to balance"


class OperationKind(models.TextChoices):
    CREDIT_IN = "credit_in", "Credit posted"
    CREDIT_OUT = "credit_out", "Credit removed"
    CREDIT_CONVERTED = "credit_conv", "Credit converted (out)"
    BALANCE_IN = "balance_in", "Converted to balance"
    LEVERAGE = "leverage", "Leverage set"
    # After a drawdown left the balance negative: a CORRECTION deal back to zero (BONUS_NEGATIVE_BALANCE_POLICY).
    BALANCE_CORRECTION = "correction", "Negative balance corrected"


class OperationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DONE = "done", "Done"
    REFUSED = "refused", "Refused by MT5"
    # Retried BONUS_OPERATION_MAX_ATTEMPTS times without success: a person retries it or marks it resolved.
    FAILED = "failed", "Failed: needs a person"
    RESOLVED = "resolved", "Resolved by staff"


class MonitorStatus(models.TextChoices):
    ACTIVE = "active", "Monitored"
    PAUSED = "paused", "Paused after errors"


class AuditAction(models.TextChoices):
    CAMPAIGN_CREATED = "campaign_created", "Campaign created"
    CAMPAIGN_UPDATED = "campaign_updated", "Campaign updated"
    CAMPAIGN_STATUS = "campaign_status", "Campaign status changed"
    CAMPAIGN_DUPLICATED = "campaign_duplicated", "Campaign duplicated"
    BONUS_ASSIGNED = "bonus_assigned", "Bonus assigned"
    BONUS_OVERRIDE = "bonus_override", "Eligibility overridden"
    CREDIT_POSTED = "credit_posted", "Credit posted"
    CREDIT_REMOVED = "credit_removed", "Credit removed"
    CONVERTED = "converted", "Credit converted to balance"
    LEVERAGE_CHANGED = "leverage_changed", "Leverage changed"
    BONUS_CANCELLED = "bonus_cancelled", "Bonus cancelled"
    BONUS_EXPIRED = "bonus_expired", "Bonus expired"
    DRAWDOWN = "drawdown", "Drawdown protection"
    BALANCE_CORRECTED = "balance_corrected", "Negative balance corrected"
    OPERATION_FAILED = "operation_failed", "MT5 posting failed"
    OPERATION_RETRIED = "operation_retried", "MT5 posting retried by staff"
    OPERATION_RESOLVED = "operation_resolved", "MT5 posting marked resolved"
    ACCOUNT_PAUSED = "account_paused", "Monitoring paused"
    ACCOUNT_RESUMED = "account_resumed", "Monitoring resumed"
    ACCOUNT_REGISTERED = "account_registered", "Account registered"
    MT5_SCANNED = "mt5_scanned", "MT5 scanned"
    GRANT_REFUSED = "grant_refused", "Grant refused by a budget cap"
    APPROVAL_REQUESTED = "approval_requested", "Grant waiting for approval"
    APPROVAL_APPROVED = "approval_approved", "Grant approved"
    APPROVAL_REJECTED = "approval_rejected", "Grant rejected"
    ABUSE_FLAGGED = "abuse_flagged", "Abuse signal raised"
    ABUSE_REVIEWED = "abuse_reviewed", "Abuse signal reviewed"
    MISMATCH_REVIEWED = "mismatch_reviewed", "Reconciliation mismatch reviewed"


class ApprovalStatus(models.TextChoices):
    PENDING = "pending", "Waiting for approval"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    FAILED = "failed", "Approved, but the grant was refused"


class AbuseKind(models.TextChoices):
    EMAIL_DOMAIN = "email_domain", "Email domain"
    LEAD_SOURCE = "lead_source", "Lead source"
    IP = "ip", "IP address"


class EmailEvent(models.TextChoices):
    GRANTED = "granted", "Bonus granted"
    CONVERTED = "converted", "Bonus converted"
    CANCELLED = "cancelled", "Bonus cancelled"
    DRAWDOWN = "drawdown", "Drawdown close-out"
