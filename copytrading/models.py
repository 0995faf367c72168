"""Copy links, copied positions, the skip log, per-account copy state, rules, rule hits and order templates."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from .choices import AccountMode, CopyKind, CopyStatus, NoStopLoss, RuleAction, RuleKind, Side, SizingMode

VOLUME = {"max_digits": 14, "decimal_places": 4}
PRICE = {"max_digits": 20, "decimal_places": 8}
MONEY = {"max_digits": 20, "decimal_places": 2}
RATIO = {"max_digits": 12, "decimal_places": 4}


# How a copy command names its link in the command queue, whose origins are opaque to it (Command.origin_ref).
LINK_REF_PREFIX = "copy-link:"


def link_origin_ref(link_id: int) -> str:
    return f"{LINK_REF_PREFIX}{link_id}"


def link_id_of(origin_ref: str | None) -> int | None:
    """The copy link a command's ``origin_ref`` names, or None when it names none."""
    if not origin_ref or not origin_ref.startswith(LINK_REF_PREFIX):
        return None
    tail = origin_ref[len(LINK_REF_PREFIX) :]
    return int(tail) if tail.isdigit() else None


class CopyLink(models.Model):
    """A master account's trades copied to one slave account, with sizing, mapping and filters."""

    master = models.ForeignKey("accounts.TradingAccount", on_delete=models.CASCADE, related_name="copy_links_out")
    slave = models.ForeignKey("accounts.TradingAccount", on_delete=models.CASCADE, related_name="copy_links_in")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    active = models.BooleanField(default=True)
    priority = models.PositiveSmallIntegerField(
        default=100, help_text="When several masters feed one slave, the lower number wins a symbol."
    )

    sizing_mode = models.CharField(max_length=20, choices=SizingMode.choices, default=SizingMode.MULTIPLIER)
    multiplier = models.DecimalField(
        **RATIO,
        default=Decimal("1"),
        validators=[MinValueValidator(Decimal("0.0001"))],
        help_text="Lot multiplier; also applied on top of the ratio modes.",
    )
    fixed_volume = models.DecimalField(**VOLUME, default=Decimal("0.01"), validators=[MinValueValidator(Decimal("0"))])
    risk_percent = models.DecimalField(
        max_digits=6,
        decimal_places=3,
        default=Decimal("1"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
    )
    no_sl = models.CharField(max_length=8, choices=NoStopLoss.choices, default=NoStopLoss.SKIP)
    default_sl_points = models.PositiveIntegerField(
        default=0, help_text="SL distance assumed for risk sizing when the master has none."
    )
    contract_size_aware = models.BooleanField(default=True, help_text="Keep the notional equal across brokers.")
    min_volume = models.DecimalField(**VOLUME, null=True, blank=True)
    max_volume = models.DecimalField(**VOLUME, null=True, blank=True)

    symbol_overrides = models.JSONField(
        default=dict, blank=True, help_text='{"master symbol": "slave symbol" or "" to block}'
    )
    symbols_include = models.JSONField(default=list, blank=True)
    symbols_exclude = models.JSONField(default=list, blank=True)
    magics_include = models.JSONField(default=list, blank=True)
    magics_exclude = models.JSONField(default=list, blank=True)

    reverse = models.BooleanField(default=False, help_text="Trade the opposite side; SL and TP swap.")
    copy_sltp = models.BooleanField(default=True)
    copy_pending = models.BooleanField(default=False)
    close_only = models.BooleanField(default=False, help_text="Copy closes and reductions only, no new trades.")
    max_delay_seconds = models.PositiveIntegerField(default=30)
    max_slippage_points = models.PositiveIntegerField(default=20)

    # The follower's risk guards (docs/copy-trading.md "Risk guards").
    skip_below_min_volume = models.BooleanField(
        default=False,
        help_text="Skip a copy sized below the slave symbol's minimum volume instead of raising it to the minimum.",
    )
    equity_stop = models.DecimalField(
        **MONEY,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text="Stop opening copies when the slave's equity falls to or below this amount.",
    )
    equity_stop_percent = models.DecimalField(
        max_digits=6,
        decimal_places=3,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.001")), MaxValueValidator(Decimal("100"))],
        help_text="Or: stop at this % of the slave's equity when the link started (70: after a 30% fall).",
    )
    equity_stop_close = models.BooleanField(
        default=False, help_text="When the equity stop fires, also close the copies the link holds."
    )
    start_equity = models.DecimalField(
        **MONEY, null=True, blank=True, help_text="The slave's equity when the link started or was last resumed."
    )
    # Set when the equity stop fired: the link opens no copy until resumed (closes still follow the master).
    stop_reason = models.CharField(max_length=255, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)

    # Why the link copies nothing now (the master's or the slave's account is paused, or its plan refuses copy
    # trading); cleared when a copy goes through again. refused_at: the last refused copy.
    refusal_code = models.CharField(max_length=40, blank=True)
    refusal_reason = models.CharField(max_length=255, blank=True)
    refused_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["master_id", "priority", "id"]
        constraints = [
            models.UniqueConstraint(fields=["master", "slave"], name="uniq_copy_link_master_slave"),
            models.CheckConstraint(condition=~models.Q(master=models.F("slave")), name="copy_link_master_is_not_slave"),
        ]
        indexes = [models.Index(fields=["master", "active"]), models.Index(fields=["slave", "active"])]

    def __str__(self) -> str:
        return f"{self.master_id} -> {self.slave_id}"

    @property
    def equity_stop_level(self) -> Decimal | None:
        """The slave equity at or below which the link stops: the higher of its amount and its percentage of the
        start equity (the earlier stop), None without either."""
        levels = [self.equity_stop] if self.equity_stop is not None else []
        if self.equity_stop_percent is not None and self.start_equity is not None:
            levels.append((self.start_equity * self.equity_stop_percent / Decimal("100")).quantize(Decimal("0.01")))
        return max(levels) if levels else None


class LinkStop(models.Model):
    """Audit of a link's equity stop: fired (the equity, the level, the copies it closed) or resumed; insert-only."""

    link = models.ForeignKey(CopyLink, on_delete=models.SET_NULL, null=True, blank=True, related_name="stops")
    master_account = models.ForeignKey("accounts.TradingAccount", on_delete=models.CASCADE, related_name="+")
    slave_account = models.ForeignKey("accounts.TradingAccount", on_delete=models.CASCADE, related_name="+")
    action = models.CharField(max_length=12, choices=[("stopped", "Stopped"), ("resumed", "Resumed")])
    equity = models.DecimalField(**MONEY, null=True, blank=True)
    level = models.DecimalField(**MONEY, null=True, blank=True)
    detail = models.CharField(max_length=255)
    closed_copies = models.PositiveIntegerField(default=0)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.action}: {self.detail}"


