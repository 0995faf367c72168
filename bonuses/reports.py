"""Bonus reports (summary by campaign, conversions, cancellations, leverage, finance by date range); CSV / XLSX."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, DateField, Q, Sum
from django.db.models.functions import Trunc
from django.utils import timezone
from openpyxl import Workbook

from config.errors import ServiceError

from .choices import OPEN_BONUS_STATUSES, BonusStatus, BonusType, CancelReason, OperationKind, OperationStatus
from .models import Bonus, BonusOperation

_MAX_ROWS = 50_000


def _plain(value):
    if isinstance(value, Decimal):
        return str(value)
    return value


def summary() -> list[dict]:
    rows = (
        Bonus.objects.values("campaign_id", "campaign__name", "bonus_type")
        .annotate(
            bonuses=Count("id"),
            active=Count("id", filter=Q(status__in=OPEN_BONUS_STATUSES)),
            converted=Count("id", filter=Q(status=BonusStatus.CONVERTED)),
            cancelled=Count("id", filter=Q(status__in=[BonusStatus.CANCELLED, BonusStatus.EXPIRED])),
            given=Sum("amount", filter=~Q(status=BonusStatus.FAILED)),
            outstanding=Sum("credit_outstanding"),
            converted_amount=Sum("converted_amount"),
            removed=Sum("removed_amount"),
        )
        .order_by("campaign_id")
    )
    return [
        {
            "campaign_id": r["campaign_id"],
            "campaign": r["campaign__name"],
            "bonus_type": r["bonus_type"],
            "bonuses": r["bonuses"],
            "active": r["active"],
            "converted": r["converted"],
            "cancelled": r["cancelled"],
            "given": _plain(r["given"] or Decimal("0")),
            "outstanding": _plain(r["outstanding"] or Decimal("0")),
            "converted_amount": _plain(r["converted_amount"] or Decimal("0")),
            "removed": _plain(r["removed"] or Decimal("0")),
        }
        for r in rows
    ]


def conversions() -> list[dict]:
    rows = Bonus.objects.filter(bonus_type=BonusType.CONVERTIBLE).select_related("campaign").order_by("-created_at")
    return [
        {
            "bonus_id": b.pk,
            "login": b.login,
            "campaign": b.campaign.name,
            "status": b.status,
            "amount": _plain(b.amount),
            "converted_amount": _plain(b.converted_amount),
            "lots_traded": _plain(b.lots_traded),
            "lots_required": _plain(b.lots_required),
            "progress_percent": _plain(b.lot_progress),
        }
        for b in rows[:_MAX_ROWS]
    ]


def cancellations() -> list[dict]:
    """Bonuses that ended without conversion, by what ended them (withdrawal, drawdown, expiry, staff), then campaign."""
    rows = (
        Bonus.objects.filter(status__in=[BonusStatus.CANCELLED, BonusStatus.EXPIRED])
        .values("cancel_reason", "campaign__name")
        .annotate(bonuses=Count("id"), removed=Sum("removed_amount"))
        .order_by("cancel_reason", "campaign__name")
    )
    labels = dict(CancelReason.choices)
    return [
        {
            "reason": r["cancel_reason"],
            "reason_label": labels.get(r["cancel_reason"], r["cancel_reason"]),
            "campaign": r["campaign__name"],
            "bonuses": r["bonuses"],
            "credit_removed": _plain(r["removed"] or Decimal("0")),
        }
        for r in rows
    ]


def leverage() -> list[dict]:
    rows = (
        BonusOperation.objects.filter(kind=OperationKind.LEVERAGE, status=OperationStatus.DONE)
        .select_related("bonus", "bonus__campaign")
        .order_by("-done_at")
    )
    return [
        {
            "bonus_id": op.bonus_id,
            "login": op.login,
            "campaign": op.bonus.campaign.name,
            "original_leverage": op.bonus.original_leverage,
            "leverage": op.leverage,
            "at": op.done_at.isoformat(),
            "bonus_status": op.bonus.status,
        }
        for op in rows[:_MAX_ROWS]
    ]


REPORTS: dict[str, Callable[[], list[dict]]] = {
    "summary": summary,
    "conversions": conversions,
    "cancellations": cancellations,
    "leverage": leverage,
}


def export(name: str, kind: str) -> tuple[bytes, str]:
    """The report as CSV or XLSX bytes and their content type."""
    rows = REPORTS[name]()
    headers = list(rows[0]) if rows else ["empty"]
    if kind == "csv":
        return csv_bytes(rows, headers), "text/csv"
    book = Workbook(write_only=True)
    sheet = book.create_sheet(name)
    sheet.append(headers)
    for row in rows:
        sheet.append([_cell(row[h]) for h in headers])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue(), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def csv_bytes(rows: list[dict], headers: list[str]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=headers)
    writer.writeheader()
    for row in rows:
        # Spreadsheet formula injection: a cell starting with = + - @ is kept as text.
        writer.writerow(
            {k: f"'{v}" if isinstance(v, str) and v[:1] in "=+-@" and not _numeric(v) else v for k, v in row.items()}
        )
    return buffer.getvalue().encode()


def _numeric(value: str) -> bool:
    try:
        Decimal(value)
    except ArithmeticError:
        return False
    return True


def _cell(value):
    if isinstance(value, str) and _numeric(value):
        return Decimal(value)  # a number cell, not text
    return value


# --- Finance: credit granted, converted, removed and the cost of bonuses, by period and campaign ----------------

PERIODS = ("day", "week", "month", "all")
FINANCE_MAX_DAYS = 3660
FINANCE_DEFAULT_DAYS = 30
FINANCE_COLUMNS = (
    "period", "campaign_id", "campaign", "bonuses", "granted", "converted", "removed", "corrections", "cost",
    "net_credit",
)  # fmt: skip
_MONEY_COLUMNS = ("granted", "converted", "removed", "corrections", "cost", "net_credit")
_FINANCE_KINDS = {
    "granted": OperationKind.CREDIT_IN,
    "converted": OperationKind.BALANCE_IN,
    "removed": OperationKind.CREDIT_OUT,
    "converted_out": OperationKind.CREDIT_CONVERTED,
    "corrections": OperationKind.BALANCE_CORRECTION,
}


@dataclass(frozen=True)
class FinanceQuery:
    """Days ``start`` to ``end``, both whole and included, in the server's time zone (settings.TIME_ZONE)."""

    start: date
    end: date
    period: str = "day"
    by_campaign: bool = False

    @property
    def since(self) -> datetime:
        return timezone.make_aware(datetime.combine(self.start, time.min))

    @property
    def until(self) -> datetime:
        """The first instant after the range (the day after ``end``, at midnight)."""
        return timezone.make_aware(datetime.combine(self.end + timedelta(days=1), time.min))


