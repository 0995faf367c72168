"""Which plan applies to a user, from plain values: the pure rules behind every gate."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

# Subscription statuses that pay for the subscribed plan (past_due only inside its grace period).
PAYING = ("active", "trialing")
# When a customer has several subscriptions, the first status in this order is the one that counts.
STATUS_PRIORITY = (
    "active",
    "trialing",
    "past_due",
    "unpaid",
    "incomplete",
    "paused",
    "canceled",
    "incomplete_expired",
    "",
)
# Subscriptions recorded from local billing events (docs/billing.md) carry this id prefix: they count in local
# mode only, and Stripe's mirrored subscriptions count with Stripe only.
LOCAL_SUBSCRIPTION_PREFIX = "local:"


@dataclass(frozen=True)
class PlanState:
    """What is known about one user's plan, as plain values."""

    manual_slug: str = ""
    manual_until: datetime | None = None
    subscribed_slug: str = ""
    status: str = ""
    trial_end: datetime | None = None
    past_due_since: datetime | None = None
    subscription_id: str = ""


def resolve_plan(
    state: PlanState, *, local_mode: bool, default_slug: str, free_slug: str, grace: timedelta, now: datetime
) -> tuple[str, str]:
    """(plan slug, reason) for ``state`` at ``now``.

    A staff choice wins while it lasts; local mode puts everyone on the default plan unless a local
    billing event recorded a subscription; a subscription (Stripe's, or a local one in local mode) that is
    active or trialing gives its plan, past_due keeps it for the grace period, and anything else (canceled,
    incomplete, unpaid, paused) falls to Free.
    """
    if state.manual_slug and (state.manual_until is None or now < state.manual_until):
        return state.manual_slug, "staff"
    local_subscription = state.subscription_id.startswith(LOCAL_SUBSCRIPTION_PREFIX)
    if local_mode and not local_subscription:
        return default_slug, "local_mode"
    if not state.subscribed_slug or not state.status or local_subscription != local_mode:
        return free_slug, "no_subscription"
    if state.status == "active":
        return state.subscribed_slug, "active"
    if state.status == "trialing":
        # Stripe moves a trial on (active or past_due) by itself; the grace covers a late event.
        if state.trial_end is None or now < state.trial_end + grace:
            return state.subscribed_slug, "trialing"
        return free_slug, "trial_over"
    if state.status == "past_due":
        since = state.past_due_since or now
        if now < since + grace:
            return state.subscribed_slug, "past_due_grace"
        return free_slug, "past_due_grace_over"
    return free_slug, state.status


def past_due_since(
    *, previous_status: str, previous_since: datetime | None, status: str, now: datetime
) -> datetime | None:
    """When the current past_due spell started: kept while it lasts, cleared when it ends."""
    if status != "past_due":
        return None
    if previous_status == "past_due" and previous_since is not None:
        return previous_since
    return now


def accounts_to_keep(account_ids_oldest_first: list, limit: int | None, *, preferred: list | None = None) -> list:
    """Which accounts stay active under ``limit``: the preferred ones first, then the oldest."""
    if limit is None:
        return list(account_ids_oldest_first)
    ordered = [a for a in (preferred or []) if a in account_ids_oldest_first]
    ordered += [a for a in account_ids_oldest_first if a not in ordered]
    return ordered[:limit]


def best_subscription(subscriptions: list[dict]) -> dict | None:
    """The subscription that decides the plan: best status first, then the richest plan, then newest.

    Each item: {"status", "rank" (plan rank or -1), "created" (sortable)}.
    """
    if not subscriptions:
        return None

    def key(sub: dict):
        status = sub.get("status") or ""
        position = STATUS_PRIORITY.index(status) if status in STATUS_PRIORITY else len(STATUS_PRIORITY)
        rank = sub.get("rank")
        return (position, -(rank if rank is not None else -1), -(sub.get("created") or 0))

    return sorted(subscriptions, key=key)[0]
