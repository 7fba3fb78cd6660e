"""Server-Sent Events on a real threaded server: a run's log as it is written, the audit trail as it
grows, and other requests answered while streams are open."""

import http.client
import threading
import urllib.parse

import pytest
from django.core.signals import request_started

from releases.models import Release
from tests.api.conftest import Api
from tests.conftest import TOKENS


def open_stream(live_server, path, role="viewer", headers=None):
    url = urllib.parse.urlparse(live_server.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    conn.request("GET", path, headers={"Authorization": f"Bearer {TOKENS[role]}", **(headers or {})})
    return conn, conn.getresponse()


def read_events(response, until: str):
    events, current = [], {}
    while True:
        line = response.readline().decode().rstrip("\n")
        if not line:
            if current:
                events.append(current)
                if current.get("event") == until:
                    return events
            current = {}
            continue
        if line.startswith(":"):
            continue
        key, _, value = line.partition(": ")
        current[key] = value


def test_a_runs_log_streams_while_it_runs_and_other_requests_go_on(committed_demo, worker, live_server):
    api = Api("deployer")
    release = api.post(
        "/api/releases/", {"serviceId": "svc-demo", "envId": "env-prod", "sha": "4f2a9c1", "version": "5"}
    )
    run_id = api.post(f"/api/releases/{release.json()['id']}/deploy/").json()["id"]
    path, served, seen = f"/api/workflow-runs/{run_id}/logs/stream", threading.Event(), {}

    def serving(sender, environ, **kwargs):
        if environ.get("PATH_INFO") == path:
            served.set()

    def follow():
        conn, response = open_stream(live_server, path)
        seen["status"], seen["type"] = response.status, response.getheader("Content-Type")
        seen["events"] = read_events(response, until="end")
        conn.close()

    request_started.connect(serving)
    try:
        reader = threading.Thread(target=follow, daemon=True)
        reader.start()
        assert served.wait(30), "the server never took the stream"
        # No worker runs yet, so the run cannot end and the stream stays open whatever the machine's
        # speed: these requests are answered while it is open, or (were they stalled behind it) never.
        for _ in range(5):
            c, r = open_stream(live_server, "/api/me/")
            assert r.status == 200 and r.read()
            c.close()
        assert reader.is_alive() and Release.objects.get(pk=release.json()["id"]).status == "Promoting"
        worker()
        reader.join(60)
    finally:
        request_started.disconnect(serving)
    assert (seen["status"], seen["type"]) == (200, "text/event-stream")
    events = seen["events"]
    logs = [e for e in events if e["event"] == "log"]
    assert "started" in logs[0]["data"] and "succeeded" in logs[-1]["data"]
    assert [int(e["id"]) for e in logs] == sorted(int(e["id"]) for e in logs)
    assert events[-1] == {"event": "end", "data": '{"state":"Succeeded"}'}
    assert Release.objects.get(pk=release.json()["id"]).status == "Active"


def test_the_log_stream_resumes_after_last_event_id(committed_demo, live_server):
    conn, response = open_stream(live_server, "/api/workflow-runs/run-456/logs/stream", headers={"Last-Event-ID": "1"})
    events = read_events(response, until="end")
    conn.close()
    assert [e["event"] for e in events] == ["end"]  # entry 1 was seen already; the run has finished


def test_the_audit_stream_delivers_new_events(committed_demo, live_server):
    conn, response = open_stream(live_server, "/api/audit-events/stream")
    assert response.status == 200
    Api("admin").post("/api/environments/", {"name": "streamed"})
    events = read_events(response, until="audit")
    conn.close()
    assert '"action":"environment.create"' in events[-1]["data"] and '"actor":"dev-admin"' in events[-1]["data"]


@pytest.mark.parametrize(("role", "status"), [(None, 401), ("viewer", 200)])
def test_streams_need_a_viewer(committed_demo, client, role, status):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {TOKENS[role]}"} if role else {}
    response = client.get("/api/workflow-runs/run-456/logs/stream", **headers)
    assert response.status_code == status
    if status == 200:
        assert b"event: end" in b"".join(response.streaming_content)


def test_an_unknown_run_is_404(committed_demo, client):
    response = client.get("/api/workflow-runs/run-nope/logs/stream", HTTP_AUTHORIZATION=f"Bearer {TOKENS['viewer']}")
    assert response.status_code == 404
