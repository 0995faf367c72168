"""Tables of the bonuses app: campaigns, bonuses, their MT5 operations, monitored accounts, monitor runs, audit."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone

from .choices import (
    AbuseKind,
    ApprovalStatus,
    AuditAction,
    BonusStatus,
    BonusType,
    CampaignStatus,
    CancelReason,
    EmailEvent,
    MonitorStatus,
    OperationKind,
    OperationStatus,
    Trigger,
)

MONEY = {"max_digits": 20, "decimal_places": 2}
LOTS = {"max_digits": 14, "decimal_places": 4}


class Campaign(models.Model):
    """A bonus offer: type, size, who it targets, what fires it, and its lifecycle."""

    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    bonus_type = models.CharField(max_length=1, choices=BonusType.choices, default=BonusType.FIXED_LEVERAGE)
    status = models.CharField(max_length=10, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT)
    bonus_percent = models.DecimalField(max_digits=7, decimal_places=2, help_text="Percent of the deposit")
    max_bonus_amount = models.DecimalField(**MONEY, null=True, blank=True, help_text="Empty: no cap")
    fixed_amount = models.DecimalField(
        **MONEY, null=True, blank=True, help_text="Credit for triggers without a deposit (registration, promo code)"
    )
    min_deposit = models.DecimalField(**MONEY, default=Decimal("0"))
    max_deposit = models.DecimalField(**MONEY, null=True, blank=True, help_text="Empty: no maximum")
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField(null=True, blank=True)
    expiry_days = models.PositiveIntegerField(null=True, blank=True, help_text="Days each bonus lives; empty: forever")
    target_groups = models.JSONField(default=list, blank=True, help_text="MT5 groups; empty: all")
    target_countries = models.JSONField(default=list, blank=True, help_text="Countries; empty: all")
    agent_codes = models.JSONField(default=list, blank=True, help_text="Lead Source values that qualify")
    promo_codes = models.JSONField(default=list, blank=True)
    triggers = models.JSONField(default=list, blank=True, help_text="Trigger names that fire it")
    one_per_account = models.BooleanField(default=True)
    max_concurrent = models.PositiveIntegerField(default=1, help_text="Active bonuses an account may hold at once")
    lots_per_unit = models.DecimalField(**LOTS, default=Decimal("0.1000"), help_text="Type C: lots per unit converted")
    unit_amount = models.DecimalField(**MONEY, default=Decimal("1.00"), help_text="Type C: credit in one unit")
    counting_symbols = models.JSONField(default=list, blank=True, help_text="Type C: symbols that count; empty: all")
    min_lot = models.DecimalField(**LOTS, default=Decimal("0.0100"), help_text="Type C: smallest deal that counts")
    only_after_bonus = models.BooleanField(default=True, help_text="Type C: only deals closed after the bonus count")
    budget_total = models.DecimalField(
        **MONEY, null=True, blank=True, help_text="Most credit the campaign may grant in all; empty: no cap"
    )
    client_credit_cap = models.DecimalField(
        **MONEY, null=True, blank=True, help_text="Most credit one MT5 login may receive from it, ever; empty: no cap"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status"], name="bonus_campaign_status")]

    def __str__(self) -> str:
        return self.name

    def has_trigger(self, trigger: str) -> bool:
        return trigger in (self.triggers or [])

    def is_running(self, when=None) -> bool:
        when = when or timezone.now()
        return (
            self.status == CampaignStatus.ACTIVE
            and self.starts_at <= when
            and (self.ends_at is None or when < self.ends_at)
        )


class MonitoredAccount(models.Model):
    """An MT5 login the monitor watches: its last snapshot, what MT5 says about it, and its error count."""

    login = models.BigIntegerField(unique=True)
    server = models.CharField(max_length=64, blank=True)
    group = models.CharField(max_length=64, blank=True)
    country = models.CharField(max_length=64, blank=True)
    lead_source = models.CharField(max_length=64, blank=True)
    # For the abuse signal: the domain of MT5's email of the client, the client's IP as a trigger reported it.
    email_domain = models.CharField(max_length=128, blank=True)
    last_ip = models.GenericIPAddressField(null=True, blank=True)
    registration = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=MonitorStatus.choices, default=MonitorStatus.ACTIVE)
    consecutive_errors = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=255, blank=True)
    balance = models.DecimalField(**MONEY, null=True, blank=True)
    credit = models.DecimalField(**MONEY, null=True, blank=True)
    equity = models.DecimalField(**MONEY, null=True, blank=True)
    leverage = models.PositiveIntegerField(null=True, blank=True)
    # The leverage before the first type A bonus; restored when the last one goes.
    original_leverage = models.PositiveIntegerField(null=True, blank=True)
    # Deals up to this instant were looked at for deposits, withdrawals and type C lots.
    deals_checked_at = models.DateTimeField(null=True, blank=True)
    snapshot_at = models.DateTimeField(null=True, blank=True)
    discovered_at = models.DateTimeField(auto_now_add=True)
    # Queued postings (BONUS_OPERATIONS_QUEUED): the monitor bumps review_seq when the balance moved, the
    # account's worker task reads the deals and sets reviewed_seq. Kept in PostgreSQL, so a lost queue
    # message (Redis restarted empty) is found again by the monitor's sweep instead of missing a deposit.
    review_seq = models.BigIntegerField(default=0)
    reviewed_seq = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["login"]
        indexes = [models.Index(fields=["status"], name="bonus_monitored_status")]
        permissions = [("lookup_account", "Can look up an MT5 account by login")]

    def __str__(self) -> str:
        return str(self.login)

    @property
    def paused(self) -> bool:
        return self.status == MonitorStatus.PAUSED


class Bonus(models.Model):
    """One bonus given to one MT5 login under one campaign."""

    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="bonuses")
    login = models.BigIntegerField()
    bonus_type = models.CharField(max_length=1, choices=BonusType.choices)
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    status = models.CharField(max_length=10, choices=BonusStatus.choices, default=BonusStatus.PENDING)
    # What makes a trigger the same trigger (deposit deal ticket, promo code...): repeats return this bonus.
    idempotency_key = models.CharField(max_length=120, unique=True)
    # Manual assignment: a digest of the request, so the same Idempotency-Key with another body is refused.
    request_hash = models.CharField(max_length=64, blank=True, default="")
    deposit_amount = models.DecimalField(**MONEY, default=Decimal("0"))
    deposit_deal = models.BigIntegerField(null=True, blank=True)
    amount = models.DecimalField(**MONEY)
    credit_outstanding = models.DecimalField(**MONEY, default=Decimal("0"))
    converted_amount = models.DecimalField(**MONEY, default=Decimal("0"))
    removed_amount = models.DecimalField(**MONEY, default=Decimal("0"))
    lots_required = models.DecimalField(**LOTS, default=Decimal("0"))
    lots_traded = models.DecimalField(**LOTS, default=Decimal("0"))
    original_leverage = models.PositiveIntegerField(null=True, blank=True)
    applied_leverage = models.PositiveIntegerField(null=True, blank=True)
    overridden_checks = models.JSONField(default=list, blank=True)
    promo_code = models.CharField(max_length=64, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField(max_length=12, choices=CancelReason.choices, blank=True)
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "bonuses"
        permissions = [
            ("assign_bonus", "Can assign a bonus manually (with eligibility override)"),
            ("override_leverage", "Can override the leverage of a type A bonus"),
            ("fire_trigger", "Can fire deposit, registration and promo-code triggers"),
            ("view_reports", "Can view and export bonus reports"),
        ]
        indexes = [
            models.Index(fields=["login", "status"], name="bonus_login_status"),
            models.Index(fields=["status", "expires_at"], name="bonus_status_expiry"),
            models.Index(fields=["campaign", "login"], name="bonus_campaign_login"),
        ]

    def __str__(self) -> str:
        return f"bonus #{self.pk} {self.login}"

    @property
    def is_open(self) -> bool:
        return self.status in (BonusStatus.PENDING, BonusStatus.ACTIVE)

    @property
    def lot_progress(self) -> Decimal:
        if self.lots_required <= 0:
            return Decimal("100")
        return min(Decimal("100"), (self.lots_traded / self.lots_required * 100).quantize(Decimal("0.01")))


class BonusOperation(models.Model):
    """One change to an MT5 account made for a bonus, recorded before it is sent.

    The row exists (committed) before the gateway is called and its id travels in the deal
    comment, so a posting that timed out is looked up by comment and never sent twice.
    """

    bonus = models.ForeignKey(Bonus, on_delete=models.PROTECT, related_name="operations")
    login = models.BigIntegerField()
    kind = models.CharField(max_length=12, choices=OperationKind.choices)
    amount = models.DecimalField(**MONEY, default=Decimal("0"))
    leverage = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=OperationStatus.choices, default=OperationStatus.PENDING)
    deal_ticket = models.BigIntegerField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    claimed_until = models.DateTimeField(null=True, blank=True)
    # A failed attempt is retried no sooner than this (exponential backoff, BONUS_OPERATION_RETRY_*).
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Off only where MT5 must take the credit back whatever the free margin (drawdown, positions closed).
    check_margin = models.BooleanField(default=True)
    error = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["status"], name="bonus_operation_status")]
        permissions = [("resolve_bonusoperation", "Can retry a failed MT5 posting or mark it resolved")]

    def __str__(self) -> str:
        return self.comment

    @property
    def comment(self) -> str:
        # MT5 keeps 31 characters: "BONUS 123456789 op 123456789" fits.
        return f"BONUS {self.bonus_id} op {self.pk}"


class AccountEvent(models.Model):
    """A deal the bonus engine has acted on (deposit, withdrawal, closed trade), so it is acted on once."""

    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"
    TRADE = "trade"
    KINDS = [(DEPOSIT, "Deposit"), (WITHDRAWAL, "Withdrawal"), (TRADE, "Closed trade")]

    login = models.BigIntegerField()
    deal_ticket = models.BigIntegerField()
    kind = models.CharField(max_length=10, choices=KINDS)
    amount = models.DecimalField(**MONEY, default=Decimal("0"))
    volume = models.DecimalField(**LOTS, default=Decimal("0"))
    balance_after = models.DecimalField(**MONEY, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["login", "deal_ticket"], name="bonus_event_unique_deal")]

    def __str__(self) -> str:
        return f"{self.kind} #{self.deal_ticket}"


class MonitorShard(models.Model):
    """The lease and latest figures of one monitor shard (claimed with a conditional UPDATE).

    A live monitor claims its own shard and any shard of the same split whose lease ran out (its process
    died): the dead shard's accounts are watched again within a lease, and never by two holders at once.
    """

    shard = models.PositiveIntegerField()
    shards = models.PositiveIntegerField()
    holder = models.CharField(max_length=120, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    # Bumped each time the holder changes (a takeover or a hand-back): the lease's fencing token.
    epoch = models.BigIntegerField(default=0)
    # The process started for this shard ("home"), while another holds it: when the home process last asked
    # for it back. The holder hands an adopted shard back once its home is alive again.
    home = models.CharField(max_length=120, blank=True)
    home_seen_at = models.DateTimeField(null=True, blank=True)
    last_cycle_at = models.DateTimeField(null=True, blank=True)
    last_duration_ms = models.FloatField(default=0)
    last_accounts = models.PositiveIntegerField(default=0)
    last_errors = models.PositiveIntegerField(default=0)
    cycles = models.BigIntegerField(default=0)
    deposits = models.BigIntegerField(default=0)
    withdrawals = models.BigIntegerField(default=0)
    drawdowns = models.BigIntegerField(default=0)
    errors = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["shards", "shard"]
        constraints = [models.UniqueConstraint(fields=["shard", "shards"], name="bonus_monitor_shard_unique")]

    def __str__(self) -> str:
        return f"shard {self.shard}/{self.shards}"


class MonitorCycle(models.Model):
    """One monitor cycle: when, how long, how many accounts, what it found and what failed."""

    started_at = models.DateTimeField(db_index=True)
    duration_ms = models.FloatField()
    shard = models.PositiveIntegerField(default=0)
    shards = models.PositiveIntegerField(default=1)
    worker = models.CharField(max_length=120, blank=True)
    accounts = models.PositiveIntegerField(default=0)
    discovered = models.PositiveIntegerField(default=0)
    deposits = models.PositiveIntegerField(default=0)
    withdrawals = models.PositiveIntegerField(default=0)
    drawdowns = models.PositiveIntegerField(default=0)
    conversions = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    paused = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"cycle {self.started_at:%H:%M:%S} ({self.duration_ms:.0f} ms)"


class Mt5Scan(models.Model):
    """The groups and countries found on MT5 by the last "Scan MT5" (for campaign targeting)."""

    scanned_at = models.DateTimeField(auto_now_add=True)
    scanned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    groups = models.JSONField(default=list)
    countries = models.JSONField(default=list)
    accounts = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-scanned_at", "-id"]
        verbose_name = "MT5 scan"

    def __str__(self) -> str:
        return f"scan {self.scanned_at:%Y-%m-%d %H:%M}"


class AuditLog(models.Model):
    """Who did what to which bonus or account, with the state before and after. Insert-only."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,
    )
    actor_label = models.CharField(max_length=254, help_text="The user's email, or 'monitor' / 'system'")
    action = models.CharField(max_length=24, choices=AuditAction.choices)
    login = models.BigIntegerField(null=True, blank=True, db_index=True)
    bonus = models.ForeignKey(
        Bonus, null=True, blank=True, on_delete=models.DO_NOTHING, related_name="audit", db_constraint=False
    )
    campaign = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.DO_NOTHING, related_name="audit", db_constraint=False
    )
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    message = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit log"

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.action}"


