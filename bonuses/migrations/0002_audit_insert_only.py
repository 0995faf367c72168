"""The audit log refuses UPDATE and DELETE at the database level (PostgreSQL; skipped elsewhere).

TRUNCATE stays possible: it needs table ownership, and the test suite flushes tables with it.
"""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION bonuses_auditlog_insert_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'bonuses_auditlog is insert-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""
TRIGGER = """
CREATE TRIGGER bonuses_auditlog_no_change BEFORE UPDATE OR DELETE ON bonuses_auditlog
FOR EACH ROW EXECUTE FUNCTION bonuses_auditlog_insert_only();
"""
REVERSE = """
DROP TRIGGER IF EXISTS bonuses_auditlog_no_change ON bonuses_auditlog;
DROP FUNCTION IF EXISTS bonuses_auditlog_insert_only();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTION, params=None)
    schema_editor.execute(TRIGGER, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(REVERSE, params=None)


class Migration(migrations.Migration):
    dependencies = [("bonuses", "0001_initial")]

    operations = [migrations.RunPython(forwards, backwards)]
