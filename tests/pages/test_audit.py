"""/audit/: the audit stream, newest first, with the list's filters, keyset "older" pages, each event linking
to its subject; live (audit.js on live.js's events) with pause and resume, in a real browser."""

import html
import json
import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from playwright.sync_api import expect

from audit.models import AuditEvent
from audit.writer import record
from controlplane.timestamps import rfc3339
from tests.conftest import TOKENS, sign_in
from tests.pages.conftest import CHROMIUM
from tests.workflows.test_streams import Stream, audit_data, kind

pytestmark = pytest.mark.django_db


def viewer() -> Client:
    return sign_in(Client(), "viewer")


def seqs(page: str) -> list[int]:
    return [int(s) for s in re.findall(r'<tr data-seq="(\d+)"', page)]


def test_signed_out_is_sent_to_sign_in():
    response = Client().get("/audit/")
    assert response.status_code == 302 and response["Location"] == "/login/?next=%2Faudit%2F"


def test_events_newest_first_each_linking_to_its_subject(demo):
    record("deploy.create", "Release", "rel-123", {"runId": "run-9"}, service_id="svc-demo")
    record("incident.acknowledge", "Incident", "inc-789", {}, service_id="svc-demo")
    record("environment.update", "Environment", "env-prod", {})
    record("service.update", "Service", "svc-demo", {}, service_id="svc-demo")
    page = viewer().get("/audit/").content.decode()
    assert seqs(page) == sorted(seqs(page), reverse=True) and len(seqs(page)) == AuditEvent.objects.count()
    for href in (
        '/releases/rel-123/"',
        '/runs/run-9/"',
        '/incidents/?serviceId=svc-demo#inc-789"',
        '/environments/env-prod/"',
        '/services/svc-demo/"',
    ):
        assert f'href="{href}' in page, href
    assert "data-live-stream" in page and "controlplane/audit.js" in page and "controlplane/live.js" in page


def handed(page: str) -> dict:
    """The first page's data attributes for audit.js and live.js (none when the page is not live)."""
    section = re.search(r'<section id="audit-stream"([^>]*)>', page).group(1)
    return {name: html.unescape(value) for name, value in re.findall(r'data-([a-z-]+)="([^"]*)"', section)}


def test_filters_apply_and_the_page_names_the_stream_with_them(demo):
    record("service.update", "Service", "svc-demo", {}, service_id="svc-demo")
    actor = record("environment.update", "Environment", "env-prod", {}).actor
    client = viewer()
    query = {"subjectType": "Environment", "actor": f" {actor}", "since": "2020-01-01T00:00:00Z", "until": ""}
    page = client.get("/audit/", query).content.decode()
    rows = seqs(page)
    assert rows and all(AuditEvent.objects.get(seq=s).subject_type == "Environment" for s in rows)
    live = handed(page)
    # The exact filters as the list read them (stripped; the empty one left out), for the server to match; a
    # since already past bounds no new event, and no until leaves the window open.
    stream = urlsplit(live["live-stream"])
    assert stream.path == "/api/audit-events/stream"
    head = str(AuditEvent.objects.order_by("-seq").first().seq)  # where the page read the trail: it goes on from there
    assert parse_qs(stream.query) == {"subjectType": ["Environment"], "actor": [actor], "after": [head]}
    assert live["live-start"] == live["live-end"] == ""
    assert client.head(live["live-stream"]).status_code == 200  # a query the stream takes
    assert "live-stream" not in handed(client.get("/audit/?since=yesterday").content.decode())  # not valid: still


def test_the_window_for_new_events_comes_from_since_and_until(demo):
    client = viewer()
    ahead, behind = timezone.now() + timedelta(hours=1), timezone.now() - timedelta(hours=1)
    later = handed(
        client.get(
            "/audit/", {"since": ahead.isoformat(), "until": (ahead + timedelta(hours=1)).isoformat()}
        ).content.decode()
    )
    assert (later["live-start"], later["live-end"]) == (rfc3339(ahead), rfc3339(ahead + timedelta(hours=1)))
    # No exact filter: the whole trail, from where the page read it.
    assert later["live-stream"] == f"/api/audit-events/stream?after={AuditEvent.objects.order_by('-seq').first().seq}"
    # An until already past: no new event can match, so the page is a still list, with no stream and no Pause.
    ended = client.get("/audit/", {"until": behind.isoformat()}).content.decode()
    assert handed(ended) == {} and 'id="audit-pause"' not in ended and seqs(ended)
    empty = client.get("/audit/", {"since": ahead.isoformat(), "until": ahead.isoformat()}).content.decode()
    assert handed(empty) == {}


