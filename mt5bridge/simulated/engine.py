"""The simulated broker: trading, pending orders, SL/TP, stop-out and balance operations on the tables.

Every change happens inside ``transaction.atomic()`` with the account row locked
(``select_for_update``), so web processes, workers and the market loop can share one database.
Triggers (pending orders, SL/TP, expirations) are found lazily: whoever reads or trades an
account first replays the price path since ``checked_at`` and fills what crossed, at the instant
and price it crossed; ``process_market`` does the same for every account on a loop.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.db import connection, transaction

from mt5bridge.gateway.types import (
    DealEntry,
    DealReason,
    DealType,
    GatewayError,
    NotFound,
    OrderRequest,
    OrderResult,
    OrderType,
    Retcode,
    TradeAction,
)

from . import accounting, prices
from .accounting import BUY, SELL, ZERO, Figures, Valuation, money
from .models import COMMENT_LENGTH, SimAccount, SimDeal, SimOrder, SimPosition, SimServer
from .symbols_catalog import SymbolSpec, symbol_spec

logger = logging.getLogger(__name__)

MAX_BALANCE_OPERATION = Decimal("1000000000")
_PRICE_QUANTUM = Decimal("1e-10")  # PRICE fields keep 10 decimals (netting averages)
_ADVANCE_CHECKED_AFTER = timedelta(seconds=60)

_BUY_TYPES = (OrderType.BUY_LIMIT, OrderType.BUY_STOP)
_PENDING_TYPES = (OrderType.BUY_LIMIT, OrderType.SELL_LIMIT, OrderType.BUY_STOP, OrderType.SELL_STOP)
_CREDIT_TYPES = (DealType.CREDIT, DealType.BONUS)
_BALANCE_TYPES = (DealType.BALANCE, DealType.CREDIT, DealType.CHARGE, DealType.CORRECTION, DealType.BONUS)

RETCODE_COMMENTS = {
    Retcode.REQUOTE: "Requote",
    Retcode.PLACED: "Order placed",
    Retcode.DONE: "Request executed",
    Retcode.INVALID: "Invalid request",
    Retcode.INVALID_VOLUME: "Invalid volume",
    Retcode.INVALID_PRICE: "Invalid price",
    Retcode.INVALID_STOPS: "Invalid stops",
    Retcode.MARKET_CLOSED: "Market closed",
    Retcode.NO_MONEY: "No money",
    Retcode.INVALID_EXPIRATION: "Invalid expiration",
    Retcode.NO_CHANGES: "No changes",
    Retcode.INVALID_ORDER: "Invalid order",
    Retcode.POSITION_CLOSED: "Position doesn't exist",
    Retcode.INVALID_CLOSE_VOLUME: "Invalid close volume",
}


class OperationRefused(GatewayError):
    """The server refused a broker operation; ``retcode`` is the MT5 trade return code."""

    def __init__(self, retcode: int, message: str):
        super().__init__(f"{message} (retcode {retcode})")
        self.retcode = retcode


# --- Small helpers --------------------------------------------------------------------


def _sec(when: datetime) -> int:
    return prices.epoch_second(when)


def _at(t: int) -> datetime:
    return prices.from_epoch(t)


def _comment(text: str | None) -> str:
    return (text or "")[:COMMENT_LENGTH]


def _dec(value) -> Decimal:
    """A request number as a Decimal; anything unusable becomes -1, which every check refuses."""
    if not isinstance(value, Decimal):
        try:
            value = Decimal(str(value))
        except (InvalidOperation, ValueError):
            return Decimal(-1)
    return value if value.is_finite() else Decimal(-1)


def _normalize(spec: SymbolSpec, price) -> Decimal:
    """A price rounded to the symbol's digits (a terminal's NormalizeDouble)."""
    return _dec(price).quantize(spec.point)


def tidy_price(value: Decimal, digits: int) -> Decimal:
    """A stored price shown with the symbol's digits, or with its own when it is an average."""
    quantum = Decimal(1).scaleb(-digits)
    rounded = value.quantize(quantum)
    return rounded if rounded == value else value.normalize()


def _tidy_volume(value: Decimal) -> Decimal:
    rounded = value.quantize(Decimal("0.01"))
    return rounded if rounded == value else value.normalize()


def _result(retcode: Retcode, comment: str = "", **values) -> OrderResult:
    return OrderResult(retcode=int(retcode), comment=comment or RETCODE_COMMENTS.get(retcode, ""), **values)


def _volume_ok(spec: SymbolSpec, volume: Decimal) -> bool:
    if volume < spec.volume_min or volume > spec.volume_max:
        return False
    return volume % spec.volume_step == 0


