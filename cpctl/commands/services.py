"""`services` and `service show` (declared, with their help, in `cpctl.cli`)."""

from rich.text import Text

from cpctl import render
from cpctl.client import api
from cpctl.commands.environments import mode
from cpctl.commands.incidents import incident_table


def services(app, limit):
    entries = app.listed("/api/services/index/", {}, limit)
    if app.out.json:
        return app.out.emit(entries)
    grid = render.table("SERVICE", "ENVIRONMENT", "CURRENT", "LATEST", "INCIDENTS")
    for entry in entries:
        incidents = render.open_incidents(entry["incidents"]["open"])
        for i, env in enumerate(entry["environments"] or [{"id": "—", "currentRelease": None, "latestRelease": None}]):
            current, newer = env["currentRelease"], render.newer(env)
            grid.add_row(
                entry["id"] if i == 0 else "",
                env["id"],
                render.release(current),
                render.release(newer, with_status=True) if newer else Text(""),
                incidents if i == 0 else Text(""),
            )
    app.out.show(grid)


def service_show(app, service_id):
    found = app.client.get(api("services", service_id))
    index = [e for e in app.client.items("/api/services/index/", {"q": service_id}, None) if e["id"] == service_id]
    environments = index[0]["environments"] if index else []
    incidents = app.client.items("/api/incidents/", {"serviceId": service_id, "open": "true"}, None)
    if app.out.json:
        return app.out.emit({"service": found, "environments": environments, "openIncidents": incidents})
    app.out.show(
        render.key_values(
            [
                ("Service", f"{found['id']} ({found['name']})"),
                ("Repo", found["repo"]),
                ("Adapters", ", ".join(found["adapters"]["deployments"])),
                ("Archived", "yes" if found.get("archived") else "no"),
            ]
        )
    )
    # Whether each environment deploys for real (its connection) or simulates: the environments' own answer.
    modes = {e["id"]: e for e in app.client.items("/api/environments/", {}, None)}
    grid = render.table("ENVIRONMENT", "MODE", "CURRENT", "SINCE", "LATEST")
    for env in environments:
        current, newer = env["currentRelease"], render.newer(env)
        grid.add_row(
            env["id"],
            mode(modes.get(env["id"], {})),
            render.release(current),
            render.when(current and current.get("activatedAt")),
            render.release(newer, with_status=True) if newer else Text(""),
        )
    app.out.out.print()
    app.out.show(grid)
    app.out.out.print()
    app.out.show(incident_table(incidents) if incidents else "No open incidents.")
