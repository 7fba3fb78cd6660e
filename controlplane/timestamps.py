from datetime import UTC


def rfc3339(value) -> str | None:
    """A UTC time as the API shows it: RFC 3339 with `Z` (what DRF would print, without its per-value
    time zone lookups, which dominate the cost of a long list)."""
    if value is None:
        return None
    if isinstance(value, str):  # SQLite hands raw SQL its stored text, UTC: "YYYY-MM-DD HH:MM:SS[.ffffff]"
        return value.replace(" ", "T") + "Z"
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
