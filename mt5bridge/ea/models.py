"""Tables of the EA protocol: one token and one connection row per trading account, and the command queue."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from mt5bridge.ea.protocol import command_tag

__all__ = ["EAToken", "EAConnection", "Command", "CommandStatus", "CommandKind"]


class CommandKind(models.TextChoices):
    OPEN_MARKET = "open_market", "open market"
    PLACE_PENDING = "place_pending", "place pending"
    CLOSE = "close", "close"
    CLOSE_PARTIAL = "close_partial", "close partial"
    MODIFY_SLTP = "modify_sltp", "modify SL/TP"
    MODIFY_PENDING = "modify_pending", "modify pending"
    CANCEL_PENDING = "cancel_pending", "cancel pending"
    CLOSE_ALL = "close_all", "close all"
    PAUSE = "pause", "pause"
    RESUME = "resume", "resume"


class CommandStatus(models.TextChoices):
    PENDING = "pending", "pending"
    DELIVERED = "delivered", "delivered"
    EXECUTED = "executed", "executed"
    FAILED = "failed", "failed"
    EXPIRED = "expired", "expired"
    CANCELLED = "cancelled", "cancelled"


OPEN_STATUSES = (CommandStatus.PENDING, CommandStatus.DELIVERED)
FINAL_STATUSES = (CommandStatus.EXECUTED, CommandStatus.FAILED, CommandStatus.EXPIRED, CommandStatus.CANCELLED)


class EAToken(models.Model):
    """The secret an account's EA authenticates with. Only its SHA-256 is stored (see docs/ea-protocol.md)."""

    account = models.OneToOneField("accounts.TradingAccount", on_delete=models.CASCADE, related_name="ea_token")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    hint = models.CharField(max_length=8, editable=False, help_text="First characters of the token, to recognise it.")
    created_at = models.DateTimeField(default=timezone.now)
    rotated_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "EA token"

    def __str__(self) -> str:
        return f"{self.hint}… ({'revoked' if self.revoked_at else 'active'})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class EAConnection(models.Model):
    """What the server last heard from an account's EA (the live copy is in Redis; this is the durable one)."""

    account = models.OneToOneField(
        "accounts.TradingAccount", on_delete=models.CASCADE, primary_key=True, related_name="ea_connection"
    )
    last_seen_at = models.DateTimeField(null=True, blank=True, db_index=True)
    first_seen_at = models.DateTimeField(null=True, blank=True)
    ea_version = models.CharField(max_length=32, blank=True)
    protocol_version = models.PositiveSmallIntegerField(default=0)
    terminal = models.JSONField(default=dict, blank=True)
    state = models.JSONField(default=dict, blank=True, help_text="The last heartbeat's state as stored.")
    state_fingerprint = models.CharField(max_length=64, blank=True)
    persisted_at = models.DateTimeField(null=True, blank=True)
    beats = models.PositiveBigIntegerField(default=0, help_text="Heartbeats counted at the last persist.")
    access_denied_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name = "EA connection"

    def __str__(self) -> str:
        return f"EA of {self.account_id}: {self.status}"

    @property
    def status(self) -> str:
        return connection_status(self.last_seen_at)

    @property
    def ea_paused(self) -> bool:
        """The EA reported itself paused (a "pause" command: it opens nothing until "resume")."""
        text = self.state.get("json") if isinstance(self.state, dict) else None
        return bool(text) and bool(json.loads(text).get("pz"))


def connection_status(last_seen_at: datetime | None, now: datetime | None = None) -> str:
    """online / stale / offline from the age of the last heartbeat (thresholds in settings)."""
    if last_seen_at is None:
        return "offline"
    age = ((now or timezone.now()) - last_seen_at).total_seconds()
    if age <= settings.EA_ONLINE_SECONDS:
        return "online"
    if age <= settings.EA_OFFLINE_SECONDS:
        return "stale"
    return "offline"


class Command(models.Model):
    """One instruction for an account's EA. PostgreSQL is the truth; Redis holds the pending ones for speed."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(
        "accounts.TradingAccount", on_delete=models.CASCADE, related_name="ea_commands", db_index=False
    )
    kind = models.CharField(max_length=16, choices=CommandKind.choices)
    params = models.JSONField(default=dict, blank=True)
    # Who queued it, opaque to the bridge: a short kind ("copy", "web_terminal", "admin", ...) and a reference the
    # app that queued it reads back from the result ("copy-link:123"); see docs/ea-protocol.md.
    origin = models.CharField(max_length=16)
    status = models.CharField(max_length=10, choices=CommandStatus.choices, default=CommandStatus.PENDING)
    retcode = models.IntegerField(null=True, blank=True)
    message = models.CharField(max_length=255, blank=True)
    result = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    delivery_count = models.PositiveIntegerField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=100, null=True, blank=True)
    origin_ref = models.CharField(
        max_length=64, blank=True, default="", help_text="What queued it, in its origin's terms (e.g. copy-link:123)."
    )
    intent = models.CharField(max_length=100, blank=True, help_text="What caused it (e.g. the master event).")
    # Indexed only where set (partial indexes below): most commands have neither, and each insert pays per index.
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries", db_index=False
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, db_index=False
    )

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="uniq_command_idempotency_key",
            )
        ]
        indexes = [
            models.Index(fields=["account", "status", "created_at"]),  # also serves the account foreign key
            models.Index(fields=["status", "created_at"]),
            models.Index(fields=["origin", "created_at"]),
            models.Index(fields=["retry_of"], condition=models.Q(retry_of__isnull=False), name="command_retry_of_set"),
            models.Index(
                fields=["created_by"], condition=models.Q(created_by__isnull=False), name="command_created_by_set"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.id} ({self.status})"

    @property
    def tag(self) -> str:
        return command_tag(self.id)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    def age(self, now: datetime | None = None) -> timedelta:
        return (now or timezone.now()) - self.created_at
