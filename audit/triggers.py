"""Database triggers that refuse UPDATE and DELETE on the audit table, whatever the client."""

TABLE = "audit_auditevent"
MESSAGE = "audit events are append-only"

SQL = {
    "sqlite": {
        "install": [
            f"CREATE TRIGGER {TABLE}_no_update BEFORE UPDATE ON {TABLE} BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END",
            f"CREATE TRIGGER {TABLE}_no_delete BEFORE DELETE ON {TABLE} BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END",
        ],
        "uninstall": [f"DROP TRIGGER IF EXISTS {TABLE}_no_update", f"DROP TRIGGER IF EXISTS {TABLE}_no_delete"],
    },
    "postgresql": {
        "install": [
            f"CREATE OR REPLACE FUNCTION {TABLE}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'restrict_violation'; END $$",
            f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE} "
            f"FOR EACH ROW EXECUTE FUNCTION {TABLE}_append_only()",
        ],
        "uninstall": [
            f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE}",
            f"DROP FUNCTION IF EXISTS {TABLE}_append_only()",
        ],
    },
}


def _run(connection, step: str) -> None:
    statements = SQL.get(connection.vendor)
    if statements is None:
        raise NotImplementedError(f"no append-only triggers for {connection.vendor}")
    with connection.cursor() as cursor:
        for statement in statements[step]:
            cursor.execute(statement)


def install(connection) -> None:
    _run(connection, "install")


def uninstall(connection) -> None:
    _run(connection, "uninstall")


def ensure(connection) -> None:
    """Reinstall the triggers. SQLite drops a table's triggers whenever a migration rebuilds the table
    (adding or altering a column), so this runs after every migrate."""
    uninstall(connection)
    install(connection)
