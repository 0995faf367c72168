"""Bonus reports (summary by campaign, conversions, cancellations, leverage) and their CSV / XLSX export."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from decimal import Decimal

from django.db.models import Count, Q, Sum
from openpyxl import Workbook

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
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=headers)
        writer.writeheader()
        for row in rows:
            # Spreadsheet formula injection: a cell starting with = + - @ is kept as text.
            writer.writerow(
                {
                    k: f"'{v}" if isinstance(v, str) and v[:1] in "=+-@" and not _numeric(v) else v
                    for k, v in row.items()
                }
            )
        return buffer.getvalue().encode(), "text/csv"
    book = Workbook(write_only=True)
    sheet = book.create_sheet(name)
    sheet.append(headers)
    for row in rows:
        sheet.append([_cell(row[h]) for h in headers])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue(), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


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
