"""The MT5 Web API wire format: retcodes, the auth hashes, value parsing and record mappers (pure, no I/O)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from .types import (
    AccountTradeMode,
    BrokerUser,
    Deal,
    DealEntry,
    DealReason,
    DealType,
    GatewayError,
    OrderResult,
    OrderType,
    PendingOrder,
    Position,
    PositionType,
    Retcode,
    SymbolInfo,
    TradeAction,
)

logger = logging.getLogger(__name__)

# --- Web API constants (MetaQuotes MT5 SDK, EnMTAPIRetcode and IMTRequest::EnTradeActions) ---

WEBAPI_VERSION = 484  # lowest Web API protocol version the access server accepts
COMMENT_MAX = 31  # MT5 cuts deal comments to 31 characters
PAGE_SIZE = 100  # /api/deal/get_page refuses total > 100

RET_OK = 0
RET_OK_NONE = 1
RET_ERR_PARAMS = 3
RET_ERR_NETWORK = 7
RET_ERR_PERMISSIONS = 8
RET_ERR_TIMEOUT = 9
RET_ERR_CONNECTION = 10
RET_ERR_NOSERVICE = 11
RET_ERR_FREQUENT = 12
RET_ERR_NOTFOUND = 13
RET_ERR_SHUTDOWN = 15
RET_AUTH_ACCOUNT_INVALID = 1001
RET_AUTH_ACCOUNT_DISABLED = 1002
RET_AUTH_SERVER_BUSY = 1018
RET_AUTH_ACCOUNT_UNKNOWN = 1020
RET_USR_INVALID_PASSWORD = 3006
RET_REQUEST_DONE_CANCEL = 11001  # dealer: partly filled, remainder cancelled

# A call answered with one of these means "this session is not (or no longer) logged in":
# 8 PERMISSIONS is what an access server gives a connection that has not authenticated,
# and the 1000-1999 band is the authentication group. We log in again once and replay; a
# second refusal is a real permission problem and surfaces as GatewayError.
SESSION_RETCODES = frozenset({RET_ERR_PERMISSIONS, *range(1000, 2000)}) - {RET_AUTH_SERVER_BUSY}
# Transient refusals the server made without executing anything: safe to repeat even for money.
TRANSIENT_UNEXECUTED_RETCODES = frozenset({RET_ERR_FREQUENT, RET_AUTH_SERVER_BUSY})
# Transient failures after which the command may or may not have run on the trade server.
TRANSIENT_UNKNOWN_RETCODES = frozenset(
    {RET_ERR_NETWORK, RET_ERR_TIMEOUT, RET_ERR_CONNECTION, RET_ERR_NOSERVICE, RET_ERR_SHUTDOWN}
)
# Dealer request states that are not final yet (in the way, accepted, processing, prices, returned).
PENDING_REQUEST_CODES = frozenset({0, 10001, 10002, 10003, 10005, 11000, 11002})
# Answers to send_request that are a verdict on the trade (returned, not raised).
TRADE_RETCODES = frozenset({RET_ERR_PARAMS, *range(10000, 12000)})

TA_DEALER_POS_EXECUTE = 200
DEALER_ACTIONS = {
    TradeAction.DEAL: TA_DEALER_POS_EXECUTE,
    TradeAction.PENDING: 201,  # TA_DEALER_ORD_PENDING
    TradeAction.SLTP: 202,  # TA_DEALER_POS_MODIFY
    TradeAction.MODIFY: 203,  # TA_DEALER_ORD_MODIFY
    TradeAction.REMOVE: 204,  # TA_DEALER_ORD_REMOVE
    TradeAction.CLOSE_BY: 208,  # TA_DEALER_CLOSE_BY
}

# Server EnDealAction 18-20 have no client DEAL_TYPE; these are the nearest client families.
EXTRA_DEAL_ACTIONS = {
    18: DealType.COMMISSION_AGENT_DAILY,  # DEAL_AGENT: agent commission
    19: DealType.CORRECTION,  # DEAL_SO_COMPENSATION: balance compensation after stop-out
    20: DealType.CREDIT,  # DEAL_SO_COMPENSATION_CREDIT
}
# Server EnDealReason -> client DEAL_REASON; server-only reasons (dealer, gateway, signal, ...)
# have no client counterpart and read as CLIENT, as a terminal shows them.
DEAL_REASONS = {
    0: DealReason.CLIENT,
    1: DealReason.EXPERT,
    3: DealReason.SL,
    4: DealReason.TP,
    5: DealReason.SO,
    6: DealReason.ROLLOVER,
    8: DealReason.VMARGIN,
    16: DealReason.MOBILE,
    17: DealReason.WEB,
    18: DealReason.SPLIT,
    19: 10,  # CORPORATE_ACTION (MQL5 only)
}
NOT_BALANCE_TYPES = frozenset({DealType.BUY, DealType.SELL, DealType.BUY_CANCELED, DealType.SELL_CANCELED})

VOLUME_UNIT = Decimal(10_000)  # Volume fields: 1 unit = 0.0001 lot
VOLUME_EXT_UNIT = Decimal(100_000_000)  # VolumeExt fields: 1 unit = 1e-8 lot


# --- Authentication hashes (pure, see the Web API "auth" commands) ---


def password_hash(password: str) -> bytes:
    """``MD5(MD5(password as UTF-16LE) + b"WebAPI")``: the only form of the password the handshake uses."""
    return hashlib.md5(hashlib.md5(password.encode("utf-16-le")).digest() + b"WebAPI").digest()


def srv_rand_answer(pass_hash: bytes, srv_rand: str) -> str:
    """Our proof of the password: hex ``MD5(pass_hash + srv_rand bytes)``."""
    return hashlib.md5(pass_hash + bytes.fromhex(srv_rand)).hexdigest()


def cli_rand_answer(pass_hash: bytes, cli_rand: bytes) -> str:
    """The server's proof that it knows the password too: hex ``MD5(pass_hash + cli_rand)``."""
    return hashlib.md5(pass_hash + cli_rand).hexdigest()


