"""`integrations list|create|deliveries` and `webhooks list|create|deliveries|ping|redeliver` (declared, with their
help, in `cpctl.cli`; docs/integrations.md). Admins only: the server says so (exit 3) to anyone else."""

import sys
import time

import click
from rich.text import Text

from cpctl import render
from cpctl.client import FAILED, USAGE, Failure, api

# A delivery's states (integrations.models.DeliveryState), coloured as a run's are.
STATE = {"pending": "yellow", "sending": "yellow", "succeeded": "green", "failed": "bold red"}
OUTCOME = {"created": "green", "updated": "green", "rejected": "bold red", "ignored": "yellow", "duplicate": "dim"}
WAIT_SECONDS = 20.0  # a try takes at most 10 s; the worker looks for due deliveries every half second
POLL_SECONDS = 0.5


# --- integrations (incidents in) ---


def integrations_list(app, limit):
    found = app.listed("/api/integrations/", {}, limit)
    if app.out.json:
        return app.out.emit(found)
    grid = render.table("INTEGRATION", "KIND", "NAME", "SERVICE MAP", "URL", "CREATED")
    for i in found:
        mapping = ", ".join(f"{k}={v}" for k, v in i["serviceMap"].items()) or "—"
        grid.add_row(i["id"], i["kind"], i["name"], mapping, i["url"], render.when(i["createdAt"]))
    app.out.show(grid)


def service_map(mappings) -> dict[str, str]:
    found = {}
    for mapping in mappings:
        external, sep, service_id = mapping.partition("=")
        if not sep or not external or not service_id:
            raise Failure(USAGE, f"--map takes EXTERNAL=SERVICE, like payments=svc-payments (got {mapping!r}).")
        found[external] = service_id
    return found


def integrations_create(app, kind, name, integration_id, mappings, secret):
    body = {"kind": kind, "name": name, "serviceMap": service_map(mappings)}
    if integration_id is not None:
        body["id"] = integration_id
    if secret == "-":
        prompt = sys.stdin.isatty()
        secret = click.prompt("Signing secret", hide_input=True, err=True) if prompt else sys.stdin.readline()
        secret = secret.strip()
    if secret is not None:
        body["secret"] = secret
    made = app.client.post("/api/integrations/", body)
    if app.out.json:
        return app.out.emit(made)
    app.out.err.print(f"Created {made['id']} ({made['kind']}, {made['name']}). Point the source at this URL:")
    app.out.out.print(made["url"], markup=False, highlight=False, soft_wrap=True)
    if secret is None:
        how = {"alertmanager": "its bearer token", "generic": "its Standard Webhooks signing secret"}.get(kind, "")
        app.out.err.print(f"and {how}, shown this once (it is not shown again; rotating it makes a new one):")
        app.out.out.print(made["secret"], markup=False, highlight=False, soft_wrap=True)
    else:
        app.out.err.print("It checks signatures with the secret you gave (stored sealed; never shown).")


def results(event: dict) -> str:
    """A received event's detail: the request's reason, then each incident it touched."""
    parts = [event["reason"]] if event["reason"] else []
    for r in event["results"]:
        said = f"{r['externalId']}: {r['outcome']}"
        said += f" {r['incidentId']}" if r.get("incidentId") else ""
        said += f" ({r['reason']})" if r.get("reason") else ""
        parts.append(said)
    return "; ".join(parts) or "—"


def integrations_deliveries(app, integration_id, limit):
    found = app.listed(api("integrations", integration_id, "deliveries"), {}, limit)
    if app.out.json:
        return app.out.emit(found)
    if not found:
        return app.out.err.print(f"{integration_id} has received nothing yet.")
    grid = render.table("EVENT", "RECEIVED", "TYPE", "STATUS", "OUTCOME", "DETAIL")
    for e in found:
        grid.add_row(
            e["id"],
            render.when(e["receivedAt"]),
            e["eventType"] or "—",
            str(e["statusCode"]),
            render.styled(e["outcome"], OUTCOME),
            results(e),
        )
    app.out.show(grid)


# --- webhooks (events out) ---


def host(url: str) -> str:
    """A URL's host, as the table shows it: the rest may be a credential (a Slack URL's path is)."""
    return url.split("/", 3)[2] if url.count("/") >= 2 else url


def webhooks_list(app, limit):
    found = app.listed("/api/webhooks/", {}, limit)
    if app.out.json:
        return app.out.emit(found)
    grid = render.table("WEBHOOK", "HOST", "EVENTS", "FORMAT", "ENABLED", "CREATED")
    for w in found:
        enabled = Text("yes", style="green")
        if not w["enabled"]:
            enabled = Text(f"no: {w['disabledReason']}" if w["disabledReason"] else "no", style="bold red")
        grid.add_row(w["id"], host(w["url"]), ", ".join(w["events"]), w["format"], enabled, render.when(w["createdAt"]))
    app.out.show(grid)


