"""Trade requests on a locked book: market deals, pending orders, SL/TP, modify, remove, close-by.

``execute`` answers with an ``OrderResult`` whose retcode says what MT5 would; it never raises for a refusal.
"""

from __future__ import annotations

from datetime import datetime

from mt5bridge.gateway.types import DealEntry, OrderRequest, OrderResult, OrderTime, OrderType, Retcode, TradeAction

from .accounting import BUY, SELL
from .book import Book
from .models import SimOrder
from .trade_rules import (
    BUY_TYPES,
    PENDING_TYPES,
    clip_comment,
    normalize_price,
    order_result,
    pending_price_ok,
    reason_for,
    request_number,
    stops_ok,
    trading_day_end,
    volume_ok,
)


def execute(book: Book, request: OrderRequest) -> OrderResult:
    action = request.action
    if action == TradeAction.DEAL:
        return _deal(book, request)
    if action == TradeAction.PENDING:
        return _pending(book, request)
    if action == TradeAction.SLTP:
        return _sltp(book, request)
    if action == TradeAction.MODIFY:
        return _modify(book, request)
    if action == TradeAction.REMOVE:
        return _remove(book, request)
    if action == TradeAction.CLOSE_BY:
        return _close_by(book, request)
    return order_result(Retcode.INVALID, "Unsupported trade action")


def _deal(book: Book, req: OrderRequest) -> OrderResult:
    pos = None
    if req.position:
        pos = book.position(req.position)
        if pos is None:
            return order_result(Retcode.POSITION_CLOSED)
    spec = book.spec(req.symbol or (pos.symbol if pos else ""))
    if spec is None or (pos is not None and pos.symbol != spec.name):
        return order_result(Retcode.INVALID, "Unknown symbol" if spec is None else "Symbol does not match position")
    if req.type not in (OrderType.BUY, OrderType.SELL):
        return order_result(Retcode.INVALID_ORDER)
    side = int(req.type)
    volume = request_number(req.volume)
    if not volume_ok(spec, volume):
        return order_result(Retcode.INVALID_VOLUME)
    if pos is not None:
        if side == pos.type:
            return order_result(Retcode.INVALID, "Closing deal must be opposite to the position")
        if volume > pos.volume:
            return order_result(Retcode.INVALID_CLOSE_VOLUME)
    bid, ask, _, is_open = book.valuation(book.t).symbol(spec)
    if not is_open:
        return order_result(Retcode.MARKET_CLOSED, bid=bid, ask=ask)
    price = ask if side == BUY else bid
    if req.price and abs(request_number(req.price) - price) > max(req.deviation, 0) * spec.point:
        return order_result(Retcode.REQUOTE, bid=bid, ask=ask, price=price)
    magic, comment, reason = req.magic, clip_comment(req.comment), reason_for(req.magic)
    if pos is None:
        sl, tp = normalize_price(spec, req.sl), normalize_price(spec, req.tp)
        netted = None if book.account.hedging else book.netting_position(spec.name)
        reduces = netted is not None and netted.type != side and volume <= netted.volume
        if not reduces:
            if not stops_ok(spec, side, sl, tp, bid, ask):
                return order_result(Retcode.INVALID_STOPS, bid=bid, ask=ask)
            if not book.can_afford(spec, side, volume, price, book.t):
                return order_result(Retcode.NO_MONEY, bid=bid, ask=ask)
        order = book.ticket()
        deal = book.fill(
            spec,
            side,
            volume,
            price,
            book.now,
            order=order,
            magic=magic,
            comment=comment,
            reason=reason,
            sl=sl,
            tp=tp,
        )
    else:
        order = book.ticket()
        deal = book.close_volume(pos, volume, price, book.now, order=order, magic=magic, comment=comment, reason=reason)
    return order_result(Retcode.DONE, deal=deal.ticket, order=order, volume=volume, price=price, bid=bid, ask=ask)


def _pending(book: Book, req: OrderRequest) -> OrderResult:
    spec = book.spec(req.symbol)
    if spec is None:
        return order_result(Retcode.INVALID, "Unknown symbol")
    if req.type not in PENDING_TYPES:
        return order_result(Retcode.INVALID_ORDER)
    volume = request_number(req.volume)
    if not volume_ok(spec, volume):
        return order_result(Retcode.INVALID_VOLUME)
    bid, ask, _, is_open = book.valuation(book.t).symbol(spec)
    if not is_open:
        return order_result(Retcode.MARKET_CLOSED, bid=bid, ask=ask)
    price = normalize_price(spec, req.price)
    if price <= 0 or not pending_price_ok(spec, req.type, price, bid, ask):
        return order_result(Retcode.INVALID_PRICE, bid=bid, ask=ask)
    side = BUY if req.type in BUY_TYPES else SELL
    sl, tp = normalize_price(spec, req.sl), normalize_price(spec, req.tp)
    if not stops_ok(spec, side, sl, tp, price, price):
        return order_result(Retcode.INVALID_STOPS, bid=bid, ask=ask)
    expiration = _expiration(book, req.type_time, req.expiration)
    if expiration is False:
        return order_result(Retcode.INVALID_EXPIRATION)
    ticket = book.ticket()
    order = SimOrder(
        account_id=book.account.login,
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
        comment=clip_comment(req.comment),
        type_time=req.type_time,
        time_setup=book.now,
        time_update=book.now,
        time_expiration=expiration,
    )
    book.orders.append(order)
    book.touch_order(order)
    return order_result(Retcode.PLACED, order=ticket, volume=volume, price=price, bid=bid, ask=ask)