def parse_retcode(value: Any) -> tuple[int, str]:
    """Split a Web API ``"13 Not found"`` retcode into ``(13, "Not found")``."""
    if isinstance(value, int):
        return value, ""
    text = str(value or "").strip()
    head, _, tail = text.partition(" ")
    try:
        return int(head), tail.strip()
    except ValueError:
        return -1, text


# --- Value parsing: the Web API sends numbers as strings ---


def to_decimal(value: Any) -> Decimal:
    if value is None or value == "":
        return Decimal("0")
    if isinstance(value, float):
        return Decimal(repr(value))
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        raise GatewayError(f"MT5 bridge sent {value!r} where a number was expected") from None


def to_int(value: Any) -> int:
    if value is None or value == "":
        return 0
    try:
        return int(str(value).strip())
    except ValueError:
        return int(to_decimal(value))


def to_str(value: Any) -> str:
    return "" if value is None else str(value)


def to_time(seconds: Any, msc: Any = None) -> datetime:
    millis = to_int(msc)
    if millis:
        return datetime.fromtimestamp(millis / 1000, tz=UTC)
    return datetime.fromtimestamp(to_int(seconds), tz=UTC)


def to_optional_time(seconds: Any, msc: Any = None) -> datetime | None:
    return to_time(seconds, msc) if to_int(seconds) or to_int(msc) else None


def lots(record: dict[str, Any], key: str) -> Decimal:
    """Lots from ``<key>Ext`` (1e-8 lot) when the server fills it, else ``<key>`` (1e-4 lot)."""
    ext = to_int(record.get(f"{key}Ext"))
    if ext:
        return Decimal(ext) / VOLUME_EXT_UNIT
    return Decimal(to_int(record.get(key))) / VOLUME_UNIT


def epoch(moment: datetime) -> int:
    if moment.tzinfo is None:  # the apps pass UTC; a naive value is taken as UTC, never as local time
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def number_text(value: Decimal | int) -> str:
    """A number the way the Web API writes it: plain decimal text, no exponent."""
    return format(Decimal(value), "f")


def as_list(answer: Any) -> list[dict[str, Any]]:
    if answer is None or answer == "":
        return []
    if isinstance(answer, dict):
        return [answer]
    return list(answer)


