"""The rules engine: pure checks of one account's state, and the service that acts when a rule fires."""

from __future__ import annotations

import logging
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from accounts.live import account_group
from mt5bridge.commands import command_enqueue

from .choices import AccountMode, RuleAction, RuleKind
from .models import AccountCopyState, Rule, RuleHit
from .selectors import bump_config_version

logger = logging.getLogger(__name__)
HUNDRED = Decimal("100")


# --- Pure checks ------------------------------------------------------------------------


def equity_stop_triggered(equity: Decimal, threshold: Decimal) -> bool:
    return equity <= threshold


def daily_loss(day_start_equity: Decimal, equity: Decimal) -> Decimal:
    return max(day_start_equity - equity, Decimal("0"))


def daily_loss_exceeded(day_start_equity: Decimal, equity: Decimal, limit: Decimal, *, percent: bool) -> bool:
    loss = daily_loss(day_start_equity, equity)
    if percent:
        if day_start_equity <= 0:
            return False
        return loss * HUNDRED / day_start_equity > limit
    return loss > limit


def max_open_trades_exceeded(open_trades: int, maximum: int) -> bool:
    return open_trades > maximum


def symbols_violating(symbols: list[str], allow: list[str], deny: list[str]) -> list[str]:
    """Open symbols outside the allow list (when there is one) or inside the deny list."""
    allowed = {s.upper() for s in allow}
    denied = {s.upper() for s in deny}
    return sorted({s for s in symbols if (allowed and s.upper() not in allowed) or s.upper() in denied})


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def outside_trading_hours(now: datetime, start: time, end: time, tz: str) -> bool:
    """Whether ``now`` (aware) is outside [start, end) in ``tz``; a window may wrap past midnight."""
    local = now.astimezone(zone(tz)).time().replace(tzinfo=None)
    if start == end:
        return False
    if start < end:
        return not (start <= local < end)
    return end <= local < start


def trading_day(now: datetime, tz: str) -> date:
    return now.astimezone(zone(tz)).date()


def rule_violation(rule: Any, state: Any, *, now: datetime, day_start_equity: Decimal | None) -> str | None:
    """A sentence describing why ``rule`` holds against ``state`` now, or None when it does not."""
    kind = rule.kind
    if kind == RuleKind.EQUITY_STOP and rule.threshold is not None:
        if equity_stop_triggered(state.equity, rule.threshold):
            return f"equity {state.equity} at or below {rule.threshold}"
    elif kind == RuleKind.DAILY_LOSS and rule.threshold is not None and day_start_equity is not None:
        if daily_loss_exceeded(day_start_equity, state.equity, rule.threshold, percent=rule.threshold_is_percent):
            unit = "%" if rule.threshold_is_percent else ""
            loss = daily_loss(day_start_equity, state.equity)
            return f"loss today {loss} from {day_start_equity} exceeds {rule.threshold}{unit}"
    elif kind == RuleKind.MAX_OPEN_TRADES and rule.max_open_trades is not None:
        count = len(state.positions)
        if max_open_trades_exceeded(count, rule.max_open_trades):
            return f"{count} open trades, more than {rule.max_open_trades}"
    elif kind == RuleKind.SYMBOL_FILTER:
        bad = symbols_violating([p.symbol for p in state.positions], rule.symbols_allow, rule.symbols_deny)
        if bad:
            return f"trades on symbols not allowed: {', '.join(bad)}"
    elif kind == RuleKind.TRADING_HOURS and rule.hours_start is not None and rule.hours_end is not None:
        if outside_trading_hours(now, rule.hours_start, rule.hours_end, rule.timezone):
            return f"outside trading hours {rule.hours_start:%H:%M}-{rule.hours_end:%H:%M} {rule.timezone}"
    return None


# --- Service ----------------------------------------------------------------------------


def rules_check(config: Any, state: Any) -> list:
    """Check every active rule of an account against its new state; fire the ones that just crossed."""

    if not config.rules:
        return []
    now = state.received_at
    day_start = _day_start_equity(config, state, now)
    hits = []
    for rule in config.rules:
        detail = rule_violation(rule, state, now=now, day_start_equity=day_start)
        if detail is None:
            if rule.triggered:
                # Re-arm: the next crossing fires again. Conditional so concurrent processes agree.
                if Rule.objects.filter(pk=rule.pk, triggered=True).update(triggered=False):
                    rule.triggered = False
                    _bump()
            continue
        if rule.triggered:
            continue
        # Only the process that flips the flag acts, so a crossing fires once.
        if not Rule.objects.filter(pk=rule.pk, triggered=False).update(triggered=True):
            rule.triggered = True
            continue
        rule.triggered = True
        hits.append(rule_fire(rule=rule, detail=detail))
    return hits


def _day_start_equity(config: Any, state: Any, now: datetime) -> Decimal | None:

    needs = [r for r in config.rules if r.kind == RuleKind.DAILY_LOSS]
    if not needs:
        return None
    today = trading_day(now, needs[0].timezone)
    copy_state = config.state
    if copy_state is None or copy_state.day != today or copy_state.day_start_equity is None:
        # The first heartbeat of the day sets the day's starting equity (once a day per account).
        copy_state, _ = AccountCopyState.objects.update_or_create(
            account_id=config.account_id, defaults={"day": today, "day_start_equity": state.equity}
        )
        config.state = copy_state
    return copy_state.day_start_equity


def _bump() -> None:

    bump_config_version()


def rule_fire(*, rule: Any, detail: str):
    """Record a hit, apply the rule's action (mode change, close all) and push it live."""

    with transaction.atomic():
        hit = RuleHit.objects.create(
            rule=rule, account_id=rule.account_id, kind=rule.kind, action=rule.action, detail=detail[:255]
        )
        mode = AccountMode.CLOSE_ONLY if rule.action == RuleAction.CLOSE_ONLY else AccountMode.PAUSED
        AccountCopyState.objects.update_or_create(
            account_id=rule.account_id,
            defaults={"mode": mode, "mode_reason": f"{rule.get_kind_display()}: {detail}"[:255]},
        )
        if rule.action == RuleAction.CLOSE_ALL_AND_PAUSE:
            command = command_enqueue(
                account_id=str(rule.account_id),
                kind="close_all",
                params={},
                origin="rule",
                idempotency_key=f"rule-hit:{hit.pk}",
            )
            hit.command_id = command.id
            hit.save(update_fields=["command_id"])
        _bump()
    transaction.on_commit(lambda: publish_rule_hit(hit))
    return hit


def publish_rule_hit(hit: Any) -> None:
    """Tell the account's live pages about the hit (same group and message type as every account update)."""

    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(
            account_group(hit.account_id),
            {
                "type": "account.changed",
                "account": str(hit.account_id),
                # The account consumer forwards ``data`` to the browser as it is.
                "data": {
                    "type": "rule_hit",
                    "account": str(hit.account_id),
                    "rule_hit": {
                        "id": hit.pk,
                        "kind": hit.kind,
                        "action": hit.action,
                        "detail": hit.detail,
                        "created_at": hit.created_at.isoformat(),
                    },
                },
            },
        )
    except Exception:  # a live push is best effort; the hit is stored
        logger.exception("rule hit %s not pushed live", hit.pk)
