"""`policy explain` (declared, with its help, in `cpctl.cli`)."""

from rich.text import Text

from cpctl import render
from cpctl.client import api


def policy_explain(app, env_id, service_id, action, at):
    found = app.client.get(api("environments", env_id, "policy"), serviceId=service_id, action=action, at=at)
    if app.out.json:
        return app.out.emit(found)
    out, windows = app.out, found.get("windows") or []
    what = f"{action.capitalize()}{f' of {service_id}' if service_id else ''} into {env_id}"
    out.out.print(Text(f"{what} {f'at {at}' if at else 'now'}: ").append_text(render.allowed(found["allowed"])))
    rows = []
    if not found["allowed"]:
        opens = found["nextAllowedAt"]
        shown = render.opening(opens, render.window_zones(found, windows)) if opens else "not by time alone"
        rows.append(("Next allowed", shown))
    rows.append(("Evaluated", ", ".join(found.get("evaluated") or ()) or "no policy applies"))
    out.show(render.key_values(rows))
    if found["deniedBy"]:
        denied = render.table("DENIED BY", "REASON")
        for d in found["deniedBy"]:
            denied.add_row(d["policy"], d["reason"])
        out.out.print()
        out.show(denied)
    if windows:
        grid = render.table("WINDOW", "SCHEDULE", "NOW", "NEXT CHANGE")
        for w in windows:
            state = Text("open", style="green") if w["open"] else Text("closed", style="yellow")
            verb = "closes" if w["open"] else "opens"
            change = f"{verb} {render.opening(w['nextChangeAt'], [w['timezone']])}" if w["nextChangeAt"] else "never"
            grid.add_row(w["name"], w["summary"], state, change)
        out.out.print()
        out.show(grid)
    return 0
