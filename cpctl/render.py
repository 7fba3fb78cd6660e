"""How cpctl shows things: tables and colour for people, JSON for scripts.

Colour only on a terminal, never with NO_COLOR or `--no-color`; `--color` (or FORCE_COLOR) forces it.
Tables and results go to stdout; progress, confirmations and errors to stderr, so that
`cpctl … --output json | jq` reads nothing but JSON.
"""

import json
import os
import sys

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

# RFC 0001: severity drives CLI highlighting.
SEVERITY = {"critical": "bold white on red", "high": "bold red", "medium": "yellow", "low": "cyan"}
SEVERITIES = ("critical", "high", "medium", "low")  # highest first
STATUS = {
    "Active": "green",
    "Promoting": "yellow",
    "Failed": "bold red",
    "Draft": "dim",
    "Succeeded": "green",
    "Running": "yellow",
    "triggered": "bold red",
    "acknowledged": "yellow",
    "resolved": "green",
}
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


def _console(stream, color: bool | None) -> Console:
    terminal = stream.isatty()
    return Console(
        file=stream,
        force_terminal=True if color else None,
        no_color=True if color is False else None,  # None: rich reads NO_COLOR itself
        highlight=False,
        soft_wrap=False,
        # Piped, a table is as wide as it needs (within reason) rather than wrapped at 80 columns.
        width=None if terminal or "COLUMNS" in os.environ else 200,
    )


def table(*columns: str) -> Table:
    return Table(*columns, box=None, header_style="bold", pad_edge=False, show_edge=False)


def styled(value: str | None, styles: dict) -> Text:
    return Text(value or "—", style=styles.get(value or "", ""))


def severity(value: str | None) -> Text:
    return styled(value, SEVERITY)


def status(value: str | None) -> Text:
    return styled(value, STATUS)


def open_incidents(counts: dict) -> Text:
    """`1 critical, 2 high`, each part in its severity's colour; `—` when none are open."""
    text = Text()
    for name in SEVERITIES:
        if counts.get(name):
            if text:
                text.append(", ")
            text.append(f"{counts[name]} {name}", style=SEVERITY[name])
    return text or Text("—")


def release(entry: dict | None, with_status: bool = False) -> Text:
    if not entry:
        return Text("—")
    text = Text(f"{entry['id']} {entry['version']} ({entry['sha'][:7]})")
    if with_status:
        text.append(" ").append_text(status(entry["status"]))
    return text


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