def as_plain_list(answer: Any) -> list[Any]:
    if answer is None or answer == "":
        return []
    if isinstance(answer, (list, tuple)):
        return list(answer)
    return [answer]


def chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class AnyRetcode:
    """``accept=`` value meaning: hand every retcode back to the caller."""

    def __contains__(self, item: object) -> bool:
        return True


ANY_RETCODE = AnyRetcode()


class Transient(Exception):
    """A failure worth repeating; ``maybe_executed`` says whether the command may have run."""

    def __init__(self, reason: str, *, maybe_executed: bool) -> None:
        super().__init__(reason)
        self.maybe_executed = maybe_executed


class SessionLost(Exception):
    """The bridge no longer knows our manager session."""


# --- record mappers ---


def trade_mode_of(group: str) -> AccountTradeMode:
    """MT5 tells real from demo by the group path: ``real\\...``, ``contest\\...``, else demo."""
    head = group.replace("/", "\\").split("\\", 1)[0].lower()
    if head.startswith("real"):
        return AccountTradeMode.REAL
    if head.startswith("contest"):
        return AccountTradeMode.CONTEST
    return AccountTradeMode.DEMO


def deal_type_of(action: int) -> DealType:
    if action in EXTRA_DEAL_ACTIONS:
        return EXTRA_DEAL_ACTIONS[action]
    try:
        return DealType(action)
    except ValueError:
        logger.warning("MT5 deal action %s has no client deal type; reading it as CORRECTION", action)
        return DealType.CORRECTION


def deal_of(r: dict[str, Any]) -> Deal:
    try:
        entry = DealEntry(to_int(r.get("Entry")))
    except ValueError:
        entry = DealEntry.IN
    return Deal(
        ticket=to_int(r.get("Deal")),
        order=to_int(r.get("Order")),
        time=to_time(r.get("Time"), r.get("TimeMsc")),
        type=deal_type_of(to_int(r.get("Action"))),
        entry=entry,
        magic=to_int(r.get("ExpertID")),
        position_id=to_int(r.get("PositionID")),
        reason=int(DEAL_REASONS.get(to_int(r.get("Reason")), DealReason.CLIENT)),
        volume=lots(r, "Volume"),
        price=to_decimal(r.get("Price")),
        commission=to_decimal(r.get("Commission")),
        swap=to_decimal(r.get("Storage")),
        profit=to_decimal(r.get("Profit")),
        fee=to_decimal(r.get("Fee")),
        symbol=to_str(r.get("Symbol")),
        comment=to_str(r.get("Comment")),
        external_id=to_str(r.get("ExternalID")),
    )


def position_of(r: dict[str, Any]) -> Position:
    ticket = to_int(r.get("Position"))
    return Position(
        ticket=ticket,
        symbol=to_str(r.get("Symbol")),
        type=PositionType(to_int(r.get("Action"))),
        volume=lots(r, "Volume"),
        price_open=to_decimal(r.get("PriceOpen")),
        price_current=to_decimal(r.get("PriceCurrent")),
        sl=to_decimal(r.get("PriceSL")),
        tp=to_decimal(r.get("PriceTP")),
        swap=to_decimal(r.get("Storage")),
        profit=to_decimal(r.get("Profit")),
        magic=to_int(r.get("ExpertID")),
        comment=to_str(r.get("Comment")),
        time=to_time(r.get("TimeCreate"), r.get("TimeCreateMsc")),
        time_update=to_time(r.get("TimeUpdate"), r.get("TimeUpdateMsc")),
        identifier=to_int(r.get("Identifier")) or ticket,
    )


def pending_order_of(r: dict[str, Any]) -> PendingOrder:
    return PendingOrder(
        ticket=to_int(r.get("Order")),
        symbol=to_str(r.get("Symbol")),
        type=OrderType(to_int(r.get("Type"))),
        volume_initial=lots(r, "VolumeInitial"),
        volume_current=lots(r, "VolumeCurrent"),
        price_open=to_decimal(r.get("PriceOrder")),
        price_current=to_decimal(r.get("PriceCurrent")),
        price_stoplimit=to_decimal(r.get("PriceTrigger")),
        sl=to_decimal(r.get("PriceSL")),
        tp=to_decimal(r.get("PriceTP")),
        magic=to_int(r.get("ExpertID")),
        comment=to_str(r.get("Comment")),
        time_setup=to_time(r.get("TimeSetup"), r.get("TimeSetupMsc")),
        time_expiration=to_optional_time(r.get("TimeExpiration")),
        type_time=to_int(r.get("TypeTime")),
        state=to_int(r.get("State")) if r.get("State") not in (None, "") else 1,
    )


