"""The release page, the run page, the create-release form, and deploy and promote behind their confirmations
(releases/views.py, overview/actions.py, overview/previews.py): fast tests through Django's client, then
scenarios in a real browser against the real web server and worker."""

import itertools
import re
from datetime import UTC, datetime

import pytest
import time_machine
from django.db import IntegrityError, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from playwright.sync_api import expect

from controlplane.api.errors import api_exception
from incidents.models import Incident
from overview import previews
from releases import lifecycle, workflows
from releases.models import Release, RunLogEntry, WorkflowRun
from services.models import ChangeWindow
from tests.conftest import sign_in


def activate(release: Release, logs: int = 2) -> WorkflowRun:
    """Roll `release` out to Active, with a Deploy run writing `logs` entries."""
    lifecycle.begin_rollout(release)
    run = WorkflowRun(kind="Deploy", release=release, actor="bot")
    run.save()
    for n in range(logs):
        RunLogEntry(run=run, message=f"step {n}", meta={"n": n}).save()
    lifecycle.end_rollout(run, succeeded=True)
    return run


@pytest.fixture
def monday():
    """Monday 11:00 in Berlin: inside the `weekday` window, so its ref lets deploys and promotions through."""
    with time_machine.travel(datetime(2026, 12, 7, 10, 0, tzinfo=UTC), tick=False):
        yield


@pytest.fixture
def staged(monday, make_environment, make_service, make_release):
    """A service linked to staging and prod (prod with a policy ref: the `weekday` window, Mon-Fri 09:00-17:00
    Europe/Berlin, open now), and an Active release in staging."""
    ChangeWindow(name="weekday", timezone="Europe/Berlin", days=[1, 2, 3, 4, 5], start="09:00", end="17:00").save()
    staging = make_environment(name="stage-x")
    prod = make_environment(name="live-x", policy_refs=["policy:change-window:weekday"])
    service = make_service(environments=[staging, prod])
    release = make_release(service=service, environment=staging, sha="4f2a9c1", version="2024.10.02")
    activate(release)
    release.refresh_from_db()
    return release, staging, prod


# --- the preview: what a confirmation says ---


def test_a_first_deploy_replaces_nothing_and_says_so(make_release):
    release = make_release(sha="4f2a9c1", version="2024.10.02")
    text = previews.deploy_preview(release).text
    assert text == (
        f"{release.pk} (2024.10.02, 4f2a9c1) becomes the first release of {release.service_id} in "
        f"{release.environment_id}; {release.service_id} has no open incidents; policy refs: none"
    )


def test_a_deploy_names_the_release_it_replaces(staged, make_release):
    current, staging, _ = staged
    draft = make_release(service=current.service, environment=staging, sha="abcdef1", version="2024.10.03")
    preview = previews.deploy_preview(draft)
    assert preview.replaces == current.pk
    assert preview.text.startswith(f"{draft.pk} (2024.10.03, abcdef1) replaces {current.pk} in {staging.pk}; ")


def test_a_promotion_names_open_incidents_the_highest_severity_and_policy_refs(staged, make_release):
    current, staging, prod = staged
    in_prod = make_release(service=current.service, environment=prod, sha="1234567", version="2024.09.30")
    activate(in_prod)
    for severity in ("low", "high"):
        Incident(service=current.service, severity=severity, link="https://pd.example.com/x").save()
    service = current.service_id
    assert previews.promote_preview(current, prod).text == (
        f"{current.pk} (2024.10.02, 4f2a9c1), promoted from {staging.pk} as a new release, replaces {in_prod.pk} "
        f"in {prod.pk}; {service} has 2 open incidents (highest: high); policy refs: policy:change-window:weekday"
    )


def test_resolved_incidents_are_not_open(staged):
    current, _, prod = staged
    incident = Incident(service=current.service, severity="critical", link="https://pd.example.com/x")
    incident.save()
    assert "1 open incident (highest: critical)" in previews.promote_preview(current, prod).text


# --- the pages through Django's client ---


@pytest.fixture
def deployer(client, db):
    return sign_in(client, "deployer")


@pytest.fixture
def viewer(db):
    return sign_in(Client(), "viewer")


def test_signed_out_goes_to_sign_in(client, staged):
    release = staged[0]
    for url in (f"/releases/{release.pk}/", "/releases/new/", f"/releases/{release.pk}/deploy/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/?next="), url
    # The live fragments: a 401, never the sign-in page, which live.js would put in the card's place.
    for url in (f"/releases/{release.pk}/summary", f"/releases/{release.pk}/timeline"):
        assert client.get(url).status_code == 401, url


