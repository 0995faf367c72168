"""The copy engine: a master's intents become one command per active link, written in one statement."""

from __future__ import annotations

import functools
import json
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from config.db import server_binding_cursor
from mt5bridge.commands import CommandSpec

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


@functools.lru_cache(maxsize=4096)  # a master ticket is spelled once per heartbeat, not once per slave
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


class MasterContext:
    """Per-heartbeat values shared by every link: the master's figures, symbol list and lateness."""

    def __init__(self, current: Any):
        self.current = current
        self.figures = AccountFigures(current.balance, current.equity, current.margin_free)
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
            self._slave_figures = slave_figures([link_prep(link).slave_id for link in links])
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
    plan.specs.append(CommandSpec(prep.slave_id, kind, params, "copy", expires, key, link.id))
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


def plan_copies(config: AccountConfig, intents: list[d.Intent], current: Any) -> Plan:
    plan = Plan()
    links = config.links_out
    if not links or not intents:
        return plan
    plan.links = {link.id: link for link in links}
    ctx = MasterContext(current)
    # Per intent, once: the facts every link's copy shares (a triggered pending order copies as an open).
    facts: dict[int, OpenFacts] = {}
    for index, intent in enumerate(intents):
        if intent.kind in (d.OPEN, d.PENDING_PLACED, d.INCREASE):
            facts[index] = open_facts(ctx, intent)
        elif intent.kind == d.PENDING_TRIGGERED:
            facts[index] = open_facts(ctx, d.Intent(**{**intent.__dict__, "kind": d.OPEN}))
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
        for index, intent in enumerate(intents):
            rows = rows_by_key.get((link.id, intent.ticket), []) if rows_by_key else []
            if intent.kind in (d.OPEN, d.PENDING_PLACED):
                _plan_open(plan, ctx, link, links, facts[index], held.get(link.id, {}))
            elif intent.kind == d.INCREASE:
                if any(r.status == CopyStatus.CLOSED_ON_SLAVE for r in rows):
                    _skip(
                        plan, link, intent, "closed_on_slave", "the copy was closed by hand on the slave; not reopened"
                    )
                elif rows:
                    _plan_open(plan, ctx, link, links, facts[index], held.get(link.id, {}))
            elif intent.kind in (d.CLOSE, d.PARTIAL_CLOSE):
                _plan_reduce(plan, link, intent, rows)
            elif intent.kind in (d.MODIFY, d.PENDING_MODIFIED):
                _plan_modify(plan, link, intent, rows)
            elif intent.kind == d.PENDING_CANCELLED:
                _plan_pending_gone(plan, link, intent, rows)
            elif intent.kind == d.PENDING_TRIGGERED:
                if not _plan_pending_gone(plan, link, intent, rows):
                    _plan_open(plan, ctx, link, links, facts[index], held.get(link.id, {}))
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


def _prepare_commands(plan: Plan, now) -> list:
    """Validate and number the plan's commands; one link's impossible order (a volume above the protocol's
    limit) is dropped with a visible reason instead of sinking the whole batch."""
    from config.errors import ServiceError
    from mt5bridge.commands import command_prepare

    commands, valid, memo = [], [], {}
    for spec in plan.specs:
        try:
            commands.append(command_prepare(spec, now, memo=memo))
        except ServiceError as exc:
            if exc.code != "invalid_command":
                raise
            link = plan.links.get(spec.link_id)
            if link is not None:
                plan.events.append(
                    Skip(
                        link_id=link.id,
                        master_account_id=str(link.master_id),
                        slave_account_id=str(link.slave_id),
                        intent=spec.kind,
                        reason_code="invalid_order",
                        reason=exc.message[:255],
                        symbol=str(spec.params.get("symbol", ""))[:64],
                    )
                )
            plan.new_rows = [r for r in plan.new_rows if r.key != spec.idempotency_key]
            continue
        valid.append(spec)
    plan.specs = valid
    return commands


