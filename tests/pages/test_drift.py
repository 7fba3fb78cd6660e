"""Live adapters on the pages: an environment's mode (simulated, or live through its connection) and its Drift
section (what the last check saw, "Check now" for a deployer, the domain's refusal where it simulates), the
services index's "drifted" badge, and a run's mode on the release and run pages. Django's client with
observations written directly (no platform), then the same in a real browser against the real server."""

import json
import re
from pathlib import Path

import pytest
from django.test import Client, override_settings
from playwright.sync_api import expect

from controlplane import connections
from releases.models import Observation, WorkflowRun
from tests.conftest import TOKENS, emptied_cache, sign_in
from tests.live import CHROMIUM
from tests.platforms import ELSEWHERE, IMAGE, connect, observe

K8S_TEST = '{"k8s-test": {"adapter": "k8s", "kubeconfig": "/nonexistent"}}'  # the real server's setting


@pytest.fixture
def k8s_test(settings):
    settings.CONTROLPLANE_CONNECTIONS = connections.parse(json.loads(K8S_TEST))


@pytest.fixture
def cluster(k8s_platform):
    """k8s-test's cluster: an emulated one (tests/platforms.py), in a namespace of the test's own; nothing runs there
    unless a test puts it there."""
    return k8s_platform


def page(role: str, path: str) -> str:
    response = sign_in(Client(), role).get(path)
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


def section(html: str, element_id: str) -> str:
    """The element with that id, up to the end of its tag's first close (enough for the tests' assertions)."""
    start = html.index(f'id="{element_id}"')
    tag = html.rfind("<", 0, start)
    name = re.match(r"<(\w+)", html[tag:])[1]
    return html[tag : html.index(f"</{name}>", start)]


pytestmark = pytest.mark.django_db


# --- an environment's page ---


def test_a_simulated_environment_says_so_and_offers_no_check(demo):
    html = page("deployer", "/environments/env-staging/")
    assert '<span class="badge simulated">simulated</span>' in section(html, "environment-mode")
    drift = section(html, "drift")
    assert "env-staging names no connection: its adapters simulate, so nothing runs there to compare" in drift
    assert "Check now" not in drift and "<table" not in drift


def test_a_live_environment_shows_its_connection_and_what_the_last_check_saw(demo, k8s_test):
    connect("env-staging", "svc-demo")
    html = page("viewer", "/environments/env-staging/")
    mode = section(html, "environment-mode")
    assert '<span class="badge live">live</span> · <span class="mono">k8s-test</span>' in mode
    assert "(k8s, context (current))" in mode
    drift = section(html, "drift")
    assert 'Last checked: <span class="muted">never</span>' in drift and "<table" not in drift
    # A viewer sees the button, disabled, and the role it needs.
    assert '<button type="button" disabled>Check now</button>' in drift and "needs the deployer role" in drift

    observe(error="k8s: reading Deployment staging/demo: Unauthorized")
    drift = section(page("viewer", "/environments/env-staging/"), "drift")
    row = section(drift, "drift-svc-demo")
    assert IMAGE in row and ELSEWHERE in row and '<span class="badge drifted">drifted</span>' in row
    assert "could not ask the platform: k8s: reading Deployment staging/demo: Unauthorized" in row
    assert '<span class="badge drifted">1 drifted</span>' in drift and "<time datetime=" in drift

    Observation.objects.update(running=IMAGE, drifted=False, error="")
    drift = section(page("deployer", "/environments/env-staging/"), "drift")
    assert '<span class="badge in-sync">in sync</span>' in drift and "drifted" not in drift
    assert re.search(r'<form method="post" action="/environments/env-staging/drift/"[^>]*>', drift)
    assert 'name="csrfmiddlewaretoken"' in drift and '<button type="submit">Check now</button>' in drift


def test_check_now_asks_the_platform_and_comes_back_to_the_drift(demo, cluster):
    connect("env-staging", "svc-demo")
    client = sign_in(Client(), "deployer")
    response = client.post("/environments/env-staging/drift/")
    assert response.status_code == 302 and response["Location"] == "/environments/env-staging/#drift"
    seen = Observation.objects.get()
    assert (seen.service_id, seen.expected, seen.running, seen.drifted) == ("svc-demo", IMAGE, "", True)
    row = section(client.get("/environments/env-staging/").content.decode(), "drift-svc-demo")
    assert "nothing runs" in row and "badge drifted" in row

    cluster.unreachable()
    client.post("/environments/env-staging/drift/")
    row = section(client.get("/environments/env-staging/").content.decode(), "drift-svc-demo")
    assert "badge drifted" in row and "could not ask the platform: k8s: connection k8s-test: cannot load" in row


def test_check_now_where_the_environment_simulates_is_the_domains_409(demo):
    client = sign_in(Client(), "deployer")
    response = client.post("/environments/env-prod/drift/")
    assert response.status_code == 409
    error = section(response.content.decode(), "drift-error")
    assert 'role="alert"' in error
    assert "env-prod names no connection: its adapters simulate, so nothing runs there to compare" in error
    assert Observation.objects.count() == 0


def test_check_now_needs_the_deployer_role_a_post_and_the_csrf_token(demo, cluster):
    connect("env-staging", "svc-demo")
    viewer = sign_in(Client(), "viewer")
    refused = viewer.post("/environments/env-staging/drift/")
    assert refused.status_code == 403 and "drift.check needs the deployer role" in refused.content.decode()
    deployer = Client(enforce_csrf_checks=True)
    deployer.cookies = sign_in(Client(), "deployer").cookies  # signed in; its POST carries no CSRF token
    assert deployer.get("/environments/env-staging/drift/").status_code == 405
    assert deployer.post("/environments/env-staging/drift/").status_code == 403  # no CSRF token
    assert deployer.post("/environments/env-nope/drift/").status_code == 403
    assert Observation.objects.count() == 0
    assert sign_in(Client(), "deployer").post("/environments/env-nope/drift/").status_code == 404


