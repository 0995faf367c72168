"""The EA wire protocol (version 1): message schemas, a strict fast validator, and command payloads."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Literal

import msgspec

from mt5bridge.ea.state import EAOrder, EAPosition, EAState

PROTOCOL_VERSION = 1
SUPPORTED_VERSIONS = (1,)
COMMENT_LENGTH = 31  # MT5 keeps 31 characters of an order comment
TAG_PREFIX = "c"

MAX_POSITIONS = 2000
MAX_ORDERS = 2000
MAX_RESULTS = 500
MAX_POLL_COMMANDS = 200  # ``max`` of a command poll
DEFAULT_POLL_COMMANDS = 50
MAX_SYMBOL = 64
MAX_TEXT = 255
MAX_TICKET = 2**63 - 1
MAX_MONEY = Decimal("1e15")
MAX_PRICE = Decimal("1e12")
MAX_VOLUME = Decimal("1e9")
# Epoch seconds between 2000-01-01 and 2100-01-01: anything else is a corrupted clock or a hostile value.
MIN_TIME, MAX_TIME = 946684800, 4102444800


class ProtocolError(ValueError):
    """The message breaks the protocol. ``field`` names where; the API turns it into a 400."""

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.message = message
        self.field = field


# --- command ids in MT5 comments ---


def command_tag(command_id: uuid.UUID | str) -> str:
    """The command id as 23 characters (``c`` + base64url of the 16 bytes) so it fits an MT5 comment."""
    raw = (command_id if isinstance(command_id, uuid.UUID) else uuid.UUID(str(command_id))).bytes
    return TAG_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def command_id_from_tag(text: str) -> uuid.UUID | None:
    """The command id carried at the start of an order comment, or None."""
    if not text or not text.startswith(TAG_PREFIX) or len(text) < 23:
        return None
    try:
        return uuid.UUID(bytes=base64.urlsafe_b64decode(text[1:23] + "=="))
    except (ValueError, TypeError):
        return None


def order_comment(command_id: uuid.UUID | str, comment: str = "") -> str:
    """Tag first (the part that must survive), then as much of the user's comment as fits in 31 characters."""
    tag = command_tag(command_id)
    if not comment:
        return tag
    return (tag + " " + comment)[:COMMENT_LENGTH]


# --- validators of command parameters (the EA's messages use the structs below) ---


def _int(value, field: str, *, minimum: int = 0, maximum: int = MAX_TICKET) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError("must be an integer", field)
    if not minimum <= value <= maximum:
        raise ProtocolError(f"must be between {minimum} and {maximum}", field)
    return value


def _dec(value, field: str, *, minimum: Decimal | None = None, maximum: Decimal = MAX_MONEY) -> Decimal:
    if isinstance(value, bool):
        raise ProtocolError("must be a number", field)
    if isinstance(value, int):
        value = Decimal(value)
    elif isinstance(value, str):
        if len(value) > 40:
            raise ProtocolError("number too long", field)
        try:
            value = Decimal(value)
        except InvalidOperation:
            raise ProtocolError("must be a number", field) from None
    elif not isinstance(value, Decimal):
        raise ProtocolError("must be a number", field)
    if not value.is_finite():
        raise ProtocolError("must be a finite number", field)
    if abs(value) > maximum:
        raise ProtocolError("out of range", field)
    if minimum is not None and value < minimum:
        raise ProtocolError(f"must be at least {minimum}", field)
    return value


def _str(value, field: str, *, maximum: int = MAX_TEXT, required: bool = False) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise ProtocolError("must be a string", field)
    if len(value) > maximum or (required and not value):
        raise ProtocolError(
            f"must be 1 to {maximum} characters" if required else f"at most {maximum} characters", field
        )
    return value


def _time(value, field: str) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise ProtocolError("must be epoch seconds", field)
    if not (isinstance(value, int) or value.is_finite()) or not MIN_TIME <= value <= MAX_TIME:
        raise ProtocolError("epoch seconds out of range", field)
    return datetime.fromtimestamp(float(value), tz=UTC)


# --- the messages: one declarative schema, compiled once, used by every edge ---


def _bounded(name: str, value: Decimal | None, minimum: Decimal | None, maximum: Decimal) -> None:
    """A Decimal's bounds (msgspec bounds only ints and floats): the message names the field for ``ProtocolError``."""
    if value is None:
        return
    if not value.is_finite():
        raise ValueError(f"@{name}: must be a finite number")
    if abs(value) > maximum:
        raise ValueError(f"@{name}: out of range")
    if minimum is not None and value < minimum:
        raise ValueError(f"@{name}: must be at least {minimum}")


