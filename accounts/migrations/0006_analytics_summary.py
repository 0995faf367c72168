"""The stored statistics state of each account's whole history, and the triggers that keep it honest.

`accounts.analytics.summary` keeps one row per account: the running state (`accounts.analytics.running`) and
its watermark (the last deal by time and ticket, the last snapshot). It folds what arrived after the watermark
on the next read (a deal after the watermark that lands before a snapshot already counted is found by the
fold, which then rebuilds). Anything else that changes the history it was built from (a deal or snapshot
inserted at or before the watermark, one changed or deleted there) clears the state in the same statement, whoever wrote
it (the sync, a statement import, the admin, a script); every change bumps ``generation`` so a state computed
while the history moved is never saved. PostgreSQL only: elsewhere the statistics are always computed whole.
The table has no Django model (and no foreign key, so test flushes never trip over it); the account's
deletion removes its row.
"""

from django.db import migrations

_CREATE = [
    """
    CREATE TABLE IF NOT EXISTS accounts_analyticssummary (
        account_id uuid PRIMARY KEY,
        generation bigint NOT NULL DEFAULT 0,
        state bytea NULL,
        last_deal_time timestamptz NULL,
        last_deal_ticket bigint NULL,
        last_snapshot_time timestamptz NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    # Stored as it is: the state is numbers, compressing it costs more time than it saves.
    "ALTER TABLE accounts_analyticssummary ALTER COLUMN state SET STORAGE EXTERNAL",
    """
    CREATE OR REPLACE FUNCTION accounts_analytics_deals_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            UPDATE accounts_analyticssummary s SET generation = s.generation + 1,
                state = CASE WHEN EXISTS (
                    SELECT 1 FROM analytics_new n WHERE n.account_id = s.account_id
                      AND (n.time, n.ticket) <= (s.last_deal_time, s.last_deal_ticket)
                ) THEN NULL ELSE s.state END
            WHERE s.account_id IN (SELECT account_id FROM analytics_new);
        ELSIF TG_OP = 'UPDATE' THEN
            UPDATE accounts_analyticssummary s SET generation = s.generation + 1,
                state = CASE WHEN EXISTS (
                    SELECT 1 FROM analytics_old o JOIN analytics_new n ON n.id = o.id
                    WHERE o IS DISTINCT FROM n AND s.account_id IN (o.account_id, n.account_id)
                      AND ((o.time, o.ticket) <= (s.last_deal_time, s.last_deal_ticket)
                        OR (n.time, n.ticket) <= (s.last_deal_time, s.last_deal_ticket) OR n.account_id <> o.account_id)
                ) THEN NULL ELSE s.state END
            WHERE s.account_id IN (SELECT account_id FROM analytics_old UNION SELECT account_id FROM analytics_new);
        ELSE
            UPDATE accounts_analyticssummary s SET generation = s.generation + 1,
                state = CASE WHEN EXISTS (
                    SELECT 1 FROM analytics_old o WHERE o.account_id = s.account_id
                      AND (o.time, o.ticket) <= (s.last_deal_time, s.last_deal_ticket)
                ) THEN NULL ELSE s.state END
            WHERE s.account_id IN (SELECT account_id FROM analytics_old);
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE OR REPLACE FUNCTION accounts_analytics_snapshots_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            UPDATE accounts_analyticssummary s SET generation = s.generation + 1,
                state = CASE WHEN EXISTS (
                    SELECT 1 FROM analytics_new n WHERE n.account_id = s.account_id AND n.taken_at <= s.last_snapshot_time
                ) THEN NULL ELSE s.state END
            WHERE s.account_id IN (SELECT account_id FROM analytics_new);
        ELSIF TG_OP = 'UPDATE' THEN
            UPDATE accounts_analyticssummary s SET generation = s.generation + 1,
                state = CASE WHEN EXISTS (
                    SELECT 1 FROM analytics_old o JOIN analytics_new n ON n.id = o.id
                    WHERE o IS DISTINCT FROM n AND s.account_id IN (o.account_id, n.account_id)
                      AND (o.taken_at <= s.last_snapshot_time OR n.taken_at <= s.last_snapshot_time
                        OR n.account_id <> o.account_id)
                ) THEN NULL ELSE s.state END
            WHERE s.account_id IN (SELECT account_id FROM analytics_old UNION SELECT account_id FROM analytics_new);
        ELSE
            UPDATE accounts_analyticssummary s SET generation = s.generation + 1,
                state = CASE WHEN EXISTS (
                    SELECT 1 FROM analytics_old o WHERE o.account_id = s.account_id AND o.taken_at <= s.last_snapshot_time
                ) THEN NULL ELSE s.state END
            WHERE s.account_id IN (SELECT account_id FROM analytics_old);
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE OR REPLACE FUNCTION accounts_analytics_account_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM accounts_analyticssummary WHERE account_id = OLD.id;
        RETURN NULL;
    END $$
    """,
    *(
        f"CREATE TRIGGER {table}_analytics_{op.lower()} AFTER {op} ON {table} {refs} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        for table, function in (
            ("accounts_deal", "accounts_analytics_deals_changed"),
            ("accounts_accountsnapshot", "accounts_analytics_snapshots_changed"),
        )
        for op, refs in (
            ("INSERT", "REFERENCING NEW TABLE AS analytics_new"),
            ("UPDATE", "REFERENCING OLD TABLE AS analytics_old NEW TABLE AS analytics_new"),
            ("DELETE", "REFERENCING OLD TABLE AS analytics_old"),
        )
    ),
    """
    CREATE TRIGGER accounts_tradingaccount_analytics_delete AFTER DELETE ON accounts_tradingaccount
        FOR EACH ROW EXECUTE FUNCTION accounts_analytics_account_deleted()
    """,
]

_DROP = [
    *(
        f"DROP TRIGGER IF EXISTS {table}_analytics_{op} ON {table}"
        for table in ("accounts_deal", "accounts_accountsnapshot")
        for op in ("insert", "update", "delete")
    ),
    "DROP TRIGGER IF EXISTS accounts_tradingaccount_analytics_delete ON accounts_tradingaccount",
    "DROP FUNCTION IF EXISTS accounts_analytics_deals_changed()",
    "DROP FUNCTION IF EXISTS accounts_analytics_snapshots_changed()",
    "DROP FUNCTION IF EXISTS accounts_analytics_account_deleted()",
    "DROP TABLE IF EXISTS accounts_analyticssummary",
]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for sql in statements:
                schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("accounts", "0005_securityevent")]

    operations = [migrations.RunPython(_run(_CREATE), _run(_DROP))]
