"""Choices shared by the integrations models, API and admin."""

from django.db import models


class RuleCondition(models.TextChoices):
    PROFIT_ABOVE = "profit_above", "Profit this month above X (account currency)"
    GAIN_ABOVE_PERCENT = "gain_above_percent", "Gain this month above X %"
    LOSS_BEYOND_PERCENT = "loss_beyond_percent", "Loss this month beyond X %"
    DRAWDOWN_BEYOND_PERCENT = "drawdown_beyond_percent", "Floating drawdown beyond X %"
    TRADES_PER_DAY_ABOVE = "trades_per_day_above", "More than N trades today"
    INACTIVE_DAYS = "inactive_days", "No trade for D days"
    BONUS_GRANTED = "bonus_granted", "Bonus or credit granted in the last D days"
    EQUITY_BELOW = "equity_below", "Equity below X"


class RuleAction(models.TextChoices):
    ADD_TAG = "add_tag", "Add a tag (starts the Systeme.io workflow)"
    REMOVE_TAG = "remove_tag", "Remove a tag"


class FiringResult(models.TextChoices):
    OK = "ok", "Done"
    FAILED = "failed", "Failed"


class WebhookEvent(models.TextChoices):
    ACCOUNT_SYNCED = "account.synced", "Account synced"
    COPY_COMMAND_FAILED = "copy.command_failed", "Copy command failed"
    RULE_HIT = "rule.hit", "Automation rule hit"
    BONUS_GRANTED = "bonus.granted", "Bonus granted"
    BONUS_CANCELLED = "bonus.cancelled", "Bonus cancelled"
    BONUS_CONVERTED = "bonus.converted", "Bonus converted to balance"
    BONUS_OPERATION_FAILED = "bonus.operation_failed", "Bonus MT5 posting failed (waits for a person)"
    PREFLIGHT_DONE = "preflight.done", "Pre-flight done"
    CONTACT_SYNCED = "systeme.contact_synced", "Systeme.io contact synced"
    PING = "ping", "Test delivery"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Waiting / retrying"
    SUCCEEDED = "succeeded", "Delivered"
    FAILED = "failed", "Gave up"


class InboundStatus(models.TextChoices):
    PROCESSED = "processed", "Processed"
    IGNORED = "ignored", "Stored, nothing to do"
    FAILED = "failed", "Failed"


class PreflightStatus(models.TextChoices):
    OK = "ok", "Complete"
    PARTIAL = "partial", "Done with warnings"
    FAILED = "failed", "Failed"


class LegalBasis(models.TextChoices):
    """Why traders' details may go to Systeme.io (docs/privacy.md)."""

    CONSENT = "consent", "Consent: only traders who opted in"
    CONTRACT = "contract", "Contract: every trader (the terms of business cover it)"
