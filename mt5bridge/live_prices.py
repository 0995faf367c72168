"""Price-driven updates between syncs: simulated accounts' equity follows the moving market.

One bulk ``accounts_info`` call per simulated server; an account whose figures moved gets its new
figures and its positions' P/L stored, and a live update (`accounts.live.publish_account_update`).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from accounts.choices import GatewayKind
from accounts.figures import figures_from_mt5
from accounts.live import publish_account_update
from accounts.models import Position, TradingAccount

from . import gateway as gw

logger = logging.getLogger(__name__)


def live_prices_pass() -> int:
    """Re-read equity of simulated accounts with open positions. Returns how many accounts were published."""
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
            fresh = figures_from_mt5(info)
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
