"""How old an account's data is: the one rule the web app, the API and the admin use to say "stale since".

An account's figures come from its sync (every SYNC_INTERVAL_MINUTES) and, when an EA runs in its terminal,
from the EA's heartbeats. The data is as new as the newer of the two; older than ACCOUNT_STALE_SECONDS it
is stale, and every page shows "stale since <that time>" instead of presenting it as current. The EA's last
beat is read through a port (`accounts.ports.ea_last_beats`, filled by the MT5 bridge), many accounts at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from . import ports


@dataclass(frozen=True)
class DataAge:
    as_of: datetime | None  # the newer of the last sync and the EA's last beat; None: no data yet
    source: str  # "sync", "ea" or "" (no data yet)
    age_seconds: float | None
    stale: bool

    @property
    def stale_since(self) -> datetime | None:
        """When the data was last refreshed, once that is longer ago than the threshold (None while fresh)."""
        return self.as_of if self.stale else None

    @property
    def label(self) -> str:
        """What the pages show: empty while fresh, else "stale since <time>" (or "no data yet")."""
        if not self.stale:
            return ""
        if self.as_of is None:
            return "no data yet"
        return f"stale since {timezone.localtime(self.as_of):%Y-%m-%d %H:%M} {timezone.get_current_timezone_name()}"

    def as_dict(self) -> dict:
        return {
            "as_of": self.as_of,
            "source": self.source,
            "age_seconds": None if self.age_seconds is None else round(self.age_seconds),
            "stale": self.stale,
            "stale_since": self.stale_since,
        }


def data_age(
    *, last_sync_at: datetime | None, last_beat_at: datetime | None, now: datetime | None = None, threshold=None
) -> DataAge:
    """The age of an account's data from its last sync and its EA's last beat (pure: no database)."""
    now = now or timezone.now()
    threshold = settings.ACCOUNT_STALE_SECONDS if threshold is None else threshold
    candidates = [(at, source) for at, source in ((last_sync_at, "sync"), (last_beat_at, "ea")) if at is not None]
    if not candidates:
        return DataAge(None, "", None, True)
    as_of, source = max(candidates, key=lambda pair: pair[0])
    age = max((now - as_of).total_seconds(), 0.0)
    return DataAge(as_of, source, age, age > threshold)


def data_ages(accounts: Iterable, *, now: datetime | None = None) -> dict:
    """{account id: DataAge} for trading accounts (rows or dicts with "id" and "last_sync_at"): one port call."""
    rows = [(a["id"], a["last_sync_at"]) if isinstance(a, dict) else (a.pk, a.last_sync_at) for a in accounts]
    beats = ports.ea_last_beats([pk for pk, _ in rows]) if rows else {}
    now = now or timezone.now()
    return {pk: data_age(last_sync_at=synced, last_beat_at=beats.get(str(pk)), now=now) for pk, synced in rows}


def account_data_age(account) -> DataAge:
    return data_ages([account])[account.pk]
