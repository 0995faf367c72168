"""The accounts app's SQL that the ORM cannot express (or not at the cost it must run at), named.

PostgreSQL only; each caller keeps a portable ORM path for other databases, and the tests compare the two: the
dashboard summary in ``tests/accounts/test_data_api.py``, the statistics history in ``tests/accounts/test_analytics.py``,
the row estimate in ``tests/accounts/test_sql.py``.
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection


def table_row_estimate(table: str) -> int | None:
    """PostgreSQL's row estimate of ``table`` (``pg_class.reltuples``): a count for big unfiltered admin lists."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = %s", [table])
        row = cursor.fetchone()
    return row[0] if row else None


# One statement: the visible accounts, the floating P/L of the last snapshot before today and before the
# month (index probes on (account, taken_at)), and this month's deal sums per account (index range on
# (account, time)). Building the same through the ORM costs more CPU than the database spends on it.
_SUMMARY_SQL = """
SELECT {columns},
  (SELECT s.floating_profit FROM accounts_accountsnapshot s
    WHERE s.account_id = a.id AND s.taken_at < %(day)s ORDER BY s.taken_at DESC LIMIT 1),
  (SELECT s.floating_profit FROM accounts_accountsnapshot s
    WHERE s.account_id = a.id AND s.taken_at < %(month)s ORDER BY s.taken_at DESC LIMIT 1),
  COALESCE(d.realized_month, 0), COALESCE(d.flows_month, 0), COALESCE(d.realized_day, 0), COALESCE(d.flows_day, 0)
FROM accounts_tradingaccount a
LEFT JOIN LATERAL (
  SELECT
    SUM(x.profit + x.commission + x.swap + x.fee) FILTER (WHERE x.deal_type <> ALL(%(not_pl)s)) AS realized_month,
    SUM(x.profit + x.commission + x.swap + x.fee) FILTER (WHERE x.deal_type = ANY(%(flow)s)) AS flows_month,
    SUM(x.profit + x.commission + x.swap + x.fee)
      FILTER (WHERE x.deal_type <> ALL(%(not_pl)s) AND x.time >= %(day)s) AS realized_day,
    SUM(x.profit + x.commission + x.swap + x.fee)
      FILTER (WHERE x.deal_type = ANY(%(flow)s) AND x.time >= %(day)s) AS flows_day
  FROM accounts_deal x WHERE x.account_id = a.id AND x.time >= %(month)s
) d ON true
WHERE a.id IN ({visible})
ORDER BY a.name, a.login
"""


def dashboard_summary_rows(columns: str, visible_sql: str, params: dict) -> list[tuple]:
    """The dashboard's summary rows: ``columns`` of each visible account (``visible_sql``, the permission path's
    query in named style), then the floating P/L at the day's and the month's start and the four deal sums."""
    with connection.cursor() as cursor:
        cursor.execute(_SUMMARY_SQL.format(columns=columns, visible=visible_sql), params)
        return cursor.fetchall()


