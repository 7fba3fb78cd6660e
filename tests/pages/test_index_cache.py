"""The services index (`/`) served from its cache (overview.views.index, controlplane.holes): its content is
rendered once per version of the data (the audit trail's head), page and filters, and each request gets its own
shell (who is signed in, their navigation, the CSRF token) and what the clock or the run logs change (how long
ago, when the header asks again, a rollout's step). A write shows at once; a principal never sees another's
shell; a page rendered earlier reads as of now. Django's client with time frozen, then a real browser."""

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
import requests
import time_machine
from django.db import connection
from django.template import Context, Template
from django.test import Client
from django.test.utils import CaptureQueriesContext
from playwright.sync_api import expect

from controlplane import holes
from controlplane.identity.context import Principal
from controlplane.identity.roles import Role
from incidents import lifecycle as incidents
from incidents.models import Incident
from releases import lifecycle
from releases.models import RunLogEntry, WorkflowRun
from services.models import ChangeWindow, Environment, Service
from tests.api.test_queries import grow
from tests.api.test_shared_cache import REDIS_URL, needs_redis, shared  # noqa: F401 - a fixture
from tests.conftest import TOKENS, sign_in
from tests.pages.conftest import CHROMIUM
from tests.pages.test_index_progress import rolling_out

# With the session and its user: the trail's head, then (a miss) the content computed: the environments, the
# freezes not ended (and the windows they name, when one does: tests/pages/test_policies.py), the page of
# services, their deployment rows, their service states, the drifted targets (releases.drift.drifted_pairs), the
# runs' tiles and the incidents' tile. A rollout on the page adds its progress, per request.
HIT = 3
MISS = 11
MONDAY = datetime(2026, 12, 7, 10, 1, tzinfo=UTC)


def get(client, path: str = "/") -> tuple[str, int]:
    """The page's HTML, and the queries it took."""
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200, response.content[:500]
    return response.content.decode(), len(captured)


def main(html: str) -> str:
    return html.split("<main", 1)[1]


def header(html: str) -> str:
    return html.split("<main", 1)[0]


def tile(html: str, label: str) -> str:
    return re.search(rf'<span class="value">([^<]+)</span>\s*<span class="label">{label}', html)[1]


@pytest.fixture
def viewer(db):
    return sign_in(Client(), "viewer")


def signed_in() -> Client:
    """A viewer signed in now, frozen time included (a session lasts 8 hours)."""
    return sign_in(Client(), "viewer")


# --- versions, and what each request gets ---


@pytest.mark.django_db
def test_a_hit_reads_the_trail_s_head_alone_at_any_size(viewer):
    grow(2)
    assert [get(viewer)[1], get(viewer)[1]] == [MISS, HIT]
    grow(12)
    assert [get(viewer)[1], get(viewer)[1]] == [MISS, HIT]


@pytest.mark.django_db
def test_a_write_shows_on_the_next_request(viewer):
    grow(3)
    before, _ = get(viewer)
    assert 'id="row-svc-1"' in before and "1 open</a>" in before
    Incident(service_id="svc-1", severity="critical", link="https://pd.example.com/y").save()
    after, queries = get(viewer)
    assert queries == MISS
    row = after.split('id="row-svc-1"', 1)[1].split("</tr>", 1)[0]
    assert 'class="badge critical"' in row and "2 open</a>" in row and "incident.create" in row
    assert tile(after, "open incidents") == "4"
    incidents.resolve(Incident.objects.get(service_id="svc-1", severity="critical"))
    assert "1 open</a>" in get(viewer)[0].split('id="row-svc-1"', 1)[1].split("</tr>", 1)[0]


