"""The simulated server's trade rules: request checks, rounding, retcodes and their comments.

Pure functions of a symbol's specification and prices: no database, no account.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from mt5bridge.gateway.types import DealReason, DealType, GatewayError, OrderResult, OrderType, Retcode

from .accounting import BUY
from .models import COMMENT_LENGTH
from .symbols_catalog import SymbolSpec

MAX_BALANCE_OPERATION = Decimal("1000000000")
PRICE_QUANTUM = Decimal("1e-10")  # PRICE fields keep 10 decimals (netting averages)

BUY_TYPES = (OrderType.BUY_LIMIT, OrderType.BUY_STOP)
PENDING_TYPES = (OrderType.BUY_LIMIT, OrderType.SELL_LIMIT, OrderType.BUY_STOP, OrderType.SELL_STOP)
CREDIT_TYPES = (DealType.CREDIT, DealType.BONUS)
BALANCE_TYPES = (DealType.BALANCE, DealType.CREDIT, DealType.CHARGE, DealType.CORRECTION, DealType.BONUS)

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


def clip_comment(text: str | None) -> str:
    return (text or "")[:COMMENT_LENGTH]


def request_number(value) -> Decimal:
    """A request number as a Decimal; anything unusable becomes -1, which every check refuses."""
    if not isinstance(value, Decimal):
        try:
            value = Decimal(str(value))
        except (InvalidOperation, ValueError):
            return Decimal(-1)
    return value if value.is_finite() else Decimal(-1)


def normalize_price(spec: SymbolSpec, price) -> Decimal:
    """A price rounded to the symbol's digits (a terminal's NormalizeDouble)."""
    return request_number(price).quantize(spec.point)


def tidy_price(value: Decimal, digits: int) -> Decimal:
    """A stored price shown with the symbol's digits, or with its own when it is an average."""
    quantum = Decimal(1).scaleb(-digits)
    rounded = value.quantize(quantum)
    return rounded if rounded == value else value.normalize()


def tidy_volume(value: Decimal) -> Decimal:
    rounded = value.quantize(Decimal("0.01"))
    return rounded if rounded == value else value.normalize()


def order_result(retcode: Retcode, comment: str = "", **values) -> OrderResult:
    return OrderResult(retcode=int(retcode), comment=comment or RETCODE_COMMENTS.get(retcode, ""), **values)


def volume_ok(spec: SymbolSpec, volume: Decimal) -> bool:
    if volume < spec.volume_min or volume > spec.volume_max:
        return False
    return volume % spec.volume_step == 0


def stops_ok(spec: SymbolSpec, side: int, sl: Decimal, tp: Decimal, bid: Decimal, ask: Decimal) -> bool:
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


def pending_price_ok(spec: SymbolSpec, order_type: int, price: Decimal, bid: Decimal, ask: Decimal) -> bool:
    gap = spec.stops_level * spec.point
    if order_type == OrderType.BUY_LIMIT:
        return price <= ask - gap and price < ask
    if order_type == OrderType.SELL_LIMIT:
        return price >= bid + gap and price > bid
    if order_type == OrderType.BUY_STOP:
        return price >= ask + gap and price > ask
    return price <= bid - gap and price < bid  # SELL_STOP


def trading_day_end(after: datetime) -> datetime:
    """The next 21:00 UTC (the simulator's rollover, where a trading day ends)."""
    end = after.replace(hour=21, minute=0, second=0, microsecond=0)
    return end if end > after else end + timedelta(days=1)


def reason_for(magic: int) -> int:
    return int(DealReason.EXPERT) if magic else int(DealReason.CLIENT)