def _stops_ok(spec: SymbolSpec, side: int, sl: Decimal, tp: Decimal, bid: Decimal, ask: Decimal) -> bool:
    """SL/TP on the right side of the closing price (bid for a buy, ask for a sell), beyond the stops level."""
    if sl < 0 or tp < 0:
        return False
    gap = spec.stops_level * spec.point
    if side == BUY:
        sl_ok = not sl or (sl <= bid - gap if gap else sl < bid)
        tp_ok = not tp or (tp >= bid + gap if gap else tp > bid)
    else:
        sl_ok = not sl or (sl >= ask + gap if gap else sl > ask)
        tp_ok = not tp or (tp <= ask - gap if gap else tp < ask)
    return sl_ok and tp_ok


def _pending_price_ok(spec: SymbolSpec, order_type: int, price: Decimal, bid: Decimal, ask: Decimal) -> bool:
    gap = spec.stops_level * spec.point
    if order_type == OrderType.BUY_LIMIT:
        return price <= ask - gap and price < ask
    if order_type == OrderType.SELL_LIMIT:
        return price >= bid + gap and price > bid
    if order_type == OrderType.BUY_STOP:
        return price >= ask + gap and price > ask
    return price <= bid - gap and price < bid  # SELL_STOP


def _trading_day_end(after: datetime) -> datetime:
    """The next 21:00 UTC (the simulator's rollover, where a trading day ends)."""
    end = after.replace(hour=21, minute=0, second=0, microsecond=0)
    return end if end > after else end + timedelta(days=1)


def _reason_for(magic: int) -> int:
    return int(DealReason.EXPERT) if magic else int(DealReason.CLIENT)


def allocate_tickets(server: str, count: int) -> int:
    """Reserve ``count`` consecutive tickets on ``server`` and return the first one."""
    table = connection.ops.quote_name(SimServer._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET next_ticket = next_ticket + %s WHERE name = %s RETURNING next_ticket",
            [count, server],
        )
        row = cursor.fetchone()
    if row is None:
        raise NotFound(f"server {server!r} is not simulated")
    return row[0] - count


# --- Events found on the price path ---------------------------------------------------


@dataclass(order=True)
class _Event:
    t: int
    rank: int  # SL/TP before pending fills before expirations at the same second
    ticket: int
    kind: str = field(compare=False)
    item: object = field(compare=False)
    bid: Decimal = field(compare=False, default=ZERO)
    ask: Decimal = field(compare=False, default=ZERO)


# --- One account's book under lock ----------------------------------------------------


