"""People (User, roles) and the MT5 trading accounts they own, with their synced data."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.db import models
from django.utils import timezone

from .choices import (
    AccountCategory,
    ConsentSource,
    GatewayKind,
    OwnershipProof,
    PasswordKind,
    PositionSide,
    SecurityAction,
    SyncOutcome,
    SyncStatus,
)

MONEY = {"max_digits": 20, "decimal_places": 2}
PRICE = {"max_digits": 20, "decimal_places": 8}
VOLUME = {"max_digits": 14, "decimal_places": 4}


class UserManager(DjangoUserManager):
    def _create_user(self, username, email, password, **extra_fields):
        email = self.normalize_email(email or username)
        if not email:
            raise ValueError("An email address is required")
        # People made by code (staff in the admin, management commands, seeds) are vouched for; the sign-up form
        # saves its user itself and leaves the address unconfirmed until the link in its email is opened.
        extra_fields.setdefault("email_verified_at", timezone.now())
        user = self.model(email=email, **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email=None, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(None, email, password, **extra_fields)

    def create_superuser(self, email=None, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        return self._create_user(None, email, password, **extra_fields)


class User(AbstractUser):
    """A person: a trader, or broker staff (roles are groups), logging in with an email."""

    username = None
    email = models.EmailField("email address", unique=True)
    display_name = models.CharField(max_length=150, blank=True)
    email_verified_at = models.DateTimeField(
        null=True, blank=True, help_text="When the person opened the confirmation link (empty: not confirmed yet)."
    )
    marketing_consent = models.BooleanField(
        default=False, help_text="Opted in to marketing sync (Systeme.io); every change is a ConsentRecord."
    )
    marketing_consent_at = models.DateTimeField(null=True, blank=True)
    erased_at = models.DateTimeField(
        null=True, blank=True, help_text="When the person deleted their account; the row is a pseudonym since."
    )

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email

    def has_role(self, role: str) -> bool:
        return self.groups.filter(name=role).exists()

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None


class TradingAccount(models.Model):
    """An MT5 account a trader connected (or a broker account staff look after)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="trading_accounts")
    login = models.BigIntegerField("MT5 login")
    server = models.CharField(max_length=128)
    broker = models.CharField("broker / company", max_length=128, blank=True)
    category = models.CharField(max_length=16, choices=AccountCategory.choices, default=AccountCategory.DEMO)
    name = models.CharField("friendly name", max_length=100, blank=True)
    currency = models.CharField(max_length=8, default="USD")
    leverage = models.PositiveIntegerField(default=100)
    is_hedging = models.BooleanField(default=True, help_text="Hedging (several positions per symbol) or netting.")
    is_active = models.BooleanField(default=True)
    gateway_kind = models.CharField(max_length=16, choices=GatewayKind.choices, default=GatewayKind.SIMULATED)
    password_encrypted = models.BinaryField(editable=False)
    password_kind = models.CharField(max_length=8, choices=PasswordKind.choices, default=PasswordKind.MASTER)
    ownership_proof = models.CharField(
        max_length=16, choices=OwnershipProof.choices, blank=True, default="", help_text="How ownership was shown."
    )

    sync_status = models.CharField(max_length=16, choices=SyncStatus.choices, default=SyncStatus.PENDING)
    last_sync_at = models.DateTimeField(null=True, blank=True)
    last_deal_time = models.DateTimeField(
        null=True, blank=True, help_text="Newest deal synced; the next sync starts here."
    )
    consecutive_errors = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)

    # Latest figures (denormalised from the newest snapshot so lists need no join).
    balance = models.DecimalField(**MONEY, default=0)
    credit = models.DecimalField(**MONEY, default=0)
    equity = models.DecimalField(**MONEY, default=0)
    margin = models.DecimalField(**MONEY, default=0)
    margin_free = models.DecimalField(**MONEY, default=0)
    margin_level = models.DecimalField(max_digits=20, decimal_places=2, null=True, blank=True)
    floating_profit = models.DecimalField(**MONEY, default=0)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["owner_id", "name", "login"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "login", "server"], name="uniq_account_per_owner_login_server"),
        ]
        indexes = [
            models.Index(fields=["login"]),
            models.Index(fields=["is_active", "sync_status"]),
        ]
        permissions = [("sync_tradingaccount", "Can sync a trading account")]

    def __str__(self) -> str:
        return f"{self.name or self.login} ({self.login}@{self.server})"

    @property
    def is_paused(self) -> bool:
        return self.sync_status == SyncStatus.PAUSED

    def sync_is_due(self, now=None) -> bool:
        if not self.is_active or self.is_paused:
            return False
        if self.last_sync_at is None:
            return True
        now = now or timezone.now()
        return now - self.last_sync_at >= timedelta(minutes=settings.SYNC_INTERVAL_MINUTES)