_ZERO = Decimal(0)
_MIN_VOLUME = Decimal("0.00000001")
Ticket = Annotated[int, msgspec.Meta(ge=1, le=MAX_TICKET)]
Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_TICKET)]
Epoch = Annotated[float, msgspec.Meta(ge=MIN_TIME, le=MAX_TIME)]
Symbol = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_SYMBOL)]
Comment = Annotated[str, msgspec.Meta(max_length=64)]
TerminalKey = Annotated[str, msgspec.Meta(max_length=40)]
TerminalValue = Annotated[str, msgspec.Meta(max_length=200)] | int | float | bool | None


class PositionMsg(msgspec.Struct):
    ticket: Ticket
    symbol: Symbol
    type: Annotated[int, msgspec.Meta(ge=0, le=1)]
    volume: Decimal
    price_open: Decimal
    time: Epoch
    sl: Decimal = _ZERO
    tp: Decimal = _ZERO
    magic: Count = 0
    comment: Comment | None = None
    profit: Decimal = _ZERO
    identifier: Count | None = None

    def __post_init__(self):
        _bounded("volume", self.volume, _MIN_VOLUME, MAX_VOLUME)
        for name in ("price_open", "sl", "tp"):
            _bounded(name, getattr(self, name), _ZERO, MAX_PRICE)
        _bounded("profit", self.profit, None, MAX_MONEY)


class OrderMsg(msgspec.Struct):
    ticket: Ticket
    symbol: Symbol
    type: Annotated[int, msgspec.Meta(ge=2, le=7)]
    volume: Decimal
    price_open: Decimal
    time_setup: Epoch
    sl: Decimal = _ZERO
    tp: Decimal = _ZERO
    magic: Count = 0
    comment: Comment | None = None

    def __post_init__(self):
        _bounded("volume", self.volume, _MIN_VOLUME, MAX_VOLUME)
        for name in ("price_open", "sl", "tp"):
            _bounded(name, getattr(self, name), _ZERO, MAX_PRICE)


class AccountMsg(msgspec.Struct):
    balance: Decimal
    equity: Decimal
    credit: Decimal = _ZERO
    margin: Decimal = _ZERO
    margin_free: Decimal = _ZERO
    leverage: Annotated[int, msgspec.Meta(ge=0, le=100000)] = 0

    def __post_init__(self):
        for name in ("balance", "equity", "credit", "margin_free"):
            _bounded(name, getattr(self, name), None, MAX_MONEY)
        _bounded("margin", self.margin, _ZERO, MAX_MONEY)


class ResultDetailMsg(msgspec.Struct, omit_defaults=True):
    order: Count | None = None
    deal: Count | None = None
    position: Count | None = None
    price: Decimal | None = None
    volume: Decimal | None = None
    duplicate: bool | None = None

    def __post_init__(self):
        _bounded("price", self.price, _ZERO, MAX_PRICE)
        _bounded("volume", self.volume, _ZERO, MAX_PRICE)


class ResultMsg(msgspec.Struct):
    id: uuid.UUID
    status: Literal["executed", "failed"]
    retcode: Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)] | None = None
    message: Annotated[str, msgspec.Meta(max_length=MAX_TEXT)] | None = None
    result: ResultDetailMsg | None = None


Results = Annotated[list[ResultMsg], msgspec.Meta(max_length=MAX_RESULTS)]


class HeartbeatMsg(msgspec.Struct):
    """EA heartbeat (EA → server), protocol v1."""

    account: AccountMsg
    v: int = PROTOCOL_VERSION
    ea_version: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    login: Count | None = None
    server_time: Epoch | None = None
    positions: Annotated[list[PositionMsg], msgspec.Meta(max_length=MAX_POSITIONS)] | None = None
    orders: Annotated[list[OrderMsg], msgspec.Meta(max_length=MAX_ORDERS)] | None = None
    terminal: Annotated[dict[TerminalKey, TerminalValue], msgspec.Meta(max_length=20)] | None = None
    results: Results | None = None
    max_commands: Annotated[int, msgspec.Meta(ge=1, le=MAX_POLL_COMMANDS)] = DEFAULT_POLL_COMMANDS
    paused: bool | None = None  # the EA obeys a "pause" command: it opens nothing until "resume"

    def __post_init__(self):
        if self.v not in SUPPORTED_VERSIONS:
            raise ValueError(f"@v: unsupported protocol version; this server speaks {list(SUPPORTED_VERSIONS)}")


class AckMsg(msgspec.Struct):
    """Command acknowledgement (EA → server), protocol v1."""

    results: Results