def webhooks_create(app, url, events, format_, description):
    patterns = [p.strip() for given in events for p in given.split(",") if p.strip()]
    body = {"url": url, "events": patterns, "format": format_}
    if description is not None:
        body["description"] = description
    made = app.client.post("/api/webhooks/", body)
    if app.out.json:
        return app.out.emit(made)
    app.out.err.print(
        f"Created {made['id']}: {', '.join(made['events'])} to {host(made['url'])} ({made['format']}). Its signing "
        "secret, shown this once (it is not shown again; rotating it makes a new one):"
    )
    app.out.out.print(made["secret"], markup=False, highlight=False, soft_wrap=True)


def deliveries_table(found: list[dict]):
    grid = render.table("DELIVERY", "EVENT", "SEQ", "STATE", "TRIES", "LAST ANSWER", "NEXT TRY", "FINISHED")
    for d in found:
        grid.add_row(
            d["id"],
            d["eventType"],
            str(d["eventSeq"]) if d["eventSeq"] is not None else "—",
            render.styled(d["state"], STATE),
            str(d["attempts"]),
            answer(d),
            render.when(d["nextAttemptAt"]) if d["state"] == "pending" else "—",
            render.when(d["finishedAt"]),
        )
    return grid


def answer(delivery: dict) -> str:
    """The last try's answer: its status code, else why there was none; `—` before the first try."""
    if delivery["lastStatus"] is not None:
        return str(delivery["lastStatus"])
    return delivery["lastError"] or "—"


def webhooks_deliveries(app, webhook_id, state, limit):
    path = api("webhooks", webhook_id, "deliveries")
    found = app.listed(path, {}, limit) if state is None else matching(app, path, state, limit)
    if app.out.json:
        return app.out.emit(found)
    if not found:
        return app.out.err.print(f"No {state + ' ' if state else ''}delivery for {webhook_id}.")
    app.out.show(deliveries_table(found))


def matching(app, path: str, state: str, limit: int) -> list[dict]:
    """Up to `limit` deliveries in `state`, newest first. The API lists a webhook's deliveries unfiltered, so they
    are read a page at a time, only as far as needed."""
    page = app.client.get(path, pageSize=500)
    found = [d for d in page["results"] if d["state"] == state]
    while page.get("next") and len(found) <= limit:
        page = app.client.get(page["next"])
        found.extend(d for d in page["results"] if d["state"] == state)
    if len(found) > limit and not app.out.json:
        app.out.err.print(f"The first {limit} shown; there are more (--limit).", style="dim")
    return found[:limit]


def webhooks_ping(app, webhook_id, wait):
    delivery = app.client.post(api("webhooks", webhook_id, "ping"))
    return sent(app, webhook_id, delivery, wait, "Ping")


def webhooks_redeliver(app, webhook_id, delivery_id, wait):
    delivery = app.client.post(api("webhooks", webhook_id, "deliveries", delivery_id, "redeliver"))
    return sent(app, webhook_id, delivery, wait, f"Redelivery of {delivery['eventType']}")


def sent(app, webhook_id: str, delivery: dict, wait: bool, what: str) -> int:
    """Say what became of a delivery just queued: its next try's answer (waited for), or that it is queued."""
    if not wait:
        if app.out.json:
            app.out.emit(delivery)
        else:
            app.out.out.print(
                f"{what} queued as {delivery['id']}: the worker sends it now (cpctl webhooks deliveries {webhook_id}).",
                soft_wrap=True,
            )
        return 0
    tried = tried_once(app, webhook_id, delivery)
    if app.out.json:
        app.out.emit(tried)
    succeeded = tried["state"] == "succeeded"
    if tried["state"] in ("pending", "sending") and tried["attempts"] <= delivery["attempts"]:
        app.out.error(
            f"{what} {tried['id']} is queued but was not tried within {WAIT_SECONDS:.0f} s: is the worker running? "
            f"(cpctl webhooks deliveries {webhook_id})"
        )
    elif not app.out.json:
        last = tried["tries"][-1] if tried["tries"] else {}
        took = f" in {last['durationMs']} ms" if "durationMs" in last else ""
        if succeeded:
            app.out.out.print(Text(f"✓ {what} {tried['id']} delivered: {tried['lastStatus']}{took}.", style="green"))
        else:
            then = (
                f"; next try {render.when(tried['nextAttemptAt'])}"
                if tried["state"] == "pending"
                else " (failed; not tried again)"
            )
            app.out.out.print(
                Text(f"✗ {what} {tried['id']} not delivered: {tried['lastError'] or tried['lastStatus']}{took}{then}."),
                soft_wrap=True,
            )
    return 0 if succeeded else FAILED


def tried_once(app, webhook_id: str, delivery: dict) -> dict:
    """The delivery once its next try has been made (its tries with it), or as it is after WAIT_SECONDS."""
    path = api("webhooks", webhook_id, "deliveries", delivery["id"])
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        found = app.client.get(path)
        if found["attempts"] > delivery["attempts"] and found["state"] != "sending":
            return found
        if time.monotonic() >= deadline:
            return found
        time.sleep(POLL_SECONDS)