def apply_plan(plan: Plan) -> list:
    """Write the plan: commands (deduplicated by idempotency key), new copy rows, row changes and skip events,
    atomically. Returns the heartbeat's commands (in one statement: only those stored now; through the ORM:
    a repeated key gives the command stored first)."""
    if not (plan.specs or plan.changed_rows or plan.events):
        return []
    now = timezone.now()
    commands = _prepare_commands(plan, now)
    if writes_in_one_statement():
        return _write_in_one_statement(plan, commands, now)
    return _write_with_orm(plan)


def writes_in_one_statement() -> bool:
    """PostgreSQL takes the whole heartbeat in one statement; other databases go through the ORM."""
    return connection.vendor == "postgresql"


def _json(rows: list[dict]) -> str:
    return json.dumps(rows, separators=(",", ":"), default=str)  # default: Decimal and UUID as strings


@functools.cache
def _statement_parts() -> dict[str, str]:
    """The ``WITH`` parts of the heartbeat statement after the commands' insert (built once per process)."""
    from mt5bridge.ea.models import Command

    copies, events, commands = CopiedPosition._meta.db_table, CopyEvent._meta.db_table, Command._meta.db_table
    return {
        "new_copy": (
            f"new_copy AS (INSERT INTO {copies} (link_id, slave_account_id, kind, master_ticket, master_symbol, "
            "master_volume, slave_ticket, slave_symbol, slave_side, slave_volume, status, close_requested, "
            "open_command_id, close_command_id, copy_id, opened_at, closed_at) "
            "SELECT r.link_id, r.slave_account_id, r.kind, r.master_ticket, r.master_symbol, r.master_volume, NULL, "
            "r.slave_symbol, r.slave_side, r.slave_volume, %s, false, r.open_command_id, NULL, r.copy_id, %s, NULL "
            "FROM jsonb_to_recordset(%s::jsonb) AS r(link_id bigint, slave_account_id uuid, kind text, "
            "master_ticket bigint, master_symbol text, master_volume numeric, slave_symbol text, slave_side text, "
            "slave_volume numeric, copy_id text, open_command_id uuid) "
            # Only the rows of commands inserted now (new ids): no conflict check needed, and none paid for.
            "JOIN new_command ON new_command.id = r.open_command_id)"
        ),
        # A close of a copy points at its close command: the new one, or on a repeated heartbeat the stored one
        # with the same key (the statement's snapshot sees stored commands, not the ones it inserts).
        "changed": (
            f"changed AS (UPDATE {copies} AS p SET kind = u.kind, master_volume = u.master_volume, "
            "slave_volume = u.slave_volume, close_requested = u.close_requested, "
            "close_command_id = CASE WHEN u.close_key IS NULL THEN u.close_command_id ELSE COALESCE("
            "(SELECT n.id FROM new_command AS n WHERE n.id = u.new_close_command_id), "
            f"(SELECT c.id FROM {commands} AS c "
            "WHERE c.account_id = p.slave_account_id AND c.idempotency_key = u.close_key), "
            "u.close_command_id) END "
            "FROM jsonb_to_recordset(%s::jsonb) AS u(id bigint, kind text, master_volume numeric, "
            "slave_volume numeric, close_requested boolean, close_command_id uuid, close_key text, "
            "new_close_command_id uuid) "
            "WHERE p.id = u.id)"
        ),
        "skipped": (
            f"skipped AS (INSERT INTO {events} (link_id, master_account_id, slave_account_id, intent, status, "
            "reason_code, reason, master_ticket, symbol, volume, created_at) "
            "SELECT e.link_id, e.master_account_id, e.slave_account_id, e.intent, 'skipped', e.reason_code, "
            "e.reason, e.master_ticket, e.symbol, e.volume, %s "
            "FROM jsonb_to_recordset(%s::jsonb) AS e(link_id bigint, master_account_id uuid, slave_account_id uuid, "
            "intent text, reason_code text, reason text, master_ticket bigint, symbol text, volume numeric))"
        ),
    }


