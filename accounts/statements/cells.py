"""Reading the two report formats (HTML, XLSX) into rows of text cells, within fixed limits.

A report is untrusted input: an XLSX is checked part by part before openpyxl opens it (what it unzips to,
DTDs and entities refused through defusedxml, every row and cell coordinate against the limits), and HTML
spans are capped while parsing. A breach raises `StatementInvalid` at once.
"""

from __future__ import annotations

import html
import io
import re
import zipfile
from datetime import datetime
from xml.sax import SAXException
from xml.sax.handler import ContentHandler

from defusedxml import DefusedXmlException
from defusedxml.expatreader import DefusedExpatParser
from django.conf import settings
from openpyxl import load_workbook

from .upload import StatementInvalid

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
