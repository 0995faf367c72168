"""The EA wire protocol (version 1): message schemas, a strict fast validator, and command payloads."""

from __future__ import annotations

import base64
import json
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

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


# --- JSON parsing ---


def _reject_constant(name: str):
    raise ProtocolError(f"{name} is not a number the protocol accepts")


def parse_json(body: bytes) -> object:
    """Parse a request body: decimals stay exact, NaN/Infinity are refused."""
    try:
        return json.loads(body, parse_float=Decimal, parse_constant=_reject_constant)
    except ProtocolError:
        raise
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ProtocolError(f"body is not valid JSON: {str(exc)[:100]}") from exc


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


def _obj(value, field: str) -> dict:
    if not isinstance(value, dict):
        raise ProtocolError("must be an object", field)
    return value


def _list(value, field: str, maximum: int) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ProtocolError("must be an array", field)
    if len(value) > maximum:
        raise ProtocolError(f"at most {maximum} items", field)
    return value


# --- heartbeat ---


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


# --- the common case, without naming fields: a valid value comes back as the validators below would return it,
# anything else as _BAD, and the caller then runs those validators, which name the field and say what is wrong.

_BAD = object()
_ZERO = Decimal(0)
_MIN_VOLUME = Decimal("0.00000001")


def _q_dec(value, minimum, maximum):
    kind = type(value)
    if kind is str:
        if len(value) > 40:
            return _BAD
        try:
            value = Decimal(value)
        except InvalidOperation:
            return _BAD
    elif kind is int:
        value = Decimal(value)
    elif kind is not Decimal:
        return _BAD
    if not value.is_finite() or abs(value) > maximum or (minimum is not None and value < minimum):
        return _BAD
    return value


def _q_int(value, minimum, maximum):
    return value if type(value) is int and minimum <= value <= maximum else _BAD


def _q_str(value, maximum, required):
    if value is None and not required:
        return ""
    if type(value) is not str or len(value) > maximum or (required and not value):
        return _BAD
    return value


def _q_time(value):
    kind = type(value)
    if kind is int:
        if not MIN_TIME <= value <= MAX_TIME:
            return _BAD
    elif kind is Decimal:
        if not value.is_finite() or not MIN_TIME <= value <= MAX_TIME:
            return _BAD
    else:
        return _BAD
    return datetime.fromtimestamp(float(value), tz=UTC)


def _position_quick(raw) -> EAPosition | None:
    """``_position`` for a valid position (the heartbeat's hot path); None when any field needs a closer look."""
    if type(raw) is not dict:
        return None
    get = raw.get
    ticket = _q_int(get("ticket"), 1, MAX_TICKET)
    values = (
        ticket,
        _q_str(get("symbol"), MAX_SYMBOL, True),
        _q_int(get("type"), 0, 1),
        _q_dec(get("volume"), _MIN_VOLUME, MAX_VOLUME),
        _q_dec(get("price_open"), _ZERO, MAX_PRICE),
        _q_dec(get("sl", 0), _ZERO, MAX_PRICE),
        _q_dec(get("tp", 0), _ZERO, MAX_PRICE),
        _q_int(get("magic", 0), 0, MAX_TICKET),
        _q_str(get("comment"), 64, False),
        _q_dec(get("profit", 0), None, MAX_MONEY),
        _q_time(get("time")),
        _q_int(get("identifier", ticket), 0, MAX_TICKET),
    )
    return None if _BAD in values else EAPosition(*values)


def _order_quick(raw) -> EAOrder | None:
    """``_order`` for a valid pending order; None when any field needs a closer look."""
    if type(raw) is not dict:
        return None
    get = raw.get
    values = (
        _q_int(get("ticket"), 1, MAX_TICKET),
        _q_str(get("symbol"), MAX_SYMBOL, True),
        _q_int(get("type"), 2, 7),
        _q_dec(get("volume"), _MIN_VOLUME, MAX_VOLUME),
        _q_dec(get("price_open"), _ZERO, MAX_PRICE),
        _q_dec(get("sl", 0), _ZERO, MAX_PRICE),
        _q_dec(get("tp", 0), _ZERO, MAX_PRICE),
        _q_int(get("magic", 0), 0, MAX_TICKET),
        _q_str(get("comment"), 64, False),
        _q_time(get("time_setup")),
    )
    return None if _BAD in values else EAOrder(*values)