_HEARTBEAT = msgspec.json.Decoder(HeartbeatMsg)
_ACK = msgspec.json.Decoder(AckMsg)


def _protocol_error(exc: msgspec.MsgspecError) -> ProtocolError:
    """``ProtocolError`` naming the field as the hand-written parser did (``positions[0].volume``)."""
    if not isinstance(exc, msgspec.ValidationError):  # (a ValidationError is a DecodeError too)
        return ProtocolError(f"body is not valid JSON: {str(exc)[:100]}")
    text, _, where = str(exc).partition(" - at `$")
    path = where.rstrip("`").lstrip(".")
    name = ""
    if text.startswith("@"):  # raised by a __post_init__ above: "@field: message"
        name, text = text[1:].split(": ", 1)
    elif text.startswith("Object missing required field `"):
        name, text = text.split("`")[1], "is required"
    if name:
        path = f"{path}.{name}" if path else name
    return ProtocolError(text, path or "body")


@dataclass(frozen=True)
class CommandResult:
    """One command outcome reported by the EA."""

    id: uuid.UUID
    status: str  # executed | failed
    retcode: int | None
    message: str
    result: dict


@dataclass(frozen=True)
class Heartbeat:
    version: int
    ea_version: str
    state: EAState
    terminal: dict
    results: tuple[CommandResult, ...]
    max_commands: int


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def _result(msg: ResultMsg) -> CommandResult:
    detail = {} if msg.result is None else msgspec.structs.asdict(msg.result)
    clean = {k: (str(v) if isinstance(v, Decimal) else v) for k, v in detail.items() if v is not None}
    return CommandResult(msg.id, msg.status, msg.retcode, msg.message or "", clean)


def decode_heartbeat(body: bytes, *, account_id: str, login: int, received_at: datetime) -> Heartbeat:
    """Validate a heartbeat body for the token's account; raise ProtocolError naming the first bad field."""
    try:
        msg = _HEARTBEAT.decode(body)
    except msgspec.MsgspecError as exc:
        raise _protocol_error(exc) from None
    if msg.login is not None and msg.login != login:
        raise ProtocolError("login does not match the token's account", "login")
    acc = msg.account
    state = EAState(
        account_id=account_id,
        login=login,
        received_at=received_at,
        server_time=None if msg.server_time is None else _utc(msg.server_time),
        balance=acc.balance,
        credit=acc.credit,
        equity=acc.equity,
        margin=acc.margin,
        margin_free=acc.margin_free,
        leverage=acc.leverage,
        positions=tuple(
            EAPosition(
                p.ticket,
                p.symbol,
                p.type,
                p.volume,
                p.price_open,
                p.sl,
                p.tp,
                p.magic,
                p.comment or "",
                p.profit,
                _utc(p.time),
                p.ticket if p.identifier is None else p.identifier,
            )
            for p in msg.positions or ()
        ),
        orders=tuple(
            EAOrder(
                o.ticket,
                o.symbol,
                o.type,
                o.volume,
                o.price_open,
                o.sl,
                o.tp,
                o.magic,
                o.comment or "",
                _utc(o.time_setup),
            )
            for o in msg.orders or ()
        ),
        paused=bool(msg.paused),
    )
    return Heartbeat(
        version=msg.v,
        ea_version=msg.ea_version or "",
        state=state,
        terminal=dict(msg.terminal or {}),
        results=tuple(_result(r) for r in msg.results or ()),
        max_commands=msg.max_commands,
    )


def decode_ack(body: bytes) -> tuple[CommandResult, ...]:
    """The results of a ``command-ack`` body (required: ``{}`` is a client fault, not an acknowledgement of nothing)."""
    try:
        msg = _ACK.decode(body)
    except msgspec.MsgspecError as exc:
        raise _protocol_error(exc) from None
    return tuple(_result(r) for r in msg.results)


# --- command parameters ---

_SIDES = ("buy", "sell")
_PARAM_RULES: dict[str, dict[str, str]] = {
    # field -> kind of value ("req:" prefix = required)
    "open_market": {
        "symbol": "req:symbol",
        "side": "req:side",
        "volume": "req:volume",
        "sl": "price",
        "tp": "price",
        "comment": "comment",
        "magic": "int",
        "deviation": "int",
    },
    "place_pending": {
        "symbol": "req:symbol",
        "type": "req:pending_type",
        "volume": "req:volume",
        "price": "req:price",
        "sl": "price",
        "tp": "price",
        "expiration": "time",
        "comment": "comment",
        "magic": "int",
    },
    "close": {"ticket": "req:ticket", "deviation": "int"},
    "close_partial": {"ticket": "req:ticket", "volume": "req:volume", "deviation": "int"},
    "modify_sltp": {"ticket": "req:ticket", "sl": "price", "tp": "price"},
    "modify_pending": {"ticket": "req:ticket", "price": "req:price", "sl": "price", "tp": "price"},
    "cancel_pending": {"ticket": "req:ticket"},
    "close_all": {"symbol": "symbol"},
    "pause": {},
    "resume": {},
}