def test_the_release_page_shows_the_release_its_timeline_and_logs(deployer, staged):
    release, staging, prod = staged
    run = WorkflowRun.objects.get(release=release)
    page = deployer.get(f"/releases/{release.pk}/").content.decode()
    assert release.version in page and "4f2a9c1" in page and 'class="badge Active"' in page
    assert f"Current in {staging.pk}" in page
    assert f'href="/runs/{run.pk}/"' in page and "bot" in page and "step 1" in page
    assert f'data-live-match="{release.pk}"' in page and "controlplane/live.js" in page
    assert f'<option value="{prod.pk}">' in page and f'action="/releases/{release.pk}/promote/"' in page
    assert "data-run-stream" not in page  # a finished run's log is not followed
    assert '<details class="card run-log">' in page  # and is collapsed


def test_an_ended_rollout_shows_the_audit_event_that_recorded_it(deployer, staged, make_release):
    from audit.models import AuditEvent

    release = staged[0]
    event = AuditEvent.objects.get(subject_id=release.pk, action="release.activate")
    page = deployer.get(f"/releases/{release.pk}/").content.decode()
    assert f"#{event.seq}</a> <code>release.activate</code> by {event.actor}" in page
    draft = make_release(service=release.service, environment=staged[1], sha="abcdef2", version="v-next")
    assert 'id="release-outcome"' not in deployer.get(f"/releases/{draft.pk}/").content.decode()


def test_the_run_page_colours_levels_and_expands_meta(deployer, staged):
    run = WorkflowRun.objects.get(release=staged[0])
    page = deployer.get(f"/runs/{run.pk}/").content.decode()
    assert 'class="level-info"' in page and "<details><summary>meta</summary>" in page
    assert "Succeeded" in page and deployer.get("/runs/run-nope/").status_code == 404


def test_a_running_run_is_followed_after_what_is_shown(deployer, make_release):
    release = make_release()
    lifecycle.begin_rollout(release)
    run = WorkflowRun(kind="Deploy", release=release, actor="bot")
    run.save()
    entry = RunLogEntry(run=run, message="started")
    entry.save()
    page = deployer.get(f"/runs/{run.pk}/").content.decode()
    assert f'data-run-stream="/api/workflow-runs/{run.pk}/logs/stream"' in page
    assert f'data-after="{entry.pk}"' in page and "controlplane/runlog.js" in page


def test_a_viewer_sees_no_write_action_and_is_refused(viewer, staged, make_release):
    release, _, prod = staged
    draft = make_release(service=release.service, environment=release.environment, sha="abcdef1")
    for page in (viewer.get(f"/releases/{release.pk}/"), viewer.get(f"/releases/{draft.pk}/")):
        text = page.content.decode()
        assert "Promote…" not in text and "Deploy…" not in text and "needs the deployer role" in text
    confirmation = viewer.get(f"/releases/{draft.pk}/deploy/").content.decode()
    assert '<button type="button" disabled>Deploy</button>' in confirmation
    for url, data in (
        (f"/releases/{draft.pk}/deploy/", {}),
        (f"/releases/{release.pk}/promote/", {"envId": prod.pk}),
        ("/releases/new/", {"serviceId": release.service_id, "envId": prod.pk, "sha": "abcdef1", "version": "1"}),
    ):
        response = viewer.post(url, data)
        assert response.status_code == 403 and "deployer" in response.content.decode(), url
    assert Release.objects.count() == 2 and not WorkflowRun.objects.filter(release=draft).exists()


def test_a_post_without_csrf_is_refused(staged, make_release):
    release = staged[0]
    draft = make_release(service=release.service, environment=release.environment, sha="abcdef1")
    browser = Client(enforce_csrf_checks=True)
    browser.cookies = sign_in(Client(), "deployer").cookies  # signed in; its POST carries no CSRF token
    assert browser.post(f"/releases/{draft.pk}/deploy/").status_code == 403
    draft.refresh_from_db()
    assert draft.status == "Draft"


def test_deploy_confirms_then_starts_the_run(deployer, make_release):
    draft = make_release(sha="4f2a9c1", version="2024.10.02")
    confirmation = deployer.get(f"/releases/{draft.pk}/deploy/").content.decode()
    assert "becomes the first release" in confirmation and 'method="post"' in confirmation
    draft.refresh_from_db()
    assert draft.status == "Draft"  # a GET changes nothing
    response = deployer.post(f"/releases/{draft.pk}/deploy/")
    assert response.status_code == 302 and response["Location"] == f"/releases/{draft.pk}/"
    draft.refresh_from_db()
    assert draft.status == "Promoting" and WorkflowRun.objects.get(release=draft).actor == "dev-deployer"


