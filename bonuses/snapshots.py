"""The monitor's memory of each account, what one cycle did, and the snapshots written once per cycle."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import connection

from . import sql
from .models import MonitoredAccount


@dataclass(slots=True)
class Snapshot:
    """What the monitor last saw of one account (kept in memory between cycles)."""

    balance: Decimal | None
    credit: Decimal | None
    errors: int
    deals_checked_at: datetime | None
    registration: datetime | None = None
    # Below its credit when last looked at: drawdown protection acts once per event, not once per cycle.
    drawdown: bool = False


@dataclass
class CycleResult:
    """What one pass did (also written to MonitorCycle / MonitorShard)."""

    started_at: datetime
    duration_ms: float = 0.0
    accounts: int = 0
    discovered: int = 0
    deposits: int = 0
    withdrawals: int = 0
    drawdowns: int = 0
    conversions: int = 0
    errors: int = 0
    paused: int = 0
    skipped: bool = False
    error: str = ""
    failed_logins: list[int] = field(default_factory=list)

    @property
    def eventful(self) -> bool:
        return bool(
            self.discovered
            or self.deposits
            or self.withdrawals
            or self.drawdowns
            or self.conversions
            or self.errors
            or self.paused
        )


def snapshots_write(rows: list[MonitoredAccount], *, handoff: set[int], now: datetime) -> None:
    """Balance, credit, equity, leverage and deals mark of ``rows``; a login in ``handoff`` asks for a deal review."""
    if connection.vendor == "postgresql":
        # One statement over arrays: bulk_update's CASE per row costs seconds for a 10,000-account baseline.
        sql.snapshots_update(
            now,
            [r.login for r in rows],
            [r.balance for r in rows],
            [r.credit for r in rows],
            [r.equity for r in rows],
            [r.leverage for r in rows],
            [r.deals_checked_at for r in rows],
            [int(r.login in handoff) for r in rows],
        )
        return
    by_login = dict(MonitoredAccount.objects.filter(login__in=[r.login for r in rows]).values_list("login", "id"))
    for row in rows:
        row.pk = by_login.get(row.login)
    MonitoredAccount.objects.bulk_update(
        [r for r in rows if r.pk],
        ["balance", "credit", "equity", "leverage", "deals_checked_at", "snapshot_at"],
        batch_size=1000,
    )
