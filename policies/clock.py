"""Change windows in their own time zones, for Cedar, which has none (docs/policies.md, "Time").

`facts` is what a window looks like at an instant: its local ISO weekday, yesterday's, and the minute of the
day, by `zoneinfo`. Cedar decides from them whether the window is open. `boundaries` lists every instant after
a given one at which that answer can change (a local start or end, either side of a DST fold, or a DST
change itself), so the next opening is found by asking Cedar at those instants only.
"""

from datetime import UTC, date, datetime, time, timedelta

from services.models import ChangeWindow, minutes

HORIZON_DAYS = 8  # every weekly window opens and closes within a week and a day


def facts(window: ChangeWindow, at: datetime) -> dict:
    local = at.astimezone(window.zone)
    weekday = local.isoweekday()
    return {
        "name": window.name,
        "timezone": window.timezone,
        "weekday": weekday,
        "yesterday": (weekday - 2) % 7 + 1,
        "minute": local.hour * 60 + local.minute,
        "days": list(window.days),
        "start": minutes(window.start),
        "end": minutes(window.end),
    }


def _instants(window: ChangeWindow, day: date, minute: int) -> set[datetime]:
    """The UTC instants at which local time on `day` reads `minute` (both folds; 1440 is the next midnight)."""
    day, minute = (day + timedelta(days=1), 0) if minute == 1440 else (day, minute)
    wall = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=window.zone)
    return {wall.replace(fold=fold).astimezone(UTC) for fold in (0, 1)}


def _offset_changes(window: ChangeWindow, start: datetime, end: datetime) -> set[datetime]:
    """The instants in (start, end] at which the zone's UTC offset changes, to the second."""
    zone, found = window.zone, set()
    step = timedelta(hours=6)
    left = start
    while left < end:
        right = min(left + step, end)
        if left.astimezone(zone).utcoffset() != right.astimezone(zone).utcoffset():
            low, high = left, right
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                if middle.astimezone(zone).utcoffset() == low.astimezone(zone).utcoffset():
                    low = middle
                else:
                    high = middle
            found.add(high.replace(microsecond=0))
        left = right
    return found


def boundaries(window: ChangeWindow, after: datetime, days: int = HORIZON_DAYS) -> list[datetime]:
    """Every instant in (after, after + days] at which the window can open or close, in order."""
    until = after + timedelta(days=days)
    today = after.astimezone(window.zone).date()
    candidates = set()
    for offset in range(-1, days + 1):
        for minute in {0, minutes(window.start), minutes(window.end)}:
            candidates |= _instants(window, today + timedelta(days=offset), minute)
    candidates |= _offset_changes(window, after, until)
    return sorted(c for c in candidates if after < c <= until)
