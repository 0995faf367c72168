"""Billing's own rows: local billing events received without Stripe (Stripe's deliveries are dj-stripe's)."""

from django.conf import settings
from django.db import models


class LocalBillingEvent(models.Model):
    """One signed local billing event, by its id: a repeated delivery finds it and changes nothing."""

    id = models.CharField(max_length=255, primary_key=True)
    type = models.CharField(max_length=100)
    created = models.DateTimeField(null=True, blank=True, help_text="The event's own timestamp.")
    subscription_id = models.CharField(max_length=255, blank=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    outcome = models.CharField(max_length=32, help_text="applied, ignored (type not handled) or stale (older news).")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.id} {self.type} ({self.outcome})"
