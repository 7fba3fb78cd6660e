"""Following a run: its log live, with a spinner and step progress on a terminal, until it ends.

Steps are counted as the server counts them (`releases.runs.progress`): each adapter logs the size of its plan
(`meta.steps`), then each step it finishes (`meta.step`, "… done"); the step being worked on is the last one
announced (`meta.step` at debug level).
"""

from dataclasses import dataclass, field

from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text

from cpctl import render
from cpctl.client import Client, api


@dataclass
class Progress:
    planned: int = 0
    done: int = 0
    step: str = ""  # "k8s: apply": the step started last
    finished: set = field(default_factory=set)
    state: str = "Running"
    reason: str = ""  # the last error entry: why the run failed

    def read(self, entry: dict) -> None:
        meta = entry.get("meta") or {}
        if "steps" in meta:
            self.planned += meta["steps"]
        if "step" in meta:
            name = f"{meta.get('adapter', '')}: {meta['step']}"
            if entry["message"].endswith(" done"):
                self.done += 1
                self.finished.add(name)
            else:
                self.step = name
        if entry["level"] == "error":
            self.reason = entry["message"]

    @property
    def failed_step(self) -> str:
        """The step the run stopped in: started and never done. Empty when it failed before any step."""
        return self.step if self.step and self.step not in self.finished else ""

    def summary(self) -> str:
        if not self.planned:
            return "planning"
        count = f"{self.done}/{self.planned} steps done"
        return f"{count} · {self.step}" if self.step and self.step not in self.finished else count


def log_line(entry: dict) -> Text:
    level = entry["level"]
    text = Text(f"{entry['ts'][11:23]}  ", style="dim")
    text.append(f"{level:<7}", style=render.LEVEL.get(level, ""))
    text.append(entry["message"], style=render.LEVEL.get(level, "") if level != "info" else "")
    return text


def follow(
    client: Client, run_id: str, out: render.Output, title: str, to_stdout: bool = False, waiting: str = ""
) -> Progress:
    """Read the run's log stream until its `end`, showing each entry (debug ones only in the spinner) and,
    on a terminal, a spinner with the step progress (`waiting` until its first entry: a run awaiting approval
    logs nothing before it starts, and its stream ends at once if it ends without starting). Returns how it
    ended."""
    progress = Progress()
    console = out.out if to_stdout else out.err
    spinner = Spinner("dots", text=waiting or title)
    # On the terminal the lines go to, below them (one console draws both); transient: the spinner's line goes
    # once the run has ended, the log lines stay.
    live = Live(spinner, console=console, transient=True) if console.file.isatty() and not out.json else None
    if live:
        live.start()
    try:
        for event in client.events(api("workflow-runs", run_id, "logs") + "stream"):
            if event.name == "end":
                progress.state = event.data["state"]
                break
            if event.name != "log":
                continue
            entry = event.data
            progress.read(entry)
            if out.json and to_stdout:
                out.line(entry)
            elif entry["level"] != "debug" and not out.json:
                console.print(log_line(entry))
            if live:
                spinner.update(text=f"{title} · {progress.summary()}")
                live.refresh()  # every step shows, however fast the run
    finally:
        if live:
            live.stop()
    return progress
