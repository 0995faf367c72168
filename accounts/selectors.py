"""Read paths over trading accounts that several callers share."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone

from .choices import SyncOutcome
from .models import SyncRun, TradingAccount
from .permissions import restrict


def accounts_visible_to(user, perm: str = "accounts.view_tradingaccount"):
    return restrict(user, perm, TradingAccount.objects.select_related("owner"))


def sync_success_rate(*, runs=None, since=None) -> dict:
    """Share of syncs (of ``runs``, default all) that succeeded since ``since`` (default: 24 hours)."""
    since = since or timezone.now() - timedelta(hours=24)
    runs = (SyncRun.objects.all() if runs is None else runs).filter(started_at__gte=since)
    totals = runs.aggregate(total=Count("id"), ok=Count("id", filter=Q(outcome=SyncOutcome.OK)))
    rate = (totals["ok"] / totals["total"]) if totals["total"] else None
    return {"since": since, "total": totals["total"], "succeeded": totals["ok"], "rate": rate}
