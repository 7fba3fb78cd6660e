"""Server-Sent Events on the real server (`manage.py web`, its event loop): a run's log as the worker writes it,
the audit trail as it grows, filtered; first bytes at once; limits; subscriptions freed when clients leave."""

import http.client
import json
import os
import signal
import socket
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from django.db import connection

from audit.models import AuditEvent
from controlplane.serving import GRACEFUL_SHUTDOWN_SECONDS
from releases.models import Release
from tests.api.conftest import Api
from tests.conftest import TOKENS
from tests.environment import wait_for


@pytest.fixture
def web(web):
    """This module's servers: kept like any, but apart from other modules'. A page test's browser may leave an audit
    stream open on a shared server until its next keep-alive notices; the server's change feed, still running for it,
    would then start this module's streams at that test's trail head, which the flushed database no longer has."""
    return lambda own=False, **env: web(own=own, CONTROLPLANE_TESTS_OF="streams", **env)


class Stream:
    """One open stream, read as a client would, line by line."""

    def __init__(self, url: str, path: str, role: str | None = "viewer", headers=None, method="GET", timeout=30):
        parsed = urllib.parse.urlparse(url)
        self.conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)
        auth = {"Authorization": f"Bearer {TOKENS[role]}"} if role else {}
        self.conn.request(method, path, headers={**auth, **(headers or {})})
        self.response = self.conn.getresponse()
        self.status = self.response.status

    def lines(self, count: int) -> list[str]:
        return [self.response.readline().decode().rstrip("\n") for _ in range(count)]

    def preamble(self) -> int:
        """Read what a stream sends on connect; returns the id it starts after."""
        retry, start, comment, blank = self.lines(4)
        assert (retry, comment, blank) == ("retry: 3000", ": connected", ""), (retry, comment, blank)
        return int(start.removeprefix("id: "))

    def events(self, until=lambda event: False) -> list[dict]:
        """Events (comments skipped) until `until(event)` holds for one, or the stream ends."""
        events, current = [], {}
        while True:
            line = self.response.readline()
            if not line:
                return events
            line = line.decode().rstrip("\n")
            if not line:
                if "data" in current:  # as EventSource: a block without data (the retry hint) is no event
                    events.append(current)
                    if until(current):
                        return events
                current = {}
            elif not line.startswith(":"):
                key, _, value = line.partition(": ")
                current[key] = value

    def close(self):
        self.conn.close()


def draft(version: str) -> dict:
    return {"serviceId": "svc-demo", "envId": "env-prod", "sha": "4f2a9c1", "version": version}


def kind(name):
    return lambda event: event.get("event") == name


def audit_data(events):
    return [json.loads(e["data"]) for e in events if e.get("event") == "audit"]


def open_streams(url, role="admin") -> dict:
    with urllib.request.urlopen(
        urllib.request.Request(f"{url}/api/streams/", headers={"Authorization": f"Bearer {TOKENS[role]}"})
    ) as response:
        return json.load(response)


def test_the_first_bytes_arrive_before_any_event(committed_demo, web):
    # Read with a socket timeout under the 15 s keep-alive: a preamble that waited for an event or the
    # keep-alive would time the read out.
    stream = Stream(web(), "/api/audit-events/stream", timeout=10)
    preamble = stream.lines(4)
    stream.close()
    assert stream.status == 200 and stream.response.getheader("Content-Type") == "text/event-stream"
    assert stream.response.getheader("Cache-Control") == "no-cache"
    head = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    assert preamble == ["retry: 3000", f"id: {head}", ": connected", ""]  # it starts at the tail


def test_head_answers_at_once_with_the_streams_headers(committed_demo, web):
    stream = Stream(web(), "/api/audit-events/stream", method="HEAD")
    assert (stream.status, stream.response.getheader("Content-Type")) == (200, "text/event-stream")
    assert stream.response.read() == b""
    stream.close()


def test_a_runs_log_streams_while_the_worker_writes_it_and_other_requests_go_on(committed_demo, worker, web):
    url, api = web(), Api("deployer")
    release = api.post("/api/releases/", draft("5"))
    run_id = api.post(f"/api/releases/{release.json()['id']}/deploy/").json()["id"]
    stream = Stream(url, f"/api/workflow-runs/{run_id}/logs/stream")
    assert stream.preamble() == 0  # the whole log
    # No worker runs yet, so the run cannot end and the stream stays open: other requests are answered.
    for _ in range(5):
        me = Stream(url, "/api/me/")
        assert me.status == 200 and json.load(me.response)["actor"] == "dev-viewer"
        me.close()
    worker()
    events = stream.events(until=kind("end"))
    stream.close()
    logs = [e for e in events if e["event"] == "log"]
    assert "started" in logs[0]["data"] and "succeeded" in logs[-1]["data"]
    assert [int(e["id"]) for e in logs] == sorted(int(e["id"]) for e in logs)
    assert events[-1] == {"event": "end", "data": '{"state":"Succeeded"}'}
    assert Release.objects.get(pk=release.json()["id"]).status == "Active"