def test_the_script_gets_the_links_the_rows_have(demo):
    """data-pages' URL templates, filled in as audit.js fills them, make the rendered rows' links."""
    record("deploy.create", "Release", "rel-123", {"runId": "run-9"}, service_id="svc-demo")
    record("incident.acknowledge", "Incident", "inc-789", {}, service_id="svc-demo")
    record("environment.update", "Environment", "env-prod", {})
    record("service.update", "Service", "svc-demo", {}, service_id="svc-demo")
    record("service.update", "Service", "svc 1/é", {}, service_id="svc 1/é")
    record("thing.do", "Thing", "t-1", {})
    page = viewer().get("/audit/").content.decode()
    pages = json.loads(handed(page)["pages"])

    def fill(template: str, fields: dict) -> str:  # audit.js's fill: {name} → encodeURIComponent(value)
        return re.sub(r"\{(\w+)\}", lambda m: quote(fields.get(m.group(1)) or "", safe="!'()*"), template)

    for event in AuditEvent.objects.filter(
        action__in=("deploy.create", "incident.acknowledge", "environment.update", "service.update", "thing.do")
    ):
        fields = {"subjectId": event.subject_id, "serviceId": event.service_id, "runId": event.metadata.get("runId")}
        cells = re.search(rf'<tr data-seq="{event.seq}">(.*?)</tr>', page, re.S).group(1)
        expected = set()
        if event.subject_type in pages["subject"]:
            expected.add(fill(pages["subject"][event.subject_type], fields))
        if fields["serviceId"]:
            expected.add(fill(pages["service"], fields))
        if fields["runId"]:
            expected.add(fill(pages["run"], fields))
        assert {html.unescape(h) for h in re.findall(r'href="([^"]*)"', cells)} == expected, event.action
    assert 'href="/services/svc%201%2F%C3%A9/"' in page and 'href="/incidents/?serviceId=svc-demo#inc-789"' in page


