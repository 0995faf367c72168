"""Live updates: push an account's latest figures and open positions to its Channels group.

The message carries the figures, so each connected browser gets them without a database
query of its own (one read per change, however many dashboards watch the account).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from decimal import Decimal

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

FIGURES = ("balance", "credit", "equity", "margin", "margin_free", "margin_level", "floating_profit")


def account_group(account_id) -> str:
    return f"account.{account_id}"


def _text(value) -> str | None:
    return None if value is None else str(value)


def account_payload(account, positions=None) -> dict:
    """The figures and positions of one account as the browser receives them (money as strings)."""
    from .models import Position

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
    from .models import Position, TradingAccount

    accounts = list(TradingAccount.objects.filter(pk__in=list(account_ids)))
    by_account = defaultdict(list)
    for position in Position.objects.filter(account_id__in=[a.pk for a in accounts]).order_by("opened_at"):
        by_account[position.account_id].append(position)
    return [account_payload(a, by_account[a.pk]) for a in accounts]


def publish_account_update(account_id) -> None:
    """Tell subscribed dashboards that ``account_id`` changed. Never fails the caller."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        payloads = payloads_for([account_id])
        if not payloads:
            return
        async_to_sync(layer.group_send)(account_group(account_id), {"type": "account.changed", "data": payloads[0]})
    except Exception:  # a live push is best effort; the data is already stored
        logger.exception("live update for account %s not delivered", account_id)


# --- price-driven updates between syncs ------------------------------------------------------


def live_prices_pass() -> int:
    """Re-read equity of simulated accounts with open positions (one bulk call per server).

    Stores the new figures and positions' P/L on the account rows and publishes each account
    whose figures moved. Returns how many accounts were published.
    """
    from mt5bridge import gateway as gw

    from .choices import GatewayKind
    from .models import Position, TradingAccount

    accounts = list(
        TradingAccount.objects.filter(
            is_active=True, gateway_kind=GatewayKind.SIMULATED, positions__isnull=False
        ).distinct()
    )
    by_server = defaultdict(list)
    for account in accounts:
        by_server[account.server].append(account)
    changed = []
    for server, group in by_server.items():
        gateway = gw.get_gateway(GatewayKind.SIMULATED, server=server)
        try:
            infos = gateway.accounts_info([a.login for a in group])
        except gw.GatewayError:
            logger.warning("live prices: server %s did not answer", server)
            continue
        for account in group:
            info = infos.get(account.login)
            if info is None:
                continue
            fresh = {
                "balance": info.balance,
                "credit": info.credit,
                "equity": info.equity,
                "margin": info.margin,
                "margin_free": info.margin_free,
                "margin_level": info.margin_level,
                "floating_profit": info.profit,
            }
            if all(_same(getattr(account, k), v) for k, v in fresh.items()):
                continue
            try:
                live_positions = {p.ticket: p for p in gateway.positions(account.login)}
            except gw.GatewayError:
                live_positions = {}
            with transaction.atomic():
                TradingAccount.objects.filter(pk=account.pk).update(**fresh, updated_at=timezone.now())
                for stored in Position.objects.filter(account=account):
                    now_open = live_positions.get(stored.ticket)
                    if now_open is not None:
                        Position.objects.filter(pk=stored.pk).update(
                            price_current=now_open.price_current,
                            profit=now_open.profit,
                            swap=now_open.swap,
                            updated_at=timezone.now(),
                        )
            changed.append(account.pk)
    for account_id in changed:
        publish_account_update(account_id)
    return len(changed)


def _same(stored, fresh) -> bool:
    if stored is None or fresh is None:
        return stored is fresh
    return Decimal(str(stored)).quantize(Decimal("0.01")) == Decimal(str(fresh)).quantize(Decimal("0.01"))
