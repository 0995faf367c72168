"""The bonus monitor's part of readiness: how long ago each shard's accounts were last cycled over.

Read from the rows the monitor writes (``MonitorShard``: the lease and the last cycle of each shard). The
current split is the one with the newest cycle (rows of an older ``--shards`` setting are left behind). A
shard's accounts were last cycled over by its own row's last cycle, or, while another monitor holds it on a
live lease (it took the shard over), by that holder's latest cycle. Listed in ``settings.HEALTH_CHECKS``.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from django.conf import settings
from django.utils import timezone
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable

from config.health import ReadsDatabase, Reported, age_text

from .models import MonitorShard


@dataclasses.dataclass(frozen=True)
class ShardAge:
    shard: int
    shards: int
    last_cycle_at: datetime | None
    age_seconds: float | None  # None: never cycled
    stale: bool

    def as_item(self) -> dict:
        return {
            "shard": f"{self.shard}/{self.shards}",
            "status": "unavailable" if self.stale else "ok",
            "last_cycle_at": self.last_cycle_at.isoformat() if self.last_cycle_at else None,
            "age_seconds": None if self.age_seconds is None else round(self.age_seconds, 1),
        }


def shard_ages(rows: list[MonitorShard], *, now: datetime, limit: float) -> list[ShardAge]:
    """The age of each shard of the current split (pure: rows in, ages out)."""
    cycled = [row for row in rows if row.last_cycle_at is not None]
    if not cycled:
        return []
    shards = max(cycled, key=lambda row: row.last_cycle_at).shards
    split = [row for row in rows if row.shards == shards]
    by_holder: dict[str, datetime] = {}
    for row in split:
        if (
            row.holder
            and row.last_cycle_at
            and (row.holder not in by_holder or row.last_cycle_at > by_holder[row.holder])
        ):
            by_holder[row.holder] = row.last_cycle_at
    ages = []
    for row in sorted(split, key=lambda r: r.shard):
        times = [row.last_cycle_at] if row.last_cycle_at else []
        if row.holder and row.lease_until and row.lease_until > now and row.holder in by_holder:
            times.append(by_holder[row.holder])
        last = max(times, default=None)
        age = None if last is None else max((now - last).total_seconds(), 0.0)
        ages.append(ShardAge(row.shard, row.shards, last, age, age is None or age > limit))
    return ages


@dataclasses.dataclass
class MonitorShards(ReadsDatabase, Reported, HealthCheck):
    """Every shard's accounts were cycled over within HEALTH_MONITOR_MAX_AGE_SECONDS."""

    def check(self) -> None:
        limit = settings.HEALTH_MONITOR_MAX_AGE_SECONDS
        ages = shard_ages(list(MonitorShard.objects.all()), now=timezone.now(), limit=limit)
        self.items = [age.as_item() for age in ages]
        if not ages:
            raise ServiceUnavailable("no bonus monitor has completed a cycle yet")
        stale = [age for age in ages if age.stale]
        newest = min(age.age_seconds for age in ages if age.age_seconds is not None)
        self.detail = f"{len(ages)} shard{'s' if len(ages) != 1 else ''}, last cycle {age_text(newest)} ago"
        if stale:
            names = ", ".join(
                f"{a.shard}/{a.shards} ({'never' if a.age_seconds is None else age_text(a.age_seconds) + ' ago'})"
                for a in stale
            )
            raise ServiceUnavailable(f"shard {names}: no cycle within {age_text(limit)}")