def test_the_log_stream_resumes_after_last_event_id(committed_demo, web):
    stream = Stream(web(), "/api/workflow-runs/run-456/logs/stream", headers={"Last-Event-ID": "1"})
    events = stream.events(until=kind("end"))
    stream.close()
    assert [e["event"] for e in events] == ["end"]  # entry 1 was seen already; the run has finished


def test_an_audit_stream_sees_what_the_worker_commits_and_only_what_its_filters_name(committed_demo, worker, web):
    url, api = web(), Api("deployer")
    release = api.post("/api/releases/", draft("6"))
    release_id = release.json()["id"]
    mine = Stream(url, f"/api/audit-events/stream?subjectType=Release&subjectId={release_id}&action=release.activate")
    everything = Stream(url, "/api/audit-events/stream")
    for stream in (mine, everything):
        stream.preamble()
    api.post(f"/api/releases/{release_id}/deploy/")  # release.deploy: not what `mine` listens to
    worker()
    activated = audit_data(mine.events(until=kind("audit")))
    seen = audit_data(everything.events(until=lambda e: '"release.activate"' in e.get("data", "")))
    mine.close(), everything.close()
    assert [(e["action"], e["subjectId"], e["actor"], e["metadata"]["startedBy"]) for e in activated] == [
        ("release.activate", release_id, "system:worker", "dev-deployer")  # recorded by the worker process
    ]
    assert [e["action"] for e in seen][-1] == "release.activate" and len(seen) >= 2
    assert [e["seq"] for e in seen] == sorted(e["seq"] for e in seen)


