"""Read paths of the integrations app: account figures, the broker symbol map, stats for the dashboard."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, F, Max, Q, Sum
from django.utils import timezone

from accounts.models import Deal, TradingAccount
from mt5bridge.gateway import DealEntry, DealType
from mt5bridge.symbols import BrokerSymbolMap

from .choices import DeliveryStatus, FiringResult, InboundStatus, LegalBasis, PreflightStatus
from .figures import Figures
from .models import (
    AutomationRule,
    ContactSync,
    InboundWebhookEvent,
    PreflightResult,
    RuleFiring,
    SystemeSettings,
    WebhookDelivery,
    WebhookEndpoint,
)

TRADE_TYPES = (DealType.BUY, DealType.SELL)
CREDIT_TYPES = (DealType.CREDIT, DealType.BONUS)
ENTRY_IN = DealEntry.IN
ZERO = Decimal("0")


def account_figures(account: TradingAccount, now: datetime | None = None) -> Figures:
    now = now or timezone.now()
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    net = F("profit") + F("commission") + F("swap") + F("fee")
    deals = Deal.objects.filter(account=account)
    totals = deals.aggregate(
        profit_month=Sum(net, filter=Q(deal_type__in=TRADE_TYPES, time__gte=month_start)),
        # Credit does not move the balance; everything else since the month began does.
        moved_month=Sum(net, filter=Q(time__gte=month_start) & ~Q(deal_type=3)),
        trades_today=Count("pk", filter=Q(deal_type__in=TRADE_TYPES, entry=ENTRY_IN, time__gte=day_start)),
        last_activity=Max("time", filter=Q(deal_type__in=TRADE_TYPES)),
        last_bonus_at=Max("time", filter=Q(deal_type__in=CREDIT_TYPES, profit__gt=0)),
    )
    balance = account.balance or ZERO
    return Figures(
        balance=balance,
        equity=account.equity or ZERO,
        profit_month=totals["profit_month"] or ZERO,
        start_balance_month=balance - (totals["moved_month"] or ZERO),
        open_trades=account.positions.count(),
        trades_today=totals["trades_today"] or 0,
        last_activity=totals["last_activity"],
        last_bonus_at=totals["last_bonus_at"],
        created_at=account.created_at,
    )


def legal_basis() -> str:
    """The broker's legal basis for marketing sync (the Systeme.io connection's setting in the admin)."""
    return SystemeSettings.load().legal_basis


def marketing_permitted(users):
    """``users`` narrowed to those who may be pushed to Systeme.io: everyone when the broker's legal basis is the
    contract, else only people who opted in (docs/privacy.md)."""
    if legal_basis() == LegalBasis.CONTRACT:
        return users
    return users.filter(marketing_consent=True)


def contact_accounts(user):
    return TradingAccount.objects.filter(owner=user, is_active=True)


def latest_preflight(account: TradingAccount, *, usable_only: bool = False) -> PreflightResult | None:
    results = PreflightResult.objects.filter(account=account)
    if usable_only:
        results = results.exclude(status=PreflightStatus.FAILED)
    return results.order_by("-created_at").first()


def broker_symbol_map(account: TradingAccount) -> BrokerSymbolMap | None:
    """The account's broker symbols from its newest successful pre-flight (for the copy engine's mapping)."""
    result = latest_preflight(account, usable_only=True)
    if result is None or not result.payload:
        return None
    return BrokerSymbolMap.from_payload(result.payload)


def systeme_stats() -> dict:
    row = SystemeSettings.load()
    day_ago = timezone.now() - timedelta(hours=24)
    contacts = ContactSync.objects.aggregate(
        total=Count("pk"),
        linked=Count("pk", filter=~Q(contact_id="")),
        failing=Count("pk", filter=~Q(last_error="")),
    )
    firings = RuleFiring.objects.filter(fired_at__gte=day_ago).aggregate(
        total=Count("pk"), failed=Count("pk", filter=Q(result=FiringResult.FAILED))
    )
    return {
        "configured": bool(row.api_key_encrypted or settings.SYSTEME_API_KEY),
        "enabled": row.enabled,
        "legal_basis": row.legal_basis,
        "connection": {"ok": row.connection_ok, "checked_at": row.connection_checked_at, "error": row.connection_error},
        "last_sync": {"at": row.last_sync_at, "ok": row.last_sync_ok, "summary": row.last_sync_summary},
        "missing_fields": row.missing_fields,
        "contacts": contacts,
        "rules": {
            "enabled": AutomationRule.objects.filter(enabled=True).count(),
            "firings_24h": firings["total"],
            "failed_24h": firings["failed"],
        },
    }


def webhooks_status() -> dict:
    day_ago = timezone.now() - timedelta(hours=24)
    inbound = InboundWebhookEvent.objects.filter(received_at__gte=day_ago).aggregate(
        received=Count("pk"),
        failed=Count("pk", filter=Q(status=InboundStatus.FAILED)),
        replays=Sum("replays"),
    )
    deliveries = WebhookDelivery.objects.filter(created_at__gte=day_ago).aggregate(
        total=Count("pk"),
        succeeded=Count("pk", filter=Q(status=DeliveryStatus.SUCCEEDED)),
        pending=Count("pk", filter=Q(status=DeliveryStatus.PENDING)),
        failed=Count("pk", filter=Q(status=DeliveryStatus.FAILED)),
    )
    last = InboundWebhookEvent.objects.order_by("-received_at").values_list("received_at", flat=True).first()
    return {
        "inbound": {
            "secret_configured": bool(settings.SYSTEME_WEBHOOK_SECRET),
            "last_received_at": last,
            "received_24h": inbound["received"],
            "failed_24h": inbound["failed"],
            "replays_24h": inbound["replays"] or 0,
        },
        "outbound": {
            "endpoints_active": WebhookEndpoint.objects.filter(is_active=True).count(),
            "endpoints_disabled": WebhookEndpoint.objects.filter(is_active=False).count(),
            "deliveries_24h": deliveries,
        },
    }


# Every account sync asks whether anyone wants "account.synced": the answer is shared data, so it lives in the
# Django cache (docs on per-process memos: config/caches.py). Saving or deleting an endpoint drops the key at once and
# again when that write commits, so no process keeps a set read before the commit. The timeout only bounds how long a
# per-process cache (the embedded local-memory one) can lag behind another process's change.
WEBHOOK_EVENTS_KEY = "integrations:webhook-events:v1"
WEBHOOK_EVENTS_SECONDS = 10


def webhook_events_wanted() -> frozenset[str]:
    """The events some active endpoint subscribes to (``"*"`` stands for every event)."""
    events = cache.get(WEBHOOK_EVENTS_KEY)
    if events is None:
        wanted: set[str] = set()
        for chosen in WebhookEndpoint.objects.filter(is_active=True).values_list("events", flat=True):
            wanted.update(chosen or ())
        events = sorted(wanted)
        cache.set(WEBHOOK_EVENTS_KEY, events, WEBHOOK_EVENTS_SECONDS)
    return frozenset(events)


def webhook_event_wanted(event: str) -> bool:
    wanted = webhook_events_wanted()
    return "*" in wanted or event in wanted


def forget_webhook_events() -> None:
    cache.delete(WEBHOOK_EVENTS_KEY)


def webhook_endpoint_changed(**kwargs) -> None:
    """Receiver of post_save / post_delete of ``WebhookEndpoint``: forget now, and again once the write commits."""
    forget_webhook_events()
    transaction.on_commit(forget_webhook_events)
