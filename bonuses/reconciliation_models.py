"""Tables of the bonus reconciliation: each run, and each mismatch between bonus operations and MT5's credit deals.

Imported by ``bonuses.models`` (the app's models live in one module for Django; these in their own file).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from .choices import AuditAction

MONEY = {"max_digits": 20, "decimal_places": 2}

# The audit action of a mismatch marked reviewed (AuditLog.action).
MISMATCH_REVIEWED = AuditAction.MISMATCH_REVIEWED


class MismatchKind(models.TextChoices):
    MISSING = "missing", "Missing: operation posted, no credit deal"
    DUPLICATED = "duplicated", "Duplicated: several credit deals for one operation"
    AMOUNT = "amount", "Different amount"
    ORPHAN = "orphan", "Orphan: credit deal with no operation"


class MismatchStatus(models.TextChoices):
    OPEN = "open", "Open"
    REVIEWED = "reviewed", "Reviewed"
    # Not found by a later run (the sync caught up, a dealer fixed it): kept for the record; found again: open.
    CLEARED = "cleared", "No longer found"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped: another run was in progress"


class RunTrigger(models.TextChoices):
    NIGHTLY = "nightly", "Nightly schedule"
    ADMIN = "admin", "Admin action"
    API = "api", "API"
    COMMAND = "command", "Management command"


class ReconciliationRun(models.Model):
    """One reconciliation: who or what started it, how long it took, what it compared and what it found."""

    trigger = models.CharField(max_length=8, choices=RunTrigger.choices)
    status = models.CharField(max_length=8, choices=RunStatus.choices, default=RunStatus.QUEUED)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=254, blank=True)
    # Empty: every login with a bonus; else only these (re-checking the accounts of chosen mismatches).
    logins = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.FloatField(default=0)
    accounts_checked = models.PositiveIntegerField(default=0)
    accounts_not_synced = models.PositiveIntegerField(default=0)
    operations_checked = models.PositiveIntegerField(default=0)
    deals_checked = models.PositiveIntegerField(default=0)
    found = models.PositiveIntegerField(default=0)
    new = models.PositiveIntegerField(default=0)
    cleared = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "reconciliation run"

    def __str__(self) -> str:
        return f"reconciliation #{self.pk} ({self.status})"


class ReconciliationMismatch(models.Model):
    """One disagreement between the bonus engine's operations and the credit deals synced from MT5.

    ``key`` names the disagreement (``missing:<op>``, ``duplicated:<op>``, ``amount:<op>``,
    ``orphan:<login>:<ticket>``), so a rerun finds the row it made before instead of adding one.
    """

    key = models.CharField(max_length=80, unique=True)
    kind = models.CharField(max_length=10, choices=MismatchKind.choices)
    status = models.CharField(max_length=8, choices=MismatchStatus.choices, default=MismatchStatus.OPEN)
    login = models.BigIntegerField(db_index=True)
    operation = models.ForeignKey(
        "bonuses.BonusOperation", null=True, blank=True, on_delete=models.PROTECT, related_name="mismatches"
    )
    bonus = models.ForeignKey("bonuses.Bonus", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # Signed as MT5 books them: credit in positive, credit out negative.
    expected_amount = models.DecimalField(**MONEY, null=True, blank=True)
    found_amount = models.DecimalField(**MONEY, null=True, blank=True)
    deal_tickets = models.JSONField(default=list, blank=True)
    deal_time = models.DateTimeField(null=True, blank=True)
    message = models.CharField(max_length=255, blank=True)
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now, db_index=True)
    first_run = models.ForeignKey(ReconciliationRun, null=True, on_delete=models.SET_NULL, related_name="+")
    last_run = models.ForeignKey(ReconciliationRun, null=True, on_delete=models.SET_NULL, related_name="+")
    cleared_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-last_seen_at", "-id"]
        verbose_name = "reconciliation mismatch"
        verbose_name_plural = "reconciliation mismatches"
        indexes = [models.Index(fields=["status", "kind"], name="bonus_mismatch_status_kind")]
        permissions = [
            ("run_reconciliationmismatch", "Can run the bonus reconciliation now"),
            ("review_reconciliationmismatch", "Can mark reconciliation mismatches reviewed"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.login}"
