"""Server-Sent Events on a real threaded server: a run's log as it is written, the audit trail as it
grows, and other requests answered while streams are open."""

import http.client
import threading
import time
import urllib.parse

import pytest

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
    worker(CONTROLPLANE_STEP_DELAY_SECONDS=0.3)
    api = Api("deployer")
    release = api.post(
        "/api/releases/", {"serviceId": "svc-demo", "envId": "env-prod", "sha": "4f2a9c1", "version": "5"}
    )
    run_id = api.post(f"/api/releases/{release.json()['id']}/deploy/").json()["id"]
    conn, response = open_stream(live_server, f"/api/workflow-runs/{run_id}/logs/stream")
    assert response.status == 200 and response.getheader("Content-Type") == "text/event-stream"
    other_answers = []

    def meanwhile():
        for _ in range(5):
            started = time.monotonic()
            c, r = open_stream(live_server, "/api/me/")
            r.read()
            other_answers.append((r.status, time.monotonic() - started))
            c.close()

    helper = threading.Thread(target=meanwhile)
    helper.start()
    events = read_events(response, until="end")
    helper.join()
    conn.close()
    logs = [e for e in events if e["event"] == "log"]
    assert "started" in logs[0]["data"] and "succeeded" in logs[-1]["data"]
    assert [int(e["id"]) for e in logs] == sorted(int(e["id"]) for e in logs)
    assert events[-1] == {"event": "end", "data": '{"state":"Succeeded"}'}
    assert all(status == 200 and took < 2 for status, took in other_answers), other_answers
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
