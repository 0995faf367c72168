"""Plans as data, each user's plan assignment (set by staff or mirrored from a subscription), and the audit of changes.

The tables keep the names they were created with (``billing_*``): the models moved here from billing
without touching data.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from accounts.models import User

FEATURE_LABELS = {
    "analytics_advanced": "Advanced analytics",
    "copy_trading": "Copy trading",
    "web_terminal": "Remote control and web terminal",
    "templates": "Order templates",
    "rules": "Rules engine",
    "systeme_sync": "Systeme.io sync",
    "api_access": "API access",
}
LIMIT_LABELS = {
    "accounts": "MT5 accounts",
    "history_days": "days of history",
    "copy_links": "copy links",
    "slaves_per_master": "slaves per master",
}
FEATURES = tuple(FEATURE_LABELS)  # each is a boolean field of Plan
LIMITS = tuple(LIMIT_LABELS)  # each is a ``limit_<name>`` field of Plan (blank: unlimited)


class SubscriptionStatus(models.TextChoices):
    """A subscription's statuses, as the payment provider names them (plus "none": never subscribed)."""

    NONE = "", "No subscription"
    TRIALING = "trialing", "Trialing"
    ACTIVE = "active", "Active"
    PAST_DUE = "past_due", "Past due"
    CANCELED = "canceled", "Canceled"
    INCOMPLETE = "incomplete", "Incomplete"
    INCOMPLETE_EXPIRED = "incomplete_expired", "Incomplete (expired)"
    UNPAID = "unpaid", "Unpaid"
    PAUSED = "paused", "Paused"


class Plan(models.Model):
    """A plan: its prices on Stripe, its limits (blank = unlimited) and the features it unlocks."""

    slug = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=64)
    rank = models.PositiveSmallIntegerField(
        unique=True,
        help_text="Order from cheapest to richest; the lowest rank that unlocks a feature is the one named.",
    )
    description = models.CharField(max_length=255, blank=True)
    is_public = models.BooleanField(default=True, help_text="Shown on the pricing page.")
    currency = models.CharField(max_length=3, default="usd")
    price_monthly = models.DecimalField(
        max_digits=10, decimal_places=2, default=0, help_text="Shown on the pricing page."
    )
    price_yearly = models.DecimalField(
        max_digits=10, decimal_places=2, default=0, help_text="Shown on the pricing page."
    )
    stripe_price_monthly = models.CharField("Stripe price id (monthly)", max_length=255, blank=True)
    stripe_price_yearly = models.CharField("Stripe price id (yearly)", max_length=255, blank=True)
    trial_days = models.PositiveSmallIntegerField(default=0, help_text="Free trial on the first subscription.")

    limit_accounts = models.PositiveIntegerField("MT5 accounts", null=True, blank=True)
    limit_history_days = models.PositiveIntegerField("history days", null=True, blank=True)
    limit_copy_links = models.PositiveIntegerField("copy links", null=True, blank=True)
    limit_slaves_per_master = models.PositiveIntegerField("slaves per master", null=True, blank=True)

    analytics_advanced = models.BooleanField("advanced analytics", default=False)
    copy_trading = models.BooleanField(default=False)
    web_terminal = models.BooleanField("remote control / web terminal", default=False)
    templates = models.BooleanField("order templates", default=False)
    rules = models.BooleanField("rules engine", default=False)
    systeme_sync = models.BooleanField("Systeme.io sync", default=False)
    api_access = models.BooleanField("API access", default=False)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "billing_plan"
        ordering = ["rank"]

    def __str__(self) -> str:
        return self.name

    def limit(self, name: str) -> int | None:
        return getattr(self, f"limit_{name}")

    def stripe_price(self, interval: str) -> str:
        return self.stripe_price_yearly if interval == "year" else self.stripe_price_monthly


class PlanAssignment(models.Model):
    """Which plan a user is on: a staff choice, or the state of their Stripe subscription.

    The subscription fields mirror dj-stripe's Subscription (re-read from Stripe on every
    webhook), so the effective plan never depends on the order events arrived in.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="plan_assignment")
    manual_plan = models.ForeignKey(
        Plan,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Set by staff: overrides the default plan and any subscription.",
    )
    manual_until = models.DateTimeField(null=True, blank=True, help_text="The staff choice ends then (blank: no end).")
    note = models.CharField(max_length=255, blank=True)

    subscription_id = models.CharField(max_length=255, blank=True, db_index=True)
    subscription_status = models.CharField(max_length=32, choices=SubscriptionStatus.choices, blank=True, default="")
    subscribed_plan = models.ForeignKey(Plan, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    interval = models.CharField(max_length=8, blank=True)
    trial_end = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    past_due_since = models.DateTimeField(null=True, blank=True)
    trial_used = models.BooleanField(default=False)

    effective_plan = models.ForeignKey(
        Plan,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The plan the gates applied at the last change (kept to detect downgrades).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "billing_planassignment"
        verbose_name = "plan assignment"

    def __str__(self) -> str:
        return f"{self.user} → {self.effective_plan or '?'}"


class PlanChange(models.Model):
    """Audit: one row each time a user's effective plan changes, with why."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="plan_changes")
    from_plan = models.ForeignKey(Plan, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    to_plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=64)
    detail = models.CharField(max_length=255, blank=True)
    stripe_event_id = models.CharField(max_length=255, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    accounts_paused = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "billing_planchange"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"], name="billing_pla_user_id_39ea09_idx")]

    def __str__(self) -> str:
        return f"{self.user}: {self.from_plan} → {self.to_plan} ({self.reason})"


class BillingPause(models.Model):
    """A trading account paused because the owner's plan allows fewer; resumed on upgrade."""

    account = models.OneToOneField("accounts.TradingAccount", on_delete=models.CASCADE, related_name="billing_pause")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")
    paused_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "billing_billingpause"

    def __str__(self) -> str:
        return f"{self.account_id} paused on {self.plan}"


class UserUsage(User):
    """Every user with their plan and usage against its limits (the admin's "usage per user" list)."""

    class Meta:
        proxy = True
        verbose_name = "usage per user"
        verbose_name_plural = "usage per user"
