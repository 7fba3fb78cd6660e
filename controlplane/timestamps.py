import re
from datetime import UTC, datetime, timedelta, timezone


def rfc3339(value) -> str | None:
    """A UTC time as the API shows it: RFC 3339 with `Z` (what DRF would print, without its per-value
    time zone lookups, which dominate the cost of a long list)."""
    if value is None:
        return None
    if isinstance(value, str):  # stored text, UTC: "YYYY-MM-DD HH:MM:SS[.ffffff]"
        return value.replace(" ", "T") + "Z"
    if value.tzinfo is None:  # a stored UTC time read without its zone (SQLite's driver, raw SQL)
        return value.isoformat() + "Z"
    if value.utcoffset() == _ZERO:  # the usual case: no conversion, the offset's text swapped for Z
        return value.isoformat()[:-6] + "Z"
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


_ZERO = timedelta(0)


# RFC 3339 `date-time`: full-date "T" full-time, the offset required. ASCII digits only ([0-9], not \d).
_RFC3339 = re.compile(
    r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})[Tt]"
    r"(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})(?:\.(?P<fraction>[0-9]{1,9}))?"
    r"(?P<offset>[Zz]|(?P<sign>[+-])(?P<offset_hour>[0-9]{2}):(?P<offset_minute>[0-9]{2}))"
)
RFC3339_RULE = "must be an RFC 3339 time with an offset, like 2024-10-02T14:30:00Z or 2024-10-02T16:30:00+02:00."


def parse_rfc3339(text: str) -> datetime:
    """An RFC 3339 date-time with its offset, as an aware datetime in UTC. ValueError (with the rule) for
    anything else: a date alone, no offset, a week date, the basic format, a space before the offset,
    seconds in the offset, an impossible date, or a time out of range once in UTC. Fractions of a second
    beyond microseconds are truncated. The API's one parser of times, for bodies and query parameters."""
    match = _RFC3339.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(RFC3339_RULE)
    parts = match.groupdict()
    if parts["sign"]:
        hours, minutes = int(parts["offset_hour"]), int(parts["offset_minute"])
        if hours > 23 or minutes > 59:
            raise ValueError(f"has an offset out of range; {RFC3339_RULE}")
        sign = -1 if parts["sign"] == "-" else 1
        zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
    else:
        zone = UTC
    try:
        value = datetime(
            int(parts["year"]),
            int(parts["month"]),
            int(parts["day"]),
            int(parts["hour"]),
            int(parts["minute"]),
            int(parts["second"]),
            int((parts["fraction"] or "0")[:6].ljust(6, "0")),
            tzinfo=zone,
        )
    except ValueError:
        raise ValueError(f"is not a valid date and time; {RFC3339_RULE}") from None
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range once converted to UTC.") from None