def test_the_domains_refusals_are_shown_not_a_500(deployer, staged, make_environment):
    release, staging, _ = staged
    again = deployer.post(f"/releases/{release.pk}/deploy/")  # Active: not deployable
    assert again.status_code == 409 and 'role="alert"' in again.content.decode()
    same = deployer.post(f"/releases/{release.pk}/promote/", {"envId": staging.pk})
    assert same.status_code == 409 and "already in" in same.content.decode()
    unknown = deployer.get(f"/releases/{release.pk}/promote/?envId=env-nope")
    assert unknown.status_code == 400 and "unknown environment" in unknown.content.decode()
    # An environment the service is not linked to: the confirmation is the POST's 400, with no button.
    elsewhere = make_environment(name="elsewhere-x")
    unlinked = deployer.get(f"/releases/{release.pk}/promote/?envId={elsewhere.pk}")
    main = unlinked.content.decode().split("<main")[1]
    assert unlinked.status_code == 400 and f"{elsewhere.pk}&#x27; is not linked to service" in main, main
    assert 'method="post"' not in main


def test_a_confirmation_the_domain_would_refuse_says_so_and_offers_no_button(deployer, staged, make_release):
    release, staging, prod = staged
    for url, refusal in (
        (f"/releases/{release.pk}/deploy/", f"release {release.pk} is Active: it cannot move to Promoting"),
        (f"/releases/{release.pk}/promote/?envId={staging.pk}", f"release {release.pk} is already in {staging.pk}"),
    ):
        response = deployer.get(url)
        main = response.content.decode().split("<main")[1]
        assert response.status_code == 409 and refusal in main, main
        # not "becomes the first release" of an environment where it is the current one, nor a button
        assert "What will happen" not in main and 'method="post"' not in main
    draft = make_release(service=release.service, environment=prod, sha="abcdef1", version="2024.10.03")
    assert previews.promote_preview(draft, staging).text == (
        f"Nothing will happen: release {draft.pk} is Draft: only an Active release can be promoted."
    )
    assert previews.deploy_preview(draft).refusal is None


def test_promote_creates_the_new_release_and_goes_to_it(deployer, staged):
    release, _, prod = staged
    confirmation = deployer.get(f"/releases/{release.pk}/promote/?envId={prod.pk}").content.decode()
    assert "policy:change-window:weekday" in confirmation
    response = deployer.post(f"/releases/{release.pk}/promote/", {"envId": prod.pk})
    target = Release.objects.get(service=release.service, environment=prod)
    assert response.status_code == 302 and response["Location"] == f"/releases/{target.pk}/"
    assert target.status == "Promoting"


def test_a_race_lost_reads_on_the_page_as_the_api_words_it(deployer, staged, monkeypatch):
    """Two deploys of one service to one environment at the same moment: the loser's page says what REST's
    409 says, not a wording of its own."""
    release, _, prod = staged
    draft = Release(service=release.service, environment=prod, sha="abcdef1", version="2")
    draft.save()
    race = IntegrityError("UNIQUE constraint failed: releases_release.service_id, releases_release.environment_id")

    def lost(release, break_glass=None):
        raise race

    monkeypatch.setattr(workflows, "deploy", lost)
    response = deployer.post(f"/releases/{draft.pk}/deploy/")
    said = "the change conflicts with another one made at the same time; reload and retry."
    assert response.status_code == 409 and said in response.content.decode()
    assert api_exception(race).detail == said


def test_the_create_form_shows_the_domains_messages_by_field(deployer, staged):
    release, _, prod = staged
    form = deployer.get(f"/releases/new/?serviceId={release.service_id}&envId={prod.pk}").content.decode()
    assert f'value="{release.service_id}"' in form and f'value="{prod.pk}"' in form
    bad = deployer.post(
        "/releases/new/", {"serviceId": release.service_id, "envId": prod.pk, "sha": "XYZ", "version": "1"}
    )
    assert bad.status_code == 400
    assert re.search(r'id="sha-error">[^<]*7-40 lower-case hexadecimal', bad.content.decode())
    unknown = deployer.post(
        "/releases/new/", {"serviceId": "svc-nope", "envId": prod.pk, "sha": "abcdef1", "version": "1"}
    )
    assert unknown.status_code == 400 and 'id="serviceId-error"' in unknown.content.decode()
    good = deployer.post(
        "/releases/new/", {"serviceId": release.service_id, "envId": prod.pk, "sha": "abcdef1", "version": "2"}
    )
    created = Release.objects.get(environment=prod, version="2")
    assert good.status_code == 302 and good["Location"] == f"/releases/{created.pk}/"


