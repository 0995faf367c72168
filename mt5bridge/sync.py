"""Account sync: pull account info, positions, orders and deals through the gateway and upsert them."""

from __future__ import annotations

import logging
import time
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.choices import GatewayKind, SyncOutcome, SyncStatus
from accounts.figures import figures_from_mt5
from accounts.live import publish_account_update
from accounts.models import AccountSnapshot, Deal, Order, Position, SyncRun, TradingAccount
from accounts.vault import SecretUnreadable, decrypt
from entitlements.gates import sync_history_start
from mt5bridge import gateway as gw
from mt5bridge import sql

logger = logging.getLogger(__name__)

ERROR_TEXT_LIMIT = 500
# Deals are re-read from a little before the newest one we hold: a deal stamped in the same
# second as the last sync may have arrived after it.
DEAL_OVERLAP = timedelta(seconds=2)


@dataclass(frozen=True)
class SyncResult:
    account_id: str
    outcome: str
    deals_added: int = 0
    duration_ms: int = 0
    error: str = ""


def sync_queue_for(account: TradingAccount) -> str:
    """The Celery queue that syncs ``account``.

    A terminal holds one account at a time and the MetaTrader5 package one terminal per
    process, so each configured terminal has a queue served by a single worker process.
    """
    if account.gateway_kind == GatewayKind.TERMINAL and settings.MT5_TERMINAL_PATHS:
        index = zlib.crc32(str(account.login).encode()) % len(settings.MT5_TERMINAL_PATHS)
        return f"terminal-{index}"
    return "sync"


# Plans keep whole days of history (at least one), so a newest deal younger than this needs no plan lookup.
SHORTEST_HISTORY_WINDOW = timedelta(days=1)


def history_start(account: TradingAccount, now: datetime) -> datetime:
    """Where this sync starts reading deals: after the newest one held, or the history window."""
    if account.last_deal_time is not None and account.last_deal_time - DEAL_OVERLAP >= now - SHORTEST_HISTORY_WINDOW:
        return account.last_deal_time - DEAL_OVERLAP  # the steady state: no plan lookup on the hot path
    window_start = sync_history_start(account.owner_id, now=now)  # the plan's window; unlimited: everything
    if account.last_deal_time is None:
        return window_start
    return max(account.last_deal_time - DEAL_OVERLAP, window_start)


# The account's columns a sync reads (the rest, ~60, it never looks at: loading them was half the read's cost).
SYNC_READS = (
    "owner_id",
    "login",
    "server",
    "password_encrypted",
    "gateway_kind",
    "is_active",
    "sync_status",
    "last_deal_time",
    "currency",
    "broker",
)


