"""`runs logs` (declared, with its help, in `cpctl.cli`)."""

from rich.text import Text

from cpctl import render
from cpctl.client import FAILED, api
from cpctl.follow import follow, log_line


def runs_logs(app, run_id, follow_run):
    if not follow_run:
        run = app.client.get(api("workflow-runs", run_id))
        if app.out.json:
            return app.out.emit(run["logs"])
        for entry in run["logs"]:
            app.out.out.print(log_line(entry))
        return 0
    progress = follow(app.client, run_id, app.out, f"Following {run_id}", to_stdout=True)
    if not app.out.json:
        app.out.err.print(Text(f"{run_id} {progress.state}", style=render.STATUS.get(progress.state, "")))
    return 0 if progress.state == "Succeeded" else FAILED
