"""The copy engine: a master's intents become one command per active link, in one bulk transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import diff as d
from .choices import AccountMode, CopyKind, CopyStatus, NoStopLoss, SizingMode
from .mapping import Resolved, broker_symbols, resolve
from .models import CopiedPosition, CopyEvent, CopyLink
from .selectors import AccountConfig, slave_mode
from .sizing import AccountFigures, SizingSkip, copy_volume, partial_close_volume

ZERO = Decimal("0")
BUY, SELL = 0, 1
# Pending order types: reversing a buy limit (buy below the market) gives a sell stop (sell below it).
REVERSED_ORDER_TYPE = {2: 5, 3: 4, 4: 3, 5: 2, 6: 7, 7: 6}
ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def base36(number: int) -> str:
    number = abs(int(number))
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = ALPHABET[rest] + out
        if not number:
            return out


def copy_id(link_id: int, master_ticket: int) -> str:
    """The id a copy carries in the slave's order comment: ``cp<link>.<master ticket>`` in base 36, ≤ 31 chars."""
    return f"cp{base36(link_id)}.{base36(master_ticket)}"[:31]


def _dec(value: Decimal) -> str:
    return format(value, "f")


@dataclass
class Plan:
    """What one master heartbeat produces: command specs, new copy rows, row changes and skip events."""

    specs: list = field(default_factory=list)
    new_rows: list[tuple[str, CopiedPosition]] = field(default_factory=list)  # (idempotency key, row)
    changed_rows: dict[int, CopiedPosition] = field(default_factory=dict)
    close_keys: list[tuple[str, CopiedPosition]] = field(default_factory=list)
    events: list[CopyEvent] = field(default_factory=list)


def _skip(plan: Plan, link: CopyLink, intent: d.Intent, code: str, reason: str, volume: Decimal | None = None) -> None:
    plan.events.append(
        CopyEvent(
            link_id=link.id,
            master_account_id=link.master_id,
            slave_account_id=link.slave_id,
            intent=intent.kind,
            reason_code=code,
            reason=reason[:255],
            master_ticket=intent.ticket,
            symbol=intent.symbol,
            volume=volume,
        )
    )


def _symbols_for(account) -> Any:
    return broker_symbols(account.gateway_kind, account.server, account.login)


def _passes_filters(link: CopyLink, intent: d.Intent) -> tuple[str, str] | None:
    symbol = intent.symbol.upper()
    if link.symbols_include and symbol not in {s.upper() for s in link.symbols_include}:
        return "symbol_not_included", f"{intent.symbol} is not in the link's symbol list"
    if link.symbols_exclude and symbol in {s.upper() for s in link.symbols_exclude}:
        return "symbol_excluded", f"{intent.symbol} is excluded by the link"
    if link.magics_include and intent.magic not in {int(m) for m in link.magics_include}:
        return "magic_not_included", f"magic {intent.magic} is not in the link's magic list"
    if link.magics_exclude and intent.magic in {int(m) for m in link.magics_exclude}:
        return "magic_excluded", f"magic {intent.magic} is excluded by the link"
    return None


def _side(position_type: int, reverse: bool) -> str:
    is_buy = position_type == BUY
    if reverse:
        is_buy = not is_buy
    return "buy" if is_buy else "sell"


def _sltp(link: CopyLink, sl: Decimal, tp: Decimal) -> tuple[str, str]:
    if not link.copy_sltp:
        return "0", "0"
    if link.reverse:
        sl, tp = tp, sl
    return _dec(sl), _dec(tp)


class MasterContext:
    """Per-heartbeat values shared by every link: the master's figures, symbol list and lateness."""

    def __init__(self, current: Any):
        self.current = current
        self.figures = AccountFigures(current.balance, current.equity, current.margin_free)
        self.now = current.received_at or timezone.now()
        self._master_symbols: Any = None
        self._slave_figures: dict[str, AccountFigures] | None = None

    def lateness(self, intent: d.Intent) -> float:
        if intent.time is None:
            return 0.0
        # Both on the broker's clock when the EA sent its server time (MT5 times are server-local).
        reference = self.current.server_time or self.now
        return max(0.0, (reference - intent.time).total_seconds())

    def master_symbols(self, master) -> Any:
        if self._master_symbols is None:
            self._master_symbols = _symbols_for(master)
        return self._master_symbols

    def slave_figures(self, links: list[CopyLink]) -> dict[str, AccountFigures]:
        if self._slave_figures is None:
            self._slave_figures = slave_figures([str(link.slave_id) for link in links])
        return self._slave_figures


