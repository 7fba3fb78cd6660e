"""`approvals`, `approve`, `reject` and `cancel` (declared, with their help, in `cpctl.cli`), and what a run
awaiting approval waits for."""

from rich.text import Text

from cpctl import render
from cpctl.client import api
from cpctl.commands import App

WAITING = "AwaitingApproval"


def approved(run: dict) -> list[dict]:
    return [a for a in run.get("approvals") or () if a.get("decision") == "approve"]


def awaiting(run: dict) -> str:
    """`run-… awaits 2 approvals (cpctl approve run-…)`, or, approved, what keeps it from starting."""
    given, required = len(approved(run)), run.get("approvalsRequired") or 0
    left = required - given
    if left <= 0:
        why = run.get("waitingReason") or "the worker starts it"
        return f"{run['id']} is approved ({given}/{required}) and waits to start: {why}"
    more = " more" if given else ""
    return f"{run['id']} awaits {left}{more} approval{'s' if left != 1 else ''} (cpctl approve {run['id']})"


def approvals(app, service_id, env_id, limit):
    params = {"state": WAITING, "serviceId": service_id, "envId": env_id}
    found = app.listed("/api/workflow-runs/", params, limit)
    if app.out.json:
        return app.out.emit(found)
    if not found:
        return app.out.err.print("No run awaits approval.")
    releases = {r["releaseId"]: app.client.get(api("releases", r["releaseId"])) for r in found}
    grid = render.table("RUN", "SERVICE", "ENVIRONMENT", "RELEASE", "KIND", "MODE", "ASKED BY", "APPROVALS", "SINCE")
    for run in found:
        rel = releases[run["releaseId"]]
        given = f"{len(approved(run))}/{run['approvalsRequired']}"
        if run.get("waitingReason"):
            given += f", held: {run['waitingReason']}"
        grid.add_row(
            run["id"],
            rel["serviceId"],
            rel["envId"],
            render.release(rel),
            run["kind"],
            render.mode(run.get("mode")),
            run["actor"],
            given,
            render.when(run["startedAt"]),
        )
    app.out.show(grid)


def decided(app: App, run: dict, verb: str) -> None:
    """The run after a decision on it, as the server answered: still waiting, started, or ended."""
    if app.out.json:
        return app.out.emit(run)
    state = run["state"]
    if state == WAITING:
        said = awaiting(run)
    elif state == "Running":
        said = f"{run['id']} has its approvals ({len(approved(run))}/{run['approvalsRequired']}) and is Running; "
        said += f"follow it: cpctl runs logs {run['id']} --follow"
    elif state in ("Rejected", "Cancelled", "Expired"):
        said = f"{run['id']} is {state}: nothing rolls out, and {run['releaseId']} stays Draft."
    else:
        said = f"{run['id']} is {state}."
    app.out.out.print(Text(f"{verb}. {said}", style=render.STATUS.get(state, "")), soft_wrap=True)


def approve(app, run_id, comment):
    body = {"comment": comment} if comment is not None else {}
    decided(app, app.client.post(api("workflow-runs", run_id, "approve"), body), "Approved")


def reject(app, run_id, comment):
    decided(app, app.client.post(api("workflow-runs", run_id, "reject"), {"comment": comment}), "Rejected")


def cancel(app, run_id):
    decided(app, app.client.post(api("workflow-runs", run_id, "cancel")), "Cancelled")