# --- a constant number of queries, whatever the release's history ---


NUMBERS = itertools.count(1)


def grow(release: Release, promotions: int):
    """Promotions of `release` to new environments (each run with a log) and incidents of its service."""
    from services.models import Environment

    for _ in range(promotions):
        env = Environment(name=f"grow-{next(NUMBERS)}")
        env.save()
        release.service.environments.add(env)
        target = Release(service=release.service, environment=env, sha=release.sha, version=release.version)
        target.save()
        lifecycle.begin_rollout(target)
        run = WorkflowRun(kind="Promote", release=target, source_release=release, actor="bot")
        run.save()
        for i in range(3):
            RunLogEntry(run=run, message=f"step {i}").save()
        lifecycle.end_rollout(run, succeeded=True)
        Incident(service=release.service, severity="medium", link="https://pd.example.com/x").save()


def counted(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return len(captured)


@pytest.mark.parametrize("page", ["release", "summary", "timeline", "run", "promote", "deploy"])
def test_query_counts_do_not_grow_with_the_history(deployer, staged, make_release, page):
    release = staged[0]
    run = WorkflowRun.objects.get(release=release)
    draft = make_release(service=release.service, environment=staged[2], sha="abcdef1", version="2024.10.03")
    url = {
        "release": f"/releases/{release.pk}/",
        "summary": f"/releases/{release.pk}/summary",
        "timeline": f"/releases/{release.pk}/timeline",
        "run": f"/runs/{run.pk}/",
        "promote": f"/releases/{release.pk}/promote/?envId={staged[2].pk}",
        "deploy": f"/releases/{draft.pk}/deploy/",  # a Draft: the Active one's confirmation is a refusal
    }[page]
    grow(release, 1)
    small = counted(deployer, url)
    grow(release, 5)
    assert counted(deployer, url) == small == PINNED[page]


# The release page and its summary read the audit event that recorded the outcome (an Active release here).
# The confirmations ask the policies: the windows the environment's refs name, and the freezes.
# And whether a run awaits approval there (`releases.workflows.busy`).
PINNED = {"release": 7, "summary": 5, "timeline": 5, "run": 4, "promote": 15, "deploy": 9}


# --- in a real browser, against the real web server and worker ---

SETTLE_MS = 30_000


def test_create_deploy_and_promote_follow_the_runs_live(always_open, web, worker, watched):
    base = web()
    worker(CONTROLPLANE_STEP_DELAY_SECONDS=0.3)  # slow enough to see a run live, fast enough for a test
    user = watched(base)
    user.sign_in("deployer", then="/releases/new/")
    page = user.go("/releases/new/?serviceId=svc-demo&envId=env-staging")
    assert page.input_value("#serviceId") == "svc-demo" and page.input_value("#envId") == "env-staging"
    page.fill("#sha", "not-hex")
    page.fill("#version", "2026.11.27")
    page.get_by_role("button", name="Create release").click()
    assert "7-40 lower-case hexadecimal" in page.inner_text("#sha-error")  # the domain's message, by the field
    user.screenshots("release-create")
    # The refused create answered 400, which chromium logs; that one is expected, anything else is not.
    assert user.errors == ["Failed to load resource: the server responded with a status of 400 (Bad Request)"]
    user.errors.clear()
    page.fill("#sha", "c0ffee1")
    page.get_by_role("button", name="Create release").click()
    page.wait_for_url(re.compile(r"/releases/rel-[a-z0-9-]+/$"))
    release_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    assert page.inner_text("#release-summary .badge") == "Draft"

    page.get_by_role("link", name="Deploy…").click()
    preview = page.inner_text("#preview-text")
    assert preview.startswith(f"{release_id} (2026.11.27, c0ffee1) replaces rel-123 in env-staging; ")
    assert "svc-demo has 1 open incident (highest: high)" in preview
    user.screenshots("release-confirm-deploy")
    page.get_by_role("button", name=f"Deploy {release_id}").click()
    page.wait_for_url(f"**/releases/{release_id}/")
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads
    page.wait_for_selector("#release-summary .badge.Active", timeout=SETTLE_MS)
    page.wait_for_selector("[data-run-state] .badge.Succeeded", timeout=SETTLE_MS)
    assert page.evaluate("window.__sameDocument") is True
    assert "Current in env-staging" in page.inner_text("#release-summary")
    assert page.locator("ol.log li").count() > 0  # the run's log, shown live or as rendered
    user.clean()
    user.screenshots("release")

    page.select_option("#promote-env", "env-prod")
    page.get_by_role("button", name="Promote…").click()
    preview = page.inner_text("#preview-text")
    assert f"{release_id} (2026.11.27, c0ffee1), promoted from env-staging as a new release," in preview
    assert "becomes the first release of svc-demo in env-prod" in preview
    assert preview.endswith(
        "policy refs: policy:change-window:weekday, policy:requires:env-staging, policy:incident-gate:critical"
    )
    expect(page.locator("#policy-decision p")).to_have_text(
        "Allowed now. Evaluated: policy:change-window:weekday, policy:requires:env-staging, "
        "policy:incident-gate:critical."
    )
    user.screenshots("release-confirm-promote")
    page.get_by_role("button", name="Promote to env-prod").click()
    page.wait_for_url(re.compile(r"/releases/rel-[a-z0-9-]+/$"))
    promoted_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    assert promoted_id != release_id
    page.evaluate("window.__sameDocument = true")
    page.wait_for_selector("#release-summary .badge.Active", timeout=SETTLE_MS)
    assert page.evaluate("window.__sameDocument") is True
    assert "Current in env-prod" in page.inner_text("#release-summary")

    page.locator("#release-timeline a[href^='/runs/']").first.click()
    page.wait_for_url("**/runs/run-*/")
    page.wait_for_selector(".badge.Succeeded", timeout=SETTLE_MS)
    assert page.locator("ol.log li").count() > 0
    user.clean()
    user.screenshots("run")


@pytest.mark.usefixtures("committed_demo")
def test_a_running_run_is_tailed_live(web, worker, watched):
    base = web()
    user = watched(base)
    user.sign_in("deployer", then="/releases/new/")
    page = user.go("/releases/new/?serviceId=svc-demo&envId=env-staging")
    page.fill("#sha", "abc1234")
    page.fill("#version", "2026.11.28")
    page.get_by_role("button", name="Create release").click()
    page.wait_for_url(re.compile(r"/releases/rel-[a-z0-9-]+/$"))
    page.get_by_role("link", name="Deploy…").click()
    page.get_by_role("button", name=re.compile("^Deploy rel-")).click()  # no worker yet: the run waits
    page.wait_for_selector("ol.log[data-run-stream]", state="attached")
    run_href = page.locator("#release-timeline a[href^='/runs/']").first.get_attribute("href")
    page = user.go(run_href)
    assert page.inner_text("[data-run-state] .badge") == "Running"
    assert page.locator("ol.log li").count() == 0
    worker(CONTROLPLANE_STEP_DELAY_SECONDS=0.3)
    page.wait_for_selector("[data-run-state] .badge.Succeeded", timeout=SETTLE_MS)  # the end event
    assert page.locator("ol.log li").count() > 0  # every entry arrived on the stream
    user.clean()


def test_a_viewer_sees_no_write_action_and_a_post_is_refused(always_open, web, watched):
    base = web()
    user = watched(base)
    page = user.sign_in("viewer", then="/releases/rel-123/")
    assert page.get_by_role("button", name="Promote…").count() == 0
    assert "needs the deployer role" in page.inner_text("#release-summary")
    page = user.go("/releases/rel-123/promote/?envId=env-prod")
    assert page.get_by_role("button", name="Promote to env-prod").count() == 0
    token = page.context.cookies()
    csrf = next(c["value"] for c in token if c["name"] == "csrftoken")
    refused = page.request.post(
        f"{base}/releases/rel-123/promote/",
        form={"envId": "env-prod", "csrfmiddlewaretoken": csrf},
        headers={"Referer": f"{base}/releases/rel-123/promote/?envId=env-prod", "X-CSRFToken": csrf},
    )
    assert refused.status == 403 and "deployer" in refused.text()
    listed = page.request.get(f"{base}/api/releases/?envId=env-prod")
    assert listed.ok and "rel-" not in listed.text(), listed.text()  # nothing was promoted
    user.clean()
    user.screenshots("release-viewer")