# Ratio sizing needs each slave's balance/equity/free margin; seconds-old figures size a lot just as well.
FIGURES_TTL_SECONDS = 5.0
_figures: dict[str, tuple[float, AccountFigures]] = {}


def slave_figures(ids: list[str]) -> dict[str, AccountFigures]:
    import time

    from accounts.models import TradingAccount

    now = time.monotonic()
    found = {i: hit[1] for i in ids if (hit := _figures.get(i)) is not None and hit[0] > now}
    missing = [i for i in ids if i not in found]
    if missing:
        rows = TradingAccount.objects.filter(pk__in=missing).values_list("pk", "balance", "equity", "margin_free")
        for pk, balance, equity, free in rows:
            figures = AccountFigures(balance, equity, free)
            found[str(pk)] = figures
            _figures[str(pk)] = (now + FIGURES_TTL_SECONDS, figures)
    return found


def clear_figures_cache() -> None:
    _figures.clear()


def _resolve_cached(ctx: MasterContext, link: CopyLink, symbol: str) -> Resolved | None:
    """Symbol mapping per link, kept with the cached link until links or rules change."""
    cache = getattr(link, "resolved_symbols", None)
    if cache is not None and symbol in cache:
        return cache[symbol]
    master_symbols, slave_symbols = ctx.master_symbols(link.master), _symbols_for(link.slave)
    target = resolve(symbol, master_symbols, slave_symbols, link.symbol_overrides)
    if cache is not None and master_symbols is not None and slave_symbols is not None:
        cache[symbol] = target  # a fallback (broker list unreachable) is retried next time
    return target


def _size(ctx: MasterContext, link: CopyLink, links: list[CopyLink], intent: d.Intent, target: Resolved) -> Decimal:
    mode = link.sizing_mode
    slave = None
    if mode in (
        SizingMode.BALANCE_RATIO,
        SizingMode.EQUITY_RATIO,
        SizingMode.FREE_MARGIN_RATIO,
        SizingMode.RISK_PERCENT,
    ):
        slave = ctx.slave_figures(links).get(str(link.slave_id))
    sl_distance = None
    if mode == SizingMode.RISK_PERCENT:
        if intent.sl and intent.sl > 0:
            sl_distance = abs(intent.price - intent.sl)
        elif link.no_sl == NoStopLoss.DEFAULT and link.default_sl_points and target.spec.point:
            sl_distance = link.default_sl_points * target.spec.point
    return copy_volume(
        mode,
        rules=target.spec.volume,
        link_min=link.min_volume,
        link_max=link.max_volume,
        master_volume=intent.volume,
        multiplier=link.multiplier,
        fixed_volume=link.fixed_volume,
        master=ctx.figures,
        slave=slave,
        contract_ratio=target.contract_ratio if link.contract_size_aware else None,
        risk_percent=link.risk_percent,
        sl_distance=sl_distance,
        slave_contract_size=target.spec.contract_size,
    )


