"""`cpctl webhooks` and `cpctl integrations` against a live server and worker, as an admin wires the control plane
to a receiver and to Alertmanager or PagerDuty: the secret printed once, a ping verified with the
`standardwebhooks` package, the delivery log, a redelivery under the same `webhook-id`, a failing receiver, a
410, and the refusals' exit codes (docs/cli.md, docs/integrations.md)."""

import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection
from standardwebhooks import Webhook

from tests.cli.conftest import new_incident

pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="the client's reads: tested on SQLite")

# The receivers here listen on loopback, where webhooks may go only when an install allows private addresses.
ALLOW_PRIVATE = {"CONTROLPLANE_WEBHOOKS_ALLOW_PRIVATE": "1"}


@pytest.fixture
def cpctl(cpctl_here):
    return cpctl_here


@pytest.fixture
def private_plane(committed_demo, web, worker):
    """A web server and a worker that send webhooks to private addresses (loopback: the receiver here)."""
    url = web(**ALLOW_PRIVATE)
    worker(**ALLOW_PRIVATE)
    return url


class Receiver:
    """A webhook receiver on loopback: answers `status` (200 by default) and keeps every request."""

    def __init__(self):
        self.status = 200
        self.got: list[tuple[dict, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                receiver.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        self.host = f"127.0.0.1:{self.server.server_port}"

    def wait_for(self, count: int, timeout: float = 20.0) -> list[tuple[dict, str]]:
        deadline = time.monotonic() + timeout
        while len(self.got) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(self.got) >= count, self.got
        return self.got


@pytest.fixture
def receiver():
    found = Receiver()
    threading.Thread(target=found.server.serve_forever, daemon=True).start()
    yield found
    found.server.shutdown()
    found.server.server_close()


def create(cpctl, plane, url, *options):
    made = cpctl("webhooks", "create", url, *options, url=plane, role="admin")
    assert made.code == 0, made.err
    return made.err.split()[1].rstrip(":"), made.out.strip(), made


def test_a_webhook_is_created_pinged_listed_and_redelivered(private_plane, cpctl, receiver):
    webhook_id, secret, made = create(
        cpctl, private_plane, receiver.url, "--events", "release.*", "--events", "incident.*"
    )
    # The secret is stdout's one line, shown this once, and said so on stderr (which does not repeat it).
    assert secret.startswith("whsec_") and made.out == secret + "\n"
    assert "shown this once (it is not shown again" in made.err and secret not in made.err
    assert f"Created {webhook_id}: release.*, incident.* to {receiver.host} (standard)" in made.err

    pinged = cpctl("webhooks", "ping", webhook_id, url=private_plane, role="admin")
    assert pinged.code == 0, pinged.err
    assert pinged.out.startswith("✓ Ping msg-") and " delivered: 200 in " in pinged.out
    ping_id = pinged.out.split()[2]
    headers, body = receiver.wait_for(1)[0]
    assert headers["webhook-id"] == ping_id
    assert Webhook(secret).verify(body, headers)["type"] == "webhook.ping"

    opened = cpctl(*new_incident("high", "https://pd.example.com/incidents/Q1"), "-o", "json", url=private_plane)
    assert opened.code == 0, opened.err
    headers, body = receiver.wait_for(2)[1]
    sent = Webhook(secret).verify(body, headers)
    assert sent["type"] == "incident.create" and sent["data"]["subjectId"] == opened.json()["id"]
    assert sent["data"]["subject"]["severity"] == "high"

    listed = cpctl("webhooks", "list", url=private_plane, role="admin")
    assert listed.code == 0, listed.err
    header, row = listed.out.splitlines()
    assert header.split() == ["WEBHOOK", "HOST", "EVENTS", "FORMAT", "ENABLED", "CREATED"]
    assert row.split()[:6] == [webhook_id, receiver.host, "release.*,", "incident.*", "standard", "yes"]
    assert "/hooks" not in listed.out  # the table names the host; a URL's path may be a credential
    as_json = cpctl("webhooks", "list", "-o", "json", url=private_plane, role="admin").json()
    assert [(w["id"], w["url"], w["enabled"]) for w in as_json] == [(webhook_id, receiver.url, True)]
    assert "secret" not in as_json[0]

    shown = cpctl("webhooks", "deliveries", webhook_id, url=private_plane, role="admin")
    assert shown.code == 0, shown.err
    header, *rows = shown.out.splitlines()
    assert header.split() == ["DELIVERY", "EVENT", "SEQ", "STATE", "TRIES", "LAST", "ANSWER", "NEXT", "TRY", "FINISHED"]
    assert [r.split()[1:6] for r in rows] == [
        ["incident.create", str(sent["data"]["seq"]), "succeeded", "1", "200"],
        ["webhook.ping", "—", "succeeded", "1", "200"],
    ]
    incident_delivery = rows[0].split()[0]
    assert incident_delivery == receiver.got[1][0]["webhook-id"]
    assert cpctl("webhooks", "deliveries", webhook_id, "--state", "succeeded", "-o", "json",
                 url=private_plane, role="admin").json()[0]["id"] == incident_delivery  # fmt: skip
    none_failed = cpctl("webhooks", "deliveries", webhook_id, "--state", "failed", url=private_plane, role="admin")
    assert (none_failed.code, none_failed.out) == (0, "")
    assert f"No failed delivery for {webhook_id}." in none_failed.err

    again = cpctl("webhooks", "redeliver", webhook_id, incident_delivery, url=private_plane, role="admin")
    assert again.code == 0, again.err
    assert again.out.startswith(f"✓ Redelivery of incident.create {incident_delivery} delivered: 200")
    headers, body = receiver.wait_for(3)[2]
    assert headers["webhook-id"] == incident_delivery and body == receiver.got[1][1]  # the same message, again


def test_a_failing_receiver_is_retried_and_a_gone_one_disabled(private_plane, cpctl, receiver):
    webhook_id, _, _ = create(cpctl, private_plane, receiver.url, "--events", "incident.*")
    receiver.status = 503

    failed = cpctl("webhooks", "ping", webhook_id, url=private_plane, role="admin")
    assert failed.code == 1, failed.err
    assert failed.out.startswith("✗ Ping msg-") and "not delivered: answered 503" in failed.out
    assert "; next try 20" in failed.out  # on the schedule, a few seconds later
    row = cpctl("webhooks", "deliveries", webhook_id, url=private_plane, role="admin").out.splitlines()[1].split()
    assert row[1:6] == ["webhook.ping", "—", "pending", "1", "503"] and row[-1] == "—"  # not finished
    pending = cpctl("webhooks", "deliveries", webhook_id, "--state", "pending", "-o", "json",
                    url=private_plane, role="admin").json()  # fmt: skip
    assert [(d["attempts"], d["lastStatus"], d["nextAttemptAt"] is not None) for d in pending] == [(1, 503, True)]
    busy = cpctl("webhooks", "redeliver", webhook_id, pending[0]["id"], url=private_plane, role="admin")
    assert busy.code == 5 and "is pending: it is sent already, or about to be" in busy.err

    receiver.status = 410
    gone = cpctl("webhooks", "ping", webhook_id, "-o", "json", url=private_plane, role="admin")
    assert gone.code == 1
    assert gone.json()["lastStatus"] == 410 and gone.json()["state"] == "failed"
    listed = cpctl("webhooks", "list", url=private_plane, role="admin").out
    assert f"no: {receiver.host} answered 410 Gone" in listed
    refused = cpctl("webhooks", "ping", webhook_id, url=private_plane, role="admin")
    assert refused.code == 5 and f"webhook {webhook_id} is disabled; enable it first." in refused.err


def test_no_wait_says_it_is_queued(private_plane, cpctl, receiver):
    webhook_id, _, _ = create(cpctl, private_plane, receiver.url, "--events", "*")
    queued = cpctl("webhooks", "ping", webhook_id, "--no-wait", url=private_plane, role="admin")
    assert queued.code == 0, queued.err
    assert queued.out.startswith("Ping queued as msg-") and f"cpctl webhooks deliveries {webhook_id}" in queued.out
    as_json = cpctl("webhooks", "ping", webhook_id, "--no-wait", "-o", "json", url=private_plane, role="admin")
    assert as_json.json()["eventType"] == "webhook.ping" and as_json.json()["attempts"] == 0


def test_refusals_and_their_exit_codes(server, cpctl):
    # The suite's usual server allows no private address: a loopback URL is refused when it is created.
    private = cpctl("webhooks", "create", "http://127.0.0.1:9/hooks", "--events", "release.*", url=server, role="admin")
    assert private.code == 2 and private.out == ""
    assert "url: 127.0.0.1 resolves to 127.0.0.1, a loopback address" in private.err
    assert "CONTROLPLANE_WEBHOOKS_ALLOW_PRIVATE=1" in private.err
    # A public address (a literal: nothing is resolved without the internet), its patterns checked.
    public = "https://93.184.215.14/hooks"
    pattern = cpctl("webhooks", "create", public, "--events", "releases.*", url=server, role="admin")
    assert pattern.code == 2 and "events: 'releases.*' names no audit action" in pattern.err
    with_password = cpctl("webhooks", "create", "https://u:p@example.com/", "--events", "*", url=server, role="admin")
    assert with_password.code == 2 and "url: must not carry a user name or password" in with_password.err
    assert cpctl("webhooks", "create", public, "--events", "*", "--format", "teams",
                 url=server, role="admin").code == 2  # fmt: skip

    for args in (("webhooks", "list"), ("webhooks", "deliveries", "whk-abc"), ("integrations", "list")):
        denied = cpctl(*args, url=server, role="deployer")
        assert denied.code == 3 and "needs the admin role; dev-deployer has deployer" in denied.err, args
    assert cpctl("webhooks", "list", url=server, role=None).code == 3

    for args in (
        ("webhooks", "deliveries", "whk-nothere"),
        ("webhooks", "ping", "whk-nothere"),
        ("webhooks", "redeliver", "whk-nothere", "msg-nothere"),
        ("integrations", "deliveries", "int-nothere"),
    ):
        missing = cpctl(*args, url=server, role="admin")
        assert missing.code == 4, (args, missing.err)
        assert missing.err.startswith("error: ")


def post(url: str, body: bytes, **headers) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


ALERT = {
    "version": "4",
    "status": "firing",
    "receiver": "controlplane",
    "externalURL": "http://alertmanager.example.com:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "HighErrorRate", "service": "demo", "severity": "critical"},
            "annotations": {"summary": "5xx above 5%"},
            "startsAt": "2026-12-07T20:00:00Z",
            "generatorURL": "http://prometheus.example.com:9090/graph",
            "fingerprint": "c2a4e1f0b9d3e7a1",
        }
    ],
}