def symbol_of(r: dict[str, Any]) -> SymbolInfo:
    digits = to_int(r.get("Digits"))
    point = to_decimal(r.get("Point")) if r.get("Point") not in (None, "") else Decimal(1).scaleb(-digits)
    return SymbolInfo(
        name=to_str(r.get("Symbol")),
        path=to_str(r.get("Path")),
        description=to_str(r.get("Description")),
        digits=digits,
        point=point,
        contract_size=to_decimal(r.get("ContractSize")),
        volume_min=lots(r, "VolumeMin"),
        volume_step=lots(r, "VolumeStep"),
        volume_max=lots(r, "VolumeMax"),
        currency_base=to_str(r.get("CurrencyBase")),
        currency_profit=to_str(r.get("CurrencyProfit")),
        currency_margin=to_str(r.get("CurrencyMargin")),
        trade_stops_level=to_int(r.get("StopsLevel")),
    )


def broker_user_of(r: dict[str, Any]) -> BrokerUser:
    name = to_str(r.get("Name")) or " ".join(p for p in (to_str(r.get("FirstName")), to_str(r.get("LastName"))) if p)
    return BrokerUser(
        login=to_int(r.get("Login")),
        group=to_str(r.get("Group")),
        name=name,
        email=to_str(r.get("Email")),
        country=to_str(r.get("Country")),
        lead_source=to_str(r.get("LeadSource")),
        lead_campaign=to_str(r.get("LeadCampaign")),
        agent=to_int(r.get("Agent")),
        leverage=to_int(r.get("Leverage")) or 100,
        balance=to_decimal(r.get("Balance")),
        credit=to_decimal(r.get("Credit")),
        registration=to_optional_time(r.get("Registration")),
        comment=to_str(r.get("Comment")),
    )


def final_event(events: Any) -> dict[str, Any] | None:
    """The final state of one dealer request among its events, or None while it is in progress."""
    final: dict[str, Any] | None = None
    for event in as_plain_list(events):
        if not isinstance(event, dict):
            continue
        answer = event.get("answer")
        if isinstance(answer, dict) and parse_retcode(answer.get("ResultRetcode"))[0] not in PENDING_REQUEST_CODES:
            final = answer
        confirm = event.get("result")
        if final is None and isinstance(confirm, dict):
            if parse_retcode(confirm.get("Retcode"))[0] not in PENDING_REQUEST_CODES:
                final = confirm
    return final


def order_result_of(event: dict[str, Any], request_id: int) -> OrderResult:
    if "ResultRetcode" in event:  # IMTRequest form
        code, text = parse_retcode(event.get("ResultRetcode"))
        fields = ("ResultDeal", "ResultOrder", "ResultVolume", "ResultPrice", "ResultMarketBid", "ResultMarketAsk")
        comment = to_str(event.get("ResultComment")) or text
    else:  # obsolete IMTConfirm form
        code, text = parse_retcode(event.get("Retcode"))
        fields = ("DealID", "OrderID", "Volume", "Price", "TickBid", "TickAsk")
        comment = to_str(event.get("Comment")) or text
    deal_key, order_key, volume_key, price_key, bid_key, ask_key = fields
    if code == RET_REQUEST_DONE_CANCEL:
        code = Retcode.DONE_PARTIAL  # filled in part, remainder cancelled: what a terminal calls partial
    return OrderResult(
        retcode=code,
        comment=comment,
        deal=to_int(event.get(deal_key)),
        order=to_int(event.get(order_key)),
        volume=lots(event, volume_key),
        price=to_decimal(event.get(price_key)),
        bid=to_decimal(event.get(bid_key)),
        ask=to_decimal(event.get(ask_key)),
        request_id=request_id,
    )
