"""Monitor shard leases: a process holds its own shard and takes over shards whose holder stopped renewing.

Accounts are split by ``login % shards``; each split has one ``MonitorShard`` row per shard. A monitor
renews the lease of every shard it holds once a cycle (``BONUS_MONITOR_LEASE_SECONDS``, timed by
PostgreSQL's clock so machines need not agree on the time). A shard whose holder's lease ran out (the
process was killed, its machine or its database connection is gone) is claimed by a live monitor of the
same split in addition to its own, with a conditional UPDATE, so exactly one claimant wins and the
shard's accounts are watched again within about one lease. Every change of holder bumps the row's
``epoch`` (a fencing token). When the shard's own process is back it records itself as ``home`` and
the adopter hands the shard back at the start of its next cycle, before it reads any account of it:
no account is ever in two holders' cycles at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db.models import Case, DateTimeField, ExpressionWrapper, F, Q, Value, When
from django.db.models.functions import Now

from .models import MonitorShard


def _in(seconds: float) -> ExpressionWrapper:
    return ExpressionWrapper(Now() + Value(timedelta(seconds=seconds)), output_field=DateTimeField())


@dataclass
class LeaseChange:
    gained: set[int] = field(default_factory=set)
    lost: set[int] = field(default_factory=set)


class ShardLeases:
    """The shards one monitor process holds (``held``), renewed, adopted and handed back once a cycle."""

    def __init__(self, *, shard: int, shards: int, worker: str, adopt: bool = True):
        self.shard, self.shards, self.worker, self.adopt = shard, shards, worker, adopt
        self.held: set[int] = set()
        self._rows_ready = False

    @property
    def seconds(self) -> float:
        return settings.BONUS_MONITOR_LEASE_SECONDS

    def _rows(self):
        return MonitorShard.objects.filter(shards=self.shards)

    def _ensure_rows(self) -> None:
        if not self._rows_ready:
            MonitorShard.objects.bulk_create(
                [MonitorShard(shard=i, shards=self.shards) for i in range(self.shards)], ignore_conflicts=True
            )
            self._rows_ready = True

    def renew(self) -> LeaseChange:
        """One round: the own shard, the adopted ones (or their hand-back), then shards left without a holder."""
        self._ensure_rows()
        change = LeaseChange()
        expired = Q(lease_until__isnull=True) | Q(lease_until__lt=Now())
        new_epoch = Case(When(holder=self.worker, then=F("epoch")), default=F("epoch") + 1)
        own = (
            self._rows()
            .filter(shard=self.shard)
            .filter(Q(holder=self.worker) | expired)
            .update(
                holder=self.worker, lease_until=_in(self.seconds), epoch=new_epoch, home=self.worker, home_seen_at=None
            )
        )
        if own:
            change.gained |= {self.shard} - self.held
            self.held.add(self.shard)
        else:
            # Held by a live adopter: ask for it back; it hands it over at the start of its next cycle.
            self._rows().filter(shard=self.shard).update(home=self.worker, home_seen_at=Now())
            if self.shard in self.held:
                change.lost.add(self.shard)
                self.held.discard(self.shard)
        home_back = Q(home_seen_at__gte=_in(-self.seconds)) & ~Q(home=self.worker)
        for shard in sorted(self.held - {self.shard}):
            kept = (
                self._rows()
                .filter(shard=shard, holder=self.worker)
                .exclude(home_back)
                .update(lease_until=_in(self.seconds))
            )
            if not kept:
                self._rows().filter(shard=shard, holder=self.worker).update(holder="", lease_until=None)
                self.held.discard(shard)
                change.lost.add(shard)
        if self.adopt:
            orphans = (
                self._rows()
                .exclude(shard=self.shard)
                .exclude(holder="")
                .exclude(holder=self.worker)
                .filter(expired)
                .exclude(home_back)
            )
            for shard in orphans.values_list("shard", flat=True):
                taken = (
                    self._rows()
                    .filter(shard=shard)
                    .exclude(holder="")
                    .filter(expired)
                    .exclude(home_back)
                    .update(holder=self.worker, lease_until=_in(self.seconds), epoch=F("epoch") + 1)
                )
                if taken:
                    self.held.add(shard)
                    change.gained.add(shard)
        return change

    def release(self) -> None:
        """Give up every shard at once (a clean stop): a live monitor adopts them on its next cycle."""
        self._rows().filter(holder=self.worker).update(lease_until=None)
        self.held.clear()
