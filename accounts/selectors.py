"""Read paths over trading accounts that several callers share."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone

from .choices import SyncOutcome
from .models import SyncRun, TradingAccount
from .permissions import restrict


def accounts_visible_to(user, perm: str = "accounts.view_tradingaccount"):
    return restrict(user, perm, TradingAccount.objects.select_related("owner"))


def history_days_allowed(account: TradingAccount) -> int:
    """How many days of deal history this account keeps (the billing plan may narrow it)."""
    try:
        from billing.gates import history_days_for_user
    except ImportError:
        return settings.SYNC_HISTORY_DAYS
    return min(settings.SYNC_HISTORY_DAYS, history_days_for_user(account.owner_id))


def sync_success_rate(*, runs=None, since=None) -> dict:
    """Share of syncs (of ``runs``, default all) that succeeded since ``since`` (default: 24 hours)."""
    since = since or timezone.now() - timedelta(hours=24)
    runs = (SyncRun.objects.all() if runs is None else runs).filter(started_at__gte=since)
    totals = runs.aggregate(total=Count("id"), ok=Count("id", filter=Q(outcome=SyncOutcome.OK)))
    rate = (totals["ok"] / totals["total"]) if totals["total"] else None
    return {"since": since, "total": totals["total"], "succeeded": totals["ok"], "rate": rate}
