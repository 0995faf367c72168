"""Integration state: Systeme.io settings, contact sync, automation rules, webhooks in and out, pre-flight results."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from .choices import (
    DeliveryStatus,
    FiringResult,
    InboundStatus,
    LegalBasis,
    PreflightStatus,
    RuleAction,
    RuleCondition,
)


class SystemeSettings(models.Model):
    """The one Systeme.io connection (a single row): API key, who is synced, connection health."""

    api_key_encrypted = models.BinaryField(blank=True, default=b"", editable=False)
    enabled = models.BooleanField(default=True, help_text="Off: no contact sync and no rule actions.")
    sync_all_traders = models.BooleanField(
        default=True, help_text="Sync every trader; off: only users staff added to the contact list."
    )
    legal_basis = models.CharField(
        "legal basis for marketing sync",
        max_length=8,
        choices=LegalBasis.choices,
        default=LegalBasis.CONSENT,
        help_text="Consent: only traders who opted in (Settings → Privacy) are pushed. Contract: every trader the "
        "sync selects, when your terms of business cover the sync (docs/privacy.md).",
    )
    locale = models.CharField(max_length=8, default="en", help_text="Locale of contacts created by the sync.")
    connection_ok = models.BooleanField(null=True, blank=True)
    connection_checked_at = models.DateTimeField(null=True, blank=True)
    connection_error = models.CharField(max_length=500, blank=True)
    last_sync_at = models.DateTimeField(null=True, blank=True)
    last_sync_ok = models.BooleanField(null=True, blank=True)
    last_sync_summary = models.JSONField(default=dict, blank=True)
    missing_fields = models.JSONField(default=list, blank=True, help_text="Custom fields Systeme.io does not have.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "Systeme.io connection"
        verbose_name_plural = "Systeme.io connection"

    def __str__(self) -> str:
        return "Systeme.io connection"

    @classmethod
    def load(cls) -> SystemeSettings:
        row, _ = cls.objects.get_or_create(pk=1)
        return row

    @property
    def has_stored_key(self) -> bool:
        return bool(self.api_key_encrypted)


class ContactSync(models.Model):
    """One user as a Systeme.io contact: its id there, the figures last pushed, the tags we set."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="systeme_contact")
    included = models.BooleanField(default=True, help_text="Staff-chosen: sync this user.")
    contact_id = models.CharField(max_length=64, blank=True, db_index=True)
    email = models.EmailField(blank=True)
    fields = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=list, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email or str(self.user_id)


class AutomationRule(models.Model):
    """A condition over an account's figures and a tag action; fires once per crossing."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=64, unique=True)
    enabled = models.BooleanField(default=True)
    condition = models.CharField(max_length=32, choices=RuleCondition.choices)
    threshold = models.DecimalField(max_digits=20, decimal_places=2, help_text="X, Y %, N trades or D days.")
    action = models.CharField(max_length=16, choices=RuleAction.choices, default=RuleAction.ADD_TAG)
    tag = models.CharField(max_length=100, help_text="Systeme.io tag; a workflow triggered by it does the rest.")
    description = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class RuleState(models.Model):
    """Whether a rule's condition held for a contact at the last evaluation (so it fires on crossings only)."""

    rule = models.ForeignKey(AutomationRule, on_delete=models.CASCADE, related_name="states")
    contact = models.ForeignKey(ContactSync, on_delete=models.CASCADE, related_name="rule_states")
    active = models.BooleanField(default=False)
    changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rule", "contact"], name="uniq_rule_state")]

    def __str__(self) -> str:
        return f"{self.rule_id}/{self.contact_id}: {'active' if self.active else 'armed'}"


class RuleFiring(models.Model):
    """One firing of a rule for a contact, with what it did and how that went."""

    rule = models.ForeignKey(AutomationRule, on_delete=models.CASCADE, related_name="firings")
    contact = models.ForeignKey(ContactSync, on_delete=models.CASCADE, related_name="firings")
    account = models.ForeignKey("accounts.TradingAccount", null=True, blank=True, on_delete=models.SET_NULL)
    fired_at = models.DateTimeField(default=timezone.now)
    figures = models.JSONField(default=dict)
    action = models.CharField(max_length=16, choices=RuleAction.choices)
    tag = models.CharField(max_length=100)
    result = models.CharField(max_length=16, choices=FiringResult.choices)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-fired_at"]
        indexes = [models.Index(fields=["fired_at"])]

    def __str__(self) -> str:
        return f"{self.rule} → {self.contact} ({self.result})"


class InboundWebhookEvent(models.Model):
    """A webhook Systeme.io sent us, stored once (replays are recognised by their key)."""

    key = models.CharField(max_length=128, unique=True, help_text="Delivery id header, else SHA-256 of the body.")
    event_type = models.CharField(max_length=64, blank=True)
    payload = models.JSONField(default=dict)
    received_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=16, choices=InboundStatus.choices)
    note = models.CharField(max_length=500, blank=True)
    replays = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-received_at"]
        indexes = [models.Index(fields=["received_at"])]

    def __str__(self) -> str:
        return f"{self.event_type or 'event'} @ {self.received_at:%Y-%m-%d %H:%M:%S}"


class WebhookEndpoint(models.Model):
    """An outbound webhook target staff registered: URL, signing secret, the events it wants."""

    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    secret_encrypted = models.BinaryField(editable=False)
    events = models.JSONField(default=list, help_text='Event names, or ["*"] for every event.')
    is_active = models.BooleanField(default=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["url"]

    def __str__(self) -> str:
        return self.url

    def wants(self, event: str) -> bool:
        return self.is_active and ("*" in self.events or event in self.events)


class WebhookDelivery(models.Model):
    """One event for one endpoint: signed, retried with backoff, every attempt's status code kept."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=64)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    log = models.JSONField(default=list, blank=True, help_text="One entry per attempt: at, status code, error.")
    next_attempt_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "next_attempt_at"]), models.Index(fields=["created_at"])]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event} → {self.endpoint_id} ({self.status})"


class PreflightResult(models.Model):
    """One symbol pre-flight of an account: the seed's JSON payload, the chart template and start-up .ini."""

    account = models.ForeignKey("accounts.TradingAccount", on_delete=models.CASCADE, related_name="preflights")
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=16, choices=PreflightStatus.choices)
    payload = models.JSONField(default=dict)
    chart_symbol = models.CharField(max_length=64, blank=True)
    chart_period = models.CharField(max_length=8, blank=True)
    template = models.TextField(blank=True)
    startup_ini = models.TextField(blank=True, help_text="Never holds the password.")
    warnings = models.JSONField(default=list, blank=True)
    error = models.CharField(max_length=500, blank=True)
    symbols_found = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]
        get_latest_by = "created_at"
        indexes = [models.Index(fields=["account", "created_at"])]

    def __str__(self) -> str:
        return f"pre-flight {self.account_id} @ {self.created_at:%Y-%m-%d %H:%M}"


# `manage.py rotate_secrets` re-encrypts these columns under the newest key.
ENCRYPTED_FIELDS = [(SystemeSettings, "api_key_encrypted"), (WebhookEndpoint, "secret_encrypted")]
