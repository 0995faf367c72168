"""When each account's EA last sent a heartbeat, many accounts at once (fills `accounts.ports.ea_last_beats`).

The newest beat is in Redis (the EA protocol's per-account meta, written on every beat); PostgreSQL's
``EAConnection.last_seen_at`` is written at least every EA_PERSIST_SECONDS and holds when Redis is not
configured or not answering. The newer of the two wins.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from django.db import connection

from mt5bridge.ea import store
from mt5bridge.ea.models import EAConnection

logger = logging.getLogger(__name__)

# Each key's "seen" in one command: a pipeline of one HGET per account cost the dashboard ~8 µs of client CPU per
# account (50 accounts: 0.4 ms, against 0.1 ms for this).
_SEEN_SCRIPT = "local seen = {} for i, key in ipairs(KEYS) do seen[i] = redis.call('HGET', key, 'seen') end return seen"
_PERSISTED_SQL = (
    "SELECT account_id, last_seen_at FROM mt5bridge_eaconnection"
    " WHERE account_id = ANY(%s::uuid[]) AND last_seen_at IS NOT NULL"
)


def _persisted(account_ids: list) -> dict[str, datetime]:
    """EAConnection.last_seen_at of the accounts, in one statement with the ids as one array parameter (the ORM's
    IN list prepared each id as a separate value: ~0.6 ms for 50 accounts)."""
    with connection.cursor() as cursor:
        cursor.execute(_PERSISTED_SQL, [account_ids])
        return {str(pk): seen for pk, seen in cursor.fetchall()}


def ea_last_beats(account_ids: list) -> dict[str, datetime]:
    ids = [str(pk) for pk in account_ids]
    if not ids:
        return {}
    beats = _persisted(ids) if connection.vendor == "postgresql" else _persisted_orm(ids)
    r = store.client()
    if r is None:
        return beats
    try:
        seen = r.eval(_SEEN_SCRIPT, len(ids), *[store.meta_key(pk) for pk in ids])
    except Exception:  # noqa: BLE001 — Redis down: the persisted beat still tells (at most EA_PERSIST_SECONDS older)
        logger.debug("EA beats not read from Redis", exc_info=True)
        return beats
    for pk, value in zip(ids, seen, strict=True):
        if value:
            at = datetime.fromtimestamp(float(value), tz=UTC)
            if pk not in beats or at > beats[pk]:
                beats[pk] = at
    return beats


def _persisted_orm(ids: list[str]) -> dict[str, datetime]:
    return {
        str(pk): seen
        for pk, seen in EAConnection.objects.filter(account_id__in=ids, last_seen_at__isnull=False).values_list(
            "account_id", "last_seen_at"
        )
    }
