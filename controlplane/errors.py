"""Domain errors that are not input validation (those are Django's ValidationError, keyed by field)."""

from django.db import IntegrityError


class Conflict(Exception):
    """The request is well formed but clashes with the current state (HTTP 409)."""


class DeletionRefused(Conflict):
    """History is kept: entities are archived (services, environments) or kept for good (the rest)."""


class AppendOnly(Conflict):
    """Audit events and run log entries are written once; they are never updated or deleted."""


def describe(error: Exception) -> str:
    """One line naming each field and the rule it broke: `region: is required for ...; sha: must be ...`."""
    messages = getattr(error, "message_dict", None)
    if messages:
        return "; ".join(
            " ".join(msgs) if field == "__all__" else f"{field}: {' '.join(msgs)}" for field, msgs in messages.items()
        )
    return " ".join(getattr(error, "messages", None) or [str(error)])


# The database constraints two well-formed requests can break only by racing each other: validation
# checked each before the write, and another transaction took the value in between. Only these become a
# 409; any other IntegrityError is a bug (validation missed a rule) and stays a logged 500.
# PostgreSQL names the constraint (diag.constraint_name); SQLite names the table and columns
# ("UNIQUE constraint failed: services_environment.name"). tests/api/test_strict_input.py checks each
# entry against the migrated schema.
RACE_PRONE_CONSTRAINTS: dict[str, tuple[str, tuple[str, ...]]] = {
    # Ids a client may choose on create: two creates with the same id.
    "services_service_pkey": ("services_service", ("id",)),
    "services_environment_pkey": ("services_environment", ("id",)),
    "releases_release_pkey": ("releases_release", ("id",)),
    "incidents_incident_pkey": ("incidents_incident", ("id",)),
    # Two environments created or renamed to one name.
    "services_environment_unique_name": ("services_environment", ("name",)),
    # The same service and environment linked by two requests.
    "services_service_environ_service_id_environment_i_e9f81e63_uniq": (
        "services_service_environments",
        ("service_id", "environment_id"),
    ),
    # Two deploys or promotions of one service to one environment.
    "releases_release_one_promoting": ("releases_release", ("service_id", "environment_id")),
    # Two writers rebuilding a lost audit chain head.
    "audit_auditchainhead_pkey": ("audit_auditchainhead", ("id",)),
}
_SQLITE_UNIQUE = {
    f"UNIQUE constraint failed: {', '.join(f'{table}.{column}' for column in columns)}"
    for table, columns in RACE_PRONE_CONSTRAINTS.values()
}


def is_race(exc: IntegrityError) -> bool:
    """Whether `exc` broke one of RACE_PRONE_CONSTRAINTS (on PostgreSQL or SQLite)."""
    diag = getattr(exc.__cause__, "diag", None)
    if diag is not None:
        return getattr(diag, "constraint_name", None) in RACE_PRONE_CONSTRAINTS
    return str(exc) in _SQLITE_UNIQUE


# A race lost, in one wording for every door (REST, GraphQL, pages, and the CLI, which prints the server's).
RACE = "the change conflicts with another one made at the same time; reload and retry."


def race_conflict(exc: IntegrityError) -> Conflict | None:
    """`exc` as the Conflict it is when two requests raced (a 409), or None when it is a bug (a 500)."""
    return Conflict(RACE) if is_race(exc) else None