def _day(params: Mapping, name: str, default: date) -> date:
    value = (params.get(name) or "").strip()
    if not value:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ServiceError(f"{name} must be a date as YYYY-MM-DD.", code="invalid_range") from None


def finance_query(params: Mapping) -> FinanceQuery:
    """The finance report's parameters from a query string: start, end (YYYY-MM-DD), period, by=campaign."""
    today = timezone.localdate()
    end = _day(params, "end", today)
    start = _day(params, "start", end - timedelta(days=FINANCE_DEFAULT_DAYS - 1))
    if start > end:
        raise ServiceError("start must be on or before end.", code="invalid_range")
    if (end - start).days >= FINANCE_MAX_DAYS:
        raise ServiceError(f"The range is at most {FINANCE_MAX_DAYS} days.", code="invalid_range")
    period = params.get("period") or "day"
    if period not in PERIODS:
        raise ServiceError(f"period must be one of {', '.join(PERIODS)}.", code="invalid_period")
    by = params.get("by") or ""
    if by not in ("", "campaign"):
        raise ServiceError("by must be empty or campaign.", code="invalid_group")
    return FinanceQuery(start=start, end=end, period=period, by_campaign=by == "campaign")


def finance(query: FinanceQuery) -> dict:
    """What the bonuses moved on MT5 in the range: operations MT5 confirmed (done), by the day they were done.

    granted: credit posted; converted: credit turned into balance; removed: credit taken back (withdrawal,
    drawdown, cancellation, expiry); corrections: negative balances brought back to zero; cost: what the
    broker paid out, converted + corrections; net_credit: the change in credit outstanding (granted - removed
    - credit converted). Periods with no movement are left out.
    """
    ops = BonusOperation.objects.filter(
        status=OperationStatus.DONE,
        done_at__gte=query.since,
        done_at__lt=query.until,
        kind__in=list(_FINANCE_KINDS.values()),
    )
    group = [] if query.period == "all" else ["period_start"]
    if group:
        # Truncated in the current time zone (settings.TIME_ZONE); weeks start on Monday.
        ops = ops.annotate(period_start=Trunc("done_at", query.period, output_field=DateField()))
    if query.by_campaign:
        group += ["bonus__campaign_id", "bonus__campaign__name"]
    sums = {name: Sum("amount", filter=Q(kind=kind)) for name, kind in _FINANCE_KINDS.items()}
    credited = Count("id", filter=Q(kind=OperationKind.CREDIT_IN))
    if group:
        rows = list(ops.values(*group).annotate(bonuses=credited, **sums).order_by(*group))
    else:
        rows = [ops.aggregate(bonuses=credited, **sums)]
        rows = [r for r in rows if r["bonuses"] or any(r[name] for name in _FINANCE_KINDS)]
    out = [_finance_row(query, r) for r in rows]
    totals = {name: sum((Decimal(r[name]) for r in out), Decimal("0.00")) for name in _MONEY_COLUMNS}
    return {
        "start": query.start.isoformat(),
        "end": query.end.isoformat(),
        "period": query.period,
        "by": "campaign" if query.by_campaign else "",
        "time_zone": timezone.get_current_timezone_name(),
        "rows": out,
        "totals": {"bonuses": sum(r["bonuses"] for r in out), **{k: str(v) for k, v in totals.items()}},
    }


def _finance_row(query: FinanceQuery, r: dict) -> dict:
    money = {name: r.get(name) or Decimal("0.00") for name in _FINANCE_KINDS}
    period = r["period_start"] if query.period != "all" else query.start
    row = {
        "period": period.isoformat(),
        "campaign_id": r.get("bonus__campaign_id") if query.by_campaign else None,
        "campaign": r.get("bonus__campaign__name", "") if query.by_campaign else "",
        "bonuses": r["bonuses"],
        "granted": money["granted"],
        "converted": money["converted"],
        "removed": money["removed"],
        "corrections": money["corrections"],
        "cost": money["converted"] + money["corrections"],
        "net_credit": money["granted"] - money["removed"] - money["converted_out"],
    }
    return {k: _plain(v) for k, v in row.items()}


def finance_csv(query: FinanceQuery) -> bytes:
    rows = finance(query)["rows"]
    if not query.by_campaign:
        rows = [{k: v for k, v in row.items() if k not in ("campaign_id", "campaign")} for row in rows]
    headers = [c for c in FINANCE_COLUMNS if query.by_campaign or c not in ("campaign_id", "campaign")]
    return csv_bytes(rows, headers)