def test_an_integration_is_created_and_its_log_shown(server, cpctl):
    made = cpctl(
        "integrations", "create", "--kind", "alertmanager", "--name", "prom", "--map", "demo=svc-demo",
        url=server, role="admin",
    )  # fmt: skip
    assert made.code == 0, made.err
    events_url, secret = made.out.splitlines()
    integration_id = made.err.split()[1]
    assert events_url == f"{server}/api/integrations/{integration_id}/events/"
    assert "its bearer token, shown this once" in made.err and secret not in made.err

    code, answer = post(events_url, json.dumps(ALERT).encode(), Authorization=f"Bearer {secret}")
    assert (code, answer["outcome"]) == (202, "created")
    incident_id = answer["results"][0]["incidentId"]
    code, _ = post(events_url, json.dumps(ALERT).encode(), Authorization="Bearer not-the-secret")
    assert code == 401  # stores nothing: the log below has one line
    code, _ = post(events_url, json.dumps({**ALERT, "version": "3"}).encode(), Authorization=f"Bearer {secret}")
    assert code == 400

    log = cpctl("integrations", "deliveries", integration_id, url=server, role="admin")
    assert log.code == 0, log.err
    header, rejected, created = log.out.splitlines()
    assert header.split() == ["EVENT", "RECEIVED", "TYPE", "STATUS", "OUTCOME", "DETAIL"]
    assert rejected.split()[4:6] == ["400", "rejected"] and "version 4 is understood" in rejected
    assert created.split()[3:] == ["alertmanager.firing", "202", "created", "c2a4e1f0b9d3e7a1:", "created", incident_id]
    found = cpctl("integrations", "deliveries", integration_id, "-o", "json", url=server, role="admin").json()
    assert [e["outcome"] for e in found] == ["rejected", "created"]

    listed = cpctl("integrations", "list", url=server, role="admin")
    header, row = listed.out.splitlines()
    assert header.split() == ["INTEGRATION", "KIND", "NAME", "SERVICE", "MAP", "URL", "CREATED"]
    assert row.split()[:5] == [integration_id, "alertmanager", "prom", "demo=svc-demo", events_url]
    assert secret not in listed.out


