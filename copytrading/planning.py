"""Copy planning: what one master heartbeat means for each slave link (filters, mapping, sizing, closes).

No writes and no SQL here: the engine reads what a plan needs (the copy rows of the master's tickets, the symbols
held by higher-priority masters, the slaves' figures) and writes the plan it gets back (``copytrading.engine``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils import timezone

from mt5bridge.commands import CommandSpec

from . import diff as d
from .choices import AccountMode, CopyKind, CopyStatus, NoStopLoss, SizingMode
from .guards import equity_stop_refusal
from .mapping import Resolved, broker_symbols, resolve
from .models import CopiedPosition, CopyLink, link_origin_ref
from .selectors import slave_mode
from .sizing import AccountFigures, SizingSkip, copy_volume, partial_close_volume

ZERO = Decimal("0")
BUY, SELL = 0, 1
# Pending order types: reversing a buy limit (buy below the market) gives a sell stop (sell below it).
REVERSED_ORDER_TYPE = {2: 5, 3: 4, 4: 3, 5: 2, 6: 7, 7: 6}
ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


# A master ticket is spelled once per heartbeat, not once per slave. Not a config.caches memo: a pure function
# of the number (no settings, no database), so an answer it keeps is never stale and nothing needs to drop it.
@functools.lru_cache(maxsize=4096)
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


@dataclass(slots=True)
class NewCopy:
    """A copy row to insert, stored only if the open command of the same idempotency key is new."""

    key: str
    link_id: int
    slave_account_id: str
    kind: str
    master_ticket: int
    master_symbol: str
    master_volume: Decimal
    slave_symbol: str
    slave_side: str
    slave_volume: Decimal
    copy_id: str


@dataclass(slots=True)
class Skip:
    """A copy not sent, and why (a CopyEvent row)."""

    link_id: int
    master_account_id: str
    slave_account_id: str
    intent: str
    reason_code: str
    reason: str
    master_ticket: int | None = None
    symbol: str = ""
    volume: Decimal | None = None


@dataclass
class Plan:
    """What one master heartbeat produces: command specs, new copy rows, row changes and skip events."""

    specs: list = field(default_factory=list)
    new_rows: list[NewCopy] = field(default_factory=list)
    changed_rows: dict[int, CopiedPosition] = field(default_factory=dict)
    close_keys: list[tuple[str, CopiedPosition]] = field(default_factory=list)
    events: list[Skip] = field(default_factory=list)
    links: dict[int, CopyLink] = field(default_factory=dict)
    # Links whose new copies the account or billing gate refused: (reason code, reason); links that copy again
    # after a recorded refusal.
    refused: dict[int, tuple[str, str]] = field(default_factory=dict)
    cleared: set[int] = field(default_factory=set)


def _skip(plan: Plan, link: CopyLink, intent: d.Intent, code: str, reason: str, volume: Decimal | None = None) -> None:
    plan.events.append(
        Skip(
            link_id=link.id,
            master_account_id=str(link.master_id),
            slave_account_id=str(link.slave_id),
            intent=intent.kind,
            reason_code=code,
            reason=reason[:255],
            master_ticket=intent.ticket,
            symbol=intent.symbol,
            volume=volume,
        )
    )


@dataclass(frozen=True, slots=True)
class LinkPrep:
    """What every heartbeat would otherwise recompute from a link: kept with the cached link (see selectors)."""

    slave_id: str
    slave_mode: str
    symbols_include: frozenset[str]
    symbols_exclude: frozenset[str]
    magics_include: frozenset[int]
    magics_exclude: frozenset[int]
    copy_prefix: str  # copy_id without the ticket
    key_prefix: str  # idempotency keys of this link's commands
    origin_ref: str  # how the link's commands name it


def link_prep(link: CopyLink) -> LinkPrep:
    prep = link.__dict__.get("_copy_prep")
    if prep is None:
        prep = link.__dict__["_copy_prep"] = LinkPrep(
            slave_id=str(link.slave_id),
            slave_mode=slave_mode(link),
            symbols_include=frozenset(s.upper() for s in link.symbols_include or ()),
            symbols_exclude=frozenset(s.upper() for s in link.symbols_exclude or ()),
            magics_include=frozenset(int(m) for m in link.magics_include or ()),
            magics_exclude=frozenset(int(m) for m in link.magics_exclude or ()),
            copy_prefix=f"cp{base36(link.id)}.",
            key_prefix=f"copy:{link.id}:",
            origin_ref=link_origin_ref(link.id),
        )
    return prep


def _symbols_for(account) -> Any:
    return broker_symbols(account.gateway_kind, account.server, account.login)


def _passes_filters(prep: LinkPrep, intent: d.Intent) -> tuple[str, str] | None:
    symbol = intent.symbol.upper()
    if prep.symbols_include and symbol not in prep.symbols_include:
        return "symbol_not_included", f"{intent.symbol} is not in the link's symbol list"
    if prep.symbols_exclude and symbol in prep.symbols_exclude:
        return "symbol_excluded", f"{intent.symbol} is excluded by the link"
    if prep.magics_include and intent.magic not in prep.magics_include:
        return "magic_not_included", f"magic {intent.magic} is not in the link's magic list"
    if prep.magics_exclude and intent.magic in prep.magics_exclude:
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


@dataclass(frozen=True, slots=True)
class OpenFacts:
    """What every link's copy of one opening intent shares, worked out once per heartbeat, not once per slave."""

    intent: d.Intent
    late: float
    ticket36: str
    key_tail: str  # the idempotency key after the link's prefix
    sltp: tuple[str, str]
    sltp_reversed: tuple[str, str]
    price: str