def _expiration(book: Book, type_time: int, expiration: datetime | None) -> datetime | None | bool:
    if type_time == OrderTime.GTC:
        return None
    if type_time == OrderTime.DAY:
        return trading_day_end(book.now)
    if type_time in (OrderTime.SPECIFIED, OrderTime.SPECIFIED_DAY) and expiration is not None and expiration > book.now:
        return expiration if type_time == OrderTime.SPECIFIED else trading_day_end(expiration)
    return False


def _sltp(book: Book, req: OrderRequest) -> OrderResult:
    pos = book.position(req.position) if req.position else None
    if pos is None and not req.position and not book.account.hedging and req.symbol:
        pos = book.netting_position(req.symbol)
    if pos is None:
        return order_result(Retcode.POSITION_CLOSED)
    spec = book.spec(pos.symbol)
    sl, tp = normalize_price(spec, req.sl), normalize_price(spec, req.tp)
    if sl == pos.sl and tp == pos.tp:
        return order_result(Retcode.NO_CHANGES)
    bid, ask, _, is_open = book.valuation(book.t).symbol(spec)
    if not is_open:
        return order_result(Retcode.MARKET_CLOSED, bid=bid, ask=ask)
    if not stops_ok(spec, pos.type, sl, tp, bid, ask):
        return order_result(Retcode.INVALID_STOPS, bid=bid, ask=ask)
    pos.sl, pos.tp = sl, tp
    pos.time_update = book.now
    book.touch_position(pos)
    return order_result(Retcode.DONE, bid=bid, ask=ask)


def _modify(book: Book, req: OrderRequest) -> OrderResult:
    order = book.order(req.order)
    if order is None:
        return order_result(Retcode.INVALID_ORDER)
    spec = book.spec(order.symbol)
    price = normalize_price(spec, req.price) if req.price else order.price_open
    sl, tp = normalize_price(spec, req.sl), normalize_price(spec, req.tp)
    expiration = _expiration(book, req.type_time, req.expiration)
    if expiration is False:
        return order_result(Retcode.INVALID_EXPIRATION)
    unchanged = (price, sl, tp, req.type_time, expiration) == (
        order.price_open,
        order.sl,
        order.tp,
        order.type_time,
        order.time_expiration,
    )
    if unchanged:
        return order_result(Retcode.NO_CHANGES)
    bid, ask, _, is_open = book.valuation(book.t).symbol(spec)
    if not is_open:
        return order_result(Retcode.MARKET_CLOSED, bid=bid, ask=ask)
    if price <= 0 or not pending_price_ok(spec, order.type, price, bid, ask):
        return order_result(Retcode.INVALID_PRICE, bid=bid, ask=ask)
    side = BUY if order.type in BUY_TYPES else SELL
    if not stops_ok(spec, side, sl, tp, price, price):
        return order_result(Retcode.INVALID_STOPS, bid=bid, ask=ask)
    order.price_open, order.sl, order.tp = price, sl, tp
    order.type_time, order.time_expiration = req.type_time, expiration
    order.time_update = book.now
    book.touch_order(order)
    return order_result(Retcode.DONE, order=order.ticket, price=price, bid=bid, ask=ask)


def _remove(book: Book, req: OrderRequest) -> OrderResult:
    order = book.order(req.order)
    if order is None:
        return order_result(Retcode.INVALID_ORDER)
    order.state = SimOrder.CANCELED
    order.time_done = book.now
    book.touch_order(order)
    return order_result(Retcode.DONE, order=order.ticket)


def _close_by(book: Book, req: OrderRequest) -> OrderResult:
    if not book.account.hedging:
        return order_result(Retcode.INVALID, "Close by is for hedging accounts")
    pos, by = book.position(req.position), book.position(req.position_by)
    if pos is None or by is None:
        return order_result(Retcode.POSITION_CLOSED)
    if pos.symbol != by.symbol or pos.type == by.type:
        return order_result(Retcode.INVALID, "Close by needs an opposite position on the same symbol")
    spec = book.spec(pos.symbol)
    bid, ask, _, is_open = book.valuation(book.t).symbol(spec)
    if not is_open:
        return order_result(Retcode.MARKET_CLOSED, bid=bid, ask=ask)
    volume = min(pos.volume, by.volume)
    price = by.price_open
    order = book.ticket()
    magic, comment = req.magic, clip_comment(req.comment or f"#{pos.ticket} by #{by.ticket}")
    kwargs = {"order": order, "magic": magic, "comment": comment, "reason": reason_for(magic)}
    deal = book.close_volume(pos, volume, price, book.now, entry=DealEntry.OUT_BY, **kwargs)
    book.close_volume(by, volume, price, book.now, entry=DealEntry.OUT_BY, **kwargs)
    return order_result(Retcode.DONE, deal=deal.ticket, order=order, volume=volume, price=price, bid=bid, ask=ask)
