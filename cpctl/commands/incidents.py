"""`incidents` and `incident create|ack|resolve` (declared, with their help, in `cpctl.cli`)."""

from rich.text import Text

from cpctl import render
from cpctl.client import api


def incident_table(found: list[dict]):
    grid = render.table("INCIDENT", "SERVICE", "SEVERITY", "STATUS", "STARTED", "TITLE")
    for i in found:
        grid.add_row(
            i["id"],
            i["serviceId"],
            render.severity(i["severity"]),
            render.status(i["status"]),
            render.when(i["startedAt"]),
            i.get("title") or "",
        )
    return grid


def incidents(app, only_open, severity, service_id, status, limit):
    params = {"open": "true" if only_open else None, "severity": severity, "serviceId": service_id, "status": status}
    found = app.listed("/api/incidents/", params, limit)
    if app.out.json:
        return app.out.emit(found)
    app.out.show(incident_table(found))


def show_incident(app, found: dict, verb: str) -> None:
    if app.out.json:
        return app.out.emit(found)
    text = Text(f"{found['id']} ")
    text.append_text(render.severity(found["severity"])).append(f" on {found['serviceId']}: {verb}, now ")
    app.out.out.print(text.append_text(render.status(found["status"])))


def incident_create(app, service_id, severity, link, title, incident_id):
    body = {"serviceId": service_id, "severity": severity, "link": link}
    body |= {k: v for k, v in {"title": title, "id": incident_id}.items() if v is not None}
    show_incident(app, app.client.post("/api/incidents/", body), "created")


def incident_ack(app, incident_id):
    show_incident(app, app.client.post(api("incidents", incident_id, "acknowledge")), "acknowledged")


def incident_resolve(app, incident_id):
    show_incident(app, app.client.post(api("incidents", incident_id, "resolve")), "resolved")
