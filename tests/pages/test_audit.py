"""/audit/: the audit stream, newest first, with the list's filters, keyset "older" pages, each event linking
to its subject; live (audit.js on live.js's events) with pause and resume, in a real browser."""

import html
import json
import re
from pathlib import Path

import pytest
import requests
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from playwright.sync_api import expect

from audit.models import AuditEvent
from audit.writer import record
from tests.conftest import TOKENS, sign_in
from tests.pages.conftest import CHROMIUM

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
    assert "data-live-audit" in page and "controlplane/audit.js" in page and "controlplane/live.js" in page


def test_filters_apply_and_are_handed_to_the_script(demo):
    record("service.update", "Service", "svc-demo", {}, service_id="svc-demo")
    record("environment.update", "Environment", "env-prod", {})
    page = viewer().get("/audit/?subjectType=Environment&since=2020-01-01T00:00:00Z").content.decode()
    rows = seqs(page)
    assert rows and all(AuditEvent.objects.get(seq=s).subject_type == "Environment" for s in rows)
    filters = json.loads(html.unescape(re.search(r'data-filters="([^"]*)"', page).group(1)))
    assert filters == {"subjectType": "Environment", "since": "2020-01-01T00:00:00+00:00"}
    bad = viewer().get("/audit/?since=yesterday")
    assert bad.status_code == 200 and "since:" in bad.content.decode() and "data-live-audit" not in bad.content.decode()


def test_older_pages_by_sequence_number(demo):
    for n in range(60):
        record("service.update", "Service", "svc-demo", {"n": n}, service_id="svc-demo")
    first = viewer().get("/audit/?serviceId=svc-demo").content.decode()
    older = re.search(r'href="(\?[^"]*before=[^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    second = viewer().get(f"/audit/{older}").content.decode()
    assert len(seqs(first)) == 50 and max(seqs(second)) < min(seqs(first))
    assert len(seqs(first)) + len(seqs(second)) == AuditEvent.objects.filter(service_id="svc-demo").count()
    assert "data-live-audit" not in second  # an older page stays still


@pytest.mark.parametrize("before", ["\u00b2", "abc", "-1", "99999999999999999999999999", "\u0661"])
def test_an_odd_older_key_reads_as_the_first_page(demo, before):
    response = viewer().get("/audit/", {"before": before})  # "²" passes str.isdigit but not int()
    assert response.status_code == 200 and seqs(response.content.decode())


def test_event_data_is_escaped(demo):
    record("service.update", "Service", "<img src=x onerror=alert(1)>", {}, service_id="svc-demo")
    page = viewer().get("/audit/").content.decode()
    assert "<img src=x" not in page and "&lt;img src=x" in page


AUDIT_PAGE = 3  # the session, its user, the page of events


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

    page.goto(f"{base}/audit/")  # the whole trail, the demo's events among them, each linking to its subject
    expect(page.locator("#audit-rows a[href='/releases/rel-123/']").first).to_be_visible()
    user.clean()
    user.screenshots("audit")