class GrantApproval(models.Model):
    """A manual or overridden grant above BONUS_APPROVAL_THRESHOLD, waiting for a second staff member (maker-checker)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="approvals")
    login = models.BigIntegerField()
    status = models.CharField(max_length=8, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING)
    # The maker's scoped key (manual:{user}:{key}): a repeat of the request finds this row, not a second one.
    idempotency_key = models.CharField(max_length=120, unique=True)
    request_hash = models.CharField(max_length=64, blank=True, default="")
    deposit_amount = models.DecimalField(**MONEY, null=True, blank=True)
    amount = models.DecimalField(**MONEY)
    override = models.BooleanField(default=False)
    overridden_checks = models.JSONField(default=list, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    requested_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=255, blank=True)
    bonus = models.OneToOneField(Bonus, null=True, blank=True, on_delete=models.PROTECT, related_name="approval")

    class Meta:
        ordering = ["-requested_at", "-id"]
        indexes = [models.Index(fields=["status"], name="bonus_approval_status")]
        permissions = [("approve_grantapproval", "Can approve or reject a grant another staff member asked for")]

    def __str__(self) -> str:
        return f"approval #{self.pk} {self.login} {self.amount}"


class AbuseSignal(models.Model):
    """Several accounts sharing an email domain, lead source or IP that received the same campaign: for review."""

    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="abuse_signals")
    kind = models.CharField(max_length=12, choices=AbuseKind.choices)
    value = models.CharField(max_length=128)
    logins = models.JSONField(default=list)
    accounts = models.PositiveIntegerField(default=0)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["reviewed_at", "-last_seen_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "kind", "value"], name="bonus_abuse_unique"),
        ]
        permissions = [("review_abusesignal", "Can mark an abuse signal reviewed")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.value}: {self.accounts} accounts"


class BonusEmail(models.Model):
    """One email about one bonus event, recorded before it is sent: each event is mailed once."""

    bonus = models.ForeignKey(Bonus, on_delete=models.CASCADE, related_name="emails")
    event = models.CharField(max_length=10, choices=EmailEvent.choices)
    recipients = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["bonus", "event"], name="bonus_email_once")]

    def __str__(self) -> str:
        return f"{self.event} email for bonus #{self.bonus_id}"


# The reconciliation's tables live in their own module; imported here so that Django registers them with the app.
from .reconciliation_models import ReconciliationMismatch, ReconciliationRun  # noqa: E402, F401
