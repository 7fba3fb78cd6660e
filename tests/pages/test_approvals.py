"""Approvals and rollback on the dashboard (releases/approval_views.py, overview/actions.py, docs/pages.md): the
`/approvals/` queue, the navigation's count, the run page's approval panel, approve / reject / cancel behind
their confirmations, and "Roll back…" with its confirmation. Fast tests through Django's client (two
principals: the deployer asks, the admin decides), then the flows in a real browser against the real web
server and worker."""

import html
import json
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from playwright.sync_api import expect

from audit.models import AuditEvent
from controlplane.identity.context import acting_as
from releases import lifecycle
from releases.approvals import SELF_APPROVAL
from releases.models import Release, RunLogEntry, WorkflowRun
from services.models import Environment
from tests.conftest import sign_in


@pytest.fixture
def deployer(db):
    return sign_in(Client(), "deployer")


@pytest.fixture
def admin(db):
    return sign_in(Client(), "admin")


@pytest.fixture
def viewer(db):
    return sign_in(Client(), "viewer")


@pytest.fixture
def gated(make_environment, make_service):
    """An environment asking for one approval, a service linked to it."""
    environment = make_environment(name="gated-x", policy_refs=["policy:approval:1"])
    return make_service(environments=[environment]), environment


def ask(client, make_release, service, environment, sha="b7e4d21", version="2024.10.03") -> WorkflowRun:
    """`client` deploys a new Draft release into `environment` through the page: a run awaiting approval."""
    release = make_release(service=service, environment=environment, sha=sha, version=version)
    response = client.post(f"/releases/{release.pk}/deploy/")
    assert response.status_code == 302, response.content.decode()
    run = WorkflowRun.objects.get(release=release)
    assert run.state == "AwaitingApproval"
    return run


@pytest.fixture
def waiting(deployer, gated, make_release) -> WorkflowRun:
    return ask(deployer, make_release, *gated)


def text(response) -> str:
    return html.unescape(response.content.decode())


# --- the queue and the count ---


def test_the_queue_says_what_waits_for_whom_and_since_when(waiting, deployer, admin, viewer):
    release = waiting.release
    page = text(admin.get("/approvals/"))
    row = re.search(rf'<tr id="waiting-{waiting.pk}">.*?</tr>', page, re.S).group(0)
    assert release.service.name in row and "2024.10.03" in row and "b7e4d21" in row and "gated-x" in row
    assert "Deploy" in row and "dev-deployer" in row and "0 of 1" in row and "just now" in row
    assert "you can approve" in row and f'href="/runs/{waiting.pk}/approve/"' in row
    assert f'href="/runs/{waiting.pk}/cancel/"' in row  # an admin may cancel
    mine = text(deployer.get("/approvals/"))
    assert "you asked for this" in mine and f"/runs/{waiting.pk}/approve/" not in mine
    assert f'href="/runs/{waiting.pk}/cancel/"' in mine  # the one who asked may cancel
    seen = text(viewer.get("/approvals/"))
    assert "needs a deployer" in seen and "/approve/" not in seen and "/cancel/" not in seen


def test_the_navigation_counts_what_the_principal_could_approve(waiting, deployer, admin, viewer):
    nav = text(admin.get("/approvals/"))
    assert 'href="/approvals/" aria-current="page">Approvals<span id="approvals-count"' in nav
    assert 'data-live-src="/approvals/count"' in nav and "run.approve" in nav and 'data-live-refresh-in="0"' in nav
    assert "approvals-count" not in text(viewer.get("/approvals/"))  # a viewer approves nothing
    assert '">1<span class="sr-only"> awaiting your approval' in text(admin.get("/approvals/count"))
    assert " hidden>0<" in text(deployer.get("/approvals/count"))  # their own run is not theirs to approve
    admin.post(f"/runs/{waiting.pk}/approve/")
    assert " hidden>0<" in text(admin.get("/approvals/count"))