@pytest.mark.django_db
def test_each_principal_gets_their_own_shell_around_the_same_content(db, settings):
    other = "another-viewer-token-0123456789"
    tokens = {**settings.CONTROLPLANE["devTokens"], other: {"id": "ci-reader", "role": "viewer"}}
    settings.CONTROLPLANE = {**settings.CONTROLPLANE, "devTokens": tokens}
    grow(2)
    viewer, deployer, admin = (sign_in(Client(), role) for role in ("viewer", "deployer", "admin"))
    reader = Client()
    assert reader.post("/login/", {"token": other}).status_code == 302
    seen, _ = get(viewer)
    as_admin, queries = get(admin)
    as_deployer, _ = get(deployer)
    as_reader, _ = get(reader)
    again, _ = get(viewer)
    assert queries == HIT  # the viewer's content served the admin
    assert main(as_admin) == main(seen) == main(as_deployer) == main(as_reader)
    assert "ci-reader · viewer" in header(as_reader) and "dev-viewer" not in as_reader
    assert "dev-admin · admin" in header(as_admin) and 'href="/admin/"' in header(as_admin)
    assert "dev-deployer · deployer" in header(as_deployer) and 'href="/admin/"' not in header(as_deployer)
    assert 'id="approvals-count"' in header(as_deployer)  # a deployer may approve: the count is there
    for html in (seen, again):
        assert "dev-viewer · viewer" in header(html) and "dev-admin" not in header(html) and "dev-deployer" not in html
        assert 'href="/admin/"' not in html and 'id="approvals-count"' not in html


@pytest.mark.django_db
def test_the_sign_out_form_carries_a_token_of_this_request(db):
    grow(2)
    client = Client(enforce_csrf_checks=True)
    login = client.get("/login/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login)[1]
    assert client.post("/login/", {"token": TOKENS["viewer"], "csrfmiddlewaretoken": token}).status_code == 302
    tokens = []
    for _ in range(2):  # computed, then from the cache
        html = client.get("/").content.decode()
        tokens.append(re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)[1])
    assert tokens[0] != tokens[1]  # masked afresh for each response, never a cached one
    assert client.post("/logout/", {"csrfmiddlewaretoken": tokens[1]}).status_code == 302
    assert client.get("/").status_code == 302  # signed out


@pytest.mark.django_db
def test_filters_and_pages_are_kept_apart(viewer, monkeypatch):
    from overview import views

    grow(3)
    monkeypatch.setattr(views, "INDEX_PAGE_SIZE", 2)
    for _ in range(2):  # computed, then from the cache
        one, two = get(viewer, "/?q=svc 1")[0], get(viewer, "/?q=svc 2")[0]
        assert 'id="row-svc-1"' in one and 'id="row-svc-2"' not in one and 'value="svc 1"' in one
        assert 'id="row-svc-2"' in two and 'id="row-svc-1"' not in two and 'value="svc 2"' in two
        first = get(viewer)[0]
        following = re.search(r'href="([^"]+)" rel="next"', first)[1].replace("&amp;", "&")
        second = get(viewer, following)[0]
        assert 'id="row-svc-0"' in first and 'id="row-svc-0"' not in second and 'id="row-svc-2"' in second
        assert 'rel="prev"' in second and 'rel="prev"' not in first
    assert viewer.get("/?adapter=nonsense").status_code == 400 == viewer.get("/?adapter=nonsense").status_code


@pytest.mark.django_db
def test_the_page_has_a_setting_of_its_own(viewer, settings):
    grow(2)
    settings.INDEX_CACHE = False  # the API's index computed: the page is still cached
    assert [get(viewer)[1], get(viewer)[1]] == [MISS, HIT]
    settings.INDEX_PAGE_CACHE = False  # computed every time, without reading the head
    assert [get(viewer)[1], get(viewer)[1]] == [MISS - 1, MISS - 1]
    Incident(service_id="svc-1", severity="critical", link="https://pd.example.com/y").save()
    assert "2 open</a>" in get(viewer)[0]


@pytest.mark.django_db
def test_a_name_that_reads_like_a_hole_is_text(viewer):
    grow(1)
    service = Service.objects.get(pk="svc-0")
    service.name = "<!--hole:csrf--> --><!--/hole--> <!--hole:content-->"
    service.save()
    for _ in range(2):
        html = get(viewer)[0]
        assert "&lt;!--hole:csrf--&gt; --&gt;&lt;!--/hole--&gt; &lt;!--hole:content--&gt;" in html
        assert "<!--" not in html  # every hole filled, none made of data


@needs_redis
@pytest.mark.django_db
@pytest.mark.usefixtures("shared")  # the real Redis, under a prefix of this test's own
def test_the_content_is_shared_through_redis_for_as_long_as_time_leaves_it_true(settings):
    with time_machine.travel(MONDAY.replace(minute=13), tick=False):
        viewer = signed_in()
        grow(2)
        assert [get(viewer)[1], get(viewer)[1]] == [MISS, HIT]
        client = redis.Redis.from_url(REDIS_URL)
        (key,) = client.scan_iter(match=f"{settings.CACHES['default']['KEY_PREFIX']}:*")
        assert 0 < client.ttl(key) <= 120  # until 10:15, the next quarter hour, not the 300 s of the API's pages
        Incident(service_id="svc-1", severity="critical", link="https://pd.example.com/y").save()
        html, queries = get(viewer)
        assert queries == MISS and "2 open</a>" in html


