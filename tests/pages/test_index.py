"""The services index (`/`), the environments pages: Django test client (status, roles, filters, query
counts at two data sizes) and a real browser (demo data, a row updating live, no write action)."""

import re
from pathlib import Path

import pytest
import requests
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from playwright.sync_api import expect

from incidents import lifecycle
from incidents.models import Incident
from tests.api.test_queries import grow
from tests.conftest import TOKENS, emptied_cache, measured_once, sign_in
from tests.pages.conftest import CHROMIUM


@pytest.mark.django_db
def test_signed_out_is_sent_to_sign_in(client):
    for path in ("/", "/environments/", "/environments/env-x/", "/services/svc-x/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/login/?next="), path


@pytest.mark.django_db
def test_the_index_shows_the_demo(client, demo):
    page = sign_in(client, "viewer").get("/")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-live-src="/?fragment=row&amp;id=svc-' in html and "controlplane/live.js" in html
    assert "change failure rate" in html and "deploys and promotions started today" in html
    assert "<form" in html and 'method="post"' not in html.replace('method="post" action="/logout/"', "")


@pytest.mark.django_db
def test_a_row_alone_and_filters(client):
    grow(3)
    sign_in(client, "viewer")
    row = client.get("/?fragment=row&id=svc-1").content.decode()
    assert row.startswith("<tr") and 'data-live-match="svc-1"' in row and "1 open" in row
    assert client.get("/?fragment=row&id=svc-nope").status_code == 404
    assert "svc-2" in client.get("/?q=svc 2").content.decode()
    assert "svc-2" not in client.get("/?q=svc 1").content.decode()
    assert "No service matches" in client.get("/?adapter=fly").content.decode()
    assert client.get("/?adapter=nonsense").status_code == 400
    lifecycle.resolve(Incident.objects.get(service_id="svc-0"))
    with_open = client.get("/?incidents=open").content.decode()
    assert "svc-1" in with_open and 'id="row-svc-0"' not in with_open


@pytest.mark.django_db
def test_pages_follow_each_other(client, settings):
    grow(3)
    from overview import views

    views.INDEX_PAGE_SIZE, before = 2, views.INDEX_PAGE_SIZE
    try:
        first = sign_in(client, "viewer").get("/").content.decode()
        following = re.search(r'href="([^"]+)" rel="next"', first)[1].replace("&amp;", "&")
        second = client.get(following).content.decode()
    finally:
        views.INDEX_PAGE_SIZE = before
    assert 'id="row-svc-0"' in first and 'id="row-svc-2"' in second and 'id="row-svc-0"' not in second
    assert client.get("/?cursor=forged").status_code == 400


def count(client, path: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200, response.content[:500]
    return len(captured)


PATHS = ["/", "/?fragment=row&id=svc-1", "/environments/", "/environments/{env}/", "/services/svc-1/"]


def at_two_sizes() -> dict:
    """Each page's queries with 2 services and with 12, each from an empty cache as a test starts, by a viewer
    signed in for that page: the data grown once for the module, not once per page."""
    from services.models import Environment

    clients = {path: sign_in(Client(), "viewer") for path in PATHS}
    counts = {}
    for size in (2, 12):
        grow(size)
        env = Environment.objects.get(name="alpha").id
        for path, client in clients.items():
            try:
                with override_settings(**emptied_cache()):
                    counts[path, size] = count(client, path.format(env=env))
            except AssertionError as e:
                counts[path, size] = f"{path}: {e}"
    return counts


counts = measured_once("counts", at_two_sizes)


@pytest.mark.django_db
@pytest.mark.parametrize("path", PATHS)
def test_query_count_does_not_grow_with_the_data(counts, path):
    small, large = counts[path, 2], counts[path, 12]
    assert isinstance(small, int) and isinstance(large, int), (small, large)
    assert large == small
    assert small <= MOST.get(path, 12), small


# A service's page also shows its DORA figures (overview.dora: two queries, and one naming the service).
MOST = {"/services/svc-1/": 15}


# --- in a real browser, through the real server ---

# The server's process sees committed rows only.
browser_test = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing (make test installs it)"),
    pytest.mark.django_db(transaction=True),
]


@browser_test[0]
@browser_test[1]
def test_a_second_browser_sees_a_row_change_live(committed_demo, web, watched):
    base = web()
    viewer = watched(base)
    page = viewer.sign_in("viewer", then="/")
    row = page.locator("#row-svc-demo")
    expect(row).to_contain_text("Demo Service")
    expect(row.locator(".badge.high")).to_have_text("1 open")
    assert page.locator("form[method=post]").count() == 1  # sign-out only: a viewer sees no write action
    viewer.screenshots("index")

    other = watched(base)
    watching = other.sign_in("deployer", then="/")
    expect(watching.locator("html[data-live=on]")).to_have_count(1)  # the audit stream is open
    created = requests.post(
        f"{base}/api/incidents/",
        json={"serviceId": "svc-demo", "severity": "critical", "link": "https://pd.example.com/live"},
        headers={"Authorization": f"Bearer {TOKENS['deployer']}"},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    expect(watching.locator("#row-svc-demo .badge.critical")).to_have_text("2 open", timeout=15_000)
    expect(watching.locator("#row-svc-demo")).to_contain_text("incident.create")
    other.clean()
    viewer.clean()


@browser_test[0]
@browser_test[1]
def test_the_environments_pages_in_a_browser(committed_demo, web, watched):
    user = watched(web())
    page = user.sign_in("viewer", then="/environments/")
    expect(page.get_by_role("link", name="prod")).to_be_visible()
    user.screenshots("environments")
    page.get_by_role("link", name="prod").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("prod")
    expect(page.locator("tbody")).to_contain_text("Demo Service")
    user.clean()
    user.screenshots("environment")