def test_a_pagerduty_integration_takes_pagerdutys_secret(server, cpctl):
    given = "pd-signing-secret-0123456789abcdef"
    made = cpctl(
        "integrations", "create", "--kind", "pagerduty", "--name", "pd", "--map", "PXYZ123=svc-demo",
        "--secret", given, url=server, role="admin",
    )  # fmt: skip
    assert made.code == 0, made.err
    assert made.out.strip().endswith("/events/") and len(made.out.splitlines()) == 1  # the URL; no secret echoed
    assert given not in made.out + made.err and "the secret you gave" in made.err

    ping = json.dumps({"event": {"id": "01PING", "event_type": "pagey.ping", "occurred_at": "2026-12-07T20:00:00Z"}})
    signature = "v1=" + hmac.new(given.encode(), ping.encode(), hashlib.sha256).hexdigest()
    code, answer = post(made.out.strip(), ping.encode(), **{"X-PagerDuty-Signature": signature})
    assert (code, answer["outcome"]) == (202, "ignored")

    short = cpctl("integrations", "create", "--kind", "pagerduty", "--name", "pd2", "--secret", "short",
                  url=server, role="admin")  # fmt: skip
    assert short.code == 2 and "secret: must be the signing secret PagerDuty shows" in short.err
    made_here = cpctl("integrations", "create", "--kind", "generic", "--name", "g", "--secret", given,
                      url=server, role="admin")  # fmt: skip
    assert made_here.code == 2 and "secret: is made by the control plane for this kind" in made_here.err
    bad_map = cpctl("integrations", "create", "--kind", "generic", "--name", "g", "--map", "demo", url=server,
                    role="admin")  # fmt: skip
    assert bad_map.code == 2 and "--map takes EXTERNAL=SERVICE" in bad_map.err
    unknown = cpctl("integrations", "create", "--kind", "generic", "--name", "g", "--map", "demo=svc-nope",
                    url=server, role="admin")  # fmt: skip
    assert unknown.code == 2 and "serviceMap: unknown service 'svc-nope'" in unknown.err
