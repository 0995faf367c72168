"""Read paths for the trader dashboard: a fixed handful of queries per call."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import BigIntegerField, Count, DecimalField, F, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Cast, Coalesce, Round
from django.utils import timezone

from . import sql
from .analytics.tables import BALANCE, BONUS, CANCELED_TYPES, CREDIT, money
from .choices import SyncStatus
from .figures import FIGURES
from .freshness import data_ages
from .models import AccountSnapshot, Deal, Position, SyncRun, TradingAccount
from .permissions import restrict
from .selectors import sync_success_rate

VIEW = "accounts.view_tradingaccount"
FLOW_TYPES = (BALANCE, BONUS)
NOT_PL_TYPES = (BALANCE, CREDIT, BONUS, *CANCELED_TYPES)
CASH = F("profit") + F("commission") + F("swap") + F("fee")
ZERO = Decimal("0")
MONEY_OUT = DecimalField(max_digits=22, decimal_places=2)


def _cents(expression) -> Cast:
    # Round before the cast: SQLite keeps decimals as binary floats (0.29 * 100 = 28.999...).
    return Cast(Round(expression * 100), BigIntegerField())


# --- Dashboard ----------------------------------------------------------------------------


def period_starts(now: datetime | None = None) -> tuple[datetime, datetime]:
    """Midnight today and the first of this month, in the project's time zone."""
    local = timezone.localtime(now or timezone.now())
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return day, day.replace(day=1)


def _snapshot_before(moment: datetime, field: str) -> Subquery:
    return Subquery(
        AccountSnapshot.objects.filter(account=OuterRef("pk"), taken_at__lt=moment)
        .order_by("-taken_at")
        .values(field)[:1]
    )


ACCOUNT_FIELDS = (
    "id",
    "name",
    "login",
    "server",
    "broker",
    "currency",
    "category",
    "is_active",
    "sync_status",
    "last_sync_at",
    "last_error",
    "consecutive_errors",
    *FIGURES,
)

STATUS_LABELS = {value: str(label) for value, label in SyncStatus.choices}
CONNECTION = {
    SyncStatus.OK: "connected",
    SyncStatus.PENDING: "connecting",
    SyncStatus.ERROR: "error",
    SyncStatus.AUTH_FAILED: "auth_failed",
    SyncStatus.PAUSED: "paused",
}


def _gain(
    *, balance: Decimal, floating_now: Decimal, floating_start: Decimal | None, realized: Decimal, flows: Decimal
) -> tuple[Decimal, Decimal]:
    """(gain in money, the base it is measured against) for one period.

    The balance at the period start is today's balance less the period's deals; the floating
    P/L at the start comes from the last snapshot before it (none: nothing was open).
    """
    start_floating = floating_start or ZERO
    start_balance = balance - realized - flows
    gain = realized + floating_now - start_floating
    base = start_balance + start_floating + max(flows, ZERO)
    return gain, base


def _gain_pct(gain: Decimal, base: Decimal) -> float | None:
    return round(float(gain / base * 100), 4) if base > 0 else None


def _summary_rows_orm(visible, day_start: datetime, month_start: datetime) -> tuple[list[dict], dict]:
    """The accounts' figures and their deal sums of this month and today, through the ORM (two queries)."""
    accounts = list(
        visible.annotate(
            floating_day_start=_snapshot_before(day_start, "floating_profit"),
            floating_month_start=_snapshot_before(month_start, "floating_profit"),
        )
        .order_by("name", "login")
        .values(*ACCOUNT_FIELDS, "floating_day_start", "floating_month_start")
    )
    sums: dict = {}
    if accounts:
        pl, flow = ~Q(deal_type__in=NOT_PL_TYPES), Q(deal_type__in=FLOW_TYPES)
        today = Q(time__gte=day_start)
        zero = Coalesce
        sums = {
            row["account_id"]: row
            for row in Deal.objects.filter(account_id__in=[a["id"] for a in accounts], time__gte=month_start)
            .order_by()
            .values("account_id")
            .annotate(
                realized_month=zero(Sum(CASH, filter=pl, output_field=MONEY_OUT), ZERO, output_field=MONEY_OUT),
                flows_month=zero(Sum(CASH, filter=flow, output_field=MONEY_OUT), ZERO, output_field=MONEY_OUT),
                realized_day=zero(Sum(CASH, filter=pl & today, output_field=MONEY_OUT), ZERO, output_field=MONEY_OUT),
                flows_day=zero(Sum(CASH, filter=flow & today, output_field=MONEY_OUT), ZERO, output_field=MONEY_OUT),
            )
        }
    return accounts, sums