class Book:
    """One account with its open positions and pending orders, changed in memory and written back once."""

    def __init__(self, account: SimAccount, positions: list[SimPosition], orders: list[SimOrder], now: datetime):
        self.account = account
        self.positions = positions
        self.orders = orders
        self.now = now
        self.t = _sec(now)
        self.changed = False
        self._deals: list[SimDeal] = []
        self._touched_positions: dict[int, SimPosition] = {}
        self._deleted_positions: list[int] = []
        self._touched_orders: dict[int, SimOrder] = {}
        self._tickets: list[int] = []
        self._valuations: dict[int, Valuation] = {}

    @classmethod
    def lock(cls, login: int, now: datetime) -> Book:
        try:
            account = SimAccount.objects.select_for_update(of=("self",)).select_related("group").get(login=login)
        except SimAccount.DoesNotExist:
            raise NotFound(f"login {login} is not on the simulated server") from None
        positions = list(SimPosition.objects.filter(account_id=login).order_by("time", "ticket"))
        orders = list(SimOrder.objects.filter(account_id=login, state=SimOrder.PLACED).order_by("time_setup", "ticket"))
        return cls(account, positions, orders, now)

    # --- lookups ---

    def spec(self, symbol: str) -> SymbolSpec | None:
        return symbol_spec(self.account.server, symbol)

    def valuation(self, t: int) -> Valuation:
        found = self._valuations.get(t)
        if found is None:
            found = self._valuations[t] = Valuation(t)
        return found

    def position(self, ticket: int) -> SimPosition | None:
        return next((p for p in self.positions if p.ticket == ticket), None)

    def netting_position(self, symbol: str) -> SimPosition | None:
        return next((p for p in self.positions if p.symbol == symbol), None)

    def order(self, ticket: int) -> SimOrder | None:
        return next((o for o in self.orders if o.ticket == ticket), None)

    def ticket(self) -> int:
        if not self._tickets:
            first = allocate_tickets(self.account.server, 4)
            self._tickets = [first + 3, first + 2, first + 1, first]
        return self._tickets.pop()

    def _position_rows(self) -> Iterable[tuple]:
        for p in self.positions:
            yield self.spec(p.symbol), p.type, p.volume, p.price_open, p.swap_accrued, _sec(p.swap_since)

    def figures(self, t: int) -> Figures:
        a = self.account
        return accounting.figures(a.balance, a.credit, a.leverage, self._position_rows(), self.valuation(t))

    def swap_of(self, pos: SimPosition, t: int) -> Decimal:
        spec = self.spec(pos.symbol)
        return accounting.position_swap(spec, pos.type, pos.volume, pos.swap_accrued, _sec(pos.swap_since), t)

    def commission(self, spec: SymbolSpec, volume: Decimal) -> Decimal:
        return money(spec.commission_per_lot * volume)

    # --- bookkeeping ---

    def _touch_position(self, pos: SimPosition) -> None:
        self._touched_positions[id(pos)] = pos
        self.changed = True

    def _remove_position(self, pos: SimPosition) -> None:
        self.positions.remove(pos)
        self._touched_positions.pop(id(pos), None)
        if pos.pk is not None:
            self._deleted_positions.append(pos.pk)
        self.changed = True

    def _touch_order(self, order: SimOrder) -> None:
        self._touched_orders[id(order)] = order
        if order.state != SimOrder.PLACED and order in self.orders:
            self.orders.remove(order)
        self.changed = True

    def add_deal(
        self,
        *,
        at: datetime,
        type: int,
        entry: int = DealEntry.IN,
        order: int = 0,
        position_id: int = 0,
        symbol: str = "",
        volume: Decimal = ZERO,
        price: Decimal = ZERO,
        profit: Decimal = ZERO,
        commission: Decimal = ZERO,
        swap: Decimal = ZERO,
        magic: int = 0,
        reason: int = 0,
        comment: str = "",
    ) -> SimDeal:
        deal = SimDeal(
            account_id=self.account.login,
            ticket=self.ticket(),
            order=order,
            time=at.replace(microsecond=at.microsecond // 1000 * 1000),  # MT5 keeps milliseconds
            type=int(type),
            entry=int(entry),
            magic=magic,
            position_id=position_id,
            reason=int(reason),
            volume=volume,
            price=price,
            commission=commission,
            swap=swap,
            profit=profit,
            symbol=symbol,
            comment=_comment(comment),
        )
        self._deals.append(deal)
        if type in _CREDIT_TYPES:
            self.account.credit += profit
        else:
            self.account.balance += profit + commission + swap
        self.changed = True
        return deal

    def flush(self) -> None:
        """Write every change back; the account row last (its version tells readers something moved)."""
        if self._deals:
            SimDeal.objects.bulk_create(self._deals)
        open_ids = {id(p) for p in self.positions}
        new_positions = []
        for pos in self._touched_positions.values():
            if id(pos) not in open_ids:
                continue
            if pos.pk is None:
                new_positions.append(pos)
            else:
                pos.save(
                    update_fields=[
                        "type", "volume", "price_open", "sl", "tp", "time_update", "swap_accrued", "swap_since",
                    ]
                )  # fmt: skip
        if new_positions:
            SimPosition.objects.bulk_create(new_positions)
        if self._deleted_positions:
            SimPosition.objects.filter(pk__in=self._deleted_positions).delete()
        new_orders = []
        for order in self._touched_orders.values():
            if order.pk is None:
                new_orders.append(order)
            else:
                order.save(
                    update_fields=[
                        "state", "volume_current", "price_open", "sl", "tp", "type_time", "time_update",
                        "time_expiration", "time_done", "position_id",
                    ]
                )  # fmt: skip
        if new_orders:
            SimOrder.objects.bulk_create(new_orders)
        account = self.account
        fields = ["checked_at"]
        if self.now > account.checked_at:
            account.checked_at = self.now
        if self.changed:
            account.version += 1
            account.orders_open = len(self.orders)
            fields += ["balance", "credit", "leverage", "version", "orders_open"]
        account.save(update_fields=fields)
        self._deals, self._touched_positions, self._deleted_positions, self._touched_orders = [], {}, [], {}

    # --- fills ---

    def open_position(
        self,
        spec: SymbolSpec,
        side: int,
        volume: Decimal,
        price: Decimal,
        at: datetime,
        *,
        order: int,
        magic: int,
        comment: str,
        reason: int,
        sl: Decimal = ZERO,
        tp: Decimal = ZERO,
    ) -> SimDeal:
        pos = SimPosition(
            account_id=self.account.login,
            ticket=order,
            identifier=order,
            symbol=spec.name,
            type=side,
            volume=volume,
            price_open=price,
            sl=sl,
            tp=tp,
            magic=magic,
            comment=_comment(comment),
            reason=3 if magic else 0,  # POSITION_REASON_EXPERT / _CLIENT
            time=at,
            time_update=at,
            swap_accrued=ZERO,
            swap_since=at,
        )
        self.positions.append(pos)
        self._touch_position(pos)
        return self.add_deal(
            at=at,
            type=side,
            entry=DealEntry.IN,
            order=order,
            position_id=order,
            symbol=spec.name,
            volume=volume,
            price=price,
            commission=self.commission(spec, volume),
            magic=magic,
            reason=reason,
            comment=comment,
        )

    def close_volume(
        self,
        pos: SimPosition,
        volume: Decimal,
        price: Decimal,
        at: datetime,
        *,
        order: int,
        magic: int,
        comment: str,
        reason: int,
        entry: int = DealEntry.OUT,
    ) -> SimDeal:
        """Close ``volume`` of ``pos`` at ``price`` (all of it when ``volume`` is the position's)."""
        spec = self.spec(pos.symbol)
        t = _sec(at)
        profit = self.valuation(t).profit(spec, pos.type, volume, pos.price_open, price)
        total_swap = self.swap_of(pos, t)
        if volume >= pos.volume:
            swap = total_swap
            self._remove_position(pos)
        else:
            swap = money(total_swap * volume / pos.volume)
            pos.swap_accrued = total_swap - swap
            pos.swap_since = at
            pos.volume -= volume
            pos.time_update = at
            self._touch_position(pos)
        return self.add_deal(
            at=at,
            type=SELL if pos.type == BUY else BUY,
            entry=entry,
            order=order,
            position_id=pos.identifier,
            symbol=pos.symbol,
            volume=volume,
            price=price,
            profit=profit,
            commission=self.commission(spec, volume),
            swap=swap,
            magic=magic,
            reason=reason,
            comment=comment,
        )

    def netting_fill(
        self,
        spec: SymbolSpec,
        side: int,
        volume: Decimal,
        price: Decimal,
        at: datetime,
        *,
        order: int,
        magic: int,
        comment: str,
        reason: int,
        sl: Decimal = ZERO,
        tp: Decimal = ZERO,
    ) -> SimDeal:
        """A deal on a netting account: opens, adds to, reduces, closes or reverses the symbol's position."""
        pos = self.netting_position(spec.name)
        if pos is None:
            return self.open_position(
                spec, side, volume, price, at, order=order, magic=magic, comment=comment, reason=reason, sl=sl, tp=tp
            )
        if volume <= pos.volume and pos.type != side:
            return self.close_volume(pos, volume, price, at, order=order, magic=magic, comment=comment, reason=reason)
        t = _sec(at)
        swap = ZERO
        profit = ZERO
        if pos.type == side:
            entry = DealEntry.IN
            pos.swap_accrued = self.swap_of(pos, t)
            total = pos.volume + volume
            pos.price_open = ((pos.price_open * pos.volume + price * volume) / total).quantize(_PRICE_QUANTUM)
            pos.volume = total
            if sl or tp:
                pos.sl, pos.tp = sl, tp
        else:
            # Reversal: the old position is closed in full and the rest opens the other way.
            entry = DealEntry.INOUT
            profit = self.valuation(t).profit(spec, pos.type, pos.volume, pos.price_open, price)
            swap = self.swap_of(pos, t)
            pos.type = side
            pos.volume = volume - pos.volume
            pos.price_open = price
            pos.swap_accrued = ZERO
            pos.sl, pos.tp = sl, tp
        pos.swap_since = at
        pos.time_update = at
        self._touch_position(pos)
        return self.add_deal(
            at=at,
            type=side,
            entry=entry,
            order=order,
            position_id=pos.identifier,
            symbol=spec.name,
            volume=volume,
            price=price,
            profit=profit,
            commission=self.commission(spec, volume),
            swap=swap,
            magic=magic,
            reason=reason,
            comment=comment,
        )

    def fill(self, spec: SymbolSpec, side: int, volume: Decimal, price: Decimal, at: datetime, **kwargs) -> SimDeal:
        if self.account.hedging:
            return self.open_position(spec, side, volume, price, at, **kwargs)
        return self.netting_fill(spec, side, volume, price, at, **kwargs)

    def can_afford(self, spec: SymbolSpec, side: int, volume: Decimal, price: Decimal, t: int) -> bool:
        """Free margin stays at or above zero once this deal's margin and commission are taken."""
        valuation = self.valuation(t)
        leverage = self.account.leverage
        extra = valuation.margin(spec, volume, price, leverage)
        if not self.account.hedging:
            pos = self.netting_position(spec.name)
            if pos is not None and pos.type != side:
                released = valuation.margin(spec, pos.volume, pos.price_open, leverage)
                extra = valuation.margin(spec, max(volume - pos.volume, ZERO), price, leverage) - released
        figures = self.figures(t)
        return figures.equity + self.commission(spec, volume) - figures.margin - extra >= 0

    # --- triggers ---

    def _position_event(self, pos: SimPosition, start: int, end: int) -> _Event | None:
        if not pos.sl and not pos.tp:
            return None
        spec = self.spec(pos.symbol)
        start = max(start, _sec(pos.time_update) + 1)
        if spec is None or start > end:
            return None
        spread = spec.spread * spec.point
        if pos.type == BUY:  # closes at the bid
            below, above = pos.sl or None, pos.tp or None
        else:  # closes at the ask = bid + spread
            below = pos.tp - spread if pos.tp else None
            above = pos.sl - spread if pos.sl else None
        found = prices.first_crossing(spec, start, end, bid_at_or_below=below, bid_at_or_above=above)
        if found is None:
            return None
        t, bid, ask = found
        return _Event(t, 0, pos.ticket, "sltp", pos, bid, ask)

    def _order_event(self, order: SimOrder, start: int, end: int) -> _Event | None:
        spec = self.spec(order.symbol)
        start = max(start, _sec(order.time_update) + 1)
        expires = _sec(order.time_expiration) if order.time_expiration else None
        search_end = min(end, expires - 1) if expires is not None else end
        if spec is not None and start <= search_end:
            spread = spec.spread * spec.point
            price = order.price_open
            below = above = None
            if order.type == OrderType.BUY_LIMIT:  # ask <= price
                below = price - spread
            elif order.type == OrderType.SELL_LIMIT:  # bid >= price
                above = price
            elif order.type == OrderType.BUY_STOP:  # ask >= price
                above = price - spread
            else:  # SELL_STOP: bid <= price
                below = price
            found = prices.first_crossing(spec, start, search_end, bid_at_or_below=below, bid_at_or_above=above)
            if found is not None:
                t, bid, ask = found
                return _Event(t, 1, order.ticket, "fill", order, bid, ask)
        if expires is not None and expires <= end:
            return _Event(max(expires, start - 1), 2, order.ticket, "expire", order)
        return None

    def next_event(self, start: int, end: int) -> _Event | None:
        events = [e for e in (self._position_event(p, start, end) for p in self.positions) if e]
        events += [e for e in (self._order_event(o, start, end) for o in self.orders) if e]
        return min(events) if events else None

    def stop_out_due(self, t: int) -> bool:
        if not self.positions:
            return False
        level = self.figures(t).margin_level
        return level is not None and level <= self.account.group.stop_out

    def needs_settling(self) -> bool:
        start = _sec(self.account.checked_at) + 1
        return self.next_event(start, self.t) is not None or self.stop_out_due(self.t)

    def _apply(self, event: _Event) -> None:
        at = _at(event.t)
        if event.kind == "sltp":
            pos: SimPosition = event.item
            close = event.bid if pos.type == BUY else event.ask
            if pos.sl and (close <= pos.sl if pos.type == BUY else close >= pos.sl):
                reason, comment = DealReason.SL, f"[sl {tidy_price(pos.sl, self.spec(pos.symbol).digits)}]"
            else:
                reason, comment = DealReason.TP, f"[tp {tidy_price(pos.tp, self.spec(pos.symbol).digits)}]"
            self.close_volume(
                pos, pos.volume, close, at, order=self.ticket(), magic=pos.magic, comment=comment, reason=reason
            )
            return
        order: SimOrder = event.item
        if event.kind == "expire":
            order.state = SimOrder.EXPIRED
            order.time_done = order.time_expiration
            self._touch_order(order)
            return
        spec = self.spec(order.symbol)
        side = BUY if order.type in _BUY_TYPES else SELL
        price = event.ask if side == BUY else event.bid
        order.time_done = at
        if not self.can_afford(spec, side, order.volume_current, price, event.t):
            order.state = SimOrder.REJECTED
            self._touch_order(order)
            return
        deal = self.fill(
            spec,
            side,
            order.volume_current,
            price,
            at,
            order=order.ticket,
            magic=order.magic,
            comment=order.comment,
            reason=_reason_for(order.magic),
            sl=order.sl,
            tp=order.tp,
        )
        order.state = SimOrder.FILLED
        order.position_id = deal.position_id
        order.volume_current = ZERO
        self._touch_order(order)

    def stop_out(self, t: int, at: datetime) -> None:
        """Close the most losing position while the margin level is at or under the group's stop-out."""
        valuation = self.valuation(t)
        while self.positions:
            level = self.figures(t).margin_level
            if level is None or level > self.account.group.stop_out:
                return
            candidates = []
            for pos in self.positions:
                spec = self.spec(pos.symbol)
                bid, ask, _, is_open = valuation.symbol(spec)
                if is_open:
                    price = bid if pos.type == BUY else ask
                    loss = valuation.profit(spec, pos.type, pos.volume, pos.price_open, price) + self.swap_of(pos, t)
                    candidates.append((loss, pos.ticket, pos, price))
            if not candidates:
                return
            _, _, worst, price = min(candidates, key=lambda c: (c[0], c[1]))
            logger.info("stop-out of %s at %s%%: closing #%s", self.account.login, level, worst.ticket)
            self.close_volume(
                worst,
                worst.volume,
                price,
                at,
                order=self.ticket(),
                magic=worst.magic,
                comment=f"[so {level}%]",
                reason=DealReason.SO,
            )

    def settle(self) -> None:
        """Fill everything that crossed since the last check, in time order, then apply stop-out now."""
        start = _sec(self.account.checked_at) + 1
        while True:
            event = self.next_event(start, self.t)
            if event is None:
                break
            self._apply(event)
            self.stop_out(event.t, _at(event.t))
            start = event.t
        self.stop_out(self.t, self.now)

    # --- trade requests ---

    def execute(self, request: OrderRequest) -> OrderResult:
        action = request.action
        if action == TradeAction.DEAL:
            return self._deal(request)
        if action == TradeAction.PENDING:
            return self._pending(request)
        if action == TradeAction.SLTP:
            return self._sltp(request)
        if action == TradeAction.MODIFY:
            return self._modify(request)
        if action == TradeAction.REMOVE:
            return self._remove(request)
        if action == TradeAction.CLOSE_BY:
            return self._close_by(request)
        return _result(Retcode.INVALID, "Unsupported trade action")

    def _deal(self, req: OrderRequest) -> OrderResult:
        pos = None
        if req.position:
            pos = self.position(req.position)
            if pos is None:
                return _result(Retcode.POSITION_CLOSED)
        spec = self.spec(req.symbol or (pos.symbol if pos else ""))
        if spec is None or (pos is not None and pos.symbol != spec.name):
            return _result(Retcode.INVALID, "Unknown symbol" if spec is None else "Symbol does not match position")
        if req.type not in (OrderType.BUY, OrderType.SELL):
            return _result(Retcode.INVALID_ORDER)
        side = int(req.type)
        volume = _dec(req.volume)
        if not _volume_ok(spec, volume):
            return _result(Retcode.INVALID_VOLUME)
        if pos is not None:
            if side == pos.type:
                return _result(Retcode.INVALID, "Closing deal must be opposite to the position")
            if volume > pos.volume:
                return _result(Retcode.INVALID_CLOSE_VOLUME)
        bid, ask, _, is_open = self.valuation(self.t).symbol(spec)
        if not is_open:
            return _result(Retcode.MARKET_CLOSED, bid=bid, ask=ask)
        price = ask if side == BUY else bid
        if req.price and abs(_dec(req.price) - price) > max(req.deviation, 0) * spec.point:
            return _result(Retcode.REQUOTE, bid=bid, ask=ask, price=price)
        magic, comment, reason = req.magic, _comment(req.comment), _reason_for(req.magic)
        if pos is None:
            sl, tp = _normalize(spec, req.sl), _normalize(spec, req.tp)
            netted = None if self.account.hedging else self.netting_position(spec.name)
            reduces = netted is not None and netted.type != side and volume <= netted.volume
            if not reduces:
                if not _stops_ok(spec, side, sl, tp, bid, ask):
                    return _result(Retcode.INVALID_STOPS, bid=bid, ask=ask)
                if not self.can_afford(spec, side, volume, price, self.t):
                    return _result(Retcode.NO_MONEY, bid=bid, ask=ask)
            order = self.ticket()
            deal = self.fill(
                spec,
                side,
                volume,
                price,
                self.now,
                order=order,
                magic=magic,
                comment=comment,
                reason=reason,
                sl=sl,
                tp=tp,
            )
        else:
            order = self.ticket()
            deal = self.close_volume(
                pos, volume, price, self.now, order=order, magic=magic, comment=comment, reason=reason
            )
        return _result(Retcode.DONE, deal=deal.ticket, order=order, volume=volume, price=price, bid=bid, ask=ask)

    def _pending(self, req: OrderRequest) -> OrderResult:
        spec = self.spec(req.symbol)
        if spec is None:
            return _result(Retcode.INVALID, "Unknown symbol")
        if req.type not in _PENDING_TYPES:
            return _result(Retcode.INVALID_ORDER)
        volume = _dec(req.volume)
        if not _volume_ok(spec, volume):
            return _result(Retcode.INVALID_VOLUME)
        bid, ask, _, is_open = self.valuation(self.t).symbol(spec)
        if not is_open:
            return _result(Retcode.MARKET_CLOSED, bid=bid, ask=ask)
        price = _normalize(spec, req.price)
        if price <= 0 or not _pending_price_ok(spec, req.type, price, bid, ask):
            return _result(Retcode.INVALID_PRICE, bid=bid, ask=ask)
        side = BUY if req.type in _BUY_TYPES else SELL
        sl, tp = _normalize(spec, req.sl), _normalize(spec, req.tp)
        if not _stops_ok(spec, side, sl, tp, price, price):
            return _result(Retcode.INVALID_STOPS, bid=bid, ask=ask)
        expiration = self._expiration(req.type_time, req.expiration)
        if expiration is False:
            return _result(Retcode.INVALID_EXPIRATION)
        ticket = self.ticket()
        order = SimOrder(
            account_id=self.account.login,
            ticket=ticket,
            symbol=spec.name,
            type=int(req.type),
            state=SimOrder.PLACED,
            volume_initial=volume,
            volume_current=volume,
            price_open=price,
            sl=sl,
            tp=tp,
            magic=req.magic,
            comment=_comment(req.comment),
            type_time=req.type_time,
            time_setup=self.now,
            time_update=self.now,
            time_expiration=expiration,
        )
        self.orders.append(order)
        self._touch_order(order)
        return _result(Retcode.PLACED, order=ticket, volume=volume, price=price, bid=bid, ask=ask)

    def _expiration(self, type_time: int, expiration: datetime | None) -> datetime | None | bool:
        if type_time == 0:  # GTC
            return None
        if type_time == 1:  # DAY
            return _trading_day_end(self.now)
        if type_time in (2, 3) and expiration is not None and expiration > self.now:
            return expiration if type_time == 2 else _trading_day_end(expiration)
        return False

    def _sltp(self, req: OrderRequest) -> OrderResult:
        pos = self.position(req.position) if req.position else None
        if pos is None and not req.position and not self.account.hedging and req.symbol:
            pos = self.netting_position(req.symbol)
        if pos is None:
            return _result(Retcode.POSITION_CLOSED)
        spec = self.spec(pos.symbol)
        sl, tp = _normalize(spec, req.sl), _normalize(spec, req.tp)
        if sl == pos.sl and tp == pos.tp:
            return _result(Retcode.NO_CHANGES)
        bid, ask, _, is_open = self.valuation(self.t).symbol(spec)
        if not is_open:
            return _result(Retcode.MARKET_CLOSED, bid=bid, ask=ask)
        if not _stops_ok(spec, pos.type, sl, tp, bid, ask):
            return _result(Retcode.INVALID_STOPS, bid=bid, ask=ask)
        pos.sl, pos.tp = sl, tp
        pos.time_update = self.now
        self._touch_position(pos)
        return _result(Retcode.DONE, bid=bid, ask=ask)

    def _modify(self, req: OrderRequest) -> OrderResult:
        order = self.order(req.order)
        if order is None:
            return _result(Retcode.INVALID_ORDER)
        spec = self.spec(order.symbol)
        price = _normalize(spec, req.price) if req.price else order.price_open
        sl, tp = _normalize(spec, req.sl), _normalize(spec, req.tp)
        expiration = self._expiration(req.type_time, req.expiration)
        if expiration is False:
            return _result(Retcode.INVALID_EXPIRATION)
        unchanged = (price, sl, tp, req.type_time, expiration) == (
            order.price_open,
            order.sl,
            order.tp,
            order.type_time,
            order.time_expiration,
        )
        if unchanged:
            return _result(Retcode.NO_CHANGES)
        bid, ask, _, is_open = self.valuation(self.t).symbol(spec)
        if not is_open:
            return _result(Retcode.MARKET_CLOSED, bid=bid, ask=ask)
        if price <= 0 or not _pending_price_ok(spec, order.type, price, bid, ask):
            return _result(Retcode.INVALID_PRICE, bid=bid, ask=ask)
        side = BUY if order.type in _BUY_TYPES else SELL
        if not _stops_ok(spec, side, sl, tp, price, price):
            return _result(Retcode.INVALID_STOPS, bid=bid, ask=ask)
        order.price_open, order.sl, order.tp = price, sl, tp
        order.type_time, order.time_expiration = req.type_time, expiration
        order.time_update = self.now
        self._touch_order(order)
        return _result(Retcode.DONE, order=order.ticket, price=price, bid=bid, ask=ask)

    def _remove(self, req: OrderRequest) -> OrderResult:
        order = self.order(req.order)
        if order is None:
            return _result(Retcode.INVALID_ORDER)
        order.state = SimOrder.CANCELED
        order.time_done = self.now
        self._touch_order(order)
        return _result(Retcode.DONE, order=order.ticket)

    def _close_by(self, req: OrderRequest) -> OrderResult:
        if not self.account.hedging:
            return _result(Retcode.INVALID, "Close by is for hedging accounts")
        pos, by = self.position(req.position), self.position(req.position_by)
        if pos is None or by is None:
            return _result(Retcode.POSITION_CLOSED)
        if pos.symbol != by.symbol or pos.type == by.type:
            return _result(Retcode.INVALID, "Close by needs an opposite position on the same symbol")
        spec = self.spec(pos.symbol)
        bid, ask, _, is_open = self.valuation(self.t).symbol(spec)
        if not is_open:
            return _result(Retcode.MARKET_CLOSED, bid=bid, ask=ask)
        volume = min(pos.volume, by.volume)
        price = by.price_open
        order = self.ticket()
        magic, comment = req.magic, _comment(req.comment or f"#{pos.ticket} by #{by.ticket}")
        kwargs = {"order": order, "magic": magic, "comment": comment, "reason": _reason_for(magic)}
        deal = self.close_volume(pos, volume, price, self.now, entry=DealEntry.OUT_BY, **kwargs)
        self.close_volume(by, volume, price, self.now, entry=DealEntry.OUT_BY, **kwargs)
        return _result(Retcode.DONE, deal=deal.ticket, order=order, volume=volume, price=price, bid=bid, ask=ask)


# --- Settling -----------------------------------------------------------------------


def settle(login: int, now: datetime) -> Book:
    """Fill what crossed and apply stop-out for one account, under its lock; returns the settled book."""
    with transaction.atomic():
        book = Book.lock(login, now)
        book.settle()
        book.flush()
    return book


# --- Write paths ----------------------------------------------------------------------


def order_send(login: int, request: OrderRequest, now: datetime) -> OrderResult:
    """Execute one trade request with MT5's checks and return codes (never raises for a refusal)."""
    with transaction.atomic():
        book = Book.lock(login, now)
        book.settle()
        result = book.execute(request)
        book.flush()
    return result


def close_all_positions(login: int, now: datetime) -> list[OrderResult]:
    """Close every open position at market, one request each, as a dealer would."""
    with transaction.atomic():
        book = Book.lock(login, now)
        book.settle()
        results = []
        for pos in list(book.positions):
            request = OrderRequest(
                action=TradeAction.DEAL,
                symbol=pos.symbol,
                volume=pos.volume,
                type=OrderType.SELL if pos.type == BUY else OrderType.BUY,
                position=pos.ticket,
                comment="close all",
            )
            results.append(book.execute(request))
        book.flush()
    return results


def balance_operation(
    login: int, amount, deal_type: int, comment: str, now: datetime, *, check_margin: bool = True
) -> int:
    """Post a balance, credit, bonus, charge or correction deal; returns its ticket.

    Refused with retcode 10019 (no money): taking the balance or the credit below zero, and, with
    ``check_margin`` on (the Manager API's default), taking more than the free margin. A correction
    (deal type 5) is never checked: it is how a dealer fixes an account, negative balance included.
    """
    try:
        deal_type = DealType(int(deal_type))
    except ValueError:
        raise GatewayError(f"deal type {deal_type} is not a balance operation") from None
    if deal_type not in _BALANCE_TYPES:
        raise GatewayError(f"deal type {deal_type.name} is not a balance operation")
    try:
        amount = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    except (InvalidOperation, ValueError):
        raise GatewayError(f"invalid amount {amount!r}") from None
    if not amount.is_finite() or amount == 0 or abs(amount) > MAX_BALANCE_OPERATION:
        raise GatewayError(f"invalid amount {amount}")
    amount = money(amount)
    with transaction.atomic():
        book = Book.lock(login, now)
        book.settle()
        account = book.account
        if amount < 0 and deal_type != DealType.CORRECTION:
            held = account.credit if deal_type in _CREDIT_TYPES else account.balance
            if held + amount < 0:
                raise OperationRefused(Retcode.NO_MONEY, "no money")
            if check_margin and book.figures(book.t).margin_free + amount < 0:
                raise OperationRefused(Retcode.NO_MONEY, "no money")
        deal = book.add_deal(at=now, type=deal_type, profit=amount, comment=comment)
        book.flush()
    return deal.ticket


def set_leverage(login: int, leverage: int, now: datetime) -> None:
    if not isinstance(leverage, int) or not 1 <= leverage <= 1000:
        raise GatewayError(f"leverage must be between 1 and 1000, not {leverage}")
    with transaction.atomic():
        book = Book.lock(login, now)
        book.settle()
        book.account.leverage = leverage
        book.changed = True
        book.flush()


# --- The market loop ------------------------------------------------------------------


@dataclass(frozen=True)
class MarketRun:
    accounts_checked: int
    accounts_settled: int


def process_market(now: datetime | None = None) -> MarketRun:
    """Fill crossed pending orders and SL/TP and apply stop-out for every account with exposure.

    Reads everything in three queries, settles (under lock) only the accounts where something
    is due, and moves ``checked_at`` on for the rest so the next pass replays a short stretch.
    """
    from .clock import now as clock_now

    now = now or clock_now()
    held: dict[int, list[SimPosition]] = {}
    for pos in SimPosition.objects.order_by("time", "ticket"):
        held.setdefault(pos.account_id, []).append(pos)
    pending: dict[int, list[SimOrder]] = {}
    for order in SimOrder.objects.filter(state=SimOrder.PLACED).order_by("time_setup", "ticket"):
        pending.setdefault(order.account_id, []).append(order)
    logins = set(held) | set(pending)
    settled = 0
    quiet = []
    for account in SimAccount.objects.filter(login__in=logins).select_related("group"):
        book = Book(account, held.get(account.login, []), pending.get(account.login, []), now)
        if book.needs_settling():
            settle(account.login, now)
            settled += 1
        elif now - account.checked_at > _ADVANCE_CHECKED_AFTER:
            quiet.append(account.pk)
    if quiet:
        SimAccount.objects.filter(pk__in=quiet, checked_at__lt=now).update(checked_at=now)
    return MarketRun(len(logins), settled)
