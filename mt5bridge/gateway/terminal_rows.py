"""The ``MetaTrader5`` package's rows as gateway values, and gateway requests as ``order_send`` dicts (pure)."""

from __future__ import annotations

import enum
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from .types import (
    AccountInfo,
    AccountTradeMode,
    Deal,
    DealEntry,
    DealType,
    MarginMode,
    OrderFilling,
    OrderRequest,
    OrderResult,
    OrderType,
    PendingOrder,
    Position,
    PositionType,
    SymbolInfo,
    Tick,
)

# The symbol's filling_mode is a bitmask (SYMBOL_FILLING_*) on a different scale from ORDER_FILLING_*.
SYMBOL_FILLING_FOK = 1
SYMBOL_FILLING_IOC = 2
COMMENT_LIMIT = 31  # the server cuts at 32 bytes including the terminating NUL

E = TypeVar("E", bound=enum.IntEnum)


def filling_for(filling_mode: int) -> int:
    """ORDER_FILLING_* for a symbol's SYMBOL_FILLING_* bitmask: FOK, else IOC, else RETURN."""
    mask = int(filling_mode or 0)
    if mask & SYMBOL_FILLING_FOK:
        return int(OrderFilling.FOK)
    if mask & SYMBOL_FILLING_IOC:
        return int(OrderFilling.IOC)
    return int(OrderFilling.RETURN)


def build_request(request: OrderRequest, *, symbol: str, price: Decimal, type_filling: int) -> dict[str, Any]:
    """The ``order_send`` dict: every documented key, plain floats and ints as the package demands."""
    expiration = int(aware(request.expiration).timestamp()) if request.expiration else 0
    return {
        "action": int(request.action),
        "magic": int(request.magic),
        "order": int(request.order),
        "symbol": str(symbol),
        "volume": float(request.volume),
        "price": float(price),
        "stoplimit": float(request.stoplimit),
        "sl": float(request.sl),
        "tp": float(request.tp),
        "deviation": int(request.deviation),
        "type": int(request.type),
        "type_filling": int(type_filling),
        "type_time": int(request.type_time),
        "expiration": expiration,
        "comment": str(request.comment)[:COMMENT_LIMIT],
        "position": int(request.position),
        "position_by": int(request.position_by),
    }


# --- Conversions ----------------------------------------------------------------------------------------


def field(row: Any, name: str, default: Any = None) -> Any:
    # By name, never by position: SymbolInfo has gained and lost fields between builds.
    return getattr(row, name, default)


def to_decimal(value: Any) -> Decimal:
    """Money and prices as Decimal via the float's shortest repr, so 1.1 stays 1.1."""
    if value is None:
        return Decimal("0")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    number = float(value)
    if not math.isfinite(number):
        return Decimal("0")
    return Decimal(str(number))


def to_int(value: Any) -> int:
    return int(value or 0)


def to_str(value: Any) -> str:
    return "" if value is None else str(value)


def aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def from_seconds(seconds: Any) -> datetime:
    return datetime.fromtimestamp(int(seconds or 0), tz=UTC)