_SUMMARY_SUMS = ("realized_month", "flows_month", "realized_day", "flows_day")


def _summary_rows_postgres(visible, day_start: datetime, month_start: datetime) -> tuple[list[dict], dict]:
    """What `_summary_rows_orm` returns, in one round trip (the permission path's query is its subquery)."""
    # Without the model's default ordering: an ORDER BY inside the IN (...) only costs PostgreSQL a sort.
    visible_sql, visible_params = visible.order_by().values("pk").query.sql_with_params()
    # The subquery's own placeholders are positional; turn the statement into one named style.
    named = {f"v{i}": value for i, value in enumerate(visible_params)}
    visible_sql = visible_sql.replace("%%", "%%%%") % tuple(f"%(v{i})s" for i in range(len(visible_params)))
    columns = ", ".join(f"a.{connection.ops.quote_name(name)}" for name in ACCOUNT_FIELDS)
    params = {
        "day": day_start,
        "month": month_start,
        "not_pl": list(NOT_PL_TYPES),
        "flow": list(FLOW_TYPES),
        **named,
    }
    fetched = sql.dashboard_summary_rows(columns, visible_sql, params)
    width = len(ACCOUNT_FIELDS)
    accounts, sums = [], {}
    for row in fetched:
        account = dict(zip(ACCOUNT_FIELDS, row[:width], strict=True))
        account["floating_day_start"], account["floating_month_start"] = row[width], row[width + 1]
        accounts.append(account)
        sums[account["id"]] = dict(zip(_SUMMARY_SUMS, row[width + 2 :], strict=True))
    return accounts, sums


