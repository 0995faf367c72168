"""MT5 trade-history report import: parse the terminal's HTML and XLSX "Report" exports into deals.

The terminal (History tab → Report → HTML / Open XML) writes one table with titled sections —
Positions, Orders, Deals, Results. Only the Deals section is imported: it holds every trade,
balance and credit operation with its ticket. Times in the report are the trade server's time
and are stored as UTC, as the sync does. Parsing is pure (bytes in, values out); the write path
`statement_import` runs in one transaction, so a malformed file changes nothing.

A report is untrusted input. Nothing it declares sizes the work: the upload is refused before it is read
when larger than STATEMENT_MAX_UPLOAD_BYTES, an XLSX is checked part by part before openpyxl opens it
(what it unzips to, DTDs and entities refused through defusedxml, every row and cell coordinate against
the limits; the sheet's declared <dimension> is ignored), and HTML spans are capped while parsing. Any
breach answers a StatementInvalid (400) at once, so a crafted file costs milliseconds and a few MB.
"""

from __future__ import annotations

import html
import io
import re
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from xml.sax import SAXException
from xml.sax.handler import ContentHandler

from defusedxml import DefusedXmlException
from defusedxml.expatreader import DefusedExpatParser
from django.conf import settings
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


# An MT5 report has 14 columns; a cell further right than this is not from the terminal.
MAX_COLUMNS = 64
# openpyxl reads an XLSX part whole (workbook, styles, relationships, a sheet's elements outside its rows) or
# one row / string entry at a time, so each gets an element budget; a report's styles.xml has a few hundred
# elements and its rows about sixty.
MAX_ELEMENTS_PER_PART = 20_000
MAX_ELEMENTS_PER_ROW = 10_000
# A real sheet compresses 5-30 to 1; a part compressed harder than this is a zip bomb, not a report.
MAX_COMPRESSION_RATIO = 200
# A report's XLSX has about ten parts.
MAX_XLSX_PARTS = 1000
# Room for the multipart boundary, part headers and the CSRF field around the file itself.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


class StatementInvalid(ServiceError):
    code = "statement_invalid"


class StatementTooLarge(StatementInvalid):
    status_code = 413
    code = "statement_too_large"


# --- the upload: refused by its size before it is read -------------------------------------


def upload_limit_message() -> str:
    limit = settings.STATEMENT_MAX_UPLOAD_BYTES
    size = f"{limit // (1024 * 1024)} MB" if limit >= 1024 * 1024 else f"{limit} bytes"
    return f"The file is larger than {size}; export a shorter date range."


def request_too_large(meta) -> bool:
    """Whether a request's declared body is larger than any acceptable report upload.

    Checked before anything touches ``request.POST`` / ``request.FILES`` / ``request.data``: parsing the
    multipart body is what streams the whole upload to memory and disk. (Django's DATA_UPLOAD_MAX_MEMORY_SIZE
    does not count file parts.)
    """
    try:
        length = int(meta.get("CONTENT_LENGTH") or 0)
    except (TypeError, ValueError):
        return False  # Django's parser refuses a malformed length itself
    return length > settings.STATEMENT_MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD_BYTES


def read_upload(upload) -> bytes:
    """The bytes of an uploaded report, its size checked before a single byte is read."""
    limit = settings.STATEMENT_MAX_UPLOAD_BYTES
    if upload.size is None or upload.size > limit:
        raise StatementTooLarge(upload_limit_message())
    data = upload.read(limit + 1)
    if len(data) > limit:
        raise StatementTooLarge(upload_limit_message())
    return data


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