def from_msc(msc: Any) -> datetime:
    msc = int(msc or 0)
    return datetime.fromtimestamp(msc // 1000, tz=UTC) + timedelta(milliseconds=msc % 1000)


def moment_of(row: Any, seconds_field: str, msc_field: str) -> datetime:
    msc = to_int(field(row, msc_field, 0))
    return from_msc(msc) if msc > 0 else from_seconds(field(row, seconds_field, 0))


def enum_or_int(kind: type[E], value: Any) -> E | int:
    # A code from a newer build than the enum knows is kept as its int rather than failing the whole sync.
    try:
        return kind(int(value))
    except ValueError:
        return int(value)


def account_of(info: Any) -> AccountInfo:
    margin = to_decimal(field(info, "margin"))
    return AccountInfo(
        login=to_int(field(info, "login")),
        server=to_str(field(info, "server")),
        name=to_str(field(info, "name")),
        company=to_str(field(info, "company")),
        currency=to_str(field(info, "currency")),
        leverage=to_int(field(info, "leverage")),
        balance=to_decimal(field(info, "balance")),
        credit=to_decimal(field(info, "credit")),
        equity=to_decimal(field(info, "equity")),
        margin=margin,
        margin_free=to_decimal(field(info, "margin_free")),
        # MT5 reports 0 when no margin is used; the dataclass says None.
        margin_level=to_decimal(field(info, "margin_level")) if margin else None,
        profit=to_decimal(field(info, "profit")),
        margin_mode=enum_or_int(MarginMode, field(info, "margin_mode", MarginMode.RETAIL_HEDGING)),
        trade_mode=enum_or_int(AccountTradeMode, field(info, "trade_mode", AccountTradeMode.DEMO)),
        margin_so_call=to_decimal(field(info, "margin_so_call")),
        margin_so_so=to_decimal(field(info, "margin_so_so")),
        # account_info().trade_allowed is False for a session logged in with the investor password.
        trade_allowed=None if field(info, "trade_allowed", None) is None else bool(field(info, "trade_allowed")),
    )


def position_of(row: Any) -> Position:
    return Position(
        ticket=to_int(field(row, "ticket")),
        symbol=to_str(field(row, "symbol")),
        type=enum_or_int(PositionType, field(row, "type", 0)),
        volume=to_decimal(field(row, "volume")),
        price_open=to_decimal(field(row, "price_open")),
        price_current=to_decimal(field(row, "price_current")),
        sl=to_decimal(field(row, "sl")),
        tp=to_decimal(field(row, "tp")),
        swap=to_decimal(field(row, "swap")),
        profit=to_decimal(field(row, "profit")),
        magic=to_int(field(row, "magic")),
        comment=to_str(field(row, "comment")),
        time=moment_of(row, "time", "time_msc"),
        time_update=moment_of(row, "time_update", "time_update_msc"),
        identifier=to_int(field(row, "identifier")),
    )


def pending_order_of(row: Any) -> PendingOrder:
    expiration = to_int(field(row, "time_expiration"))
    return PendingOrder(
        ticket=to_int(field(row, "ticket")),
        symbol=to_str(field(row, "symbol")),
        type=enum_or_int(OrderType, field(row, "type", 0)),
        volume_initial=to_decimal(field(row, "volume_initial")),
        volume_current=to_decimal(field(row, "volume_current")),
        price_open=to_decimal(field(row, "price_open")),
        price_current=to_decimal(field(row, "price_current")),
        price_stoplimit=to_decimal(field(row, "price_stoplimit")),
        sl=to_decimal(field(row, "sl")),
        tp=to_decimal(field(row, "tp")),
        magic=to_int(field(row, "magic")),
        comment=to_str(field(row, "comment")),
        time_setup=moment_of(row, "time_setup", "time_setup_msc"),
        time_expiration=from_seconds(expiration) if expiration > 0 else None,
        type_time=to_int(field(row, "type_time")),
        state=to_int(field(row, "state", 1)),
    )


def deal_of(row: Any) -> Deal:
    return Deal(
        ticket=to_int(field(row, "ticket")),
        order=to_int(field(row, "order")),
        time=moment_of(row, "time", "time_msc"),
        type=enum_or_int(DealType, field(row, "type", 0)),
        entry=enum_or_int(DealEntry, field(row, "entry", 0)),
        magic=to_int(field(row, "magic")),
        position_id=to_int(field(row, "position_id")),
        reason=to_int(field(row, "reason")),
        volume=to_decimal(field(row, "volume")),
        price=to_decimal(field(row, "price")),
        commission=to_decimal(field(row, "commission")),
        swap=to_decimal(field(row, "swap")),
        profit=to_decimal(field(row, "profit")),
        fee=to_decimal(field(row, "fee")),
        symbol=to_str(field(row, "symbol")),
        comment=to_str(field(row, "comment")),
        external_id=to_str(field(row, "external_id")),
    )


def symbol_of(row: Any) -> SymbolInfo:
    return SymbolInfo(
        name=to_str(field(row, "name")),
        path=to_str(field(row, "path")),
        description=to_str(field(row, "description")),
        digits=to_int(field(row, "digits")),
        point=to_decimal(field(row, "point")),
        contract_size=to_decimal(field(row, "trade_contract_size")),
        volume_min=to_decimal(field(row, "volume_min")),
        volume_step=to_decimal(field(row, "volume_step")),
        volume_max=to_decimal(field(row, "volume_max")),
        currency_base=to_str(field(row, "currency_base")),
        currency_profit=to_str(field(row, "currency_profit")),
        currency_margin=to_str(field(row, "currency_margin")),
        trade_stops_level=to_int(field(row, "trade_stops_level")),
    )


def tick_of(symbol: str, row: Any) -> Tick:
    return Tick(
        symbol=symbol,
        time=moment_of(row, "time", "time_msc"),
        bid=to_decimal(field(row, "bid")),
        ask=to_decimal(field(row, "ask")),
        last=to_decimal(field(row, "last")),
    )


def order_result_of(row: Any) -> OrderResult:
    return OrderResult(
        retcode=to_int(field(row, "retcode")),
        comment=to_str(field(row, "comment")),
        deal=to_int(field(row, "deal")),
        order=to_int(field(row, "order")),
        volume=to_decimal(field(row, "volume")),
        price=to_decimal(field(row, "price")),
        bid=to_decimal(field(row, "bid")),
        ask=to_decimal(field(row, "ask")),
        request_id=to_int(field(row, "request_id")),
    )


def scrub(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text
