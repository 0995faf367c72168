"""Copy slippage and delay per follower: each copied position's master fill against its slave fill.

Read from what is stored: the copy rows (``CopiedPosition``) and the synced deals of both accounts. The master's
fill is the first entry deal (DEAL_ENTRY_IN) of the master position; the slave's is the first entry deal whose
comment is the copy's id (the copy's own deal, also on a netting account, where the position is shared), else the
first entry deal of the slave position. A copy whose fills are not synced yet is left out.

Slippage is signed in the slave's direction: positive means the slave filled worse than the master (a buy higher, a
sell lower), in the slave symbol's points when its point is known. Delay is the slave's fill time minus the
master's, as the deals carry them (two brokers whose server clocks differ add that difference). Percentiles use the
nearest-rank method over the newest ``LIMIT`` fills of each link.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Q

from accounts.models import Deal
from mt5bridge.gateway.types import DealEntry

from .choices import CopyKind, CopyStatus
from .mapping import broker_symbols
from .models import CopiedPosition, CopyLink

LIMIT = 500
ENTRY_DEALS = (int(DealEntry.IN), int(DealEntry.INOUT))


@dataclass(frozen=True)
class CopyFill:
    """One copied position: where and when the master and the slave filled."""

    link_id: int
    copy_id: str
    master_ticket: int
    slave_ticket: int
    symbol: str
    side: str
    volume: Decimal
    master_price: Decimal
    master_time: datetime
    slave_price: Decimal
    slave_time: datetime
    slippage_price: Decimal
    slippage_points: Decimal | None
    delay_seconds: Decimal


def percentile(values: list[Decimal], p: int) -> Decimal | None:
    """The nearest-rank ``p``-th percentile (the smallest value with at least p% of the values at or below it)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(p * len(ordered) / 100), 1) - 1]


def _first_deals(rows: Iterable[tuple]) -> dict:
    """The first deal per key of ``(key, time, ticket, price)`` rows."""
    first: dict = {}
    for key, time, ticket, price in rows:
        if key not in first or (time, ticket) < first[key][:2]:
            first[key] = (time, ticket, price)
    return first


def _point(link: CopyLink, symbol: str, cache: dict) -> Decimal | None:
    key = (link.slave_id, symbol)
    if key not in cache:
        slave = link.slave
        symbols = broker_symbols(slave.gateway_kind, slave.server, slave.login)
        spec = symbols.specs.get(symbol) if symbols is not None else None
        cache[key] = spec.point if spec is not None and spec.point else None
    return cache[key]


def copy_fills(links: list[CopyLink], *, limit: int = LIMIT) -> dict[int, list[CopyFill]]:
    """The newest ``limit`` copied positions of each link with both fills synced, newest first, by link id."""
    by_link: dict[int, list[CopiedPosition]] = {}
    rows = CopiedPosition.objects.filter(
        link__in=[link.pk for link in links],
        kind=CopyKind.POSITION,
        slave_ticket__isnull=False,
        status__in=(CopyStatus.OPEN, CopyStatus.CLOSED, CopyStatus.CLOSED_ON_SLAVE),
    ).order_by("-opened_at", "-id")
    for row in rows.iterator():
        kept = by_link.setdefault(row.link_id, [])
        if len(kept) < limit:
            kept.append(row)
    copies = [row for kept in by_link.values() for row in kept]
    if not copies:
        return {}
    links_by_id = {link.pk: link for link in links}
    master_keys = Q()
    slave_keys = Q()
    for link_id, kept in by_link.items():
        link = links_by_id[link_id]
        master_keys |= Q(account_id=link.master_id, position_id__in=[r.master_ticket for r in kept])
        slave_keys |= Q(account_id=link.slave_id) & (
            Q(comment__in=[r.copy_id for r in kept]) | Q(position_id__in=[r.slave_ticket for r in kept])
        )
    fields = ("time", "ticket", "price")
    master = _first_deals(
        ((str(a), p), *rest)
        for a, p, *rest in Deal.objects.filter(master_keys, entry__in=ENTRY_DEALS).values_list(
            "account_id", "position_id", *fields
        )
    )
    slave_by_comment: dict = {}
    slave_by_position: dict = {}
    for account, position, comment, *rest in Deal.objects.filter(slave_keys, entry__in=ENTRY_DEALS).values_list(
        "account_id", "position_id", "comment", *fields
    ):
        if comment:
            slave_by_comment.setdefault((str(account), comment), []).append(((str(account), comment), *rest))
        slave_by_position.setdefault((str(account), position), []).append(((str(account), position), *rest))
    points: dict = {}
    result: dict[int, list[CopyFill]] = {}
    for row in copies:
        link = links_by_id[row.link_id]
        master_fill = master.get((str(link.master_id), row.master_ticket))
        own = slave_by_comment.get((str(link.slave_id), row.copy_id)) or slave_by_position.get(
            (str(link.slave_id), row.slave_ticket)
        )
        if master_fill is None or not own:
            continue
        slave_fill = next(iter(_first_deals(own).values()))
        difference = slave_fill[2] - master_fill[2]
        slippage = difference if row.slave_side == "buy" else -difference
        point = _point(link, row.slave_symbol, points)
        delay = Decimal(str((slave_fill[0] - master_fill[0]).total_seconds()))
        result.setdefault(row.link_id, []).append(
            CopyFill(
                link_id=row.link_id,
                copy_id=row.copy_id,
                master_ticket=row.master_ticket,
                slave_ticket=row.slave_ticket or 0,
                symbol=row.slave_symbol,
                side=row.slave_side,
                volume=row.slave_volume,
                master_price=master_fill[2],
                master_time=master_fill[0],
                slave_price=slave_fill[2],
                slave_time=slave_fill[0],
                slippage_price=slippage.normalize() + 0,
                slippage_points=(slippage / point).quantize(Decimal("0.1")) if point else None,
                delay_seconds=delay.quantize(Decimal("0.001")),
            )
        )
    return result


@dataclass(frozen=True)
class LinkSlippage:
    """Per-link p50/p95 of slippage (points) and delay (seconds) over its fills."""

    link_id: int
    copies: int
    slippage_points_p50: Decimal | None
    slippage_points_p95: Decimal | None
    delay_seconds_p50: Decimal | None
    delay_seconds_p95: Decimal | None
    fills: list[CopyFill]


def link_slippage(links: list[CopyLink], *, limit: int = LIMIT) -> dict[int, LinkSlippage]:
    """Every link's summary (a link with no synced fills has 0 copies and no percentiles)."""
    fills = copy_fills(links, limit=limit)
    summary = {}
    for link in links:
        own = fills.get(link.pk, [])
        points = [f.slippage_points for f in own if f.slippage_points is not None]
        delays = [f.delay_seconds for f in own]
        summary[link.pk] = LinkSlippage(
            link_id=link.pk,
            copies=len(own),
            slippage_points_p50=percentile(points, 50),
            slippage_points_p95=percentile(points, 95),
            delay_seconds_p50=percentile(delays, 50),
            delay_seconds_p95=percentile(delays, 95),
            fills=own,
        )
    return summary