class _Budget:
    """Counts the rows and cells a report makes the importer build, and stops the read past the limits."""

    def __init__(self) -> None:
        self.max_rows = settings.STATEMENT_MAX_ROWS
        self.max_cells = settings.STATEMENT_MAX_CELLS
        self.cells = 0

    def row(self, number: int) -> None:
        if number > self.max_rows:
            raise StatementInvalid(f"The report has more than {self.max_rows} rows; export a shorter date range.")

    def column(self, number: int, row: int) -> None:
        if number > MAX_COLUMNS:
            raise StatementInvalid(
                f"Row {row} reaches column {number}; an MT5 report has at most {MAX_COLUMNS}. "
                "This is not a report from the terminal."
            )

    def add_cells(self, count: int) -> None:
        self.cells += count
        if self.cells > self.max_cells:
            raise StatementInvalid(f"The report has more than {self.max_cells} cells; export a shorter date range.")


# Only the table's own tags matter. "[^<>]*" stops at the next "<" or ">", so a match attempt never scans past
# the next tag and the whole search is linear in the file, whatever it holds.
_TABLE_TAG = re.compile(r"<(/?)(tr|td|th|table)\b([^<>]*)>", re.IGNORECASE)
_ANY_TAG = re.compile(r"<[^<>]*>")
_TABLE_START = re.compile(r"<table", re.IGNORECASE)
_COLSPAN = re.compile(r"""\bcolspan\s*=\s*["']?\s*([0-9]*)""", re.IGNORECASE)


def _without_comments(text: str) -> str:
    """The text without <!-- --> comments; an unclosed comment runs to the end, as in a browser."""
    kept, pos = [], 0
    while (start := text.find("<!--", pos)) >= 0:
        kept.append(text[pos:start])
        end = text.find("-->", start + 4)
        if end < 0:
            return "".join(kept)
        pos = end + 3
    kept.append(text[pos:])
    return "".join(kept)


class _TableRows:
    """Collects every <tr> of the document as a list of cell texts (th and td alike).

    Regular expressions rather than html.parser: this Python's html.parser takes quadratic time on unclosed
    comments and tags (40 KB of "<!--" took 15 s), and a report only needs tr/td/th. A cell's text is what
    lies between its tag and the next table tag, other tags removed. A cell spanning columns fills them all,
    so data rows line up with the header; a row is at most MAX_COLUMNS wide and every expanded cell counts
    against the budget, so colspan=1000000 is refused instead of expanded. rowspan is never expanded: a cell
    is read once, in the row that holds it. Character references are the only ones resolved (html.unescape:
    no DTD, no entity definitions).
    """

    def __init__(self, budget: _Budget) -> None:
        self.rows: list[list[str]] = []
        self._budget = budget
        self._row: list[str] | None = None
        self._cell_from: int | None = None  # where the open cell's text starts
        self._span = 1

    def feed(self, text: str) -> None:
        if "<!--" in text:
            text = _without_comments(text)
        for tag in _TABLE_TAG.finditer(text):
            self._close_cell(text, tag.start())
            name, closing = tag.group(2).lower(), bool(tag.group(1))
            if name == "tr" or name == "table":
                self._close_row()
                if name == "tr" and not closing:
                    self._budget.row(len(self.rows) + 1)
                    self._row = []
            elif not closing and self._row is not None:
                self._open_cell(_COLSPAN.search(tag.group(3)), tag.end())
        self._close_cell(text, len(text))
        self._close_row()

    def _open_cell(self, colspan: re.Match | None, start: int) -> None:
        digits = colspan.group(1) if colspan else ""
        # The length cap keeps int() off a megabyte of digits; such a span is refused as too wide below.
        span = (int(digits) if len(digits) <= 9 else 10**9) if digits else 1
        self._span = max(span, 1)
        self._budget.column(len(self._row) + self._span, len(self.rows) + 1)
        self._budget.add_cells(self._span)
        self._cell_from = start

    def _close_cell(self, text: str, end: int) -> None:
        if self._cell_from is not None and self._row is not None:
            raw = text[self._cell_from : end]
            if "<" in raw:
                raw = _ANY_TAG.sub("", raw)
            self._row.append(" ".join(html.unescape(raw).split()) if raw else "")
            if self._span > 1:
                self._row.extend([""] * (self._span - 1))
        self._cell_from = None

    def _close_row(self) -> None:
        if self._row is not None:
            self.rows.append(self._row)
        self._row = None


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
    try:
        text = _decode_html(data)
    except UnicodeDecodeError:
        raise StatementInvalid("This file is not an MT5 HTML report: its text cannot be decoded.") from None
    if _TABLE_START.search(text) is None:
        raise StatementInvalid("This file is not an MT5 HTML report: it has no table.")
    table = _TableRows(_Budget())
    table.feed(text)
    return table.rows