# --- the clock ---


@pytest.mark.django_db
def test_times_read_as_of_each_request(db):
    with time_machine.travel(MONDAY, tick=False) as clock:
        viewer = signed_in()
        grow(2)
        html, _ = get(viewer)
        assert "active <time" in html and ">4 min ago<" not in html
        assert tile(html, "deploys and promotions started today") == "8"
        clock.shift(timedelta(minutes=4))
        html, queries = get(viewer)
        assert queries == HIT
        assert html.count(">4 min ago</time>") == 2 * 2 + 2  # each service: its two current releases, its last change
        assert ">just now</time>" not in html
        clock.shift(timedelta(days=1))  # rendered yesterday, read today
        html, queries = get(signed_in())
        assert queries == MISS
        assert html.count(">1 d ago</time>") == 6 and tile(html, "deploys and promotions started today") == "0"


@pytest.mark.django_db
def test_a_new_day_counts_its_own_deploys_before_the_cache_would_let_go(db):
    with time_machine.travel(datetime(2026, 12, 7, 23, 58, tzinfo=UTC), tick=False) as clock:
        viewer = signed_in()
        grow(2)
        assert tile(get(viewer)[0], "deploys and promotions started today") == "8"
        clock.shift(timedelta(minutes=3))  # 00:01: under the 5 minutes the cache keeps anything
        assert tile(get(viewer)[0], "deploys and promotions started today") == "0"


@pytest.mark.django_db
def test_a_run_leaving_the_seven_days_leaves_the_failure_rate(make_release):
    with time_machine.travel(MONDAY - timedelta(days=7) + timedelta(minutes=2), tick=False) as clock:
        release = make_release()
        lifecycle.begin_rollout(release)
        run = WorkflowRun(kind="Deploy", release=release, actor="bot")
        run.save()
        lifecycle.end_rollout(run, succeeded=False)
        clock.move_to(MONDAY)
        viewer = signed_in()
        grow(2)  # a second service: four runs that succeed, today
        assert "(1 of 5 finished runs failed)" in get(viewer)[0]
        clock.shift(timedelta(minutes=3))  # 10:04: the failed run is 7 days and a minute old
        html = get(viewer)[0]
        assert "(0 of 4 finished runs failed)" in html and tile(html, "change failure rate, 7 days") == "0%"


@pytest.mark.django_db
def test_the_header_reads_as_of_each_request_and_changes_when_the_window_closes(db):
    with time_machine.travel(MONDAY.replace(minute=5, second=30), tick=False) as clock:
        viewer = signed_in()
        grow(1)
        ChangeWindow(name="short", timezone="UTC", days=[1, 2, 3, 4, 5, 6, 7], start="09:00", end="10:07").save()
        alpha = Environment.objects.get(name="alpha")
        alpha.policy_refs = ["policy:change-window:short"]
        alpha.save()
        html, _ = get(viewer)
        assert "open · closes 10:07 UTC" in html and 'data-live-refresh-in="91"' in html
        clock.shift(timedelta(seconds=30))
        html, queries = get(viewer)
        assert queries == HIT and 'data-live-refresh-in="61"' in html
        clock.move_to(MONDAY.replace(minute=7, second=1))  # before the cache's 5 minutes, or the quarter hour
        html, queries = get(viewer)
        assert queries == MISS + 1  # the window named: read with the freezes
        assert "closed · opens Tue 09:00 UTC" in html and "closes 10:07" not in html


# --- the run log ---


@pytest.mark.django_db
def test_a_rollout_s_step_shows_though_no_audit_event_says_so(viewer, make_release):
    release = make_release(version="2026.12.07 <beta>")
    run = rolling_out(release, planned=4, done=1)
    html, queries = get(viewer)
    assert 'aria-label="2026.12.07 &lt;beta&gt;: step 1 of 4"' in html and queries == MISS + 1
    RunLogEntry(run=run, message="k8s: s1 done", meta={"step": "s1"}).save()  # the log only: the head stays
    html, queries = get(viewer)
    assert queries == HIT + 1 and "step 2 of 4</span>" in html and "step 1 of 4" not in html
    row = viewer.get(f"/?fragment=row&id={release.service_id}").content.decode()
    assert '<progress max="4" value="2"' in row and "<!--" not in row


