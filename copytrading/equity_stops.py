"""The per-link equity stop's writes: checked on each beat of a slave, it stops the link (once), closes its copies
when asked to, and leaves an audit row; the trader resumes the link.

A stopped link opens no copy (each opening it would have copied is a ``CopyEvent`` with reason ``equity_stop``);
closes and SL/TP changes of the copies it still holds follow the master, as for a link refused by the gate.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from .choices import CopyStatus
from .guards import equity_stop_hit, stop_detail
from .models import CopiedPosition, CopyLink, LinkStop
from .selectors import bump_config_version
from .services import close_copy_now

logger = logging.getLogger(__name__)


def equity_stops_check(config: Any, state: Any) -> list[LinkStop]:
    """Stop every link into this slave whose equity stop the beat's equity reached (each fires once)."""
    stops = []
    for link in config.guarded_links:
        if link.stopped_at is None and equity_stop_hit(state.equity, link.equity_stop_level):
            stop = link_stop(link, equity=state.equity)
            if stop is not None:
                stops.append(stop)
    return stops


def link_stop(link: CopyLink, *, equity: Decimal) -> LinkStop | None:
    """Stop ``link``: no new copies, its copies closed when the link says so, the reason kept and audited.

    None when the link was stopped already (another process saw the same beat first) or has no stop level."""
    level = link.equity_stop_level
    if level is None:
        return None
    detail = stop_detail(equity, level, link)
    now = timezone.now()
    with transaction.atomic():
        # Only the process that flips the link acts, so a crossing stops it once.
        if not CopyLink.objects.filter(pk=link.pk, stopped_at__isnull=True).update(
            stop_reason=detail, stopped_at=now, updated_at=now
        ):
            return None
        link.stop_reason, link.stopped_at = detail, now
        stop = LinkStop.objects.create(
            link=link,
            master_account_id=link.master_id,
            slave_account_id=link.slave_id,
            action="stopped",
            equity=equity,
            level=level,
            detail=detail,
        )
        if link.equity_stop_close:
            stop.closed_copies = _close_copies(link, stop)
            stop.save(update_fields=["closed_copies"])
        bump_config_version()
    logger.info("copy link %s stopped: %s", link.pk, detail)
    return stop


def _close_copies(link: CopyLink, stop: LinkStop) -> int:
    """Queue the close of every copy the link holds; a copy still in flight closes as soon as it fills."""
    CopiedPosition.objects.filter(link_id=link.pk, status=CopyStatus.PENDING).update(close_requested=True)
    rows = list(
        CopiedPosition.objects.select_for_update()
        .select_related("link__slave")
        .filter(link_id=link.pk, status=CopyStatus.OPEN, close_requested=False, slave_ticket__isnull=False)
    )
    for row in rows:
        row.close_requested = True
        row.save(update_fields=["close_requested"])
        close_copy_now(row, reason=f"equity-stop:{stop.pk}")
    return len(rows)


def link_resume(link: CopyLink, *, actor=None) -> CopyLink:
    """Copy again after an equity stop; a percentage stop is measured from the slave's equity now."""
    with transaction.atomic():
        link = CopyLink.objects.select_for_update().select_related("slave").get(pk=link.pk)
        if link.stopped_at is None:
            return link
        link.stopped_at, link.stop_reason = None, ""
        link.start_equity = link.slave.equity
        link.save(update_fields=["stopped_at", "stop_reason", "start_equity", "updated_at"])
        LinkStop.objects.create(
            link=link,
            master_account_id=link.master_id,
            slave_account_id=link.slave_id,
            action="resumed",
            equity=link.slave.equity,
            level=link.equity_stop_level,
            detail=f"Resumed; the start equity is now {link.slave.equity}",
            actor=actor if getattr(actor, "pk", None) else None,
        )
        bump_config_version()
    return link