# --- XLSX: every part checked before openpyxl reads it ------------------------------------------

_CELL_REF = re.compile(r"^([A-Za-z]{1,3})(\d{1,7})$")


class _XlsxRefused(Exception):
    """Raised from inside the XML scan to stop it at the first breach."""


class _PartScan(ContentHandler):
    """Streams one XML part of an XLSX (nothing is kept) and checks what openpyxl would build from it.

    A worksheet's rows and cells are checked by their count and by the coordinates they carry, not by the
    <dimension> the sheet declares (openpyxl would pad every row out to it). The string table's entries count
    as cells (openpyxl keeps them all). openpyxl holds one row or string entry in memory at a time, and reads
    every other element whole, so those get small element budgets.
    """

    def __init__(self, name: str, budget: _Budget) -> None:
        super().__init__()
        self.name = name
        self.budget = budget
        self.kind = ""
        self.depth = 0
        self.unit_depth = 0  # depth of the row (sheet) or string entry (string table) being read, 0 outside
        self.unit_elements = 0
        self.outside = 0
        self.rows = 0
        self.row = 0
        self.column = 0
        self.max_column = 0

    def startElement(self, name, attrs):
        local = name.rpartition(":")[2]
        self.depth += 1
        if not self.kind:
            self.kind = {"worksheet": "sheet", "sst": "strings"}.get(local, "other")
        if self.unit_depth:
            self.unit_elements += 1
            if self.unit_elements > MAX_ELEMENTS_PER_ROW:
                raise _XlsxRefused(f"Row {self.row} of {self.name} holds far more than a report's row.")
            if self.kind == "sheet" and local == "c":
                self._cell(attrs.get("r") or "")
        elif self.kind == "sheet" and local == "row":
            self.unit_depth, self.unit_elements = self.depth, 0
            self._row(attrs.get("r") or "")
        elif self.kind == "strings" and local == "si":
            self.unit_depth, self.unit_elements = self.depth, 0
            self.budget.add_cells(1)
        else:
            self.outside += 1
            if self.outside > MAX_ELEMENTS_PER_PART:
                raise _XlsxRefused(f"The part {self.name} holds far more than a report's.")

    def endElement(self, name):
        if self.depth == self.unit_depth:
            self.unit_depth = 0
        self.depth -= 1

    def _row(self, ref: str) -> None:
        if ref and not (ref.isascii() and ref.isdigit() and len(ref) <= 7):
            raise _XlsxRefused(f"{self.name} has a row numbered {ref[:20]!r}.")
        self.rows += 1
        self.row = int(ref) if ref else self.row + 1
        self.budget.row(self.rows)
        self.budget.row(self.row)
        self.column = 0

    def _cell(self, ref: str) -> None:
        if ref:
            match = _CELL_REF.match(ref)
            if match is None:
                raise _XlsxRefused(f"{self.name} has a cell at {ref[:20]!r}.")
            self.column = _column_number(match.group(1))
            self.budget.row(int(match.group(2)))
        else:
            self.column += 1
        self.budget.column(self.column, self.row)
        self.max_column = max(self.max_column, self.column)
        self.budget.add_cells(1)


def _column_number(letters: str) -> int:
    number = 0
    for letter in letters.upper():
        number = number * 26 + ord(letter) - 64
    return number


