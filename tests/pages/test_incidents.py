"""/incidents/: the list with its filters, create through the REST serializer, acknowledge and resolve through
incidents.lifecycle after a confirmation; roles, CSRF, conflicts, query counts; and in a real browser."""

import re
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from playwright.sync_api import expect

from incidents import lifecycle
from incidents.models import Incident
from services.models import Service
from tests.conftest import sign_in
from tests.pages.conftest import CHROMIUM

pytestmark = pytest.mark.django_db


@pytest.fixture
def triggered(demo):
    incident = Incident(
        service_id="svc-demo", severity="critical", title="Checkout down", link="https://pd.example.com/1"
    )
    incident.save()
    return incident


def user(role: str, csrf: bool = False) -> Client:
    client = sign_in(Client(), role)
    client.handler.enforce_csrf_checks = csrf
    return client


def test_signed_out_is_sent_to_sign_in():
    response = Client().get("/incidents/?severity=high")
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=")


def test_the_list_shows_badges_links_and_filters(triggered):
    page = user("viewer").get("/incidents/").content.decode()
    assert '<span class="badge critical">critical</span>' in page and '<span class="badge triggered">' in page
    assert '<a href="/services/svc-demo/">svc-demo</a>' in page
    assert 'href="https://pd.example.com/1" target="_blank" rel="noopener noreferrer"' in page
    assert 'data-live-src="/incidents/fragment/" data-live-match="*"' in page
    filtered = user("viewer").get("/incidents/?severity=critical").content.decode()
    assert triggered.pk in filtered and "inc-789" not in filtered
    assert "inc-789" in user("viewer").get("/incidents/?open=true").content.decode()
    assert triggered.pk not in user("viewer").get("/incidents/?open=false").content.decode()
    refused = user("viewer").get("/incidents/?open=maybe")
    assert refused.status_code == 200 and "must be true or false." in refused.content.decode()


@pytest.mark.parametrize("link", ["javascript:alert(1)", " JavaScript:alert(1)", "data:text/html,<b>x</b>", ""])
def test_a_link_that_is_not_http_is_never_an_href(triggered, link):
    Incident.objects.filter(pk=triggered.pk).update(link=link)  # update() skips the model's validation
    page = user("viewer").get("/incidents/").content.decode()
    row = re.search(rf'<tr id="{triggered.pk}">.*?</tr>', page, re.S).group(0)
    hrefs = re.findall(r'href="([^"]*)"', row)
    assert hrefs and all(href.startswith("/") for href in hrefs), hrefs  # only our own pages: no source link
    assert "—" in row


def test_a_viewer_sees_no_write_action_and_the_server_refuses(triggered):
    viewer = user("viewer")
    page = viewer.get("/incidents/").content.decode()
    assert "/acknowledge/" not in page and "/resolve/" not in page and 'href="/incidents/new/"' not in page
    assert "needs the deployer role" in page
    for path in (f"/incidents/{triggered.pk}/acknowledge/", f"/incidents/{triggered.pk}/resolve/", "/incidents/new/"):
        assert viewer.get(path).status_code == 403
        response = viewer.post(path, {"serviceId": "svc-demo", "severity": "low", "link": "https://x.example.com"})
        assert response.status_code == 403 and "needs the deployer role" in response.content.decode()
    triggered.refresh_from_db()
    assert triggered.status == "triggered" and Incident.objects.count() == 2


def test_acknowledge_and_resolve_after_a_confirmation(triggered):
    deployer = user("deployer")
    page = deployer.get("/incidents/").content.decode()
    assert f"/incidents/{triggered.pk}/acknowledge/" in page
    confirm = deployer.get(f"/incidents/{triggered.pk}/acknowledge/").content.decode()
    assert f"{triggered.pk} (critical, svc-demo) moves from triggered to acknowledged." in confirm
    triggered.refresh_from_db()
    assert triggered.status == "triggered"  # a GET changes nothing
    response = deployer.post(f"/incidents/{triggered.pk}/acknowledge/")
    assert response.status_code == 302 and response["Location"] == f"/incidents/#{triggered.pk}"
    triggered.refresh_from_db()
    assert triggered.status == "acknowledged"
    confirm = deployer.get(f"/incidents/{triggered.pk}/resolve/").content.decode()
    assert "moves from acknowledged to resolved." in confirm
    assert deployer.post(f"/incidents/{triggered.pk}/resolve/").status_code == 302
    triggered.refresh_from_db()
    assert triggered.status == "resolved"
    assert f"{triggered.pk} moved to resolved." in deployer.get("/incidents/").content.decode()