def _write_in_one_statement(plan: Plan, commands: list, now) -> list:
    """PostgreSQL: every write of the heartbeat in one statement (one round trip, its own transaction).

    ``WITH new_command AS (INSERT ... ON CONFLICT DO NOTHING RETURNING id)`` inserts the commands and says which
    are new; the copy rows join it, so a repeated heartbeat inserts neither again. Rows travel as JSON
    (``jsonb_to_recordset``): one C-encoded parameter per table instead of the ORM's per-field work.
    """
    from mt5bridge.commands import commands_cache_after_commit, commands_insert_sql

    command_sql, params = commands_insert_sql(commands)
    statement = _statement_parts()
    parts = [f"new_command AS ({command_sql})"]
    by_key = {c.idempotency_key: c for c in commands}
    rows = [r for r in plan.new_rows if r.key in by_key]
    if rows:
        parts.append(statement["new_copy"])
        params += [
            CopyStatus.PENDING.value,
            now,
            _json(
                [
                    {
                        "link_id": r.link_id,
                        "slave_account_id": r.slave_account_id,
                        "kind": r.kind,
                        "master_ticket": r.master_ticket,
                        "master_symbol": r.master_symbol,
                        "master_volume": str(r.master_volume),
                        "slave_symbol": r.slave_symbol,
                        "slave_side": r.slave_side,
                        "slave_volume": str(r.slave_volume),
                        "copy_id": r.copy_id,
                        "open_command_id": str(by_key[r.key].id),
                    }
                    for r in rows
                ]
            ),
        ]
    if plan.changed_rows:
        closing = {row.id: key for key, row in plan.close_keys if key in by_key}
        parts.append(statement["changed"])
        params.append(
            _json(
                [
                    {
                        "id": row.id,
                        "kind": row.kind,
                        "master_volume": row.master_volume,
                        "slave_volume": row.slave_volume,
                        "close_requested": row.close_requested,
                        "close_command_id": row.close_command_id,
                        "close_key": closing.get(row.id),
                        "new_close_command_id": by_key[closing[row.id]].id if row.id in closing else None,
                    }
                    for row in plan.changed_rows.values()
                ]
            )
        )
    if plan.events:
        parts.append(statement["skipped"])
        params += [now, _json([_skip_dict(e) for e in plan.events])]
    sql = "WITH " + ", ".join(parts) + " SELECT id FROM new_command"
    # Alone (autocommit), the statement is its own transaction; inside a caller's transaction a savepoint keeps a
    # failed copy from breaking the caller's (the heartbeat's) transaction.
    # Server-side binding: the statement text is the same for every heartbeat of a shape, so psycopg prepares it
    # after a few runs and PostgreSQL stops planning this many-part statement each time (most of its cost).
    with transaction.atomic() if not connection.get_autocommit() else nullcontext():
        with server_binding_cursor() as cursor:
            cursor.execute(sql, params)
            inserted = {row[0] for row in cursor.fetchall()}
        new = [c for c in commands if c.id in inserted]
        commands_cache_after_commit(new)
    return new


def _skip_dict(skip: Skip) -> dict:
    return {name: getattr(skip, name) for name in Skip.__slots__}


def _write_with_orm(plan: Plan) -> list:
    """Other databases (the embedded SQLite default): the same writes through the ORM, in one transaction."""
    from mt5bridge.commands import commands_enqueue_bulk

    with transaction.atomic():
        commands = commands_enqueue_bulk(plan.specs) if plan.specs else []
        by_key = {c.idempotency_key: c for c in commands}
        rows = [
            CopiedPosition(
                link_id=r.link_id,
                slave_account_id=r.slave_account_id,
                kind=r.kind,
                master_ticket=r.master_ticket,
                master_symbol=r.master_symbol,
                master_volume=r.master_volume,
                slave_symbol=r.slave_symbol,
                slave_side=r.slave_side,
                slave_volume=r.slave_volume,
                status=CopyStatus.PENDING,
                copy_id=r.copy_id,
                open_command_id=by_key[r.key].id,
            )
            for r in plan.new_rows
            if r.key in by_key
        ]
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
            CopyEvent.objects.bulk_create(CopyEvent(**_skip_dict(e)) for e in plan.events)
    return commands


def copy_master_state(config: AccountConfig, previous: Any, current: Any) -> list:
    """The whole copy step of one master heartbeat."""
    if not config.links_out or previous is None:
        return []
    intents = d.state_diff(previous, current)
    if not intents:
        return []
    return apply_plan(plan_copies(config, intents, current))
