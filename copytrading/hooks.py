"""Copy trading's bridge listener: what it does with each accepted heartbeat and each stored command result."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from mt5bridge.events import StateNotHeard

from .choices import CopyKind, CopyStatus
from .engine import copy_master_state
from .equity_stops import equity_stops_check
from .models import CopiedPosition, link_id_of
from .rules import rules_check
from .selectors import account_config, account_config_in_memory
from .services import copy_result_apply

logger = logging.getLogger(__name__)


def on_ea_state(previous: Any | None, current: Any) -> None:
    """Copy a master's changes to its slaves, notice slave positions closed by hand, check the links' equity stops
    and the rules.

    Runs synchronously in the heartbeat path, so it does nothing (one cached lookup) for accounts
    without links or rules. Each step is guarded on its own (a failing copy must not stop the rules); if any step
    failed, ``StateNotHeard`` has the bridge offer the same change again with the next beat (every step is safe to
    run twice: a copy is keyed by its master position, a closed slave position is marked once).
    """
    config = account_config(current.account_id)
    if config.is_idle:
        return
    failed = []
    if config.links_out:
        try:
            copy_master_state(config, previous, current)
        except Exception:
            logger.exception("copying the heartbeat of master %s failed", current.account_id)
            failed.append("copy")
    if config.incoming_links and previous is not None:
        try:
            slave_positions_closed(account_id=current.account_id, previous=previous, current=current)
        except Exception:
            logger.exception("reconciling slave %s failed", current.account_id)
            failed.append("slave positions")
    if config.guarded_links:
        try:
            equity_stops_check(config, current)
        except Exception:
            logger.exception("checking the equity stops of the links into %s failed", current.account_id)
            failed.append("equity stops")
    if config.rules:
        try:
            rules_check(config, current)
        except Exception:
            logger.exception("checking the rules of %s failed", current.account_id)
            failed.append("rules")
    if failed:
        raise StateNotHeard(", ".join(failed))


def ea_state_is_idle(account_id) -> bool:
    """True when ``on_ea_state`` would do nothing for the account, known from this process's memory alone (the EA
    fast path then answers the beat on its event loop); False when finding out needs the cache or the database."""
    config = account_config_in_memory(account_id)
    return config is not None and config.is_idle


def slave_positions_closed(*, account_id: str, previous: Any, current: Any) -> int:
    """Mark copies whose slave position disappeared: by our close, or by hand (never reopened then)."""
    before = {p.identifier or p.ticket for p in previous.positions}
    after = {p.identifier or p.ticket for p in current.positions}
    gone = before - after
    if not gone:
        return 0
    rows = CopiedPosition.objects.filter(
        slave_account_id=account_id, kind=CopyKind.POSITION, slave_ticket__in=gone, status=CopyStatus.OPEN
    )
    now = timezone.now()
    with transaction.atomic():
        ours = rows.filter(close_requested=True).update(status=CopyStatus.CLOSED, closed_at=now)
        by_hand = rows.filter(close_requested=False).update(status=CopyStatus.CLOSED_ON_SLAVE, closed_at=now)
    return ours + by_hand


def on_command_result(command: Any) -> None:
    """Link a slave's result to its copy row: the slave ticket on success, the reason on failure."""
    if getattr(command, "origin", None) != "copy" or link_id_of(command.origin_ref) is None:
        return
    try:
        copy_result_apply(command=command)
    except Exception:  # the command result is stored by the caller; a copy bookkeeping bug must not lose it
        logger.exception("copy bookkeeping failed for command %s", command.id)


class CopyListener:
    """``mt5bridge.events.BridgeListener`` for copy trading, registered in ``CopytradingConfig.ready``."""

    def on_ea_state(self, previous: Any | None, current: Any) -> None:
        on_ea_state(previous, current)

    def on_command_result(self, command: Any) -> None:
        on_command_result(command)

    def is_idle(self, account_id: str) -> bool:
        return ea_state_is_idle(account_id)


listener = CopyListener()