def _plan_open(
    plan: Plan,
    ctx: MasterContext,
    link: CopyLink,
    links: list[CopyLink],
    intent: d.Intent,
    held_symbols: dict[str, set[str]],
) -> None:
    is_pending = intent.kind == d.PENDING_PLACED
    mode = slave_mode(link)
    if mode != AccountMode.NORMAL:
        return _skip(plan, link, intent, f"slave_{mode}", f"the slave is in {mode.replace('_', '-')} mode (rules)")
    if link.close_only:
        return _skip(plan, link, intent, "link_close_only", "the link copies closes only")
    if is_pending and not link.copy_pending:
        return None  # configuration, not a failure: nothing to log
    rejected = _passes_filters(link, intent)
    if rejected:
        return _skip(plan, link, intent, *rejected)
    late = ctx.lateness(intent)
    if not is_pending and late > link.max_delay_seconds:
        return _skip(
            plan,
            link,
            intent,
            "too_late",
            f"the master trade is {late:.0f} s old, more than the link's max delay of {link.max_delay_seconds} s",
        )
    target = _resolve_cached(ctx, link, intent.symbol)
    if target is None:
        return _skip(plan, link, intent, "symbol_unmapped", f"the slave's broker has no symbol for {intent.symbol}")
    blockers = held_symbols.get(str(link.slave_id))
    if blockers is not None and target.symbol in blockers:
        return _skip(
            plan, link, intent, "lower_priority", f"{target.symbol} on the slave is held by a higher-priority master"
        )
    try:
        volume = _size(ctx, link, links, intent, target)
    except SizingSkip as skip:
        return _skip(plan, link, intent, skip.code, skip.message)
    ident = copy_id(link.id, intent.ticket)
    sl, tp = _sltp(link, intent.sl, intent.tp)
    key_tail = f"{intent.kind}:{intent.ticket}:{_dec(intent.remaining_volume)}"
    key = f"copy:{link.id}:{key_tail}"[:100]
    remaining = max(link.max_delay_seconds - late, 1.0)
    if is_pending:
        order_type = REVERSED_ORDER_TYPE.get(intent.type, intent.type) if link.reverse else intent.type
        params = {
            "symbol": target.symbol,
            "type": order_type,
            "volume": _dec(volume),
            "price": _dec(intent.price),
            "sl": sl,
            "tp": tp,
            "comment": ident,
            "magic": settings.COPY_MAGIC,
        }
        kind, row_kind = "place_pending", CopyKind.ORDER
        side = "buy" if order_type % 2 == 0 else "sell"
        expires = None  # a pending copy is still right later: the price decides
    else:
        side = _side(intent.type, link.reverse)
        params = {
            "symbol": target.symbol,
            "side": side,
            "volume": _dec(volume),
            "sl": sl,
            "tp": tp,
            "comment": ident,
            "magic": settings.COPY_MAGIC,
            "deviation": link.max_slippage_points,
        }
        kind, row_kind = "open_market", CopyKind.POSITION
        expires = ctx.now + timedelta(seconds=remaining)
    plan.specs.append(_spec(link, kind, params, key, expires, f"{intent.kind} {intent.ticket}"))
    plan.new_rows.append(
        (
            key,
            CopiedPosition(
                link_id=link.id,
                slave_account_id=link.slave_id,
                kind=row_kind,
                master_ticket=intent.ticket,
                master_symbol=intent.symbol,
                master_volume=intent.volume,
                slave_symbol=target.symbol,
                slave_side=side,
                slave_volume=volume,
                status=CopyStatus.PENDING,
                copy_id=ident,
            ),
        )
    )


def _spec(link: CopyLink, kind: str, params: dict, key: str, expires, intent: str):
    from mt5bridge.commands import CommandSpec

    return CommandSpec(
        account_id=str(link.slave_id),
        kind=kind,
        params=params,
        origin="copy",
        expires_at=expires,
        idempotency_key=key,
        link_id=link.id,
    )


def _plan_reduce(plan: Plan, link: CopyLink, intent: d.Intent, rows: list[CopiedPosition]) -> None:
    """A full or partial close on the master closes exactly the linked slave volume."""
    hedging = link.slave.is_hedging
    for row in rows:
        if row.kind != CopyKind.POSITION:
            continue
        if row.status == CopyStatus.CLOSED_ON_SLAVE:
            _skip(plan, link, intent, "closed_on_slave", "the copy was already closed by hand on the slave")
            continue
        if row.status == CopyStatus.PENDING:
            if intent.kind == d.CLOSE:
                row.close_requested = True
                plan.changed_rows[row.id] = row
            else:
                _skip(plan, link, intent, "copy_not_filled", "the slave has not opened the copy yet")
            continue
        if row.status != CopyStatus.OPEN or row.slave_ticket is None:
            continue
        if intent.kind == d.CLOSE:
            volume = row.slave_volume
        else:
            target = resolve(row.slave_symbol, None, _symbols_for(link.slave))
            volume = partial_close_volume(row.slave_volume, intent.volume, intent.previous_volume, target.spec.volume)
            if volume <= 0:
                _skip(
                    plan, link, intent, "below_volume_step", "the proportional close is below the slave's volume step"
                )
                continue
        full = volume >= row.slave_volume
        key = f"copy:{link.id}:{row.id}:{intent.kind}:{_dec(intent.remaining_volume)}"[:100]
        if not hedging:
            # On a netting account the position is shared: an opposite deal removes exactly our volume.
            params = {
                "symbol": row.slave_symbol,
                "side": "sell" if row.slave_side == "buy" else "buy",
                "volume": _dec(volume),
                "sl": "0",
                "tp": "0",
                "comment": row.copy_id,
                "magic": settings.COPY_MAGIC,
                "deviation": link.max_slippage_points,
            }
            kind = "open_market"
        elif full:
            params, kind = {"ticket": row.slave_ticket}, "close"
        else:
            params, kind = {"ticket": row.slave_ticket, "volume": _dec(volume)}, "close_partial"
        plan.specs.append(_spec(link, kind, params, key, None, f"{intent.kind} {intent.ticket}"))
        if full:
            row.close_requested = True
            plan.close_keys.append((key, row))
        else:
            row.slave_volume -= volume
            row.master_volume = intent.remaining_volume
        plan.changed_rows[row.id] = row