def open_facts(ctx: MasterContext, intent: d.Intent) -> OpenFacts:
    sl, tp = _dec(intent.sl), _dec(intent.tp)
    return OpenFacts(
        intent=intent,
        late=ctx.lateness(intent),
        ticket36=base36(intent.ticket),
        key_tail=f"{intent.kind}:{intent.ticket}:{_dec(intent.remaining_volume)}",
        sltp=(sl, tp),
        sltp_reversed=(tp, sl),
        price=_dec(intent.price),
    )


FiguresReader = Callable[[list[str]], dict[str, AccountFigures]]


class MasterContext:
    """Per-heartbeat values shared by every link: the master's figures, symbol list and lateness.

    ``figures_reader`` gives the slaves' balance/equity/free margin; it is called once, and only when a link sizes
    by ratio or risk."""

    def __init__(self, current: Any, figures_reader: FiguresReader):
        self.current = current
        self.figures_reader = figures_reader
        self.figures = AccountFigures.of(current)
        self.now = current.received_at or timezone.now()
        self.magic = settings.COPY_MAGIC
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
            self._slave_figures = self.figures_reader([link_prep(link).slave_id for link in links])
        return self._slave_figures


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
        slave = ctx.slave_figures(links).get(link_prep(link).slave_id)
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
        skip_below_minimum=link.skip_below_min_volume,
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


def sample_size(
    ctx: MasterContext, link: CopyLink, *, symbol: str, volume: Decimal, sl_points: int = 0
) -> tuple[Resolved, Decimal]:
    """The slave symbol and volume the engine would send for a sample master buy (the link form's preview).

    The engine's own mapping and sizing; ``link`` may be unsaved. The stop loss is ``sl_points`` of the slave
    symbol's points away (0: none). Raises `SizingSkip` when the engine would skip the trade.
    """
    target = _resolve_cached(ctx, link, symbol)
    if target is None:
        raise SizingSkip("symbol_not_found", f"{symbol} has no counterpart on the slave's server")
    distance = Decimal(sl_points) * (target.spec.point or ZERO)
    price = distance * 2 + 1  # any price: sizing reads the distance only
    sl = price - distance if distance else ZERO
    intent = d.Intent(kind=d.OPEN, ticket=0, symbol=symbol, type=BUY, volume=volume, price=price, sl=sl)
    return target, _size(ctx, link, [link], intent, target)