def parse_poll(wait: str | None, limit: str | None, *, max_wait: int) -> tuple[int, int]:
    """The ``wait`` (seconds) and ``max`` (commands) query parameters of a command poll, absent → 0 and 50."""
    try:
        seconds = 0 if wait is None else int(wait)
        count = DEFAULT_POLL_COMMANDS if limit is None else int(limit)
    except ValueError:
        raise ProtocolError("must be an integer", "wait/max") from None
    if not 0 <= seconds <= max_wait or not 1 <= count <= MAX_POLL_COMMANDS:
        raise ProtocolError(f"wait must be 0–{max_wait} and max 1–{MAX_POLL_COMMANDS}", "wait/max")
    return seconds, count


def validate_command_params(kind: str, params: object) -> dict:
    """Normalise command parameters (decimals as strings); raise ProtocolError naming the bad field."""
    rules = _PARAM_RULES.get(kind)
    if rules is None:
        raise ProtocolError(f"unknown command kind; expected one of {list(_PARAM_RULES)}", "kind")
    if not isinstance(params, dict):
        raise ProtocolError("must be an object", "params")
    unknown = set(params) - set(rules)
    if unknown:
        raise ProtocolError(f"unknown parameters {sorted(unknown)}", "params")
    clean: dict = {}
    for name, rule in rules.items():
        required = rule.startswith("req:")
        rule = rule.removeprefix("req:")
        value = params.get(name)
        if value is None or value == "":
            if required:
                raise ProtocolError("is required", f"params.{name}")
            continue
        f = f"params.{name}"
        if rule == "symbol":
            clean[name] = _str(value, f, maximum=MAX_SYMBOL, required=True)
        elif rule == "side":
            if value not in _SIDES:
                raise ProtocolError('must be "buy" or "sell"', f)
            clean[name] = value
        elif rule == "volume":
            clean[name] = str(_dec(value, f, minimum=Decimal("0.00000001"), maximum=MAX_VOLUME))
        elif rule == "price":
            clean[name] = str(_dec(value, f, minimum=Decimal(0), maximum=MAX_PRICE))
        elif rule == "pending_type":
            clean[name] = _int(value, f, minimum=2, maximum=7)
        elif rule == "ticket":
            clean[name] = _int(value, f, minimum=1)
        elif rule == "int":
            clean[name] = _int(value, f)
        elif rule == "comment":
            clean[name] = _str(value, f, maximum=COMMENT_LENGTH)
        elif rule == "time":
            clean[name] = int(_time(value, f).timestamp())
    return clean


def command_payload(*, command_id, kind: str, params: dict, created_at: datetime, expires_at: datetime | None) -> dict:
    """What the EA receives for one command (also what Redis keeps for a pending one)."""
    return {
        "id": str(command_id),
        "kind": kind,
        "params": params,
        "comment": order_comment(command_id, params.get("comment", "")),
        "created_at": created_at.timestamp(),
        "expires_at": None if expires_at is None else expires_at.timestamp(),
    }


# --- JSON Schemas (documentation and external validation), generated from the message structs above ---

COMMAND_SCHEMA = {
    "type": "object",
    "required": ["id", "kind", "params", "comment", "created_at"],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "kind": {"enum": list(_PARAM_RULES)},
        "params": {"type": "object"},
        "comment": {"type": "string", "maxLength": COMMENT_LENGTH},
        "created_at": {"type": "number"},
        "expires_at": {"type": ["number", "null"]},
    },
}
REPLY_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Heartbeat / commands reply (server → EA), protocol v1",
    "type": "object",
    "required": ["v", "status", "server_time", "commands"],
    "properties": {
        "v": {"const": 1},
        "status": {"enum": ["ok", "denied", "paused"]},
        "reason": {"type": "string"},
        "server_time": {"type": "number"},
        "next_beat_ms": {"type": "integer"},
        "commands": {"type": "array", "items": COMMAND_SCHEMA},
    },
}
SCHEMAS = {
    "heartbeat": msgspec.json.schema(HeartbeatMsg),
    "reply": REPLY_SCHEMA,
    "command-ack": msgspec.json.schema(AckMsg),
    "command": COMMAND_SCHEMA,
}