def _zip_entries(data: bytes) -> int | None:
    """The entry count the zip's end record declares (0xFFFF: see the zip64 record), None without one."""
    # The end record is the last 22 bytes plus a comment of at most 65,535.
    at = data.rfind(b"PK\x05\x06", max(0, len(data) - 22 - 65_535))
    if at < 0 or at + 12 > len(data):
        return None
    return int.from_bytes(data[at + 10 : at + 12], "little")


def _xlsx_checked(archive: zipfile.ZipFile) -> int:
    """Checks every part of the archive; returns the widest column a sheet uses."""
    members = archive.infolist()
    if len(members) > MAX_XLSX_PARTS:
        raise StatementInvalid("This XLSX has more parts than any report.")
    limit = settings.STATEMENT_MAX_UNZIPPED_BYTES
    # The sizes in the zip directory are what zipfile reads at most (a part that lies is cut there and fails
    # its CRC check), so the total is known before anything is inflated.
    total = sum(member.file_size for member in members)
    for member in members:
        if member.file_size > 1024 * 1024 and member.file_size > MAX_COMPRESSION_RATIO * max(member.compress_size, 1):
            raise StatementInvalid(
                f"This XLSX is a zip bomb: {member.filename} is compressed "
                f"{member.file_size // max(member.compress_size, 1)} to 1. It is not a report."
            )
    if total > limit:
        raise StatementInvalid(
            f"This XLSX unzips to {total // (1024 * 1024)} MB, more than the {limit // (1024 * 1024)} MB "
            "a report may; export a shorter date range."
        )
    budget = _Budget()
    widest = 0
    for member in members:
        if member.is_dir():
            continue
        with archive.open(member) as part:
            head = part.read(4).lstrip(b"\xef\xbb\xbf")
        if not head.startswith(b"<"):
            continue  # not XML (an image, a binary part): openpyxl does not parse it in read-only mode
        scan = _PartScan(member.filename, budget)
        # No part of a workbook has a DTD: one is refused outright, and so are entities and external references.
        parser = DefusedExpatParser(forbid_dtd=True, forbid_entities=True, forbid_external=True)
        parser.setContentHandler(scan)
        with archive.open(member) as part:
            parser.parse(part)
        widest = max(widest, scan.max_column)
    return widest


def xlsx_rows(data: bytes) -> list[list[str]]:
    from openpyxl import load_workbook

    entries = _zip_entries(data)
    if entries is not None and entries > MAX_XLSX_PARTS:
        # Checked before zipfile builds an object per entry of the central directory.
        raise StatementInvalid("This XLSX has more parts than any report.")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            widest = _xlsx_checked(archive)
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except _XlsxRefused as exc:
        raise StatementInvalid(f"{exc} It is not a report.") from None
    except DefusedXmlException:
        raise StatementInvalid(
            "This XLSX declares XML entities or a DTD, which no report does; it was not read."
        ) from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, KeyError, ValueError, OSError, SAXException) as exc:
        raise StatementInvalid(f"This file is not a readable XLSX workbook ({exc.__class__.__name__}).") from None
    try:
        sheet = workbook.worksheets[0]
        # The declared <dimension> is not trusted: openpyxl would pad every row and the sheet out to it.
        sheet.reset_dimensions()
        budget = _Budget()
        rows: list[list[str]] = []
        for number, values in enumerate(sheet.iter_rows(max_col=widest or None, values_only=True), start=1):
            budget.row(number)
            cells = [_cell_text(value) for value in values]
            while cells and cells[-1] == "":
                cells.pop()
            budget.add_cells(len(cells))
            rows.append(cells)
        return rows
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise StatementInvalid(f"This file is not a readable XLSX workbook ({exc.__class__.__name__}).") from None
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
    if len(data) > settings.STATEMENT_MAX_UPLOAD_BYTES:
        raise StatementTooLarge(upload_limit_message())
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
