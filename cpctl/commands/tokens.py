"""`tokens create|list|revoke` (declared, with their help, in `cpctl.cli`)."""

from cpctl import render
from cpctl.client import api
from cpctl.commands.audit import relative_time


def tokens_create(app, name, role, env_ids, expires):
    body = {"name": name, "role": role, "expiresAt": relative_time(expires, +1)}
    if env_ids:
        body["envIds"] = list(env_ids)
    issued = app.client.post("/api/tokens/", body)
    if app.out.json:
        return app.out.emit(issued)
    scope = ", ".join(issued["envIds"]) if issued["envIds"] else "every environment"
    expiring = render.when(issued["expiresAt"])
    app.out.err.print(
        f"Issued {issued['id']} ({issued['name']}, {issued['role']}, {scope}), expiring {expiring}. Shown this once:"
    )
    app.out.out.print(issued["token"], markup=False, highlight=False)


def tokens_list(app, limit):
    found = app.listed("/api/tokens/", {}, limit)
    if app.out.json:
        return app.out.emit(found)
    grid = render.table("TOKEN", "NAME", "ROLE", "ENVIRONMENTS", "OWNER", "EXPIRES", "LAST USED", "REVOKED")
    for t in found:
        grid.add_row(
            t["id"],
            t["name"],
            t["role"],
            ", ".join(t["envIds"]) if t["envIds"] else "all",
            t["owner"],
            render.when(t["expiresAt"]),
            render.when(t["lastUsedAt"]),
            render.when(t["revokedAt"]) if t["revokedAt"] else "",
        )
    app.out.show(grid)


def tokens_revoke(app, token_id):
    app.client.request("DELETE", api("tokens", token_id))
    if app.out.json:
        return app.out.emit({"id": token_id, "revoked": True})
    app.out.out.print(f"Revoked {token_id}: its next request is refused.")