def listening() -> bool:
    """A connection of the test database's is waiting for notifications (the feed's, once it is up)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN %%'"
        )
        return cursor.fetchone()[0] > 0


def test_on_postgresql_a_commit_wakes_the_feed_without_waiting_for_a_poll(committed_demo, web):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no notifications: the feed polls")
    url = web(CONTROLPLANE_STREAM_POLL_SECONDS=120)
    stream = Stream(url, "/api/audit-events/stream")
    stream.preamble()
    wait_for(listening, 10, "the server's feed to LISTEN")
    Api("admin").post("/api/environments/", {"name": "notified"})
    # The stream's socket times out after 30 s, long before the 120 s poll: only NOTIFY delivers in time.
    events = audit_data(stream.events(until=kind("audit")))
    stream.close()
    assert events[0]["metadata"]["name"] == "notified"


def test_an_idle_stream_that_ends_resumes_from_its_starting_id_and_misses_nothing(committed_demo, web):
    url, admin = web(CONTROLPLANE_STREAM_MAX_SECONDS=1), Api("admin")
    path = "/api/audit-events/stream?subjectType=Environment"
    stream = Stream(url, path)
    start = stream.preamble()
    assert stream.events() == []  # nothing happened; the stream ended after a second
    stream.close()
    admin.post("/api/environments/", {"name": "while-reconnecting"})  # as EventSource waits to reconnect
    again = Stream(url, path, headers={"Last-Event-ID": str(start)})  # what EventSource sends
    again.preamble()
    events = audit_data(again.events(until=kind("audit")))
    again.close()
    assert [e["metadata"]["name"] for e in events] == ["while-reconnecting"]


def test_an_audit_stream_resumes_after_last_event_id_then_goes_on_live(committed_demo, web):
    url, admin = web(), Api("admin")
    first = admin.post("/api/environments/", {"name": "resume-1"}).json()["id"]
    admin.post("/api/environments/", {"name": "resume-2"})
    after = next(e["seq"] for e in admin.get(f"/api/audit-events/?subjectId={first}").json()["results"])
    stream = Stream(url, "/api/audit-events/stream?subjectType=Environment", headers={"Last-Event-ID": str(after)})
    backlog = audit_data(stream.events(until=kind("audit")))
    admin.post("/api/environments/", {"name": "resume-3"})
    live = audit_data(stream.events(until=kind("audit")))
    stream.close()
    assert [e["metadata"]["name"] for e in backlog + live] == ["resume-2", "resume-3"]


def test_over_the_per_principal_cap_is_429_and_a_closed_stream_gives_its_place_back(committed_demo, web):
    url = web(CONTROLPLANE_STREAMS_PER_PRINCIPAL=2, CONTROLPLANE_STREAM_KEEPALIVE_SECONDS=1)
    held = [Stream(url, "/api/audit-events/stream") for _ in range(2)]
    over = Stream(url, "/api/workflow-runs/run-456/logs/stream")  # both kinds count
    assert [s.status for s in held] == [200, 200]
    assert over.status == 429 and over.response.getheader("Retry-After") == "1"
    assert "At most 2 open streams per principal" in json.load(over.response)["detail"]
    assert Stream(url, "/api/audit-events/stream", role="deployer").status == 200  # another principal
    assert open_streams(url, "viewer")["yours"] == 2
    held.pop().close()
    wait_for(lambda: open_streams(url, "viewer")["yours"] == 1, 10, "the closed stream's place to be given back")
    assert Stream(url, "/api/audit-events/stream").status == 200


def test_over_the_server_cap_is_503(committed_demo, web):
    url = web(CONTROLPLANE_STREAMS_MAX=2)
    held = [Stream(url, "/api/audit-events/stream", role=role) for role in ("viewer", "deployer")]
    over = Stream(url, "/api/audit-events/stream", role="admin")
    assert [s.status for s in held] == [200, 200]
    assert over.status == 503 and over.response.getheader("Retry-After")


def test_clients_that_go_away_are_unsubscribed(committed_demo, web):
    url = web(CONTROLPLANE_STREAM_KEEPALIVE_SECONDS=1)
    streams = [Stream(url, "/api/audit-events/stream") for _ in range(5)]
    for stream in streams:
        stream.preamble()
    assert (open_streams(url)["open"], open_streams(url)["subscriptions"]) == (5, 5)
    for stream in streams[:3]:
        stream.close()
    # One vanishes without a word: its socket is reset, not closed.
    streams[3].conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    streams[3].close()
    wait_for(lambda: open_streams(url)["open"] == 1, 10, "four subscriptions to be released")
    streams[4].close()
    wait_for(lambda: open_streams(url)["subscriptions"] == open_streams(url)["open"] == 0, 10, "zero subscribers")


def test_an_open_stream_holds_no_thread(committed_demo, web):
    url = web()
    status = open_streams(url)
    threads = lambda: len(os.listdir(f"/proc/{status['pid']}/task"))  # noqa: E731
    before = threads()
    streams = [Stream(url, "/api/audit-events/stream", role=role) for role in ("viewer", "deployer") for _ in range(15)]
    for stream in streams:
        stream.preamble()
    assert open_streams(url)["open"] == 30
    # Each stream's catch-up ran in a request thread; once it waits on its queue it lets the thread go.
    wait_for(lambda: threads() <= before + 3, 10, "30 streams to wait on queues (and one feed thread), not in threads")
    Api("admin").post("/api/environments/", {"name": "threadless"})
    assert all(audit_data(s.events(until=kind("audit")))[0]["metadata"]["name"] == "threadless" for s in streams)
    for stream in streams:
        stream.close()


def exited(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"  # a zombie, not reaped yet
    except FileNotFoundError:
        return True


def test_stopping_the_server_ends_its_streams_at_once(committed_demo, web, tmp_path):
    url = web(own=True)
    streams = [Stream(url, "/api/audit-events/stream"), Stream(url, "/api/workflow-runs/run-456/logs/stream?after=1")]
    stream = streams[0]
    stream.preamble()
    pid = open_streams(url)["pid"]
    stopped = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    assert stream.events() == []  # the stream ends: the client reconnects, to another process
    wait_for(lambda: exited(pid), 10, "the server to exit")
    # Not held until the grace period is out, when the worker cancels what is left (and logs each as an error).
    assert time.monotonic() - stopped < GRACEFUL_SHUTDOWN_SECONDS
    assert "Exception in ASGI application" not in (tmp_path / "web-1.log").read_text()
    for s in streams:
        s.close()


@pytest.mark.parametrize(
    ("path", "role", "status"),
    [
        ("/api/audit-events/stream", None, 401),
        ("/api/workflow-runs/run-456/logs/stream", None, 401),
        ("/api/workflow-runs/run-nope/logs/stream", "viewer", 404),
        ("/api/audit-events/stream?after=-1", "viewer", 400),
        ("/api/audit-events/stream?since=2024-01-01T00:00:00Z", "viewer", 400),  # the list's, not the stream's
    ],
)
def test_refusals(committed_demo, client, path, role, status):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {TOKENS[role]}"} if role else {}
    assert client.get(path, **headers).status_code == status


def test_the_streams_status_shows_a_viewer_their_own_and_an_admin_the_process(db, client):
    viewer = client.get("/api/streams/", HTTP_AUTHORIZATION=f"Bearer {TOKENS['viewer']}").json()
    assert viewer == {"yours": 0, "perPrincipalLimit": 20, "serverLimit": 2000}
    admin = client.get("/api/streams/", HTTP_AUTHORIZATION=f"Bearer {TOKENS['admin']}").json()
    assert admin == {**viewer, "open": 0, "subscriptions": 0, "pid": os.getpid()}


def test_a_revoked_api_tokens_stream_ends_within_its_keep_alive(committed_demo, web):
    url, admin = web(CONTROLPLANE_STREAM_KEEPALIVE_SECONDS=1), Api("admin")
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 86400))
    issued = admin.post("/api/tokens/", {"name": "ci", "role": "viewer", "expiresAt": expires}).json()
    stream = Stream(url, "/api/audit-events/stream", role=None, headers={"Authorization": f"Bearer {issued['token']}"})
    assert stream.status == 200
    stream.preamble()
    assert admin.delete(f"/api/tokens/{issued['id']}/").status_code == 204
    started = time.monotonic()
    # The revocation's own event may still come; then the stream ends, the connection closed.
    assert [e["action"] for e in audit_data(stream.events())] in ([], ["token.revoke"])
    assert time.monotonic() - started < 10
    stream.close()