def _plan_modify(plan: Plan, link: CopyLink, intent: d.Intent, rows: list[CopiedPosition]) -> None:
    if not link.copy_sltp or slave_mode(link) == AccountMode.PAUSED:
        return
    sl, tp = _sltp(link, intent.sl, intent.tp)
    for row in rows:
        if row.status != CopyStatus.OPEN or row.slave_ticket is None:
            continue
        if intent.kind == d.MODIFY and row.kind == CopyKind.POSITION:
            kind, params = "modify_sltp", {"ticket": row.slave_ticket, "sl": sl, "tp": tp}
        elif intent.kind == d.PENDING_MODIFIED and row.kind == CopyKind.ORDER:
            kind, params = (
                "modify_pending",
                {"ticket": row.slave_ticket, "price": _dec(intent.price), "sl": sl, "tp": tp},
            )
        else:
            continue
        key = f"copy:{link.id}:{row.id}:{intent.kind}:{sl}:{tp}:{_dec(intent.price)}"[:100]
        plan.specs.append(_spec(link, kind, params, key, None, f"{intent.kind} {intent.ticket}"))


def _plan_pending_gone(plan: Plan, link: CopyLink, intent: d.Intent, rows: list[CopiedPosition]) -> bool:
    """Cancelled: cancel the slave order. Triggered: the slave order becomes the slave position (same identifier)."""
    handled = False
    for row in rows:
        if row.kind != CopyKind.ORDER or row.status not in (CopyStatus.OPEN, CopyStatus.PENDING):
            continue
        handled = True
        if intent.kind == d.PENDING_TRIGGERED:
            # POSITION_IDENTIFIER is the opening order's ticket on both sides, so the row keeps its tickets.
            row.kind = CopyKind.POSITION
            row.master_volume = intent.volume
            plan.changed_rows[row.id] = row
        elif row.slave_ticket is not None:
            key = f"copy:{link.id}:{row.id}:cancel"
            plan.specs.append(
                _spec(link, "cancel_pending", {"ticket": row.slave_ticket}, key, None, "pending cancelled")
            )
            row.close_requested = True
            plan.close_keys.append((key, row))
            plan.changed_rows[row.id] = row
        else:
            row.close_requested = True
            plan.changed_rows[row.id] = row
    return handled


def plan_copies(config: AccountConfig, intents: list[d.Intent], current: Any) -> Plan:
    plan = Plan()
    links = config.links_out
    if not links or not intents:
        return plan
    ctx = MasterContext(current)
    follow_up = [i for i in intents if i.kind not in (d.OPEN, d.PENDING_PLACED)]
    rows_by_key: dict[tuple[int, int], list[CopiedPosition]] = {}
    if follow_up:
        tickets = {i.ticket for i in follow_up}
        for row in CopiedPosition.objects.filter(
            link__in=[link.id for link in links],
            master_ticket__in=tickets,
            status__in=(CopyStatus.PENDING, CopyStatus.OPEN, CopyStatus.CLOSED_ON_SLAVE),
        ).order_by("id"):
            rows_by_key.setdefault((row.link_id, row.master_ticket), []).append(row)
    held = _held_by_higher_priority(links, intents)
    for link in links:
        for intent in intents:
            rows = rows_by_key.get((link.id, intent.ticket), [])
            if intent.kind in (d.OPEN, d.PENDING_PLACED):
                _plan_open(plan, ctx, link, links, intent, held.get(link.id, {}))
            elif intent.kind == d.INCREASE:
                if any(r.status == CopyStatus.CLOSED_ON_SLAVE for r in rows):
                    _skip(
                        plan, link, intent, "closed_on_slave", "the copy was closed by hand on the slave; not reopened"
                    )
                elif rows:
                    _plan_open(plan, ctx, link, links, intent, held.get(link.id, {}))
            elif intent.kind in (d.CLOSE, d.PARTIAL_CLOSE):
                _plan_reduce(plan, link, intent, rows)
            elif intent.kind in (d.MODIFY, d.PENDING_MODIFIED):
                _plan_modify(plan, link, intent, rows)
            elif intent.kind == d.PENDING_CANCELLED:
                _plan_pending_gone(plan, link, intent, rows)
            elif intent.kind == d.PENDING_TRIGGERED:
                if not _plan_pending_gone(plan, link, intent, rows):
                    _plan_open(
                        plan, ctx, link, links, d.Intent(**{**intent.__dict__, "kind": d.OPEN}), held.get(link.id, {})
                    )
    return plan