# --- the services index ---


def _cell(html: str, env_name: str) -> str:
    """svc-demo's cell in the index under the environment `env_name` (the columns are by name: prod, staging)."""
    row = section(html, "row-svc-demo")
    cells = re.findall(r"<td>(.*?)</td>", row, re.S)
    return cells[{"prod": 1, "staging": 2}[env_name]]


def test_the_index_marks_a_drifted_cell(demo, k8s_test):
    connect("env-staging", "svc-demo")
    with override_settings(**emptied_cache(), INDEX_PAGE_CACHE=False):
        assert "badge drifted" not in page("viewer", "/")
        observe()
        html = page("viewer", "/")
        assert "badge drifted" in _cell(html, "staging") and "badge drifted" not in _cell(html, "prod")
        assert 'href="/environments/env-staging/#drift"' in _cell(html, "staging")
        assert "badge drifted" in page("viewer", "/?fragment=row&id=svc-demo")
        Observation.objects.update(drifted=False)
        assert "badge drifted" not in page("viewer", "/")


def test_the_cached_index_shows_a_check_that_found_drift(demo, cluster):
    """The index is kept under the audit trail's head: a check whose verdict changes writes `drift.detected`."""
    connect("env-staging", "svc-demo")
    with override_settings(**emptied_cache(), INDEX_PAGE_CACHE=True):
        assert "badge drifted" not in page("viewer", "/")
        assert sign_in(Client(), "deployer").post("/environments/env-staging/drift/").status_code == 302
        assert "badge drifted" in _cell(page("viewer", "/"), "staging")
        cluster["svc-demo"] = IMAGE
        sign_in(Client(), "deployer").post("/environments/env-staging/drift/")
        assert "badge drifted" not in page("viewer", "/")


# --- a run's mode ---


def test_a_run_shows_its_mode_on_the_release_and_run_pages(demo):
    release = page("viewer", "/releases/rel-123/")
    assert '<td><span class="badge simulated">simulated</span></td>' in release
    assert "Log of run-456 (Deploy, simulated," in release
    assert '<span class="badge simulated">simulated</span>' in section(page("viewer", "/runs/run-456/"), "run-mode")
    WorkflowRun.objects.filter(pk="run-456").update(mode="live")
    assert '<td><span class="badge live">live</span></td>' in page("viewer", "/releases/rel-123/")
    mode = section(page("viewer", "/runs/run-456/"), "run-mode")
    assert '<span class="badge live">live</span>' in mode and "deployed for real" in mode


# --- in a real browser, through the real server (which reads CONTROLPLANE_CONNECTIONS from its environment) ---


@pytest.fixture
def drifted_demo(committed_demo):
    """The committed demo with env-staging live through k8s-test and svc-demo's target there drifted (written
    before the browser starts: the ORM refuses to run while playwright's loop is marked running)."""
    connect("env-staging", "svc-demo")
    observe()


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing (make test installs it)")
@pytest.mark.django_db(transaction=True)
def test_drift_in_a_browser_at_390_px_and_check_now(drifted_demo, web, watched):
    from tests.pages.test_accessibility import AXE, WCAG

    user = watched(web(CONTROLPLANE_CONNECTIONS=K8S_TEST))
    index = user.sign_in("deployer", then="/")
    expect(index.locator("#row-svc-demo .badge.drifted")).to_have_text("drifted in staging")
    environment = user.go("/environments/env-staging/")
    expect(environment.locator("#environment-mode")).to_contain_text("live · k8s-test")
    expect(environment.locator("#drift-svc-demo .badge.drifted")).to_have_text("drifted")
    user.screenshots("environment-drift")
    for path in ("/", "/environments/env-staging/", "/environments/env-prod/"):
        shown = user.go(path)
        shown.set_viewport_size({"width": 390, "height": 900})
        # Only a table scrolls sideways at 390 px (inside its .table-scroll), never the page.
        assert shown.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), path
        shown.set_viewport_size({"width": 1400, "height": 900})
    user.clean()

    # "Check now": the server asks k8s-test, whose kubeconfig is missing; the page says the platform could not be
    # asked, and the verdict stays what it was.
    checked = user.go("/environments/env-staging/")
    checked.get_by_role("button", name="Check now").click()
    checked.wait_for_url("**/environments/env-staging/#drift")
    expect(checked.locator("#drift-svc-demo")).to_contain_text("could not ask the platform")
    expect(checked.locator("#drift-svc-demo .badge.drifted")).to_have_text("drifted")
    user.clean()

    # The accessibility rules, on the pages with drift shown (axe runs as a script of the test's: CSP bypassed).
    context = user.context.browser.new_context(bypass_csp=True, viewport={"width": 390, "height": 900})
    axe_page = context.new_page()
    axe_page.goto(f"{user.base}/login/?next=/")
    axe_page.fill("#token", TOKENS["deployer"])
    axe_page.get_by_role("button", name="Sign in with dev token").click()
    axe_page.wait_for_url(f"{user.base}/")
    problems = {}
    for path in ("/", "/environments/env-staging/", "/environments/env-prod/", "/releases/rel-123/"):
        axe_page.goto(f"{user.base}{path}")
        axe_page.evaluate(AXE)
        result = axe_page.evaluate("async (t) => await axe.run(document, {runOnly: {type: 'tag', values: t}})", WCAG)
        if result["violations"]:
            problems[path] = [(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]]
    context.close()
    assert not problems, problems