def account_sync(*, account_id, trigger: str = "schedule", gateway: gw.MT5Gateway | None = None) -> SyncResult:
    """Sync one account. Records a SyncRun either way; never loses what is already stored.

    Raises ``GatewayUnavailable`` after recording it, so a Celery task can retry with backoff.
    """
    started = time.perf_counter()
    started_at = timezone.now()
    account = TradingAccount.objects.only(*SYNC_READS).get(pk=account_id)
    if not account.is_active or account.sync_status == SyncStatus.PAUSED:
        return SyncResult(str(account.pk), "skipped")
    try:
        password = decrypt(account.password_encrypted)
        credentials = gw.Credentials(login=account.login, password=password, server=account.server)
        gateway = gateway or gw.get_gateway(account.gateway_kind, server=account.server)
        info = gateway.login(credentials)
        positions = gateway.positions(account.login)
        orders = gateway.orders(account.login)
        deals = gateway.deals(account.login, history_start(account, started_at), started_at + timedelta(days=1))
    except gw.AuthenticationFailed:
        return _record_failure(
            account,
            started,
            started_at,
            trigger,
            SyncOutcome.AUTH_FAILED,
            "The MT5 server refused the login or password. Update the password to resume.",
        )
    except SecretUnreadable:
        return _record_failure(
            account,
            started,
            started_at,
            trigger,
            SyncOutcome.ERROR,
            "The stored password cannot be decrypted; enter it again.",
        )
    except gw.GatewayUnavailable as exc:
        _record_failure(
            account, started, started_at, trigger, SyncOutcome.UNAVAILABLE, f"MT5 server unreachable: {exc}"
        )
        raise
    except gw.GatewayError as exc:
        return _record_failure(account, started, started_at, trigger, SyncOutcome.ERROR, f"MT5 error: {exc}")

    figures = figures_from_mt5(info)
    newest_deal = max((deal.time for deal in deals), default=None)
    changes = {
        **figures,
        "leverage": info.leverage,
        "currency": info.currency or account.currency,
        "broker": info.company or account.broker,
        "is_hedging": info.margin_mode == gw.MarginMode.RETAIL_HEDGING,
        "sync_status": SyncStatus.OK,
        "last_sync_at": started_at,
        "last_deal_time": max(filter(None, [account.last_deal_time, newest_deal]), default=None),
        "consecutive_errors": 0,
        "last_error": "",
        "paused_at": None,
        "updated_at": started_at,
    }
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Deals, positions, orders, the snapshot and the account in one statement (one round trip, one plan).
            deals_added = sql.account_sync_write(
                account.pk,
                deals=[_deal_columns(deal) for deal in deals],
                positions=(_position_rows(positions, started_at), POSITION_UPDATES),
                orders=(_order_rows(orders), ORDER_UPDATES),
                snapshot={"taken_at": started_at, **figures},
                account=changes,
            )
        else:
            deals_added = _store_deals(account, deals)
            _replace_positions(account, positions, started_at)
            _replace_orders(account, orders)
            AccountSnapshot.objects.create(account=account, taken_at=started_at, **figures)
            TradingAccount.objects.filter(pk=account.pk).update(**changes)
        duration_ms = int((time.perf_counter() - started) * 1000)
        SyncRun.objects.create(
            account=account,
            started_at=started_at,
            duration_ms=duration_ms,
            outcome=SyncOutcome.OK,
            deals_added=deals_added,
            positions=len(positions),
            orders=len(orders),
            trigger=trigger,
        )
        transaction.on_commit(lambda: _announce(account.pk))
    return SyncResult(str(account.pk), SyncOutcome.OK, deals_added, duration_ms)


def _announce(account_id) -> None:
    publish_account_update(account_id)


def _record_failure(account, started, started_at, trigger, outcome, message) -> SyncResult:
    message = message[:ERROR_TEXT_LIMIT]
    duration_ms = int((time.perf_counter() - started) * 1000)
    with transaction.atomic():
        locked = TradingAccount.objects.select_for_update().only("consecutive_errors").get(pk=account.pk)
        errors = locked.consecutive_errors + 1
        if errors >= settings.SYNC_MAX_CONSECUTIVE_ERRORS:
            status, paused_at = SyncStatus.PAUSED, started_at
            message = f"Paused after {errors} failed syncs in a row. Last error: {message}"[:ERROR_TEXT_LIMIT]
        elif outcome == SyncOutcome.AUTH_FAILED:
            status, paused_at = SyncStatus.AUTH_FAILED, None
        else:
            status, paused_at = SyncStatus.ERROR, None
        TradingAccount.objects.filter(pk=account.pk).update(
            consecutive_errors=errors, last_error=message, sync_status=status, paused_at=paused_at
        )
        SyncRun.objects.create(
            account=account,
            started_at=started_at,
            duration_ms=duration_ms,
            outcome=outcome,
            error=message,
            trigger=trigger,
        )
    logger.warning("sync of account %s failed (%s): %s", account.pk, outcome, message)
    return SyncResult(str(account.pk), outcome, duration_ms=duration_ms, error=message)


def _store_deals(account: TradingAccount, deals: list[gw.Deal]) -> int:
    """Insert the deals not held yet; returns how many were new. Deals never change once made."""
    if not deals:
        return 0
    rows = [_deal_columns(deal) for deal in deals]
    if connection.vendor == "postgresql":
        return sql.account_rows_write(Deal, account.pk, rows)
    known = set(
        Deal.objects.filter(account=account, ticket__in=[r["ticket"] for r in rows]).values_list("ticket", flat=True)
    )
    fresh = [Deal(account=account, **row) for row in rows if row["ticket"] not in known]
    # A concurrent sync inserting the same ticket is harmless.
    Deal.objects.bulk_create(fresh, ignore_conflicts=True, batch_size=1000)
    return len(fresh)