class AccountSnapshot(models.Model):
    """Balance, equity and margin of one account at one moment (one row per sync)."""

    account = models.ForeignKey(TradingAccount, on_delete=models.CASCADE, related_name="snapshots")
    taken_at = models.DateTimeField(default=timezone.now)
    balance = models.DecimalField(**MONEY)
    credit = models.DecimalField(**MONEY, default=0)
    equity = models.DecimalField(**MONEY)
    margin = models.DecimalField(**MONEY, default=0)
    margin_free = models.DecimalField(**MONEY, default=0)
    margin_level = models.DecimalField(max_digits=20, decimal_places=2, null=True, blank=True)
    floating_profit = models.DecimalField(**MONEY, default=0)

    class Meta:
        ordering = ["account_id", "-taken_at"]
        get_latest_by = "taken_at"
        indexes = [models.Index(fields=["account", "taken_at"])]

    def __str__(self) -> str:
        return f"{self.account_id} @ {self.taken_at:%Y-%m-%d %H:%M}"


class Position(models.Model):
    """An open position as of the last sync (replaced as a set on every sync)."""

    account = models.ForeignKey(TradingAccount, on_delete=models.CASCADE, related_name="positions")
    ticket = models.BigIntegerField()
    symbol = models.CharField(max_length=64)
    side = models.PositiveSmallIntegerField(choices=PositionSide.choices)
    volume = models.DecimalField(**VOLUME)
    price_open = models.DecimalField(**PRICE)
    price_current = models.DecimalField(**PRICE)
    sl = models.DecimalField(**PRICE, default=0)
    tp = models.DecimalField(**PRICE, default=0)
    swap = models.DecimalField(**MONEY, default=0)
    profit = models.DecimalField(**MONEY, default=0)
    magic = models.BigIntegerField(default=0)
    comment = models.CharField(max_length=64, blank=True)
    identifier = models.BigIntegerField(default=0)
    opened_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["account_id", "opened_at"]
        constraints = [models.UniqueConstraint(fields=["account", "ticket"], name="uniq_position_ticket")]

    def __str__(self) -> str:
        return f"#{self.ticket} {self.get_side_display()} {self.volume} {self.symbol}"


class Order(models.Model):
    """A pending order as of the last sync."""

    account = models.ForeignKey(TradingAccount, on_delete=models.CASCADE, related_name="orders")
    ticket = models.BigIntegerField()
    symbol = models.CharField(max_length=64)
    order_type = models.PositiveSmallIntegerField(help_text="MT5 ORDER_TYPE_* value")
    volume_initial = models.DecimalField(**VOLUME)
    volume_current = models.DecimalField(**VOLUME)
    price_open = models.DecimalField(**PRICE)
    price_current = models.DecimalField(**PRICE, default=0)
    price_stoplimit = models.DecimalField(**PRICE, default=0)
    sl = models.DecimalField(**PRICE, default=0)
    tp = models.DecimalField(**PRICE, default=0)
    magic = models.BigIntegerField(default=0)
    comment = models.CharField(max_length=64, blank=True)
    placed_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["account_id", "placed_at"]
        constraints = [models.UniqueConstraint(fields=["account", "ticket"], name="uniq_order_ticket")]

    def __str__(self) -> str:
        return f"#{self.ticket} {self.symbol}"


