"""Database triggers that bump SimAccount.version on any change to an account, its positions or orders.

Readers cache an account's rows and re-read them only when the version moved; doing the bump in
the database means direct ORM updates (tests, the admin, scripts) are noticed too.
"""

from django.db import migrations

_ITEM_TABLES = ("mt5bridge_simposition", "mt5bridge_simorder")

_POSTGRES_CREATE = [
    """
    CREATE OR REPLACE FUNCTION mt5bridge_sim_account_version() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.version := OLD.version + 1;
        RETURN NEW;
    END $$
    """,
    """
    CREATE TRIGGER mt5bridge_sim_account_version BEFORE UPDATE ON mt5bridge_simaccount
        FOR EACH ROW EXECUTE FUNCTION mt5bridge_sim_account_version()
    """,
    """
    CREATE OR REPLACE FUNCTION mt5bridge_sim_item_version() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            UPDATE mt5bridge_simaccount SET version = version + 1 WHERE login = OLD.login;
        END IF;
        IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.login IS DISTINCT FROM OLD.login) THEN
            UPDATE mt5bridge_simaccount SET version = version + 1 WHERE login = NEW.login;
        END IF;
        RETURN NULL;
    END $$
    """,
    *(
        f"CREATE TRIGGER {table}_version AFTER INSERT OR UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION mt5bridge_sim_item_version()"
        for table in _ITEM_TABLES
    ),
]

_POSTGRES_DROP = [
    *(f"DROP TRIGGER IF EXISTS {table}_version ON {table}" for table in _ITEM_TABLES),
    "DROP TRIGGER IF EXISTS mt5bridge_sim_account_version ON mt5bridge_simaccount",
    "DROP FUNCTION IF EXISTS mt5bridge_sim_item_version()",
    "DROP FUNCTION IF EXISTS mt5bridge_sim_account_version()",
]

_BUMP = "UPDATE mt5bridge_simaccount SET version = version + 1 WHERE login"
_SQLITE_CREATE = [
    # An update that already moved the version (the engine's own writes) needs no second bump.
    """
    CREATE TRIGGER mt5bridge_sim_account_version AFTER UPDATE ON mt5bridge_simaccount
    FOR EACH ROW WHEN NEW.version = OLD.version
    BEGIN UPDATE mt5bridge_simaccount SET version = OLD.version + 1 WHERE id = NEW.id; END
    """,
    *(
        sql
        for table in _ITEM_TABLES
        for sql in (
            f"CREATE TRIGGER {table}_insert AFTER INSERT ON {table} BEGIN {_BUMP} = NEW.login; END",
            f"CREATE TRIGGER {table}_update AFTER UPDATE ON {table} BEGIN {_BUMP} IN (OLD.login, NEW.login); END",
            f"CREATE TRIGGER {table}_delete AFTER DELETE ON {table} BEGIN {_BUMP} = OLD.login; END",
        )
    ),
]

_SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS mt5bridge_sim_account_version",
    *(f"DROP TRIGGER IF EXISTS {table}_{op}" for table in _ITEM_TABLES for op in ("insert", "update", "delete")),
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for sql in statements_by_vendor.get(schema_editor.connection.vendor, ()):
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("mt5bridge", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(
            _run({"postgresql": _POSTGRES_CREATE, "sqlite": _SQLITE_CREATE}),
            _run({"postgresql": _POSTGRES_DROP, "sqlite": _SQLITE_DROP}),
        ),
    ]