def _held_by_higher_priority(links: list[CopyLink], intents: list[d.Intent]) -> dict[int, dict[str, set[str]]]:
    """Slave symbols that another master with a better priority holds open, for slaves fed by several masters."""
    if not any(i.kind in d.OPENING_INTENTS or i.kind == d.PENDING_TRIGGERED for i in intents):
        return {}
    links = [link for link in links if getattr(link, "slave_is_shared", True)]
    if not links:
        return {}
    slave_ids = [link.slave_id for link in links]
    others = list(
        CopyLink.objects.filter(slave_id__in=slave_ids, active=True)
        .exclude(id__in=[link.id for link in links])
        .values_list("id", "slave_id", "priority")
    )
    if not others:
        return {}
    held_rows = CopiedPosition.objects.filter(
        link_id__in=[o[0] for o in others], status__in=(CopyStatus.PENDING, CopyStatus.OPEN)
    ).values_list("link_id", "slave_symbol")
    priority = {o[0]: (o[1], o[2]) for o in others}
    result: dict[int, dict[str, set[str]]] = {}
    for link in links:
        for other_id, symbol in held_rows:
            slave_id, other_priority = priority[other_id]
            if slave_id == link.slave_id and other_priority < link.priority:
                result.setdefault(link.id, {}).setdefault(str(link.slave_id), set()).add(symbol)
    return result


def _drop_invalid(plan: Plan) -> None:
    """One link's impossible order (a volume above the protocol's limit) must not sink the whole batch."""
    from mt5bridge.ea.protocol import ProtocolError, validate_command_params

    valid = []
    for spec in plan.specs:
        try:
            validate_command_params(spec.kind, spec.params)
        except ProtocolError as exc:
            link = CopyLink.objects.filter(pk=spec.link_id).only("master_id", "slave_id").first()
            if link is not None:
                plan.events.append(
                    CopyEvent(
                        link_id=link.id,
                        master_account_id=link.master_id,
                        slave_account_id=link.slave_id,
                        intent=spec.kind,
                        reason_code="invalid_order",
                        reason=f"{exc.field}: {exc.message}"[:255],
                        symbol=str(spec.params.get("symbol", ""))[:64],
                    )
                )
            plan.new_rows = [(k, r) for k, r in plan.new_rows if k != spec.idempotency_key]
            continue
        valid.append(spec)
    plan.specs = valid


def apply_plan(plan: Plan) -> list:
    """Write the plan: commands (bulk, deduplicated), new copy rows, row changes and skip events, atomically."""
    if not (plan.specs or plan.changed_rows or plan.events):
        return []
    from config.errors import ServiceError
    from mt5bridge.commands import commands_enqueue_bulk

    with transaction.atomic():
        try:
            commands = commands_enqueue_bulk(plan.specs) if plan.specs else []
        except ServiceError as exc:
            if exc.code != "invalid_command":
                raise
            # Rare: find the impossible orders (validating up front would cost every heartbeat), drop them, retry.
            _drop_invalid(plan)
            commands = commands_enqueue_bulk(plan.specs) if plan.specs else []
        by_key = {c.idempotency_key: c for c in commands}
        rows = []
        for key, row in plan.new_rows:
            command = by_key.get(key)
            if command is not None:
                row.open_command_id = command.id
                rows.append(row)
        if rows:
            # A repeated key returns the first command, whose copy row exists: the unique id skips it.
            CopiedPosition.objects.bulk_create(rows, ignore_conflicts=True)
        for key, row in plan.close_keys:
            command = by_key.get(key)
            if command is not None:
                row.close_command_id = command.id
        if plan.changed_rows:
            CopiedPosition.objects.bulk_update(
                list(plan.changed_rows.values()),
                ["kind", "master_volume", "slave_volume", "close_requested", "close_command_id"],
            )
        if plan.events:
            CopyEvent.objects.bulk_create(plan.events)
    return commands


def copy_master_state(config: AccountConfig, previous: Any, current: Any) -> list:
    """The whole copy step of one master heartbeat."""
    if not config.links_out or previous is None:
        return []
    intents = d.state_diff(previous, current)
    if not intents:
        return []
    return apply_plan(plan_copies(config, intents, current))
