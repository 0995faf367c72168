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
