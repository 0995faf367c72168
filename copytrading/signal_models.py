"""Signals: a master account published for others to follow, its followers, the fee of each period, the audit.

Imported by ``copytrading.models`` so the app registry finds them; the rules are in ``signal_services`` and the
fee maths in ``signal_fees`` (docs/signals.md).
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

MONEY = {"max_digits": 20, "decimal_places": 2}
PERCENT = {"max_digits": 5, "decimal_places": 2}
ZERO = Decimal("0")


class TradingSignal(models.Model):
    """A trader's master account offered to followers: the terms; the figures come from the synced history."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="signals_published")
    master = models.OneToOneField("accounts.TradingAccount", on_delete=models.CASCADE, related_name="signal")
    name = models.CharField(max_length=80)
    description = models.TextField(max_length=4000, blank=True)
    currency = models.CharField(max_length=8, help_text="The master account's currency: the terms are in it.")
    min_deposit = models.DecimalField(**MONEY, default=ZERO, validators=[MinValueValidator(ZERO)])
    monthly_fee = models.DecimalField(**MONEY, default=ZERO, validators=[MinValueValidator(ZERO)])
    performance_fee_pct = models.DecimalField(
        **PERCENT,
        default=ZERO,
        validators=[MinValueValidator(ZERO), MaxValueValidator(Decimal("100"))],
        help_text="Percent of the follower's copied profit above its high-water mark, per period.",
    )
    listed = models.BooleanField(default=True, help_text="Shown in the list and open to new followers.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name


class SubscriptionStatus(models.TextChoices):
    ACTIVE = "active", "Following"
    STOPPED = "stopped", "Stopped"


class StopMode(models.TextChoices):
    CLOSE = "close", "Open copies closed"
    KEEP = "keep", "Open copies kept"


class SignalSubscription(models.Model):
    """One follower account copying a signal, with the fee terms as they were when it subscribed."""

    signal = models.ForeignKey(TradingSignal, on_delete=models.CASCADE, related_name="subscriptions")
    follower = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="signal_follows")
    account = models.ForeignKey("accounts.TradingAccount", on_delete=models.CASCADE, related_name="signal_follows")
    link = models.ForeignKey(
        "copytrading.CopyLink", on_delete=models.SET_NULL, null=True, blank=True, related_name="signal_subscriptions"
    )
    status = models.CharField(max_length=8, choices=SubscriptionStatus.choices, default=SubscriptionStatus.ACTIVE)
    currency = models.CharField(max_length=8)
    monthly_fee = models.DecimalField(**MONEY, default=ZERO)
    performance_fee_pct = models.DecimalField(**PERCENT, default=ZERO)
    # The copied P&L counted so far (periods settled) and the highest value a performance fee was taken at.
    cumulative_pnl = models.DecimalField(**MONEY, default=ZERO)
    high_water_mark = models.DecimalField(**MONEY, default=ZERO)
    granted_view = models.BooleanField(default=False, help_text="The follower got 'view' on the master with it.")
    started_at = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True, blank=True)
    stop_mode = models.CharField(max_length=8, choices=StopMode.choices, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["signal", "account"],
                condition=models.Q(status="active"),
                name="uniq_active_signal_follow",
            )
        ]

    def __str__(self) -> str:
        return f"{self.account_id} follows {self.signal_id} ({self.status})"


class FeeStatus(models.TextChoices):
    NOTHING = "nothing", "Nothing to charge"
    DUE = "due", "Due"
    CHARGED = "charged", "Charged"
    FAILED = "failed", "Charge failed"


class SignalFee(models.Model):
    """The fee of one subscription for one calendar month, with every figure of its calculation."""

    subscription = models.ForeignKey(SignalSubscription, on_delete=models.CASCADE, related_name="fees")
    period = models.DateField(help_text="The month's first day (UTC).")
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    currency = models.CharField(max_length=8)
    pnl = models.DecimalField(**MONEY, help_text="Copied P&L in the period.")
    cumulative_before = models.DecimalField(**MONEY)
    cumulative_after = models.DecimalField(**MONEY)
    hwm_before = models.DecimalField(**MONEY)
    hwm_after = models.DecimalField(**MONEY)
    chargeable_gain = models.DecimalField(**MONEY)
    performance_fee_pct = models.DecimalField(**PERCENT)
    performance_fee = models.DecimalField(**MONEY)
    monthly_fee = models.DecimalField(**MONEY)
    total = models.DecimalField(**MONEY)
    status = models.CharField(max_length=8, choices=FeeStatus.choices, default=FeeStatus.DUE)
    charge_reference = models.CharField(max_length=255, blank=True, help_text="Stripe invoice id, or local:<id>.")
    charge_error = models.CharField(max_length=255, blank=True)
    charged_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-period", "-id"]
        constraints = [models.UniqueConstraint(fields=["subscription", "period"], name="uniq_signal_fee_period")]

    def __str__(self) -> str:
        return f"{self.subscription_id} {self.period:%Y-%m}: {self.total} {self.currency}"


class SignalAudit(models.Model):
    """Insert-only: who published, subscribed, stopped, and every fee computed and charged."""

    signal = models.ForeignKey(TradingSignal, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    subscription = models.ForeignKey(
        SignalSubscription, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    action = models.CharField(max_length=24)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} {self.signal_id or ''}"