def _position(raw, i: int) -> EAPosition:
    quick = _position_quick(raw)
    if quick is not None:
        return quick
    f = f"positions[{i}]"
    raw = _obj(raw, f)
    ptype = _int(raw.get("type"), f + ".type", maximum=1)
    ticket = _int(raw.get("ticket"), f + ".ticket", minimum=1)
    return EAPosition(
        ticket=ticket,
        symbol=_str(raw.get("symbol"), f + ".symbol", maximum=MAX_SYMBOL, required=True),
        type=ptype,
        volume=_dec(raw.get("volume"), f + ".volume", minimum=Decimal("0.00000001"), maximum=MAX_VOLUME),
        price_open=_dec(raw.get("price_open"), f + ".price_open", minimum=Decimal(0), maximum=MAX_PRICE),
        sl=_dec(raw.get("sl", 0), f + ".sl", minimum=Decimal(0), maximum=MAX_PRICE),
        tp=_dec(raw.get("tp", 0), f + ".tp", minimum=Decimal(0), maximum=MAX_PRICE),
        magic=_int(raw.get("magic", 0), f + ".magic"),
        comment=_str(raw.get("comment"), f + ".comment", maximum=64),
        profit=_dec(raw.get("profit", 0), f + ".profit"),
        time=_time(raw.get("time"), f + ".time"),
        identifier=_int(raw.get("identifier", ticket), f + ".identifier"),
    )


def _order(raw, i: int) -> EAOrder:
    quick = _order_quick(raw)
    if quick is not None:
        return quick
    f = f"orders[{i}]"
    raw = _obj(raw, f)
    return EAOrder(
        ticket=_int(raw.get("ticket"), f + ".ticket", minimum=1),
        symbol=_str(raw.get("symbol"), f + ".symbol", maximum=MAX_SYMBOL, required=True),
        type=_int(raw.get("type"), f + ".type", minimum=2, maximum=7),
        volume=_dec(raw.get("volume"), f + ".volume", minimum=Decimal("0.00000001"), maximum=MAX_VOLUME),
        price_open=_dec(raw.get("price_open"), f + ".price_open", minimum=Decimal(0), maximum=MAX_PRICE),
        sl=_dec(raw.get("sl", 0), f + ".sl", minimum=Decimal(0), maximum=MAX_PRICE),
        tp=_dec(raw.get("tp", 0), f + ".tp", minimum=Decimal(0), maximum=MAX_PRICE),
        magic=_int(raw.get("magic", 0), f + ".magic"),
        comment=_str(raw.get("comment"), f + ".comment", maximum=64),
        time_setup=_time(raw.get("time_setup"), f + ".time_setup"),
    )


def parse_result(raw, field: str) -> CommandResult:
    raw = _obj(raw, field)
    try:
        cid = uuid.UUID(_str(raw.get("id"), field + ".id", maximum=36, required=True))
    except ValueError:
        raise ProtocolError("must be a command id", field + ".id") from None
    status = raw.get("status")
    if status not in ("executed", "failed"):
        raise ProtocolError('must be "executed" or "failed"', field + ".status")
    retcode = raw.get("retcode")
    retcode = None if retcode is None else _int(retcode, field + ".retcode", maximum=2**31 - 1)
    result = _obj(raw.get("result") or {}, field + ".result")
    clean: dict = {}
    for key in ("order", "deal", "position"):
        if key in result:
            clean[key] = _int(result[key], f"{field}.result.{key}")
    for key in ("price", "volume"):
        if key in result:
            clean[key] = str(_dec(result[key], f"{field}.result.{key}", minimum=Decimal(0), maximum=MAX_PRICE))
    if "duplicate" in result:
        clean["duplicate"] = bool(result["duplicate"])
    return CommandResult(cid, status, retcode, _str(raw.get("message"), field + ".message"), clean)


def parse_heartbeat(data: object, *, account_id: str, login: int, received_at: datetime) -> Heartbeat:
    """Validate a decoded heartbeat for the token's account; raise ProtocolError on the first problem."""
    data = _obj(data, "body")
    version = data.get("v", PROTOCOL_VERSION)
    if version not in SUPPORTED_VERSIONS:
        raise ProtocolError(f"unsupported protocol version; this server speaks {list(SUPPORTED_VERSIONS)}", "v")
    if "login" in data and _int(data["login"], "login") != login:
        raise ProtocolError("login does not match the token's account", "login")
    acc = _obj(data.get("account"), "account")
    positions = _list(data.get("positions"), "positions", MAX_POSITIONS)
    orders = _list(data.get("orders"), "orders", MAX_ORDERS)
    results = _list(data.get("results"), "results", MAX_RESULTS)
    terminal = _obj(data.get("terminal") or {}, "terminal")
    if len(terminal) > 20 or any(
        not isinstance(k, str)
        or len(k) > 40
        or not isinstance(v, str | int | bool | Decimal | None)
        or (isinstance(v, str) and len(v) > 200)
        for k, v in terminal.items()
    ):
        raise ProtocolError("at most 20 flat keys with short values", "terminal")
    server_time = data.get("server_time")
    state = EAState(
        account_id=account_id,
        login=login,
        received_at=received_at,
        server_time=None if server_time is None else _time(server_time, "server_time"),
        balance=_dec(acc.get("balance"), "account.balance"),
        credit=_dec(acc.get("credit", 0), "account.credit"),
        equity=_dec(acc.get("equity"), "account.equity"),
        margin=_dec(acc.get("margin", 0), "account.margin", minimum=Decimal(0)),
        margin_free=_dec(acc.get("margin_free", 0), "account.margin_free"),
        leverage=_int(acc.get("leverage", 0), "account.leverage", maximum=100000),
        positions=tuple(_position(p, i) for i, p in enumerate(positions)),
        orders=tuple(_order(o, i) for i, o in enumerate(orders)),
    )
    max_commands = data.get("max_commands", 50)
    return Heartbeat(
        version=version,
        ea_version=_str(data.get("ea_version"), "ea_version", maximum=32),
        state=state,
        terminal={k: (str(v) if isinstance(v, Decimal) else v) for k, v in terminal.items()},
        results=tuple(parse_result(r, f"results[{i}]") for i, r in enumerate(results)),
        max_commands=_int(max_commands, "max_commands", minimum=1, maximum=200),
    )