class Deal(models.Model):
    """One MT5 deal, every field kept: trades, balance, credit, commission and other types."""

    # No index of its own: (account, ticket), (account, time) and (account, symbol, time) all lead with it, and a
    # fourth index on every deal inserted: first sync 162 → 177 accounts/s without it (docs/benchmarks.md, sync).
    account = models.ForeignKey(TradingAccount, on_delete=models.CASCADE, related_name="deals", db_index=False)
    ticket = models.BigIntegerField()
    order = models.BigIntegerField(default=0)
    time = models.DateTimeField()
    deal_type = models.PositiveSmallIntegerField(help_text="MT5 DEAL_TYPE_* value")
    entry = models.PositiveSmallIntegerField(default=0, help_text="MT5 DEAL_ENTRY_* value")
    magic = models.BigIntegerField(default=0)
    position_id = models.BigIntegerField(default=0)
    reason = models.PositiveSmallIntegerField(default=0)
    volume = models.DecimalField(**VOLUME, default=0)
    price = models.DecimalField(**PRICE, default=0)
    commission = models.DecimalField(**MONEY, default=0)
    swap = models.DecimalField(**MONEY, default=0)
    profit = models.DecimalField(**MONEY, default=0)
    fee = models.DecimalField(**MONEY, default=0)
    symbol = models.CharField(max_length=64, blank=True)
    comment = models.CharField(max_length=64, blank=True)
    external_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["account_id", "time", "ticket"]
        constraints = [models.UniqueConstraint(fields=["account", "ticket"], name="uniq_deal_ticket")]
        indexes = [
            models.Index(fields=["account", "time"]),
            models.Index(fields=["account", "symbol", "time"]),
        ]

    def __str__(self) -> str:
        return f"deal #{self.ticket}"


class SyncRun(models.Model):
    """One sync of one account: when, how long, what came back, what failed."""

    account = models.ForeignKey(TradingAccount, on_delete=models.CASCADE, related_name="sync_runs")
    started_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(default=0)
    outcome = models.CharField(max_length=16, choices=SyncOutcome.choices)
    deals_added = models.PositiveIntegerField(default=0)
    positions = models.PositiveIntegerField(default=0)
    orders = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)
    trigger = models.CharField(max_length=16, default="schedule")  # schedule / manual / api / admin

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["account", "started_at"]), models.Index(fields=["started_at", "outcome"])]

    def __str__(self) -> str:
        return f"{self.account_id} {self.outcome} @ {self.started_at:%Y-%m-%d %H:%M:%S}"


class StatementImport(models.Model):
    """One uploaded MT5 trade-history report: what it held, what was imported, what was skipped and why."""

    account = models.ForeignKey(TradingAccount, on_delete=models.CASCADE, related_name="statement_imports")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    uploaded_at = models.DateTimeField(default=timezone.now)
    filename = models.CharField(max_length=255)
    file_format = models.CharField(max_length=8)  # html / xlsx
    report_login = models.BigIntegerField(null=True, blank=True, help_text="Account number printed on the report.")
    deals_found = models.PositiveIntegerField(default=0)
    deals_imported = models.PositiveIntegerField(default=0)
    deals_skipped = models.PositiveIntegerField(default=0)
    skipped = models.JSONField(default=list, blank=True, help_text="[{ticket, reason}] for every skipped deal.")

    class Meta:
        ordering = ["-uploaded_at"]
        indexes = [models.Index(fields=["account", "uploaded_at"])]

    def __str__(self) -> str:
        return f"{self.filename} → {self.account_id} ({self.deals_imported} imported)"


class SecurityEvent(models.Model):
    """A security-relevant act on a trading account: who, what, which account, when and from where. Insert-only.

    The first use is the MT5 password: every time it is given out (a start-up .ini with the password), and every
    refused attempt, leaves a row. The account's login is copied so the row still says which account after the
    account is deleted.
    """

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(max_length=254, help_text="The user's email at the time.")
    action = models.CharField(max_length=40, choices=SecurityAction.choices)
    account = models.ForeignKey(
        TradingAccount, on_delete=models.SET_NULL, null=True, blank=True, related_name="security_events"
    )
    account_login = models.BigIntegerField(null=True, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=255, blank=True)
    detail = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["account", "created_at"]), models.Index(fields=["actor", "created_at"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.action} {self.account_login} by {self.actor_label}"


class ConsentRecord(models.Model):
    """One change of a person's marketing consent: when, from what to what, through which path, by whom. Insert-only.

    Kept when the person deletes their account (it shows the consent that was relied on); the row then points at the
    pseudonymised user and its IP address and browser are cleared.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="consent_records")
    purpose = models.CharField(max_length=32, default="marketing")
    previous = models.BooleanField(help_text="Consent before the change.")
    granted = models.BooleanField(help_text="Consent after the change.")
    source = models.CharField(max_length=16, choices=ConsentSource.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(max_length=254, blank=True, help_text="Who made the change (email at the time).")
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "created_at"])]

    def __str__(self) -> str:
        state = "granted" if self.granted else "withdrawn"
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.purpose} {state} ({self.source})"
