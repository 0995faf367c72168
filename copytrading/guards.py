"""A follower's risk guards on one copy link, pure (no database): the equity stop's checks.

The writes around them (stopping a link, closing its copies, resuming) are in ``copytrading.equity_stops``; the
skip of a copy sized below the symbol's minimum is in ``copytrading.sizing.clamp``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

EQUITY_STOP = "equity_stop"


def equity_stop_hit(equity: Decimal | None, level: Decimal | None) -> bool:
    """Whether the slave's equity is at or below the link's stop level (no level or no figure: no)."""
    return level is not None and equity is not None and equity <= level


def equity_stop_refusal(link: Any, figures_by_slave: dict[str, Any]) -> tuple[str, str] | None:
    """Why the link opens no copy now because of its equity stop, as (reason code, reason), or None.

    A stopped link opens nothing until resumed; a link whose slave is at or below the level (as its last figures
    say, before the slave's own beat has stopped it) opens nothing either."""
    if link.stopped_at is not None:
        return EQUITY_STOP, (link.stop_reason or "the link's equity stop fired; resume the link to copy again")
    level = link.equity_stop_level
    figures = figures_by_slave.get(str(link.slave_id))
    equity = figures.equity if figures is not None else None
    if equity_stop_hit(equity, level):
        return EQUITY_STOP, f"the slave's equity {equity} is at or below the link's equity stop {level}"
    return None


def stop_detail(equity: Decimal, level: Decimal, link: Any) -> str:
    """The reason the trader sees on a stopped link."""
    basis = ""
    if link.equity_stop_percent is not None and link.start_equity is not None and level != link.equity_stop:
        basis = f" ({link.equity_stop_percent.normalize():f}% of the start equity {link.start_equity})"
    return f"Equity stop: the slave's equity {equity} fell to or below {level}{basis}"[:255]
