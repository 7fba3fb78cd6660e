"""`runs show` and `runs logs` (declared, with its help, in `cpctl.cli`)."""

from rich.text import Text

from cpctl import render
from cpctl.client import FAILED, api
from cpctl.follow import follow, log_line


def mode(run: dict) -> Text:
    """`live (connection k8s-prod)` or `simulated`: the connection as the run's placement entry names it."""
    shown = render.mode(run.get("mode"))
    connections = {(e.get("meta") or {}).get("connection") for e in run.get("logs") or ()} - {None}
    if run.get("mode") == "live" and connections:
        shown.append(f" (connection {', '.join(sorted(connections))})")
    return shown


def runs_show(app, run_id):
    run = app.client.get(api("workflow-runs", run_id))
    if app.out.json:
        return app.out.emit(run)
    rows = [
        ("Run", f"{run['id']} ({run['kind']})"),
        ("Release", run["releaseId"] + (f" (from {run['sourceReleaseId']})" if run.get("sourceReleaseId") else "")),
        ("State", render.status(run["state"])),
        ("Mode", mode(run)),
        ("Actor", run["actor"]),
        ("Started", render.when(run.get("startedAt"))),
        ("Finished", render.when(run.get("finishedAt"))),
    ]
    if run.get("approvalsRequired"):
        given = [a for a in run.get("approvals") or () if a.get("decision") == "approve"]
        rows.append(("Approvals", f"{len(given)}/{run['approvalsRequired']}"))
    if run.get("waitingReason"):
        rows.append(("Waiting", run["waitingReason"]))
    app.out.show(render.key_values(rows))
    app.out.out.print(f"Its log: cpctl runs logs {run['id']}")
    return 0


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