# --- the holes themselves ---


def test_a_page_is_written_again_with_each_hole_s_text():
    html = f"<p>{holes.marker('ago', 1, default='x')} and {holes.marker('name', 'a b', '--> <', default='y')}</p>"
    holed = holes.Holed.of(html)
    assert holed.args("name") == [("a b", "--> <")]
    assert holed.fill({"ago": lambda at: f"[{at}]", "name": lambda *a: "|".join(a)}) == "<p>[1] and a b|--> <</p>"
    assert holes.Holed.of("<p>none</p>").fill({}) == "<p>none</p>"


def test_a_shell_writes_the_csrf_token_and_the_nonce_of_each_response(settings, tmp_path, rf):
    shell = '{% extends "base.html" %}{% block head %}<style nonce="{{ request.csp_nonce }}"></style>{% endblock %}'
    (tmp_path / "shell.html").write_text(shell + "{% block content %}{{ content }}{% endblock %}")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}]
    pages = []
    for nonce in ("first-nonce", "second-nonce"):
        request = rf.get("/")
        request.principal, request.csp_nonce = Principal("dev-viewer", Role.VIEWER, "devToken"), nonce
        pages.append(holes.page(request, "shell.html", "<p>the content</p>"))
        assert request.META["CSRF_COOKIE_NEEDS_UPDATE"]  # the middleware sets the cookie the token belongs to
    assert '<style nonce="first-nonce">' in pages[0] and '<style nonce="second-nonce">' in pages[1]
    assert all("<p>the content</p>" in page and "dev-viewer · viewer" in page for page in pages)
    tokens = [re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1] for page in pages]
    assert tokens[0] != tokens[1]


@pytest.mark.django_db
def test_an_ago_served_as_rendered_shows_its_time_then():
    with time_machine.travel(MONDAY, tick=False):
        html = Template("{% load ui %}{% ago t %}").render(Context({"t": MONDAY - timedelta(minutes=5)}))
        assert html.startswith('<time datetime="2026-12-07T09:56:00Z"><!--hole:ago ')
        assert html.endswith("-->5 min ago<!--/hole--></time>")
        assert holes.Holed.of(html).fill({"ago": holes.filling_ago()}) == (
            '<time datetime="2026-12-07T09:56:00Z">5 min ago</time>'
        )


# --- in a real browser, through the real server ---


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing (make test installs it)")
@pytest.mark.django_db(transaction=True)
def test_two_principals_on_the_cached_index_in_a_browser(committed_demo, web, watched):
    base = web()
    admin = watched(base)
    admin_page = admin.sign_in("admin", then="/")
    viewer = watched(base)
    page = viewer.sign_in("viewer", then="/")  # the admin's content, from the server's cache
    expect(page.locator(".who")).to_have_text("dev-viewer · viewer")
    expect(page.get_by_role("link", name="Admin")).to_have_count(0)
    expect(admin_page.locator(".who")).to_have_text("dev-admin · admin")
    expect(admin_page.get_by_role("link", name="Admin")).to_have_count(1)
    expect(page.locator("#row-svc-demo .badge.high")).to_have_text("1 open")

    created = requests.post(
        f"{base}/api/incidents/",
        json={"serviceId": "svc-demo", "severity": "critical", "link": "https://pd.example.com/cached"},
        headers={"Authorization": f"Bearer {TOKENS['deployer']}"},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    page.reload()
    expect(page.locator("#row-svc-demo .badge.critical")).to_have_text("2 open")
    expect(page.locator("#row-svc-demo time").first).to_have_attribute("datetime", re.compile(r"^\d{4}-.*Z$"))
    viewer.clean()  # everything up to here
    before = len(viewer.errors)
    page.get_by_role("button", name="Sign out").click()  # the form's token is this response's
    page.wait_for_url("**/login/**")
    # A live request the page still had going as its session ended may be refused (401): the page is leaving.
    assert all("401" in error for error in viewer.errors[before:]), viewer.errors
    admin.clean()
