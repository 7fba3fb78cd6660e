"""`audit` (declared, with its help, in `cpctl.cli`)."""

import re
from datetime import UTC, datetime, timedelta

from rich.text import Text

from cpctl import render

DURATION = re.compile(r"(\d+)([smhd])")


UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def relative_time(value: str | None, sign: int) -> str | None:
    """A duration (s, m, h, d) ago (`sign` -1) or ahead (+1), or an RFC 3339 time, as the API takes it."""
    if value is None:
        return None
    match = DURATION.fullmatch(value)
    if match:
        at = datetime.now(UTC) + sign * timedelta(**{UNITS[match[2]]: int(match[1])})
        return at.isoformat(timespec="seconds").replace("+00:00", "Z")
    return value  # the server checks it, naming the field


def since_time(value: str | None) -> str | None:
    """`--since 15m` (ago) or an RFC 3339 time."""
    return relative_time(value, -1)


def audit_row(event: dict) -> list:
    return [
        Text(f"#{event['seq']}", style="bold"),
        render.when(event["ts"]),
        event["actor"],
        Text(event["action"], style="cyan"),
        f"{event['subjectType']} {event['subjectId']}",
    ]


FOLLOWED_WIDTHS = (8, 20, 24, 22)  # columns fixed when followed, so rows printed one by one line up


def audit_table(events: list[dict], followed: bool = False, header: bool = True):
    grid = render.table("SEQ", "TIME", "ACTOR", "ACTION", "SUBJECT")
    grid.show_header = header
    if followed:
        for column, width in zip(grid.columns, FOLLOWED_WIDTHS, strict=False):
            column.width, column.no_wrap, column.overflow = width, True, "ellipsis"
    for event in events:
        grid.add_row(*audit_row(event))
    return grid


def audit(app, actor, action, service_id, subject_id, since, limit, follow_trail):
    filters = {"actor": actor, "action": action, "serviceId": service_id, "subjectId": subject_id}
    live = None
    if follow_trail:
        # Connected first: its position is the head, and everything after it comes through the stream.
        live = app.client.events("/api/audit-events/stream", filters)
        head = int(next(live).id or 0)
    params = {**filters, "since": since_time(since)}
    if since:  # forward from a time; followed, all of it up to where the stream starts, so that none is skipped
        found = app.client.items("/api/audit-events/", params, None if live else limit)
    else:
        found = app.client.tail("/api/audit-events/", params, limit)
    if live is None:
        return app.out.emit(found) if app.out.json else app.out.show(audit_table(found))
    found = [e for e in found if e["seq"] <= head]  # the rest comes through the stream

    def show(events, header=False):  # followed: JSON Lines with -o json; rows whose columns line up
        for event in events if app.out.json else ():
            app.out.line(event)
        if not app.out.json:
            app.out.show(audit_table(events, followed=True, header=header))

    show(found, header=True)
    for event in live:
        if event.name == "audit":
            show([event.data])
