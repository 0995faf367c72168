"""What happens on the price path: SL/TP and pending orders crossing, expirations, stop-out.

Found lazily: whoever locks an account replays the path since ``checked_at`` and applies each
event at the second and price it crossed (``settle``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from mt5bridge.gateway.types import DealReason, OrderType

from . import prices
from .accounting import BUY, SELL, ZERO
from .book import Book
from .models import SimOrder, SimPosition
from .trade_rules import BUY_TYPES, reason_for, tidy_price

logger = logging.getLogger(__name__)


@dataclass(order=True)
class Event:
    t: int
    rank: int  # SL/TP before pending fills before expirations at the same second
    ticket: int
    kind: str = field(compare=False)
    item: object = field(compare=False)
    bid: Decimal = field(compare=False, default=ZERO)
    ask: Decimal = field(compare=False, default=ZERO)


def _position_event(book: Book, pos: SimPosition, start: int, end: int) -> Event | None:
    if not pos.sl and not pos.tp:
        return None
    spec = book.spec(pos.symbol)
    start = max(start, prices.epoch_second(pos.time_update) + 1)
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
    return Event(t, 0, pos.ticket, "sltp", pos, bid, ask)


def _order_event(book: Book, order: SimOrder, start: int, end: int) -> Event | None:
    spec = book.spec(order.symbol)
    start = max(start, prices.epoch_second(order.time_update) + 1)
    expires = prices.epoch_second(order.time_expiration) if order.time_expiration else None
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
            return Event(t, 1, order.ticket, "fill", order, bid, ask)
    if expires is not None and expires <= end:
        return Event(max(expires, start - 1), 2, order.ticket, "expire", order)
    return None


def next_event(book: Book, start: int, end: int) -> Event | None:
    events = [e for e in (_position_event(book, p, start, end) for p in book.positions) if e]
    events += [e for e in (_order_event(book, o, start, end) for o in book.orders) if e]
    return min(events) if events else None


def stop_out_due(book: Book, t: int) -> bool:
    if not book.positions:
        return False
    level = book.figures(t).margin_level
    return level is not None and level <= book.account.group.stop_out


def needs_settling(book: Book) -> bool:
    start = prices.epoch_second(book.account.checked_at) + 1
    return next_event(book, start, book.t) is not None or stop_out_due(book, book.t)


def _apply(book: Book, event: Event) -> None:
    at = prices.from_epoch(event.t)
    if event.kind == "sltp":
        pos: SimPosition = event.item
        close = event.bid if pos.type == BUY else event.ask
        if pos.sl and (close <= pos.sl if pos.type == BUY else close >= pos.sl):
            reason, comment = DealReason.SL, f"[sl {tidy_price(pos.sl, book.spec(pos.symbol).digits)}]"
        else:
            reason, comment = DealReason.TP, f"[tp {tidy_price(pos.tp, book.spec(pos.symbol).digits)}]"
        book.close_volume(
            pos, pos.volume, close, at, order=book.ticket(), magic=pos.magic, comment=comment, reason=reason
        )
        return
    order: SimOrder = event.item
    if event.kind == "expire":
        order.state = SimOrder.EXPIRED
        order.time_done = order.time_expiration
        book.touch_order(order)
        return
    spec = book.spec(order.symbol)
    side = BUY if order.type in BUY_TYPES else SELL
    price = event.ask if side == BUY else event.bid
    order.time_done = at
    if not book.can_afford(spec, side, order.volume_current, price, event.t):
        order.state = SimOrder.REJECTED
        book.touch_order(order)
        return
    deal = book.fill(
        spec,
        side,
        order.volume_current,
        price,
        at,
        order=order.ticket,
        magic=order.magic,
        comment=order.comment,
        reason=reason_for(order.magic),
        sl=order.sl,
        tp=order.tp,
    )
    order.state = SimOrder.FILLED
    order.position_id = deal.position_id
    order.volume_current = ZERO
    book.touch_order(order)


def stop_out(book: Book, t: int, at: datetime) -> None:
    """Close the most losing position while the margin level is at or under the group's stop-out."""
    valuation = book.valuation(t)
    while book.positions:
        level = book.figures(t).margin_level
        if level is None or level > book.account.group.stop_out:
            return
        candidates = []
        for pos in book.positions:
            spec = book.spec(pos.symbol)
            bid, ask, _, is_open = valuation.symbol(spec)
            if is_open:
                price = bid if pos.type == BUY else ask
                loss = valuation.profit(spec, pos.type, pos.volume, pos.price_open, price) + book.swap_of(pos, t)
                candidates.append((loss, pos.ticket, pos, price))
        if not candidates:
            return
        _, _, worst, price = min(candidates, key=lambda c: (c[0], c[1]))
        logger.info("stop-out of %s at %s%%: closing #%s", book.account.login, level, worst.ticket)
        book.close_volume(
            worst,
            worst.volume,
            price,
            at,
            order=book.ticket(),
            magic=worst.magic,
            comment=f"[so {level}%]",
            reason=DealReason.SO,
        )


def settle(book: Book) -> None:
    """Fill everything that crossed since the last check, in time order, then apply stop-out now."""
    start = prices.epoch_second(book.account.checked_at) + 1
    while True:
        event = next_event(book, start, book.t)
        if event is None:
            break
        _apply(book, event)
        stop_out(book, event.t, prices.from_epoch(event.t))
        start = event.t
    stop_out(book, book.t, book.now)
