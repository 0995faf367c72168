"""From rows of cells to deals: the Deals section of an MT5 report, each value checked."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from django.conf import settings

from .cells import html_rows, xlsx_rows
from .upload import StatementInvalid, StatementTooLarge, upload_limit_message

# MT5 DEAL_TYPE_* by the words the report prints.
DEAL_TYPES = {
    "buy": 0,
    "sell": 1,
    "balance": 2,
    "credit": 3,
    "charge": 4,
    "correction": 5,
    "bonus": 6,
    "commission": 7,
    "daily commission": 8,
    "monthly commission": 9,
    "daily agent commission": 10,
    "monthly agent commission": 11,
    "interest": 12,
    "buy canceled": 13,
    "sell canceled": 14,
    "dividend": 15,
    "franked dividend": 16,
    "tax": 17,
}
DEAL_ENTRIES = {"": 0, "in": 0, "out": 1, "in/out": 2, "inout": 2, "out by": 3}
TIME_FORMATS = ("%Y.%m.%d %H:%M:%S", "%Y.%m.%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M")
MAX_DEALS = 200_000


@dataclass(frozen=True)
class ParsedDeal:
    ticket: int
    time: datetime
    deal_type: int
    entry: int
    symbol: str
    volume: Decimal
    price: Decimal
    order: int
    commission: Decimal
    fee: Decimal
    swap: Decimal
    profit: Decimal
    comment: str
    position_id: int = 0


@dataclass
class ParsedStatement:
    file_format: str
    login: int | None
    deals: list[ParsedDeal] = field(default_factory=list)


# --- from rows to deals ---------------------------------------------------------------------


def _nonempty(row: list[str]) -> list[str]:
    return [cell for cell in row if cell != ""]


def _section_start(rows: list[list[str]], title: str) -> int | None:
    for index, row in enumerate(rows):
        cells = _nonempty(row)
        if len(cells) == 1 and cells[0].strip().lower() == title.lower():
            return index
    return None


def _header_index(header: list[str]) -> dict[str, int]:
    """Column positions by name; the two "Time"/"Price" columns of Positions get suffixes."""
    seen: dict[str, int] = {}
    positions: dict[str, int] = {}
    for index, name in enumerate(header):
        key = name.strip().lower().replace(" ", "")
        if not key:
            continue
        count = seen.get(key, 0)
        seen[key] = count + 1
        positions[key if count == 0 else f"{key}#{count}"] = index
    return positions


def _section_rows(rows: list[list[str]], title: str) -> tuple[dict[str, int], list[list[str]]] | None:
    start = _section_start(rows, title)
    if start is None:
        return None
    header_at = start + 1
    while header_at < len(rows) and not _nonempty(rows[header_at]):
        header_at += 1
    if header_at >= len(rows):
        return None
    columns = _header_index(rows[header_at])
    body = []
    for row in rows[header_at + 1 :]:
        cells = _nonempty(row)
        if not cells:
            break
        if len(cells) == 1 and not re.match(r"^\d{4}[.-]\d\d[.-]\d\d", cells[0]):
            break  # next section title
        body.append(row)
    return columns, body


def _cell(row: list[str], columns: dict[str, int], name: str) -> str:
    index = columns.get(name)
    if index is None or index >= len(row):
        return ""
    return row[index].strip()


def _time(text: str, where: str) -> datetime:
    for fmt in TIME_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise StatementInvalid(f"{where}: {text!r} is not a time like 2024.01.31 23:59:59.")


def _decimal(text: str, where: str) -> Decimal:
    cleaned = text.replace("\xa0", "").replace(" ", "").replace(",", "")
    if cleaned in ("", "-"):
        return Decimal("0")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise StatementInvalid(f"{where}: {text!r} is not a number.") from None
    if not value.is_finite():
        raise StatementInvalid(f"{where}: {text!r} is not a number.")
    return value


def _volume(text: str, where: str) -> Decimal:
    # Closing deals of partial closes print "0.5 / 1" (closed / initial); the first figure counts.
    return _decimal(text.split("/")[0], where)


def _integer(text: str, where: str) -> int:
    cleaned = text.replace(" ", "")
    if not re.fullmatch(r"\d{1,19}", cleaned):
        raise StatementInvalid(f"{where}: {text!r} is not a ticket number.")
    return int(cleaned)


def _report_login(rows: list[list[str]]) -> int | None:
    for row in rows[:20]:
        cells = _nonempty(row)
        for index, cell in enumerate(cells):
            if cell.strip().lower().rstrip(":") == "account" and index + 1 < len(cells):
                match = re.match(r"\s*(\d+)", cells[index + 1])
                if match:
                    return int(match.group(1))
    return None


def _closing_positions(rows: list[list[str]]) -> dict[tuple[str, datetime, Decimal], int]:
    """Position tickets keyed by (symbol, close time, close price), to link closing deals to them."""
    section = _section_rows(rows, "Positions")
    if section is None:
        return {}
    columns, body = section
    links = {}
    for row in body:
        try:
            ticket = int(_cell(row, columns, "position"))
            closed = _time(_cell(row, columns, "time#1"), "position")
            price = _decimal(_cell(row, columns, "price#1"), "position")
        except (ValueError, StatementInvalid):
            continue  # the Positions section only helps linking; the Deals section is checked strictly
        links[(_cell(row, columns, "symbol"), closed, price)] = ticket
    return links


def parse_rows(rows: list[list[str]], file_format: str) -> ParsedStatement:
    section = _section_rows(rows, "Deals")
    if section is None:
        raise StatementInvalid(
            'No "Deals" section was found. Export the report from the terminal\'s History tab '
            "(right click → Report → HTML or Open XML)."
        )
    columns, body = section
    missing = [name for name in ("time", "deal", "type", "profit") if name not in columns]
    if missing:
        raise StatementInvalid(f"The Deals table has no {', '.join(missing)} column.")
    if len(body) > MAX_DEALS:
        raise StatementInvalid(f"The report holds more than {MAX_DEALS} deals; split it by date range.")
    links = _closing_positions(rows)
    statement = ParsedStatement(file_format=file_format, login=_report_login(rows))
    for number, row in enumerate(body, start=1):
        if not _cell(row, columns, "deal") and not _cell(row, columns, "time"):
            continue  # the totals row under the table
        where = f"Deals row {number}"
        ticket = _integer(_cell(row, columns, "deal"), where)
        type_text = _cell(row, columns, "type").lower()
        if type_text not in DEAL_TYPES:
            raise StatementInvalid(f"{where}: unknown deal type {type_text!r}.")
        direction = _cell(row, columns, "direction").lower()
        if direction not in DEAL_ENTRIES:
            raise StatementInvalid(f"{where}: unknown direction {direction!r}.")
        when = _time(_cell(row, columns, "time"), where)
        symbol = _cell(row, columns, "symbol")
        price = _decimal(_cell(row, columns, "price"), where)
        order_text = _cell(row, columns, "order")
        order = _integer(order_text, where) if order_text else 0
        entry = DEAL_ENTRIES[direction]
        position_id = 0
        if DEAL_TYPES[type_text] in (0, 1):
            # An MT5 position's id is the ticket of the order that opened it.
            position_id = order if entry == 0 else links.get((symbol, when, price), 0)
        statement.deals.append(
            ParsedDeal(
                ticket=ticket,
                time=when,
                deal_type=DEAL_TYPES[type_text],
                entry=entry,
                symbol=symbol[:64],
                volume=_volume(_cell(row, columns, "volume"), where),
                price=price,
                order=order,
                commission=_decimal(_cell(row, columns, "commission"), where),
                fee=_decimal(_cell(row, columns, "fee"), where),
                swap=_decimal(_cell(row, columns, "swap"), where),
                profit=_decimal(_cell(row, columns, "profit"), where),
                comment=_cell(row, columns, "comment")[:64],
                position_id=position_id,
            )
        )
    return statement


def detect_format(filename: str, data: bytes) -> str:
    if data[:4] == b"PK\x03\x04":
        return "xlsx"
    lowered = filename.lower()
    if lowered.endswith((".htm", ".html")) or b"<" in data[:2048] or data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "html"
    raise StatementInvalid("Upload the report as HTML or XLSX (the terminal's Report export).")


def parse_statement(filename: str, data: bytes) -> ParsedStatement:
    """Parse a report file; raises StatementInvalid with a message a trader can act on."""
    if not data:
        raise StatementInvalid("The file is empty.")
    if len(data) > settings.STATEMENT_MAX_UPLOAD_BYTES:
        raise StatementTooLarge(upload_limit_message())
    file_format = detect_format(filename, data)
    rows = xlsx_rows(data) if file_format == "xlsx" else html_rows(data)
    return parse_rows(rows, file_format)
