"""Database triggers that refuse UPDATE and DELETE on the table of every append-only model
(`DomainModel.APPEND_ONLY`: audit events, run log entries), whatever the client; on PostgreSQL, an insert
also notifies `APPENDED_CHANNEL` with the table's name when its transaction commits, which is what wakes
the live streams' change feed (`overview/feed.py`).

Installed by each table's migration (naming its table, as the table was then) and re-ensured for every
append-only table after every migrate (`controlplane.apps`): SQLite drops a table's triggers whenever a
migration rebuilds the table. `flush` lifts them to empty the tables (`controlplane/management/commands/flush.py`).
Imports no app: the tables come from the model registry.
"""

from django.apps import apps

APPENDED_CHANNEL = "controlplane_appended"


def _sql(vendor: str, table: str) -> dict[str, list[str]]:
    message = f"{table} is append-only: its rows are never updated or deleted"
    if vendor == "sqlite":
        refuse = f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
        return {
            "install": [
                f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} {refuse}",
                f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} {refuse}",
            ],
            "uninstall": [f"DROP TRIGGER IF EXISTS {table}_no_update", f"DROP TRIGGER IF EXISTS {table}_no_delete"],
        }
    if vendor == "postgresql":
        return {
            "install": [
                f"CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
                f"BEGIN RAISE EXCEPTION '{message}' USING ERRCODE = 'restrict_violation'; END $$",
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()",
                # Once per statement (a bulk append is one wake-up); delivered at commit, never for a rollback.
                f"CREATE OR REPLACE FUNCTION {table}_appended() RETURNS trigger LANGUAGE plpgsql AS $$ "
                f"BEGIN PERFORM pg_notify('{APPENDED_CHANNEL}', TG_TABLE_NAME); RETURN NULL; END $$",
                f"CREATE TRIGGER {table}_appended AFTER INSERT ON {table} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {table}_appended()",
            ],
            "uninstall": [
                f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}",
                f"DROP FUNCTION IF EXISTS {table}_append_only()",
                f"DROP TRIGGER IF EXISTS {table}_appended ON {table}",
                f"DROP FUNCTION IF EXISTS {table}_appended()",
            ],
        }
    raise NotImplementedError(f"no append-only triggers for {vendor}")


def append_only_tables(connection) -> list[str]:
    """The tables of the append-only models that exist in this database."""
    existing = set(connection.introspection.table_names())
    tables = [
        model._meta.db_table
        for model in apps.get_models()
        if getattr(model, "APPEND_ONLY", False) and model._meta.managed and not model._meta.proxy
    ]
    return [table for table in tables if table in existing]


def _run(connection, step: str, tables: list[str] | None) -> None:
    with connection.cursor() as cursor:
        for table in append_only_tables(connection) if tables is None else tables:
            for statement in _sql(connection.vendor, table)[step]:
                cursor.execute(statement)


def install(connection, tables: list[str] | None = None) -> None:
    """Install the triggers on `tables` (default: every append-only table)."""
    _run(connection, "install", tables)


def uninstall(connection, tables: list[str] | None = None) -> None:
    _run(connection, "uninstall", tables)


def ensure(connection) -> None:
    """(Re)install the triggers on every append-only table."""
    uninstall(connection)
    install(connection)
