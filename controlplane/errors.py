"""Domain errors that are not input validation (those are Django's ValidationError, keyed by field)."""


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
