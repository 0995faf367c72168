"""When each account's EA last sent a heartbeat, many accounts at once (fills `accounts.ports.ea_last_beats`).

The newest beat is in Redis (the EA protocol's per-account meta, written on every beat); PostgreSQL's
``EAConnection.last_seen_at`` is written at least every EA_PERSIST_SECONDS and holds when Redis is not
configured or not answering. The newer of the two wins.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from mt5bridge.ea import store
from mt5bridge.ea.models import EAConnection

logger = logging.getLogger(__name__)


def ea_last_beats(account_ids: list) -> dict[str, datetime]:
    ids = [str(pk) for pk in account_ids]
    beats: dict[str, datetime] = {
        str(pk): seen
        for pk, seen in EAConnection.objects.filter(account_id__in=ids, last_seen_at__isnull=False).values_list(
            "account_id", "last_seen_at"
        )
    }
    r = store.client()
    if r is None or not ids:
        return beats
    try:
        pipe = r.pipeline(transaction=False)
        for pk in ids:
            pipe.hget(store.meta_key(pk), "seen")
        seen = pipe.execute()
    except Exception:  # noqa: BLE001 — Redis down: the persisted beat still tells (at most EA_PERSIST_SECONDS older)
        logger.debug("EA beats not read from Redis", exc_info=True)
        return beats
    for pk, value in zip(ids, seen, strict=True):
        if value:
            at = datetime.fromtimestamp(float(value), tz=UTC)
            if pk not in beats or at > beats[pk]:
                beats[pk] = at
    return beats