def _plan_open(
    plan: Plan,
    ctx: MasterContext,
    link: CopyLink,
    links: list[CopyLink],
    facts: OpenFacts,
    held_symbols: dict[str, set[str]],
) -> None:
    intent = facts.intent
    is_pending = intent.kind == d.PENDING_PLACED
    prep = link_prep(link)
    mode = prep.slave_mode
    if mode != AccountMode.NORMAL:
        return _skip(plan, link, intent, f"slave_{mode}", f"the slave is in {mode.replace('_', '-')} mode (rules)")
    if link.close_only:
        return _skip(plan, link, intent, "link_close_only", "the link copies closes only")
    if (link.stopped_at or link.equity_stop_level) and (stop := equity_stop_refusal(link, ctx.slave_figures(links))):
        return _skip(plan, link, intent, *stop)
    if is_pending and not link.copy_pending:
        return None  # configuration, not a failure: nothing to log
    rejected = _passes_filters(prep, intent)
    if rejected:
        return _skip(plan, link, intent, *rejected)
    late = facts.late
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
    blockers = held_symbols.get(prep.slave_id)
    if blockers is not None and target.symbol in blockers:
        return _skip(
            plan, link, intent, "lower_priority", f"{target.symbol} on the slave is held by a higher-priority master"
        )
    try:
        volume = _size(ctx, link, links, intent, target)
    except SizingSkip as skip:
        return _skip(plan, link, intent, skip.code, skip.message)
    ident = (prep.copy_prefix + facts.ticket36)[:31]  # = copy_id(link.id, intent.ticket)
    if not link.copy_sltp:
        sl, tp = "0", "0"
    else:
        sl, tp = facts.sltp_reversed if link.reverse else facts.sltp
    key = (prep.key_prefix + facts.key_tail)[:100]
    remaining = max(link.max_delay_seconds - late, 1.0)
    if is_pending:
        order_type = REVERSED_ORDER_TYPE.get(intent.type, intent.type) if link.reverse else intent.type
        params = {
            "symbol": target.symbol,
            "type": order_type,
            "volume": _dec(volume),
            "price": facts.price,
            "sl": sl,
            "tp": tp,
            "comment": ident,
            "magic": ctx.magic,
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
            "magic": ctx.magic,
            "deviation": link.max_slippage_points,
        }
        kind, row_kind = "open_market", CopyKind.POSITION
        expires = ctx.now + timedelta(seconds=remaining)
    plan.specs.append(CommandSpec(prep.slave_id, kind, params, "copy", expires, key, prep.origin_ref))
    plan.new_rows.append(
        NewCopy(
            key=key,
            link_id=link.id,
            slave_account_id=prep.slave_id,
            kind=row_kind,
            master_ticket=intent.ticket,
            master_symbol=intent.symbol,
            master_volume=intent.volume,
            slave_symbol=target.symbol,
            slave_side=side,
            slave_volume=volume,
            copy_id=ident,
        )
    )


