"""Live updates: push an account's latest figures and open positions to its Channels group.

The message carries the figures, so each connected browser gets them without a database
query of its own (one read per change, however many dashboards watch the account).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

from config.redis_clients import redis_client

from .figures import FIGURES
from .models import Position, TradingAccount

logger = logging.getLogger(__name__)


def account_group(account_id) -> str:
    return f"account.{account_id}"


def _text(value) -> str | None:
    return None if value is None else str(value)


def account_payload(account, positions=None) -> dict:
    """The figures and positions of one account as the browser receives them (money as strings)."""
    if positions is None:
        positions = Position.objects.filter(account_id=account.pk).order_by("opened_at")
    return {
        "type": "account",
        "account": str(account.pk),
        "currency": account.currency,
        **{name: _text(getattr(account, name)) for name in FIGURES},
        "sync_status": account.sync_status,
        "last_sync_at": account.last_sync_at.isoformat() if account.last_sync_at else None,
        "last_error": account.last_error,
        "positions": [
            {
                "ticket": p.ticket,
                "symbol": p.symbol,
                "side": "buy" if p.side == 0 else "sell",
                "volume": str(p.volume.normalize()),
                "price_open": str(p.price_open.normalize()),
                "price_current": str(p.price_current.normalize()),
                "swap": str(p.swap),
                "profit": str(p.profit),
            }
            for p in positions
        ],
        "sent_at": time.time(),
    }


def payloads_for(account_ids) -> list[dict]:
    """Latest payloads of several accounts in two queries (the catch-up a reconnecting socket gets)."""
    accounts = list(TradingAccount.objects.filter(pk__in=list(account_ids)))
    by_account = defaultdict(list)
    for position in Position.objects.filter(account_id__in=[a.pk for a in accounts]).order_by("opened_at"):
        by_account[position.account_id].append(position)
    return [account_payload(a, by_account[a.pk]) for a in accounts]


# --- who is watching: a counter per account, so that nobody pays for pushes nobody receives ----------

WATCH_TTL = 86400  # a socket server that died without disconnecting leaves extra pushes for a day, no more
# Without Redis (the embedded default) nobody is counted and every account counts as watched.


def watch_key(account_id) -> str:
    return f"{settings.CACHE_KEY_PREFIX}:live:watch:{account_id}"


def watchers_add(account_ids) -> None:
    r = redis_client()
    if r is None:
        return
    pipe = r.pipeline(transaction=False)
    for account_id in account_ids:
        pipe.incr(watch_key(account_id))
        pipe.expire(watch_key(account_id), WATCH_TTL)
    pipe.execute()


def watchers_remove(account_ids) -> None:
    r = redis_client()
    if r is None:
        return
    pipe = r.pipeline(transaction=False)
    for account_id in account_ids:
        pipe.decr(watch_key(account_id))
    for account_id, left in zip(account_ids, pipe.execute(), strict=True):
        if left <= 0:
            r.delete(watch_key(account_id))


def is_watched(account_id) -> bool:
    r = redis_client()
    if r is None:
        return True
    try:
        return int(r.get(watch_key(account_id)) or 0) > 0
    except Exception:  # when in doubt, push
        return True


def publish_account_update(account_id, payload: dict | None = None) -> None:
    """Tell subscribed dashboards that ``account_id`` changed. Never fails the caller.

    Skipped when no socket watches the account. Callers that hold the figures already (an EA heartbeat)
    pass ``payload`` and the database is not read."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        if not is_watched(account_id):
            return
        if payload is None:
            payloads = payloads_for([account_id])
            if not payloads:
                return
            payload = payloads[0]
        async_to_sync(layer.group_send)(account_group(account_id), {"type": "account.changed", "data": payload})
    except Exception:  # a live push is best effort; the data is already stored
        logger.exception("live update for account %s not delivered", account_id)


def figures_payload(account_id, figures: dict, positions: list[dict]) -> dict:
    """A payload built from figures in hand (same keys as ``account_payload``; fields not known are left out)."""
    return {
        "type": "account",
        "account": str(account_id),
        **{name: _text(figures.get(name)) for name in FIGURES},
        "positions": positions,
        "sent_at": time.time(),
    }