class CopiedPosition(models.Model):
    """One slave position (or pending order) that copies one master position (or order)."""

    # No single-column indexes: (link, master_ticket) and (slave_account, status) below serve those lookups, and every
    # copy insert (a master's heartbeat) pays for each index it maintains.
    link = models.ForeignKey(CopyLink, on_delete=models.CASCADE, related_name="copied", db_index=False)
    slave_account = models.ForeignKey(
        "accounts.TradingAccount", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    kind = models.CharField(max_length=8, choices=CopyKind.choices, default=CopyKind.POSITION)
    master_ticket = models.BigIntegerField(
        help_text="Master POSITION_IDENTIFIER (or order ticket for a pending order)."
    )
    master_symbol = models.CharField(max_length=64)
    master_volume = models.DecimalField(**VOLUME)
    slave_ticket = models.BigIntegerField(null=True, blank=True, help_text="Slave position identifier / order ticket.")
    slave_symbol = models.CharField(max_length=64)
    slave_side = models.CharField(max_length=4, choices=Side.choices)
    slave_volume = models.DecimalField(**VOLUME, help_text="Volume this link holds on the slave now.")
    status = models.CharField(max_length=16, choices=CopyStatus.choices, default=CopyStatus.PENDING)
    close_requested = models.BooleanField(default=False, help_text="The master closed before the slave opened.")
    open_command_id = models.UUIDField(null=True, blank=True, unique=True)
    close_command_id = models.UUIDField(null=True, blank=True)
    copy_id = models.CharField(max_length=31, help_text="Travels in the slave order comment.")
    opened_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at", "-id"]
        indexes = [
            models.Index(fields=["link", "master_ticket"]),
            models.Index(fields=["slave_account", "status"]),
            models.Index(fields=["close_command_id"]),
        ]

    def __str__(self) -> str:
        return f"{self.copy_id} {self.slave_symbol} {self.slave_volume} ({self.status})"


class CopyEvent(models.Model):
    """A copy that was not sent (with the reason the trader sees) or that failed on the slave."""

    link = models.ForeignKey(CopyLink, on_delete=models.CASCADE, related_name="events", null=True, blank=True)
    master_account = models.ForeignKey("accounts.TradingAccount", on_delete=models.CASCADE, related_name="+")
    slave_account = models.ForeignKey("accounts.TradingAccount", on_delete=models.CASCADE, related_name="+")
    intent = models.CharField(max_length=20)
    status = models.CharField(max_length=10, default="skipped")
    reason_code = models.CharField(max_length=40)
    reason = models.CharField(max_length=255)
    master_ticket = models.BigIntegerField(null=True, blank=True)
    symbol = models.CharField(max_length=64, blank=True)
    volume = models.DecimalField(**VOLUME, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["slave_account", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.intent} {self.symbol}: {self.reason}"


class AccountCopyState(models.Model):
    """Copy mode of one account (set by the rules or the trader) and the day's starting equity."""

    account = models.OneToOneField("accounts.TradingAccount", on_delete=models.CASCADE, related_name="copy_state")
    mode = models.CharField(max_length=12, choices=AccountMode.choices, default=AccountMode.NORMAL)
    mode_reason = models.CharField(max_length=255, blank=True)
    day = models.DateField(null=True, blank=True)
    day_start_equity = models.DecimalField(**MONEY, null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.account_id}: {self.mode}"


class Rule(models.Model):
    """A risk rule of one account, checked on every heartbeat; it fires once per crossing."""

    account = models.ForeignKey("accounts.TradingAccount", on_delete=models.CASCADE, related_name="copy_rules")
    kind = models.CharField(max_length=20, choices=RuleKind.choices)
    action = models.CharField(max_length=24, choices=RuleAction.choices, default=RuleAction.PAUSE)
    active = models.BooleanField(default=True)
    threshold = models.DecimalField(**MONEY, null=True, blank=True, help_text="Equity stop level, or daily loss limit.")
    threshold_is_percent = models.BooleanField(
        default=False, help_text="Daily loss limit in % of the day's starting equity."
    )
    max_open_trades = models.PositiveIntegerField(null=True, blank=True)
    symbols_allow = models.JSONField(default=list, blank=True)
    symbols_deny = models.JSONField(default=list, blank=True)
    hours_start = models.TimeField(null=True, blank=True)
    hours_end = models.TimeField(null=True, blank=True)
    timezone = models.CharField(max_length=64, default="UTC")
    triggered = models.BooleanField(default=False, help_text="Armed again when the condition clears.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["account_id", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.account_id}"


class RuleHit(models.Model):
    """A rule that fired: what it saw and what it did."""

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="hits")
    account = models.ForeignKey("accounts.TradingAccount", on_delete=models.CASCADE, related_name="copy_rule_hits")
    kind = models.CharField(max_length=20, choices=RuleKind.choices)
    action = models.CharField(max_length=24, choices=RuleAction.choices)
    detail = models.CharField(max_length=255)
    command_id = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} -> {self.action}: {self.detail}"


class OrderTemplate(models.Model):
    """A one-click order: symbol, side, volume or risk %, SL/TP in points, comment."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="order_templates")
    name = models.CharField(max_length=80)
    symbol = models.CharField(max_length=64)
    side = models.CharField(max_length=4, choices=Side.choices)
    volume = models.DecimalField(**VOLUME, null=True, blank=True)
    risk_percent = models.DecimalField(max_digits=6, decimal_places=3, null=True, blank=True)
    sl_points = models.PositiveIntegerField(default=0)
    tp_points = models.PositiveIntegerField(default=0)
    comment = models.CharField(max_length=20, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["owner_id", "name"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="uniq_template_name_per_owner")]

    def __str__(self) -> str:
        return self.name


# Signals (a master published for followers, their fees and audit) live in their own module; imported here so the
# app registry finds them.
from .signal_models import (  # noqa: E402, F401
    SignalAudit,
    SignalFee,
    SignalSubscription,
    TradingSignal,
)