def test_signed_out_the_fragments_are_401_and_the_pages_ask_to_sign_in(client, waiting):
    for url in ("/approvals/count", "/approvals/?fragment=rows", f"/runs/{waiting.pk}/?fragment=live"):
        assert client.get(url).status_code == 401, url
    for url in ("/approvals/", f"/runs/{waiting.pk}/approve/", "/services/svc-x/rollback/?envId=e"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/?next="), url


# --- approve, reject, cancel ---


def test_self_approval_is_refused_on_the_page_naming_the_rule(waiting, deployer):
    confirmation = deployer.get(f"/runs/{waiting.pk}/approve/")
    assert confirmation.status_code == 403 and SELF_APPROVAL in text(confirmation)
    assert f">Approve {waiting.pk}</button>" not in text(confirmation)
    response = deployer.post(f"/runs/{waiting.pk}/approve/", {"comment": "lgtm"})
    assert response.status_code == 403 and SELF_APPROVAL in text(response)
    waiting.refresh_from_db()
    assert waiting.state == "AwaitingApproval" and not waiting.approvals.exists()


def test_an_approval_through_the_confirmation_starts_the_run(waiting, admin):
    confirmation = text(admin.get(f"/runs/{waiting.pk}/approve/"))
    assert "Your approval is the last one needed: the run starts at once" in confirmation
    assert "asked for by dev-deployer" in confirmation and "0 of 1 approval so far" in confirmation
    waiting.refresh_from_db()
    assert waiting.state == "AwaitingApproval"  # a GET changes nothing
    response = admin.post(f"/runs/{waiting.pk}/approve/", {"comment": "ok to ship"})
    assert response.status_code == 302 and response["Location"] == f"/runs/{waiting.pk}/"
    waiting.refresh_from_db()
    assert waiting.state == "Running" and waiting.release.status == "Promoting"
    run_page = text(admin.get(f"/runs/{waiting.pk}/"))
    assert "1 of 1 approval." in run_page and "<strong>dev-admin</strong> approved" in run_page
    assert "“ok to ship”" in run_page and "Approve…" not in run_page
    # Late: the run no longer waits. A 409 with the domain's words, no button, nothing changed.
    late = admin.post(f"/runs/{waiting.pk}/approve/")
    assert late.status_code == 409 and "is Running: it is not awaiting approval" in text(late)
    again = admin.get(f"/runs/{waiting.pk}/reject/")
    assert again.status_code == 409 and f">Reject {waiting.pk}</button>" not in text(again)
    assert waiting.approvals.count() == 1


def test_a_reject_needs_a_comment_then_ends_the_run(waiting, admin):
    for blank in ({}, {"comment": "   "}):
        response = admin.post(f"/runs/{waiting.pk}/reject/", blank)
        assert response.status_code == 400 and "comment: is required" in text(response)
        assert 'aria-invalid="true"' in text(response)
    response = admin.post(f"/runs/{waiting.pk}/reject/", {"comment": "not during the sale"})
    assert response.status_code == 302
    waiting.refresh_from_db()
    assert waiting.state == "Rejected" and waiting.release.status == "Draft"
    panel = text(admin.get(f"/runs/{waiting.pk}/"))
    assert "<strong>dev-admin</strong> rejected" in panel and "“not during the sale”" in panel
    assert AuditEvent.objects.filter(action="run.reject", subject_id=waiting.pk).exists()


def test_a_duplicate_decision_is_a_409(gated, make_release, deployer, admin, make_environment):
    service, environment = gated
    environment.policy_refs = ["policy:approval:2"]
    environment.save()
    run = ask(deployer, make_release, service, environment)
    assert run.approvals_required == 2
    assert admin.post(f"/runs/{run.pk}/approve/").status_code == 302
    assert "you approved" in text(admin.get("/approvals/"))
    confirmation = admin.get(f"/runs/{run.pk}/approve/")
    assert confirmation.status_code == 409 and "has already decided" in text(confirmation)
    response = admin.post(f"/runs/{run.pk}/approve/")
    assert response.status_code == 409 and "each principal counts once" in text(response)
    assert run.approvals.count() == 1


def test_cancel_by_the_one_who_asked(waiting, deployer, viewer):
    assert viewer.post(f"/runs/{waiting.pk}/cancel/").status_code == 403
    confirmation = text(viewer.get(f"/runs/{waiting.pk}/cancel/"))
    assert "<button type=\"button\" disabled>Cancel</button>" in confirmation and "deployer" in confirmation
    assert deployer.post(f"/runs/{waiting.pk}/cancel/").status_code == 302
    waiting.refresh_from_db()
    assert waiting.state == "Cancelled"


def test_another_deployer_may_not_cancel(gated, make_release, admin, deployer):
    run = ask(admin, make_release, *gated)  # the admin asked: the deployer approves or rejects, never cancels
    response = deployer.post(f"/runs/{run.pk}/cancel/")
    assert response.status_code == 403 and "only the run's actor or an admin" in text(response)
    assert 'href="/runs/' + run.pk + '/approve/"' in text(deployer.get(f"/runs/{run.pk}/"))


def test_a_viewer_is_refused_and_a_post_needs_csrf(waiting, viewer):
    response = viewer.post(f"/runs/{waiting.pk}/approve/")
    assert response.status_code == 403 and "run.approve needs the deployer role" in text(response)
    browser = Client(enforce_csrf_checks=True)
    browser.cookies = sign_in(Client(), "admin").cookies
    assert browser.post(f"/runs/{waiting.pk}/approve/").status_code == 403
    waiting.refresh_from_db()
    assert waiting.state == "AwaitingApproval"


def test_the_run_page_panel_is_live_for_runs_that_ask_for_approvals(waiting, admin, make_release):
    page = text(admin.get(f"/runs/{waiting.pk}/"))
    assert f'data-live-src="/runs/{waiting.pk}/?fragment=live"' in page
    assert f'data-live-match="{waiting.pk} {waiting.release_id}"' in page
    assert "0 of 1 approval; waiting since" in page and "You can approve." in page
    assert 'class="badge AwaitingApproval"' in page
    fragment = text(admin.get(f"/runs/{waiting.pk}/?fragment=live"))
    assert fragment.startswith('<div id="run-live"') and "approval-panel" in fragment
    # A run that asked for none has no panel and is not fetched again.
    plain = make_release()
    lifecycle.begin_rollout(plain)
    run = WorkflowRun(kind="Deploy", release=plain, actor="bot")
    run.save()
    page = text(admin.get(f"/runs/{run.pk}/"))
    assert "approval-panel" not in page and 'id="run-live">' in page


# --- rollback ---


def activate(release: Release) -> Release:
    if release._state.adding:
        release.save()
    with acting_as("tests"):
        lifecycle.begin_rollout(release)
        run = WorkflowRun(kind="Deploy", release=release, actor="bot")
        run.save()
        RunLogEntry(run=run, message="done").save()
        lifecycle.end_rollout(run, succeeded=True)
    release.refresh_from_db()
    return release


@pytest.fixture
def rolled(make_environment, make_service, make_release):
    """A service whose current release in its environment superseded an earlier one."""
    environment = make_environment(name="rollout-x")
    service = make_service(environments=[environment])
    first = activate(make_release(service=service, environment=environment, sha="9f3b7de", version="2024.10.02"))
    second = activate(make_release(service=service, environment=environment, sha="b7e4d21", version="2024.10.03"))
    return service, environment, first, second


REASON = "the new release breaks checkout"


def test_the_service_and_environment_pages_offer_roll_back_where_there_is_something_to_restore(
    rolled, deployer, viewer, make_service, make_release
):
    service, environment, *_ = rolled
    href = f'href="/services/{service.pk}/rollback/?envId={environment.pk}"'
    assert href in text(deployer.get(f"/services/{service.pk}/"))
    assert href in text(deployer.get(f"/environments/{environment.pk}/"))
    assert href in text(deployer.get(f"/environments/{environment.pk}/?fragment=live"))
    assert href not in text(viewer.get(f"/services/{service.pk}/"))  # a viewer rolls nothing back
    assert href not in text(viewer.get(f"/environments/{environment.pk}/"))
    # A first release superseded nothing: no "Roll back…" for it.
    other = make_service(environments=[environment])
    activate(make_release(service=other, environment=environment))
    assert f"/services/{other.pk}/rollback/" not in text(deployer.get(f"/environments/{environment.pk}/"))


def test_the_confirmation_names_both_releases_then_rolls_back(rolled, deployer):
    service, environment, first, second = rolled
    url = f"/services/{service.pk}/rollback/?envId={environment.pk}"
    page = text(deployer.get(url))
    sentence = f"{service.pk} in {environment.pk} goes from 2024.10.03 (b7e4d21) back to 2024.10.02 (9f3b7de)."
    assert sentence in page and f"the release {second.pk} superseded" in page
    short = deployer.post(f"/services/{service.pk}/rollback/", {"envId": environment.pk, "reason": "too short"})
    assert short.status_code == 400 and "reason: is required, 10-500 characters" in text(short)
    assert sentence in text(short) and ">too short</textarea>" in text(short)
    response = deployer.post(f"/services/{service.pk}/rollback/", {"envId": environment.pk, "reason": REASON})
    assert response.status_code == 302
    new = Release.objects.get(pk=response["Location"].strip("/").rsplit("/", 1)[-1])
    assert (new.sha, new.version, new.rollback_of_id, new.restores_id) == ("9f3b7de", "2024.10.02", second.pk, first.pk)
    assert new.runs.get().kind == "Rollback"
    event = AuditEvent.objects.get(action="release.rollback", subject_id=new.pk)
    assert event.metadata["reason"] == REASON


def test_an_earlier_release_may_be_chosen(rolled, deployer, make_release):
    service, environment, first, _second = rolled
    third = activate(make_release(service=service, environment=environment, sha="c0ffee1", version="2024.10.04"))
    page = text(deployer.get(f"/services/{service.pk}/rollback/?envId={environment.pk}"))
    assert "goes from 2024.10.04 (c0ffee1) back to 2024.10.03 (b7e4d21)" in page
    assert f'<option value="{first.pk}">' in page
    chosen = text(deployer.get(f"/services/{service.pk}/rollback/?envId={environment.pk}&toReleaseId={first.pk}"))
    assert "goes from 2024.10.04 (c0ffee1) back to 2024.10.02 (9f3b7de)" in chosen
    assert f'name="toReleaseId" value="{first.pk}"' in chosen
    data = {"envId": environment.pk, "reason": REASON, "toReleaseId": first.pk}
    response = deployer.post(f"/services/{service.pk}/rollback/", data)
    assert response.status_code == 302
    assert Release.objects.get(rollback_of=third).restores_id == first.pk


def test_refusals_are_shown_on_the_page(rolled, deployer, viewer, make_service, make_release):
    service, environment, _first, second = rolled
    lonely = make_service(environments=[environment])
    activate(make_release(service=lonely, environment=environment))
    nothing = deployer.get(f"/services/{lonely.pk}/rollback/?envId={environment.pk}")
    assert nothing.status_code == 409 and "there is nothing to roll back to" in text(nothing)
    assert "Roll back to" not in text(nothing)
    posted = deployer.post(f"/services/{lonely.pk}/rollback/", {"envId": environment.pk, "reason": REASON})
    assert posted.status_code == 409 and "nothing to roll back to" in text(posted)
    wrong = deployer.get(f"/services/{service.pk}/rollback/?envId={environment.pk}&toReleaseId={second.pk}")
    assert wrong.status_code == 409 and "is not an earlier Active release" in text(wrong)
    for query in ("", "?envId=env-nope", f"?envId={environment.pk}&toReleaseId=x%00y"):
        assert deployer.get(f"/services/{service.pk}/rollback/{query}").status_code == 400, query
    assert deployer.get(f"/services/svc-nope/rollback/?envId={environment.pk}").status_code == 404
    refused = viewer.post(f"/services/{service.pk}/rollback/", {"envId": environment.pk, "reason": REASON})
    assert refused.status_code == 403 and "rollback needs the deployer role" in text(refused)
    assert '<button type="button" disabled>Roll back</button>' in text(
        viewer.get(f"/services/{service.pk}/rollback/?envId={environment.pk}")
    )
    assert not Release.objects.filter(rollback_of__isnull=False).exists()


# --- query counts: constant with more data ---


def counted(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return len(captured)


PINNED = {"queue": 4, "rows": 4, "count": 3, "run": 5, "approve": 4, "rollback": 9}


@pytest.mark.parametrize("page", list(PINNED))
def test_query_counts_do_not_grow_with_the_data(page, deployer, admin, make_environment, make_service, make_release):
    def more(n):
        for _ in range(n):
            gated, plain = make_environment(policy_refs=["policy:approval:2"]), make_environment()
            service = make_service(environments=[gated, plain])
            activate(make_release(service=service, environment=plain, sha="1234567"))
            activate(make_release(service=service, environment=plain, sha="abcdef1", version="2"))
            run = ask(deployer, make_release, service, gated, sha="7654321", version="3")
            admin.post(f"/runs/{run.pk}/approve/", {"comment": "one of two"})
            yield service, plain, run

    made = list(more(1))
    service, environment, run = made[0]
    url = {
        "queue": "/approvals/",
        "rows": "/approvals/?fragment=rows",
        "count": "/approvals/count",
        "run": f"/runs/{run.pk}/",
        "approve": f"/runs/{run.pk}/reject/",
        "rollback": f"/services/{service.pk}/rollback/?envId={environment.pk}",
    }[page]
    client = deployer if page in ("count", "approve") else admin
    if page == "approve":
        client = sign_in(Client(), "viewer")  # a principal who has not decided: the confirmation, read-only
    small = counted(client, url)
    list(more(4))
    assert counted(client, url) == small == PINNED[page]


# --- in a real browser, against the real web server and worker ---

SETTLE_MS = 30_000


@pytest.fixture
def staging_asks_approval(committed_demo):
    """The demo with env-staging asking for one approval (written before the browser starts)."""
    Environment.objects.filter(pk="env-staging").update(policy_refs=["policy:approval:1"])


@pytest.fixture
def staging_rolled_forward(committed_demo):
    """The demo with a second release Active in env-staging, superseding rel-123 (2024.10.01, 9f3b7de)."""
    activate(Release(service_id="svc-demo", environment_id="env-staging", sha="b7e4d21", version="2024.10.03"))


def test_a_deployer_asks_an_admin_approves_through_the_queue_and_the_run_starts(
    staging_asks_approval, web, worker, watched
):
    base = web()
    worker(CONTROLPLANE_STEP_DELAY_SECONDS=0.2)
    approver = watched(base)
    queue = approver.sign_in("admin", then="/approvals/")
    expect(queue.locator("html[data-live=on]")).to_have_count(1)
    expect(queue.locator("#approvals-empty")).to_have_count(1)
    expect(queue.locator("#approvals-count")).to_be_hidden()  # nothing awaits the admin yet
    queue.evaluate("window.__same_page = true")  # gone if the page reloads

    asker = watched(base)
    asker.sign_in("deployer", then="/releases/new/")
    page = asker.go("/releases/new/?serviceId=svc-demo&envId=env-staging")
    page.fill("#sha", "b7e4d21")
    page.fill("#version", "2024.10.03")
    page.get_by_role("button", name="Create release").click()
    page.wait_for_url(re.compile(r"/releases/rel-[a-z0-9-]+/$"))
    page.get_by_role("link", name="Deploy…").click()
    page.get_by_role("button", name=re.compile("^Deploy rel-")).click()
    page.wait_for_url(re.compile(r"/releases/rel-[a-z0-9-]+/$"))
    expect(page.locator("#release-summary .badge").first).to_have_text("Draft")  # nothing rolls out yet
    page.locator("#release-timeline a[href^='/runs/']").first.click()
    page.wait_for_url("**/runs/run-*/")
    run_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    expect(page.locator("#approval-summary")).to_contain_text("0 of 1 approval")
    expect(page.locator("#approval-summary")).to_contain_text("You asked for this.")
    expect(page.locator("html[data-live=on]")).to_have_count(1)
    page.evaluate("window.__same_page = true")

    # The admin's open queue and count change with no reload.
    expect(queue.locator("#approvals-count")).to_contain_text("1", timeout=15_000)
    row = queue.locator(f"#waiting-{run_id}")
    expect(row).to_contain_text("you can approve", timeout=15_000)
    expect(row).to_contain_text("dev-deployer")
    expect(row).to_contain_text("0 of 1")
    assert queue.evaluate("window.__same_page") is True
    approver.screenshots("approvals")
    row.get_by_role("link", name="Approve…").click()
    expect(queue.locator("#what")).to_contain_text("asked for by dev-deployer")
    expect(queue.locator("#outcome")).to_contain_text("Your approval is the last one needed")
    approver.screenshots("approvals-confirm")
    queue.fill("#comment", "checked the canary")
    queue.get_by_role("button", name=f"Approve {run_id}").click()
    queue.wait_for_url(f"**/runs/{run_id}/")
    expect(queue.locator("[data-run-state] .badge").first).to_have_text("Succeeded", timeout=SETTLE_MS)
    expect(queue.locator("#approval-decisions")).to_contain_text("dev-admin approved")
    expect(queue.locator("#approvals-count")).to_be_hidden()
    approver.clean()
    approver.screenshots("run-approved")

    # The one who asked watched it start and finish on the run page, with no reload.
    expect(page.locator("[data-run-state] .badge").first).to_have_text("Succeeded", timeout=SETTLE_MS)
    expect(page.locator("#approval-decisions")).to_contain_text("“checked the canary”")
    assert page.evaluate("window.__same_page") is True
    assert page.locator("ol.log li").count() > 0
    asker.clean()


def test_roll_back_from_the_service_page_to_the_new_release_following_its_run(
    staging_rolled_forward, web, worker, watched
):
    base = web()
    worker(CONTROLPLANE_STEP_DELAY_SECONDS=0.2)
    user = watched(base)
    page = user.sign_in("deployer", then="/environments/env-staging/")
    expect(page.locator("a.rollback[href='/services/svc-demo/rollback/?envId=env-staging']")).to_have_count(1)
    page = user.go("/services/svc-demo/")
    page.locator("a.rollback[href='/services/svc-demo/rollback/?envId=env-staging']").click()
    expect(page.locator("#rollback-text")).to_have_text(
        "svc-demo in env-staging goes from 2024.10.03 (b7e4d21) back to 2024.10.01 (9f3b7de)."
    )
    page.fill("#reason", "2024.10.03 breaks checkout")
    user.screenshots("rollback-confirm")
    page.get_by_role("button", name="Roll back to 2024.10.01").click()
    page.wait_for_url(re.compile(r"/releases/rel-[a-z0-9-]+/$"))
    assert not page.url.endswith("/rel-123/")  # a new release record restores rel-123's sha and version
    page.evaluate("window.__same_page = true")
    page.wait_for_selector("#release-summary .badge.Active", timeout=SETTLE_MS)
    assert page.evaluate("window.__same_page") is True
    summary = page.inner_text("#release-summary")
    assert "Current in env-staging" in summary and "2024.10.01" in summary
    expect(page.locator("#release-timeline")).to_contain_text("Rollback")
    user.clean()
    user.screenshots("rollback-release")


@pytest.fixture
def waiting_in_staging(staging_asks_approval):
    from controlplane.identity.context import Principal
    from controlplane.identity.roles import Role
    from releases import workflows

    activate(Release(service_id="svc-demo", environment_id="env-staging", sha="b7e4d21", version="2024.10.03"))
    draft = Release(service_id="svc-demo", environment_id="env-staging", sha="c0ffee1", version="2024.10.04")
    draft.save()
    with acting_as(Principal(actor="dev-deployer", role=Role.DEPLOYER, auth_method="devToken")):
        return workflows.deploy(draft)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_approval_and_rollback_pages_meet_wcag_aa(waiting_in_staging, web, browser, scheme):
    from tests.conftest import TOKENS
    from tests.pages.test_accessibility import AXE, WCAG

    run = waiting_in_staging
    url = web()
    context = browser.new_context(bypass_csp=True, color_scheme=scheme, viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(f"{url}/login/?next=/approvals/")
    page.fill("#token", TOKENS["admin"])
    page.get_by_role("button", name="Sign in with dev token").click()
    page.wait_for_url(f"{url}/approvals/")
    found = {}
    for path in (
        "/approvals/",
        f"/runs/{run.pk}/",
        f"/runs/{run.pk}/approve/",
        f"/runs/{run.pk}/reject/",
        f"/runs/{run.pk}/cancel/",
        "/services/svc-demo/",
        "/services/svc-demo/rollback/?envId=env-prod",  # nothing there: the 409, no form
        "/services/svc-demo/rollback/?envId=env-staging",
    ):
        page.goto(f"{url}{path}")
        page.wait_for_selector("#approvals-count:not([data-live-refresh-in])", state="attached")  # fetched
        page.evaluate(AXE)
        result = page.evaluate("async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG)
        assert len(result["passes"]) > 10, f"axe checked little on {path}"
        problems = [
            f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
            for v in result["violations"]
        ]
        if problems:
            found[path] = problems
    context.close()
    assert not found, json.dumps(found, indent=1, ensure_ascii=False)