def test_each_row_offers_the_moves_its_incident_allows_now(triggered):
    deployer = user("deployer")

    def offered() -> list[str]:
        page = deployer.get("/incidents/").content.decode()
        row = re.search(rf'<tr id="{triggered.pk}">.*?</tr>', page, re.S).group(0)
        return re.findall(rf'href="/incidents/{triggered.pk}/(\w+)/">', row)

    assert offered() == ["acknowledge", "resolve"]
    lifecycle.acknowledge(triggered)
    assert offered() == ["resolve"]
    lifecycle.resolve(triggered)
    assert offered() == []


def test_a_conflict_is_a_message_not_a_500(triggered):
    deployer = user("deployer")
    confirm = deployer.get(f"/incidents/{triggered.pk}/acknowledge/")  # the confirmation was shown, then …
    assert confirm.status_code == 200
    lifecycle.resolve(triggered)  # … someone else resolved it
    response = deployer.post(f"/incidents/{triggered.pk}/acknowledge/")
    assert response.status_code == 409
    assert "is resolved: it cannot move to acknowledged; it is final." in response.content.decode()
    again = deployer.get(f"/incidents/{triggered.pk}/resolve/")
    assert again.status_code == 409 and '<button type="submit"' not in again.content.decode().split("<main")[1]