def _deal_columns(deal: gw.Deal) -> dict:
    return {
        "ticket": deal.ticket,
        "order": deal.order,
        "time": deal.time,
        "deal_type": int(deal.type),
        "entry": int(deal.entry),
        "magic": deal.magic,
        "position_id": deal.position_id,
        "reason": int(deal.reason),
        "volume": deal.volume,
        "price": deal.price,
        "commission": deal.commission,
        "swap": deal.swap,
        "profit": deal.profit,
        "fee": deal.fee,
        "symbol": deal.symbol,
        "comment": deal.comment[:64],
        "external_id": deal.external_id[:64],
    }


POSITION_UPDATES = ("volume", "price_current", "sl", "tp", "swap", "profit", "comment", "updated_at")
ORDER_UPDATES = ("volume_current", "price_open", "price_current", "price_stoplimit", "sl", "tp", "expires_at")


def _replace_positions(account: TradingAccount, positions: list[gw.Position], now: datetime) -> None:
    replace_account_rows(Position, account.pk, _position_rows(positions, now), POSITION_UPDATES)


def _position_rows(positions: list[gw.Position], now: datetime) -> list[dict]:
    rows = [
        {
            "ticket": p.ticket,
            "symbol": p.symbol,
            "side": int(p.type),
            "volume": p.volume,
            "price_open": p.price_open,
            "price_current": p.price_current,
            "sl": p.sl,
            "tp": p.tp,
            "swap": p.swap,
            "profit": p.profit,
            "magic": p.magic,
            "comment": p.comment[:64],
            "identifier": p.identifier,
            "opened_at": p.time,
            "updated_at": p.time_update or now,
        }
        for p in positions
    ]
    return list({row["ticket"]: row for row in rows}.values())  # one row per ticket, the last reported wins


def _replace_orders(account: TradingAccount, orders: list[gw.PendingOrder]) -> None:
    replace_account_rows(Order, account.pk, _order_rows(orders), ORDER_UPDATES)


def _order_rows(orders: list[gw.PendingOrder]) -> list[dict]:
    rows = [
        {
            "ticket": o.ticket,
            "symbol": o.symbol,
            "order_type": int(o.type),
            "volume_initial": o.volume_initial,
            "volume_current": o.volume_current,
            "price_open": o.price_open,
            "price_current": o.price_current,
            "price_stoplimit": o.price_stoplimit,
            "sl": o.sl,
            "tp": o.tp,
            "magic": o.magic,
            "comment": o.comment[:64],
            "placed_at": o.time_setup,
            "expires_at": o.time_expiration,
        }
        for o in orders
    ]
    return list({row["ticket"]: row for row in rows}.values())  # one row per ticket, the last reported wins


def replace_account_rows(model, account_id, rows: list[dict], updates: tuple[str, ...]) -> None:
    """Make the account's rows of ``model`` exactly ``rows`` (by ticket): gone ones deleted, others upserted
    (``updates`` are the columns an existing ticket takes from its new row). Sync and EA heartbeats share it."""
    rows = list({row["ticket"]: row for row in rows}.values())  # one row per ticket, the last reported wins
    if connection.vendor == "postgresql":
        sql.account_rows_write(model, account_id, rows, updates=updates, replace=True)
        return
    model.objects.filter(account_id=account_id).exclude(ticket__in=[r["ticket"] for r in rows]).delete()
    if rows:
        model.objects.bulk_create(
            [model(account_id=account_id, **row) for row in rows],
            update_conflicts=True,
            unique_fields=["account", "ticket"],
            update_fields=list(updates),
        )


def accounts_due_for_sync(now: datetime | None = None):
    now = now or timezone.now()
    cutoff = now - timedelta(minutes=settings.SYNC_INTERVAL_MINUTES)
    return (
        TradingAccount.objects.filter(is_active=True)
        .exclude(sync_status=SyncStatus.PAUSED)
        .filter(Q(last_sync_at__isnull=True) | Q(last_sync_at__lte=cutoff))
        .only("pk", "login", "gateway_kind")
    )
