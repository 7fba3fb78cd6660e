"""`releases`, `release create` and `release show` (declared, with their help, in `cpctl.cli`)."""

import click

from cpctl import render
from cpctl.client import api


def releases(app, service_id, env_id, status, current, limit):
    params = {"serviceId": service_id, "envId": env_id, "status": status, "isCurrent": "true" if current else None}
    found = app.listed("/api/releases/", params, limit)
    if app.out.json:
        return app.out.emit(found)
    grid = render.table("RELEASE", "SERVICE", "ENVIRONMENT", "VERSION", "SHA", "STATUS", "CREATED", "CURRENT")
    for r in found:
        grid.add_row(
            r["id"],
            r["serviceId"],
            r["envId"],
            r["version"],
            r["sha"][:7],
            render.status(r["status"]),
            render.when(r["createdAt"]),
            "yes" if r["isCurrent"] else "",
        )
    app.out.show(grid)


def show_release(app, found: dict) -> None:
    if app.out.json:
        return app.out.emit(found)
    app.out.show(
        render.key_values(
            [
                ("Release", found["id"]),
                ("Service", found["serviceId"]),
                ("Environment", found["envId"]),
                ("Version", found["version"]),
                ("Sha", found["sha"]),
                ("Status", render.status(found["status"])),
                ("Committed", render.when(found.get("committedAt"))),
                ("Created", render.when(found["createdAt"])),
                ("Activated", render.when(found.get("activatedAt"))),
                ("Current", "yes" if found["isCurrent"] else "no"),
                ("Superseded by", found.get("supersededBy")),
            ]
        )
    )


def release_create(app, service_id, env_id, sha, version, release_id, committed_at=None):
    body = {"serviceId": service_id, "envId": env_id, "sha": sha, "version": version}
    body |= {"id": release_id} if release_id else {}
    body |= {"committedAt": committed_at} if committed_at else {}
    created = app.client.post("/api/releases/", body)
    if app.out.json:
        return app.out.emit(created)
    click.echo(created["id"])  # bare, so that `R=$(cpctl release create …)` holds the id


def release_show(app, release_id):
    show_release(app, app.client.get(api("releases", release_id)))