def _spec(link: CopyLink, kind: str, params: dict, key: str, expires):
    return CommandSpec(
        account_id=link_prep(link).slave_id,
        kind=kind,
        params=params,
        origin="copy",
        expires_at=expires,
        idempotency_key=key,
        origin_ref=link_prep(link).origin_ref,
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
            if target is None:  # a copy row always names its slave symbol; kept for an emptied one
                _skip(plan, link, intent, "symbol_unknown", "the copy names no slave symbol")
                continue
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
        plan.specs.append(_spec(link, kind, params, key, None))
        if full:
            row.close_requested = True
            plan.close_keys.append((key, row))
        else:
            row.slave_volume -= volume
            row.master_volume = intent.remaining_volume
        plan.changed_rows[row.id] = row


def _plan_modify(plan: Plan, link: CopyLink, intent: d.Intent, rows: list[CopiedPosition]) -> None:
    if not link.copy_sltp or link_prep(link).slave_mode == AccountMode.PAUSED:
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
        plan.specs.append(_spec(link, kind, params, key, None))


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
            plan.specs.append(_spec(link, "cancel_pending", {"ticket": row.slave_ticket}, key, None))
            row.close_requested = True
            plan.close_keys.append((key, row))
            plan.changed_rows[row.id] = row
        else:
            row.close_requested = True
            plan.changed_rows[row.id] = row
    return handled


@dataclass
class PlanInputs:
    """What planning needs from the database, read by the engine before it plans."""

    # Copy rows (pending, open, closed on the slave) by (link id, master ticket), oldest first.
    rows_by_key: dict[tuple[int, int], list[CopiedPosition]] = field(default_factory=dict)
    # Per link: the slave symbols a master with a better priority holds, by slave id.
    held: dict[int, dict[str, set[str]]] = field(default_factory=dict)
    # Per link refused by the account or billing gate (master or slave): (reason code, reason). A refused link
    # makes no new copy; closes and SL/TP changes of the copies it already made still go through (as when paused).
    refused: dict[int, tuple[str, str]] = field(default_factory=dict)


def follow_up_tickets(intents: list[d.Intent]) -> set[int]:
    """Master tickets whose intents change copies that may exist (everything but a new trade)."""
    return {i.ticket for i in intents if i.kind not in (d.OPEN, d.PENDING_PLACED)}


def needs_priority_check(intents: list[d.Intent]) -> bool:
    return any(i.kind in d.OPENING_INTENTS or i.kind == d.PENDING_TRIGGERED for i in intents)


def plan_copies(
    links: list[CopyLink], intents: list[d.Intent], current: Any, inputs: PlanInputs, figures_reader: FiguresReader
) -> Plan:
    """Intents of one master heartbeat × its active links → command specs, new and changed copy rows, skips."""
    plan = Plan()
    if not links or not intents:
        return plan
    plan.links = {link.id: link for link in links}
    ctx = MasterContext(current, figures_reader)
    # Per intent, once: the facts every link's copy shares (a triggered pending order copies as an open).
    facts: dict[int, OpenFacts] = {}
    for index, intent in enumerate(intents):
        if intent.kind in (d.OPEN, d.PENDING_PLACED, d.INCREASE):
            facts[index] = open_facts(ctx, intent)
        elif intent.kind == d.PENDING_TRIGGERED:
            facts[index] = open_facts(ctx, d.Intent(**{**intent.__dict__, "kind": d.OPEN}))
    rows_by_key, held = inputs.rows_by_key, inputs.held
    for link in links:
        refusal = inputs.refused.get(link.id)
        for index, intent in enumerate(intents):
            rows = rows_by_key.get((link.id, intent.ticket), []) if rows_by_key else []
            opens = False
            if intent.kind in (d.OPEN, d.PENDING_PLACED):
                opens = True
            elif intent.kind == d.INCREASE:
                if any(r.status == CopyStatus.CLOSED_ON_SLAVE for r in rows):
                    _skip(
                        plan, link, intent, "closed_on_slave", "the copy was closed by hand on the slave; not reopened"
                    )
                else:
                    opens = bool(rows)
            elif intent.kind in (d.CLOSE, d.PARTIAL_CLOSE):
                _plan_reduce(plan, link, intent, rows)
            elif intent.kind in (d.MODIFY, d.PENDING_MODIFIED):
                _plan_modify(plan, link, intent, rows)
            elif intent.kind == d.PENDING_CANCELLED:
                _plan_pending_gone(plan, link, intent, rows)
            elif intent.kind == d.PENDING_TRIGGERED:
                opens = not _plan_pending_gone(plan, link, intent, rows)
            if not opens:
                continue
            if refusal is not None:
                _skip(plan, link, intent, *refusal)
                plan.refused[link.id] = refusal
            else:
                _plan_open(plan, ctx, link, links, facts[index], held.get(link.id, {}))
                if link.refusal_code:
                    plan.cleared.add(link.id)
    return plan