def test_older_pages_by_sequence_number(demo):
    for n in range(60):
        record("service.update", "Service", "svc-demo", {"n": n}, service_id="svc-demo")
    first = viewer().get("/audit/?serviceId=svc-demo").content.decode()
    older = re.search(r'href="(\?[^"]*before=[^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    second = viewer().get(f"/audit/{older}").content.decode()
    assert len(seqs(first)) == 50 and max(seqs(second)) < min(seqs(first))
    assert len(seqs(first)) + len(seqs(second)) == AuditEvent.objects.filter(service_id="svc-demo").count()
    assert "data-live-stream" not in second  # an older page stays still


@pytest.mark.parametrize("before", ["\u00b2", "abc", "-1", "99999999999999999999999999", "\u0661"])
def test_an_odd_older_key_reads_as_the_first_page(demo, before):
    response = viewer().get("/audit/", {"before": before})  # "²" passes str.isdigit but not int()
    assert response.status_code == 200 and seqs(response.content.decode())


def test_event_data_is_escaped(demo):
    record("service.update", "Service", "<img src=x onerror=alert(1)>", {}, service_id="svc-demo")
    page = viewer().get("/audit/").content.decode()
    assert "<img src=x" not in page and "&lt;img src=x" in page


AUDIT_PAGE = 4  # the session, its user, the trail's head (where the live rows go on from), the page of events


@pytest.mark.parametrize("path", ["/audit/", "/audit/?serviceId=svc-demo", "/audit/?before=40&action=service.update"])
def test_query_count_is_constant(demo, path):
    client = viewer()

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(path).status_code == 200
        return len(captured)

    small = count()
    for n in range(120):
        record("service.update", "Service", "svc-demo", {"n": n}, service_id="svc-demo")
    assert small == count() == AUDIT_PAGE


@pytest.mark.django_db(transaction=True)  # the real server sees committed rows only
def test_an_event_between_the_page_and_its_stream_still_arrives(committed_demo, web):
    """The page lists the trail as it read it; its script opens the stream it names a moment later. What was
    recorded in that moment (a matching event, here) arrives on the stream: it starts where the page read."""
    page = viewer().get("/audit/", {"action": "incident.create"}).content.decode()
    shown = seqs(page)
    stream_path = handed(page)["live-stream"]
    between = record("incident.create", "Incident", "inc-between", {}, service_id="svc-demo")
    record("incident.acknowledge", "Incident", "inc-between", {}, service_id="svc-demo")  # not for this page
    # Opened as EventSource opens it; a stream that has nothing to send ends after a second.
    stream = Stream(web(CONTROLPLANE_STREAM_MAX_SECONDS=1), stream_path)
    assert stream.preamble() < between.seq
    arrived = audit_data(stream.events(until=kind("audit")))
    stream.close()
    assert [(e["seq"], e["action"]) for e in arrived] == [(between.seq, "incident.create")]
    assert between.seq not in shown


def api(base: str, method: str, path: str, body: dict | None = None, role: str = "deployer") -> dict:
    response = requests.request(method, f"{base}{path}", json=body, headers={"Authorization": f"Bearer {TOKENS[role]}"})
    assert response.status_code < 300, response.text
    return response.json()


def create_incident(base: str, title: str) -> str:
    body = {"serviceId": "svc-demo", "severity": "medium", "title": title, "link": "https://pd.example.com/a"}
    return api(base, "POST", "/api/incidents/", body)["id"]


@pytest.mark.usefixtures("committed_demo")
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing (make test installs it)")
@pytest.mark.django_db(transaction=True)  # the real server sees committed rows only
def test_in_the_browser_events_arrive_live_filtered_and_pause_holds_them(watched, web):
    base = web()
    user = watched(base)
    page = user.sign_in("viewer", then="/audit/?action=incident.create")
    expect(page.locator("html")).to_have_attribute("data-live", "on")
    assert page.get_by_role("button", name="Create an incident").count() == 0  # a viewer: nothing to write here
    rows = page.locator("#audit-rows tr")
    expect(rows).to_have_count(0)

    first = create_incident(base, "first")
    expect(rows.first.get_by_role("link", name=first)).to_have_attribute(
        "href", f"/incidents/?serviceId=svc-demo#{first}"
    )
    expect(rows.first).to_contain_text("incident.create")
    api(base, "POST", f"/api/incidents/{first}/acknowledge/")  # not incident.create: the filter keeps it out
    second = create_incident(base, "second")
    expect(rows.first.get_by_role("link", name=second)).to_be_visible()
    expect(rows).to_have_count(2)

    page.get_by_role("button", name="Pause").click()
    assert page.evaluate("document.documentElement.dataset.livePaused") == "true"
    held = create_incident(base, "held")
    expect(page.locator("#audit-held")).to_have_text("1 new event held while paused.")
    expect(rows).to_have_count(2)
    user.screenshots("audit-paused")
    page.get_by_role("button", name="Resume").click()
    expect(rows.first.get_by_role("link", name=held)).to_be_visible()
    expect(page.locator("#audit-held")).to_have_text("Resumed: 1 event held while paused added.")
    expect(rows).to_have_count(3)
    # One stream, the audit stream with the page's filter: the server matches it.
    (stream,) = [url for url in user.requests if "/api/audit-events/stream" in url]
    assert stream.startswith(f"{base}/api/audit-events/stream?action=incident.create&after=")

    # A page whose until is ahead takes new events (their times, as the stream sends them, are before it).
    ahead = rfc3339(timezone.now() + timedelta(hours=1))
    page.goto(f"{base}/audit/?action=incident.create&until={quote(ahead)}")
    expect(page.locator("html")).to_have_attribute("data-live", "on")
    fourth = create_incident(base, "fourth")
    expect(rows.first.get_by_role("link", name=fourth)).to_be_visible()

    page.goto(f"{base}/audit/")  # the whole trail, the demo's events among them, each linking to its subject
    expect(page.locator("#audit-rows a[href='/releases/rel-123/']").first).to_be_visible()
    user.clean()
    user.screenshots("audit")