def dashboard_summary(user, *, now: datetime | None = None) -> dict[str, Any]:
    """Totals (one row per currency) and one row per account the user can see.

    One query on PostgreSQL, two elsewhere, whatever the number of accounts (plus the role lookups
    `restrict` makes).
    """
    now = now or timezone.now()
    day_start, month_start = period_starts(now)
    visible = restrict(user, VIEW, TradingAccount.objects.all())
    if connection.vendor == "postgresql":
        accounts, sums = _summary_rows_postgres(visible, day_start, month_start)
    else:
        accounts, sums = _summary_rows_orm(visible, day_start, month_start)
    rows, totals = [], {}
    ages = data_ages(accounts, now=now)
    for a in accounts:
        s = sums.get(a["id"], {})
        age = ages[a["id"]]
        floating = a["floating_profit"]
        day_gain, day_base = _gain(
            balance=a["balance"],
            floating_now=floating,
            floating_start=a["floating_day_start"],
            realized=s.get("realized_day", ZERO),
            flows=s.get("flows_day", ZERO),
        )
        month_gain, month_base = _gain(
            balance=a["balance"],
            floating_now=floating,
            floating_start=a["floating_month_start"],
            realized=s.get("realized_month", ZERO),
            flows=s.get("flows_month", ZERO),
        )
        status = a["sync_status"]
        rows.append(
            {
                "id": str(a["id"]),
                "name": a["name"],
                "login": a["login"],
                "server": a["server"],
                "broker": a["broker"],
                "currency": a["currency"],
                "category": a["category"],
                "balance": str(a["balance"]),
                "credit": str(a["credit"]),
                "equity": str(a["equity"]),
                "margin": str(a["margin"]),
                "margin_free": str(a["margin_free"]),
                "margin_level": str(a["margin_level"]) if a["margin_level"] is not None else None,
                "floating_profit": str(floating),
                "today_gain": str(day_gain),
                "today_gain_pct": _gain_pct(day_gain, day_base),
                "month_gain": str(month_gain),
                "month_gain_pct": _gain_pct(month_gain, month_base),
                "last_sync_at": a["last_sync_at"].isoformat() if a["last_sync_at"] else None,
                # Never shown as current once old (accounts/freshness.py): the page says "stale since".
                "data_as_of": age.as_of.isoformat() if age.as_of else None,
                "stale": age.stale,
                "stale_since": age.stale_since.isoformat() if age.stale_since else None,
                "stale_label": age.label,
                "is_active": a["is_active"],
                "sync_status": status,
                "sync_status_display": STATUS_LABELS.get(status, status),
                "connection": CONNECTION.get(status, status) if a["is_active"] else "inactive",
                "last_error": a["last_error"],
                "consecutive_errors": a["consecutive_errors"],
            }
        )
        t = totals.setdefault(
            a["currency"],
            {
                "accounts": 0,
                "balance": ZERO,
                "credit": ZERO,
                "equity": ZERO,
                "margin": ZERO,
                "floating_profit": ZERO,
                "today_gain": ZERO,
                "today_base": ZERO,
                "month_gain": ZERO,
                "month_base": ZERO,
            },
        )
        t["accounts"] += 1
        for key in ("balance", "credit", "equity", "margin"):
            t[key] += a[key]
        t["floating_profit"] += floating
        t["today_gain"] += day_gain
        t["today_base"] += max(day_base, ZERO)
        t["month_gain"] += month_gain
        t["month_base"] += max(month_base, ZERO)
    total_rows = []
    for currency in sorted(totals):
        t = totals[currency]
        margin_level = (t["equity"] / t["margin"] * 100).quantize(Decimal("0.01")) if t["margin"] else None
        total_rows.append(
            {
                "currency": currency,
                "accounts": t["accounts"],
                "balance": str(t["balance"]),
                "credit": str(t["credit"]),
                "equity": str(t["equity"]),
                "margin": str(t["margin"]),
                "margin_level": str(margin_level) if margin_level is not None else None,
                "floating_profit": str(t["floating_profit"]),
                "today_gain": str(t["today_gain"]),
                "today_gain_pct": _gain_pct(t["today_gain"], t["today_base"]),
                "month_gain": str(t["month_gain"]),
                "month_gain_pct": _gain_pct(t["month_gain"], t["month_base"]),
            }
        )
    return {
        "generated_at": now.isoformat(),
        "day_start": day_start.isoformat(),
        "month_start": month_start.isoformat(),
        "totals": total_rows,
        "accounts": rows,
    }


# --- MT5 dashboard seed: /api/mt5/stats -------------------------------------------------


def mt5_stats(user, *, now: datetime | None = None) -> dict[str, Any]:
    """Aggregates over the accounts the user can see: counts, money per currency, sync health."""
    now = now or timezone.now()
    visible = restrict(user, VIEW, TradingAccount.objects.all())
    summary = dashboard_summary(user, now=now)
    by_status = dict(visible.order_by().values_list("sync_status").annotate(n=Count("id")))
    day_start, _ = period_starts(now)
    activity = (
        Deal.objects.filter(account__in=visible.values("pk"), time__gte=day_start)
        .exclude(deal_type__in=NOT_PL_TYPES)
        .aggregate(deals=Count("id"))
    )
    positions = Position.objects.filter(account__in=visible.values("pk")).aggregate(n=Count("id"), profit=Sum("profit"))
    health = sync_success_rate(runs=SyncRun.objects.filter(account__in=visible.values("pk")), since=None)
    rows = summary["accounts"]
    last_sync = max((r["last_sync_at"] for r in rows if r["last_sync_at"]), default=None)
    return {
        "generated_at": summary["generated_at"],
        "accounts": {
            "total": len(rows),
            "active": sum(1 for r in rows if r["is_active"]),
            "connected": sum(1 for r in rows if r["connection"] == "connected"),
            "by_sync_status": {status: by_status.get(status, 0) for status in SyncStatus.values},
        },
        "totals": summary["totals"],
        "open_positions": positions["n"],
        "open_positions_profit": money(int((positions["profit"] or ZERO) * 100)),
        "trades_today": activity["deals"],
        "last_sync_at": last_sync,
        "sync_health": {
            "since": health["since"].isoformat(),
            "total": health["total"],
            "succeeded": health["succeeded"],
            "rate": health["rate"],
        },
    }