def test_writes_need_the_csrf_token(triggered):
    deployer = user("deployer", csrf=True)
    assert deployer.post(f"/incidents/{triggered.pk}/acknowledge/").status_code == 403
    assert deployer.post("/incidents/new/", {"serviceId": "svc-demo"}).status_code == 403
    form = deployer.get(f"/incidents/{triggered.pk}/acknowledge/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    assert deployer.post(f"/incidents/{triggered.pk}/acknowledge/", {"csrfmiddlewaretoken": token}).status_code == 302


def test_create_shows_the_domains_messages_next_to_the_fields(demo):
    deployer = user("deployer")
    response = deployer.post("/incidents/new/", {"serviceId": "svc-nope", "severity": "high", "link": "ftp://x"})
    page = response.content.decode()
    assert response.status_code == 200 and not Incident.objects.filter(link="ftp://x").exists()
    assert re.search(r'id="serviceId-error">[^<]*svc-nope', page), page
    assert re.search(r'id="link-error">must be an absolute http\(s\) URL', page), page
    assert 'value="ftp://x"' in page
    response = deployer.post(
        "/incidents/new/",
        {"serviceId": "svc-demo", "severity": "low", "title": "Slow", "link": "https://pd.example.com/2"},
    )
    assert response.status_code == 302
    created = Incident.objects.get(title="Slow")
    assert response["Location"] == f"/incidents/#{created.pk}" and created.status == "triggered"


def test_keyset_pages(demo):
    for n in range(55):
        Incident(service_id="svc-demo", severity="low", title=f"n{n}", link="https://pd.example.com/n").save()
    viewer = user("viewer")
    first = viewer.get("/incidents/?severity=low").content.decode()
    older = re.search(r'href="(\?[^"]*before=[^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    second = viewer.get(f"/incidents/{older}").content.decode()
    ids = lambda page: set(re.findall(r'<tr id="(inc-[^"]+)"', page))  # noqa: E731
    assert len(ids(first)) == 50 and len(ids(second)) == 5 and not ids(first) & ids(second)
    assert 'rel="next"' not in second and "Newest" in second


@pytest.mark.parametrize(
    "before",
    [
        "2024-01-01T00:00:00~inc-x",  # no offset
        "0001-01-01T00:00:00+14:00~inc-x",  # before year 1 in UTC
        "9999-12-31T23:59:59-14:00~inc-x",  # after year 9999 in UTC
        "nonsense~inc-x",
        "~",
    ],
)
@pytest.mark.parametrize("path", ["/incidents/", "/incidents/fragment/"])
def test_an_odd_older_key_reads_as_the_first_page(triggered, path, before):
    response = user("viewer").get(path, {"before": before})
    assert response.status_code == 200 and f'<tr id="{triggered.pk}">' in response.content.decode()


def grow(n: int):
    services = [
        Service.objects.get_or_create(
            id=f"svc-g{s}", defaults={"name": f"g{s}", "repo": "github.com/a/g", "deployment_adapters": ["k8s"]}
        )[0]
        for s in range(3)
    ]
    for i in range(Incident.objects.count(), n):
        Incident(service=services[i % 3], severity="high", link="https://pd.example.com/g").save()


INCIDENTS_PAGE = 3  # the session, its user, the page of incidents


@pytest.mark.parametrize("path", ["/incidents/", "/incidents/fragment/", "/incidents/?open=true&severity=high"])
def test_query_count_is_constant(demo, path):
    deployer = user("deployer")

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert deployer.get(path).status_code == 200
        return len(captured)

    grow(3)
    small = count()
    grow(80)
    assert small == count() == INCIDENTS_PAGE


browser_test = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing (make test installs it)"),
    pytest.mark.django_db(transaction=True),  # the real server sees committed rows only
]


@pytest.mark.usefixtures("committed_demo")
@browser_test[0]
@browser_test[1]
def test_in_the_browser_create_acknowledge_and_resolve_through_confirmations(watched, web):
    base = web()
    deployer, onlooker = watched(base), watched(base)
    onlooker.sign_in("viewer", then="/incidents/")
    expect(onlooker.page.locator("html")).to_have_attribute("data-live", "on")
    expect(onlooker.page.get_by_role("button", name="Create an incident")).to_be_disabled()
    expect(onlooker.page.get_by_text("needs the deployer role")).to_be_visible()

    page = deployer.sign_in("deployer", then="/incidents/")
    page.get_by_role("link", name="Create an incident").click()
    page.fill("#serviceId", "svc-demo")
    page.select_option("#severity", "critical")
    page.fill("#title", "Checkout returns 502")
    page.fill("#link", "not a link")
    page.get_by_role("button", name="Create the incident").click()
    expect(page.locator("#link-error")).to_contain_text("must be an absolute http(s) URL")
    deployer.screenshots("incidents-create-error")
    page.fill("#link", "https://pd.example.com/incidents/42")
    page.get_by_role("button", name="Create the incident").click()
    page.wait_for_url("**/incidents/#inc-*")
    pk = page.url.rsplit("#", 1)[1]  # (no ORM here: playwright's loop runs in this thread)
    row = page.locator(f"tr#{pk}")
    expect(row.locator(".badge.critical")).to_be_visible()
    expect(row.locator(".badge.triggered")).to_be_visible()
    # The onlooker's list shows the new incident without a reload.
    expect(onlooker.page.locator(f"tr#{pk} .badge.triggered")).to_be_visible()

    row.get_by_role("link", name=f"Acknowledge {pk}").click()
    expect(page.locator("#what")).to_have_text(f"{pk} (critical, svc-demo) moves from triggered to acknowledged.")
    deployer.screenshots("incidents-confirm")
    page.get_by_role("button", name=f"Acknowledge {pk}").click()
    expect(page.locator(f"tr#{pk} .badge.acknowledged")).to_be_visible()
    expect(onlooker.page.locator(f"tr#{pk} .badge.acknowledged")).to_be_visible()

    page.locator(f"tr#{pk}").get_by_role("link", name=f"Resolve {pk}").click()
    expect(page.locator("#what")).to_have_text(f"{pk} (critical, svc-demo) moves from acknowledged to resolved.")
    page.get_by_role("button", name=f"Resolve {pk}").focus()
    page.keyboard.press("Enter")  # keyboard reachable
    expect(page.locator(f"tr#{pk} .badge.resolved")).to_be_visible()
    expect(onlooker.page.locator(f"tr#{pk} .badge.resolved")).to_be_visible()
    assert onlooker.page.locator("a[href*='/acknowledge/'], a[href*='/resolve/']").count() == 0

    deployer.clean()
    onlooker.clean()
    deployer.screenshots("incidents")
    onlooker.screenshots("incidents-viewer")
