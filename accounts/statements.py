"""MT5 trade-history report import: parse the terminal's HTML and XLSX "Report" exports into deals.

The terminal (History tab → Report → HTML / Open XML) writes one table with titled sections —
Positions, Orders, Deals, Results. Only the Deals section is imported: it holds every trade,
balance and credit operation with its ticket. Times in the report are the trade server's time
and are stored as UTC, as the sync does. Parsing is pure (bytes in, values out); the write path
`statement_import` runs in one transaction, so a malformed file changes nothing.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from html.parser import HTMLParser

from django.db import transaction

from config.errors import ServiceError

from .models import Deal, StatementImport, TradingAccount, User

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


class StatementInvalid(ServiceError):
    code = "statement_invalid"


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


# --- reading the two formats into rows of text cells ---------------------------------------


class _TableRows(HTMLParser):
    """Collects every <tr> of the document as a list of cell texts (th and td alike)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[str]] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._span = 1

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
            # A cell spanning columns fills them all, so data rows line up with the header.
            span = dict(attrs).get("colspan") or "1"
            self._span = int(span) if span.isdigit() and 0 < int(span) < 100 else 1

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._row.extend([""] * (self._span - 1))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _decode_html(data: bytes) -> str:
    # The terminal writes UTF-16 LE with a byte-order mark; other tools re-save as UTF-8.
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if len(data) > 1 and data[1:2] == b"\x00":
        return data.decode("utf-16-le")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252")


def html_rows(data: bytes) -> list[list[str]]:
    text = _decode_html(data)
    if "<table" not in text.lower():
        raise StatementInvalid("This file is not an MT5 HTML report: it has no table.")
    parser = _TableRows()
    parser.feed(text)
    parser.close()
    return parser.rows


def xlsx_rows(data: bytes) -> list[list[str]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise StatementInvalid(f"This file is not a readable XLSX workbook ({exc.__class__.__name__}).") from None
    try:
        sheet = workbook.worksheets[0]
        rows = []
        for values in sheet.iter_rows(values_only=True):
            rows.append([_cell_text(value) for value in values])
        return rows
    finally:
        workbook.close()


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y.%m.%d %H:%M:%S")
    if isinstance(value, float) and value.is_integer() and abs(value) >= 1e6:
        return str(int(value))  # tickets stored as numbers
    return " ".join(str(value).split())


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
    file_format = detect_format(filename, data)
    rows = xlsx_rows(data) if file_format == "xlsx" else html_rows(data)
    return parse_rows(rows, file_format)


# --- the write path --------------------------------------------------------------------------


def statement_import(*, account: TradingAccount, user: User | None, filename: str, data: bytes) -> StatementImport:
    """Import a report's deals into ``account``: new tickets are stored, known ones skipped with a reason.

    One transaction: a malformed file raises before anything is written.
    """
    statement = parse_statement(filename, data)
    if statement.login is not None and statement.login != account.login:
        raise StatementInvalid(
            f"This report is for account {statement.login}, not {account.login}; nothing was imported."
        )
    with transaction.atomic():
        known = set(
            Deal.objects.filter(account=account, ticket__in=[deal.ticket for deal in statement.deals]).values_list(
                "ticket", flat=True
            )
        )
        fresh: list[Deal] = []
        skipped: list[dict] = []
        seen: set[int] = set()
        for deal in statement.deals:
            if deal.ticket in known:
                skipped.append({"ticket": deal.ticket, "reason": "already in this account"})
                continue
            if deal.ticket in seen:
                skipped.append({"ticket": deal.ticket, "reason": "listed twice in the report"})
                continue
            seen.add(deal.ticket)
            fresh.append(
                Deal(
                    account=account,
                    ticket=deal.ticket,
                    order=deal.order,
                    time=deal.time,
                    deal_type=deal.deal_type,
                    entry=deal.entry,
                    position_id=deal.position_id,
                    volume=deal.volume,
                    price=deal.price,
                    commission=deal.commission,
                    swap=deal.swap,
                    profit=deal.profit,
                    fee=deal.fee,
                    symbol=deal.symbol,
                    comment=deal.comment,
                    external_id="statement",
                )
            )
        Deal.objects.bulk_create(fresh, batch_size=1000)
        record = StatementImport.objects.create(
            account=account,
            uploaded_by=user if user is not None and user.is_authenticated else None,
            filename=filename[:255],
            file_format=statement.file_format,
            report_login=statement.login,
            deals_found=len(statement.deals),
            deals_imported=len(fresh),
            deals_skipped=len(skipped),
            skipped=skipped,
        )
    return record
