"""A service's page (`/services/<id>/`): its environments with effective placements, current and previous
releases, recent releases, incidents and audit events, and the charts as inline SVG."""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from incidents import lifecycle as incidents
from incidents.models import Incident
from releases import lifecycle
from releases.models import Release, WorkflowRun
from tests.api.test_queries import grow
from tests.conftest import sign_in
from tests.pages.conftest import CHROMIUM


@pytest.mark.django_db
def test_a_service_page(client):
    grow(2)
    html = sign_in(client, "viewer").get("/services/svc-1/").content.decode()
    # Two releases per environment, the second superseding the first: current and previous.
    assert 'href="/releases/rel-1-0-1/"' in html and 'href="/releases/rel-1-0-0/"' in html
    assert "k8s</span>: " in html  # the effective placement per adapter
    assert html.count('<svg class="chart"') == 3  # runs per day in alpha and beta, the failure rate
    assert "median lead time" in html
    assert 'method="post" action="/logout/"' in html and html.count('method="post"') == 1  # nothing to write here


@pytest.mark.django_db
def test_a_service_page_counts_every_open_incident_not_only_those_listed(client, monkeypatch):
    from overview import views

    grow(1)  # svc-0 with one open incident
    monkeypatch.setattr(views, "RECENT", 2)
    for n in range(3):
        Incident(service_id="svc-0", severity="low", link=f"https://pd.example.com/{n}").save()
    incidents.resolve(Incident.objects.get(link="https://pd.example.com/2"))  # the newest: resolved
    html = sign_in(client, "viewer").get("/services/svc-0/").content.decode()
    assert '<a href="/incidents/?serviceId=svc-0&amp;open=true">3 open incidents</a>' in html


@pytest.mark.django_db
def test_the_charts_count_runs_and_failures(client):
    grow(1)
    release = Release(id="rel-x", service_id="svc-0", environment=Release.objects.get(pk="rel-0-0-0").environment)
    release.sha, release.version = "abcdef2", "9"
    release.save()
    lifecycle.begin_rollout(release)
    run = WorkflowRun(kind="Deploy", release=release, actor="bot")
    run.save()
    lifecycle.end_rollout(run, succeeded=False)
    html = sign_in(client, "viewer").get("/services/svc-0/").content.decode()
    assert "20%" in html  # 1 failed of 5 finished runs
    assert "<title>" in html and ": 3</title>" in html  # alpha: 3 runs today


@pytest.mark.django_db
def test_an_unknown_service_is_a_404(client):
    assert sign_in(client, "viewer").get("/services/svc-nope/").status_code == 404


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing (make test installs it)")
@pytest.mark.django_db(transaction=True)
def test_a_service_page_in_a_browser(committed_demo, web, watched):
    user = watched(web())
    page = user.sign_in("viewer", then="/")
    page.get_by_role("link", name="Demo Service").click()
    page.wait_for_url("**/services/svc-demo/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Demo Service")
    expect(page.locator("table").first).to_contain_text("policy:")
    expect(page.get_by_role("img", name="change failure rate per day")).to_be_visible()
    assert page.locator("form[method=post]").count() == 1  # sign-out only
    user.clean()
    user.screenshots("service")