def parse_ack(data: object) -> tuple[CommandResult, ...]:
    data = _obj(data, "body")
    # The schema requires "results": an empty body is a client fault, not an acknowledgement of nothing.
    if data.get("results") is None:
        raise ProtocolError("is required", "results")
    results = _list(data.get("results"), "results", MAX_RESULTS)
    return tuple(parse_result(r, f"results[{i}]") for i, r in enumerate(results))


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


def finite(value: float) -> bool:
    return not (math.isnan(value) or math.isinf(value))


# --- JSON Schemas (documentation and external validation; the parser above is the enforcement) ---

_NUM = {"oneOf": [{"type": "number"}, {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"}]}
_EPOCH = {"type": "number", "minimum": MIN_TIME, "maximum": MAX_TIME}
RESULT_SCHEMA = {
    "type": "object",
    "required": ["id", "status"],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "status": {"enum": ["executed", "failed"]},
        "retcode": {"type": "integer"},
        "message": {"type": "string", "maxLength": MAX_TEXT},
        "result": {
            "type": "object",
            "properties": {
                "order": {"type": "integer"},
                "deal": {"type": "integer"},
                "position": {"type": "integer"},
                "price": _NUM,
                "volume": _NUM,
                "duplicate": {"type": "boolean"},
            },
        },
    },
}
HEARTBEAT_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "EA heartbeat (EA → server), protocol v1",
    "type": "object",
    "required": ["account"],
    "properties": {
        "v": {"const": 1},
        "ea_version": {"type": "string", "maxLength": 32},
        "login": {"type": "integer"},
        "server_time": _EPOCH,
        "account": {
            "type": "object",
            "required": ["balance", "equity"],
            "properties": {
                "balance": _NUM,
                "credit": _NUM,
                "equity": _NUM,
                "margin": _NUM,
                "margin_free": _NUM,
                "leverage": {"type": "integer", "minimum": 0},
            },
        },
        "positions": {
            "type": "array",
            "maxItems": MAX_POSITIONS,
            "items": {
                "type": "object",
                "required": ["ticket", "symbol", "type", "volume", "price_open", "time"],
                "properties": {
                    "ticket": {"type": "integer", "minimum": 1},
                    "symbol": {"type": "string"},
                    "type": {"enum": [0, 1]},
                    "volume": _NUM,
                    "price_open": _NUM,
                    "sl": _NUM,
                    "tp": _NUM,
                    "magic": {"type": "integer"},
                    "comment": {"type": "string"},
                    "profit": _NUM,
                    "time": _EPOCH,
                    "identifier": {"type": "integer"},
                },
            },
        },
        "orders": {
            "type": "array",
            "maxItems": MAX_ORDERS,
            "items": {
                "type": "object",
                "required": ["ticket", "symbol", "type", "volume", "price_open", "time_setup"],
                "properties": {
                    "ticket": {"type": "integer", "minimum": 1},
                    "symbol": {"type": "string"},
                    "type": {"enum": [2, 3, 4, 5, 6, 7]},
                    "volume": _NUM,
                    "price_open": _NUM,
                    "sl": _NUM,
                    "tp": _NUM,
                    "magic": {"type": "integer"},
                    "comment": {"type": "string"},
                    "time_setup": _EPOCH,
                },
            },
        },
        "terminal": {"type": "object", "maxProperties": 20},
        "results": {"type": "array", "maxItems": MAX_RESULTS, "items": RESULT_SCHEMA},
        "max_commands": {"type": "integer", "minimum": 1, "maximum": 200},
    },
}
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
ACK_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Command acknowledgement (EA → server), protocol v1",
    "type": "object",
    "required": ["results"],
    "properties": {"results": {"type": "array", "maxItems": MAX_RESULTS, "items": RESULT_SCHEMA}},
}
SCHEMAS = {"heartbeat": HEARTBEAT_SCHEMA, "reply": REPLY_SCHEMA, "command-ack": ACK_SCHEMA, "command": COMMAND_SCHEMA}
