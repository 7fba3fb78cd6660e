"""How cpctl shows things: tables and colour for people, JSON for scripts.

Colour only on a terminal, never with NO_COLOR or `--no-color`; `--color` (or FORCE_COLOR) forces it.
Tables and results go to stdout; progress, confirmations and errors to stderr, so that
`cpctl … --output json | jq` reads nothing but JSON.
"""

import json
import os
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

# Severity drives CLI highlighting (docs/cli.md). Highest first, as `cpctl.cli.SEVERITIES` lists them.
SEVERITY = {"critical": "bold white on red", "high": "bold red", "medium": "yellow", "low": "cyan"}
STATUS = {
    "Active": "green",
    "Promoting": "yellow",
    "Failed": "bold red",
    "Draft": "dim",
    "Succeeded": "green",
    "Running": "yellow",
    "AwaitingApproval": "yellow",
    "Rejected": "bold red",
    "Expired": "bold red",
    "Cancelled": "dim",
    "triggered": "bold red",
    "acknowledged": "yellow",
    "resolved": "green",
}
# Where an environment's adapters deploy: for real through a connection, or simulated (docs/adapters.md).
MODE = {"live": "bold cyan", "simulated": "dim"}
LEVEL = {"debug": "dim", "info": "", "warning": "yellow", "error": "bold red"}


class Output:
    def __init__(self, form: str, color: bool | None):
        self.json = form == "json"
        self.out = _console(sys.stdout, color)
        self.err = _console(sys.stderr, color)

    def emit(self, data) -> None:
        """JSON for scripts: the API's own objects, indented, on stdout."""
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))

    def line(self, data) -> None:
        """One JSON document per line, for what arrives over time (`--follow`)."""
        click.echo(json.dumps(data, ensure_ascii=False, separators=(",", ":")))

    def show(self, renderable) -> None:
        """A table on stdout. Piped, each row is one line without trailing padding, for grep and awk."""
        if self.out.is_terminal:
            return self.out.print(renderable)
        with self.out.capture() as captured:
            self.out.print(renderable)
        click.echo("\n".join(line.rstrip() for line in captured.get().splitlines()))

    def error(self, message: str) -> None:
        self.err.print(Text(f"error: {message}", style="bold red"), soft_wrap=True)  # one line, however long


def _console(stream, color: bool | None) -> Console:
    return Console(
        file=stream,
        # --color and --no-color win over the environment (NO_COLOR, FORCE_COLOR), which wins over the default.
        force_terminal=True if color else (False if color is False and not stream.isatty() else None),
        no_color=None if color is None else not color,
        # What the server sends is shown as it is: "[red]" in an incident's title is text, not markup.
        markup=False,
        emoji=False,
        highlight=False,
        # Piped, rows are as long as they need rather than wrapped at 80 columns.
        width=None if stream.isatty() or "COLUMNS" in os.environ else 100_000,
    )


def table(*columns: str) -> Table:
    return Table(*columns, box=None, header_style="bold", pad_edge=False, show_edge=False)


def styled(value: str | None, styles: dict) -> Text:
    return Text(value or "—", style=styles.get(value or "", ""))


def mode(value: str | None) -> Text:
    return styled(value, MODE)


def severity(value: str | None) -> Text:
    return styled(value, SEVERITY)


def status(value: str | None) -> Text:
    return styled(value, STATUS)


def open_incidents(counts: dict) -> Text:
    """`1 critical, 2 high`, each part in its severity's colour; `—` when none are open."""
    text = Text()
    for name in SEVERITY:  # highest first
        if counts.get(name):
            if text:
                text.append(", ")
            text.append(f"{counts[name]} {name}", style=SEVERITY[name])
    return text or Text("—")


def newer(environment: dict) -> dict | None:
    """An index environment's latest release when it is not the one running there (it is promoting, failed,
    or still a draft); None when the latest is what runs."""
    current, latest = environment["currentRelease"], environment["latestRelease"]
    return latest if latest and (not current or latest["id"] != current["id"]) else None


def release(entry: dict | None, with_status: bool = False) -> Text:
    if not entry:
        return Text("—")
    text = Text(f"{entry['id']} {entry['version']} ({entry['sha'][:7]})")
    if with_status:
        text.append(" ").append_text(status(entry["status"]))
    return text


def version(entry: dict) -> str:
    """A release as a person names it: `2024.10.02 (9f3b7de)`."""
    return f"{entry['version']} ({entry['sha'][:7]})"


def when(ts: str | None) -> str:
    """RFC 3339 to the second, as `2024-10-02 14:30:00Z`."""
    return ts[:19].replace("T", " ") + "Z" if ts else "—"


def key_values(rows: list[tuple[str, object]]) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for key, value in rows:
        grid.add_row(key, value if isinstance(value, Text) else Text(str(value) if value not in (None, "") else "—"))
    return grid


def moment(ts: str, zone: str = "UTC") -> str | None:
    """An RFC 3339 instant as a person reads it in `zone` (an IANA name): `Mon 2026-12-07 09:00 Europe/Berlin`,
    to the second only when it has seconds. The zone's rules are this machine's (zoneinfo); None for a zone it
    does not know."""
    try:
        local = datetime.fromisoformat(ts).astimezone(UTC if zone == "UTC" else ZoneInfo(zone))
    except (ValueError, ZoneInfoNotFoundError):
        return None
    shown = "%a %Y-%m-%d %H:%M:%S" if local.second else "%a %Y-%m-%d %H:%M"
    return f"{local.strftime(shown)} {zone}"


def opening(ts: str | None, zones: Iterable[str] = ()) -> str:
    """When something next happens, in UTC and in each zone: `Mon 2026-12-07 08:00 UTC · Mon 2026-12-07 09:00
    Europe/Berlin`; `—` for never (no time alone gets there)."""
    if not ts:
        return "—"
    shown = [moment(ts, zone) for zone in dict.fromkeys(["UTC", *zones])]
    return " · ".join(s for s in shown if s) or ts


def window_zones(decision: dict, windows: list[dict]) -> list[str]:
    """The zones a decision's next opening is shown in: its denied windows', else every window's of the
    environment (`windows` as the policy endpoint lists them)."""
    denied = {d.get("policy") for d in decision.get("deniedBy") or ()}
    chosen = [w for w in windows if w.get("ref") in denied] or windows
    return list(dict.fromkeys(w["timezone"] for w in chosen if w.get("timezone")))


def allowed(value: bool) -> Text:
    return Text("allowed", style="green") if value else Text("denied", style="bold red")