# An account's deals and snapshots in [start, end) as text-packed columns, in ``parts`` consecutive spans of its deals'
# time range (a deal's span is fixed by its time, so equal times share a span; the first and last spans run open-ended,
# snapshots follow the same cuts). Row 0 also holds the symbol list and the balance at ``start``. Between two spans
# comes a row of 8 KiB of padding: PostgreSQL sends a row once its 8 KiB output buffer fills, so without it the end of
# a span would wait for the next span to be computed; with it each span reaches a streaming client (``cursor.stream``)
# while the next is computed (`statistics_history_parts`).
_HISTORY_SQL = """
WITH RECURSIVE symbols(symbol) AS (
  (SELECT symbol FROM accounts_deal WHERE account_id = %(account)s ORDER BY symbol LIMIT 1)
  UNION ALL
  SELECT (SELECT d.symbol FROM accounts_deal d WHERE d.account_id = %(account)s AND d.symbol > s.symbol
          ORDER BY d.symbol LIMIT 1)
  FROM symbols s WHERE s.symbol IS NOT NULL
), names AS (
  SELECT coalesce(array_agg(symbol ORDER BY symbol), '{{}}') AS list FROM symbols WHERE symbol IS NOT NULL
), span AS (
  SELECT min(time) AS lo, max(time) - min(time) AS width FROM accounts_deal WHERE {deal_window}
)
SELECT
  CASE WHEN i = 0 THEN (SELECT list FROM names) END,
  CASE WHEN i = 0 THEN (SELECT coalesce(sum(profit + commission + swap + fee), 0) FROM accounts_deal
                        WHERE account_id = %(account)s AND time < %(start)s AND deal_type <> %(credit)s) END,
  deals.*, snaps.*, CASE WHEN i %% 2 = 1 THEN repeat(' ', 8192) END
FROM generate_series(0, 2 * %(parts)s - 2) AS i
CROSS JOIN LATERAL (
  SELECT CASE WHEN i / 2 = 0 THEN '-infinity'::timestamptz
              ELSE coalesce((SELECT lo + width * ((i / 2)::float8 / %(parts)s) FROM span), 'infinity') END AS lo,
         CASE WHEN i / 2 = %(parts)s - 1 THEN 'infinity'::timestamptz
              ELSE coalesce((SELECT lo + width * ((i / 2 + 1)::float8 / %(parts)s) FROM span), 'infinity') END AS hi
) cut
CROSS JOIN LATERAL (
  SELECT count(*), string_agg(timestamptz_send(time), ''),
    string_agg(concat_ws(',', ticket, deal_type, entry, position_id, magic,
                         array_position((SELECT list FROM names), symbol), volume, price, profit, commission, swap, fee),
               ',')
  FROM accounts_deal WHERE i %% 2 = 0 AND {deal_window}{deal_cut}
) deals
CROSS JOIN LATERAL (
  SELECT count(*), string_agg(timestamptz_send(taken_at), ''), string_agg(concat_ws(',', balance, equity, credit), ',')
  FROM accounts_accountsnapshot WHERE i %% 2 = 0 AND {snapshot_window}{snapshot_cut}
) snaps
"""


def _window(column: str, start: datetime | None, end: datetime | None) -> str:
    clauses = ["account_id = %(account)s"]
    if start:
        clauses.append(f"{column} >= %(start)s")
    if end:
        clauses.append(f"{column} < %(end)s")
    return " AND ".join(clauses)


def statistics_history_parts(account_id, *, start: datetime | None, end: datetime | None, credit, parts: int = 1):
    """An account's deals and snapshots in [start, end) as text-packed columns, in ``parts`` consecutive spans of
    time, each yielded as soon as PostgreSQL has computed it (one statement, so one snapshot of the database): the
    caller works on a span while the next is computed. Yields ``(symbols, opening balance, deal count, deal times,
    deal text, snapshot count, snapshot times, snapshot text)``; only the first holds the symbols and
    the balance at ``start`` (``accounts.analytics.columns`` unpacks them).

    One part is one row, read as any query; more are streamed (``psycopg``'s ``Cursor.stream``, under Django's
    cursor, so Django's query log does not list that statement)."""
    params = {"account": account_id, "start": start, "end": end, "credit": credit, "parts": parts}
    text = _HISTORY_SQL.format(
        deal_window=_window("time", start, end),
        snapshot_window=_window("taken_at", start, end),
        # One part holds everything: no cut to apply (and none to steer the plan to the time index).
        deal_cut=" AND time >= cut.lo AND time < cut.hi" if parts > 1 else "",
        snapshot_cut=" AND taken_at >= cut.lo AND taken_at < cut.hi" if parts > 1 else "",
    )
    with connection.cursor() as cursor:
        if parts == 1:
            cursor.execute(text, params)
            yield cursor.fetchone()[:-1]
            return
        for index, row in enumerate(cursor.cursor.stream(text, params)):
            if index % 2 == 0:  # the rows between are the padding
                yield row[:-1]


def statistics_history_row(account_id, *, start: datetime | None, end: datetime | None, credit) -> tuple:
    """One row holding an account's deals and snapshots in [start, end) as text-packed columns, and the balance
    at ``start`` (``accounts.analytics.history.statistics_history`` unpacks it)."""
    (row,) = statistics_history_parts(account_id, start=start, end=end, credit=credit)
    return row
