"""`environments` and `drift` (declared, with their help, in `cpctl.cli`)."""

from rich.text import Text

from cpctl import render
from cpctl.client import DRIFTED, FAILED, api


def mode(entry: dict) -> Text:
    """`live (connection k8s-prod)` or `simulated`, as an environment or a drift report says it."""
    shown = render.mode(entry.get("mode"))
    if entry.get("connection"):
        shown.append(f" (connection {entry['connection']})")
    return shown


def environments(app, limit):
    found = app.listed("/api/environments/", {}, limit)
    if app.out.json:
        return app.out.emit(found)
    grid = render.table("ENVIRONMENT", "NAME", "REGION", "CLUSTER", "MODE", "CONNECTION")
    for env in found:
        grid.add_row(
            env["id"],
            env["name"],
            env.get("region") or "(adapter default)",
            env.get("cluster") or "(adapter default)",
            render.mode(env.get("mode")),
            env.get("connection") or "—",
        )
    app.out.show(grid)


def drift(app, env_id, check):
    path = api("environments", env_id, "drift")
    found = app.client.post(path) if check else app.client.get(path)
    live = found.get("mode") == "live"
    errors = [o for o in found["services"] if o.get("error")]
    # Scripts gate on the code: drift wins over a platform that could not be asked; a simulated environment
    # has nothing to compare.
    code = (DRIFTED if found["drifted"] else FAILED if errors else 0) if live else 0
    if app.out.json:
        app.out.emit(found)
        return code
    out = app.out.out
    if not live:
        out.print(f"{env_id} is simulated: nothing to compare (it names no connection; its adapters simulate).")
        return code
    if not found["services"]:
        if found.get("checkedAt") is None and not check:
            said = f"has not been checked yet: cpctl drift {env_id} --check"
        else:  # a check found nothing to compare: no service linked there deploys through the connection's adapter
            said = "has no service deploying through its connection."
        out.print(Text(f"{env_id} is ").append_text(mode(found)).append(f" and {said}"), soft_wrap=True)
        return code
    out.print(
        Text(f"{env_id} is ").append_text(mode(found)).append(f"; checked {render.when(found.get('checkedAt'))}."),
        soft_wrap=True,
    )
    grid = render.table("SERVICE", "ADAPTER", "RELEASE", "EXPECTED", "RUNNING", "STATE", "CHECKED")
    for o in found["services"]:
        grid.add_row(
            o["serviceId"],
            o["adapter"],
            o.get("currentReleaseId") or "—",
            o.get("expected") or "no current release",
            o.get("running") or "nothing runs",
            state(o),
            render.when(o.get("checkedAt")),
        )
    app.out.show(grid)
    for o in errors:
        out.print(
            Text(f"{o['serviceId']} ({o['adapter']}): the platform could not be asked: {o['error']}"), soft_wrap=True
        )
    total, drifted = len(found["services"]), len(found["drifted"])
    summary = f"{drifted} of {total} drifted." if drifted else f"{total - len(errors)} of {total} in sync."
    if errors:
        summary += f" {len(errors)} could not be checked (the last verdict is kept)."
    out.print(Text(summary, style="bold red" if drifted else ("yellow" if errors else "green")))
    return code


def state(observation: dict) -> Text:
    """drifted or in sync; when the platform could not be asked, `unknown`, or the drift the last answer showed."""
    if observation["drifted"]:
        return Text("drifted (last known)" if observation.get("error") else "drifted", style="bold red")
    return Text("unknown", style="yellow") if observation.get("error") else Text("in sync", style="green")
