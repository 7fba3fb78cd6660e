"""The policies on the pages (docs/pages.md, "Policies"): the deploy and promote confirmations show the decision
(what is evaluated; or who refused, why, and when it is next allowed, with no button), the "Break glass…"
confirmation, and each environment open or closed on the dashboard. Django's client with time frozen first,
then the real browser against the real server, whose clock runs: there the data is made closed or open
relative to the time the test runs at."""

from datetime import UTC, datetime, timedelta

import pytest
import requests
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from playwright.sync_api import expect

from audit.models import AuditEvent
from policies import engine
from releases.models import Release
from services.models import DASH, ChangeWindow, Environment, Freeze
from tests.conftest import TOKENS, sign_in
from tests.pages.test_accessibility import AXE, WCAG

PROMOTE = "/releases/rel-123/promote/?envId=env-prod"
BREAK_GLASS = "/releases/rel-123/promote/break-glass/?envId=env-prod"
SATURDAY = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)  # the demo's `weekday` window is closed
MONDAY = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)  # 11:00 in Berlin: open
OUTSIDE = f"outside weekday (Mon{DASH}Fri 09:00{DASH}17:00 Europe/Berlin)"
REASON = "Hotfix for INC-42, approved by the on-call lead"


def main(response) -> str:
    return response.content.decode().split("<main", 1)[1]


def offers_a_post(html: str) -> bool:
    return 'method="post"' in html


@pytest.fixture
def as_role(shipped_demo):
    def client(role: str) -> Client:
        return sign_in(Client(), role)

    return client


@pytest.fixture
def saturday():
    with time_machine.travel(SATURDAY, tick=False):
        yield


@pytest.fixture
def monday():
    with time_machine.travel(MONDAY, tick=False):
        yield


# --- the confirmation shows the decision ---


def test_refused_the_confirmation_names_the_policy_the_reason_and_the_next_opening_and_has_no_button(as_role, saturday):
    response = as_role("deployer").get(PROMOTE)
    html = main(response)
    assert response.status_code == 409
    assert f"<code>policy:change-window:weekday</code>: {OUTSIDE}" in html
    # In UTC, and in the window's own time.
    assert (
        'Next allowed at <time datetime="2026-12-07T08:00:00+00:00">2026-12-07 08:00 UTC (Mon 09:00 Europe/Berlin)'
        in html
    )
    assert not offers_a_post(html) and "Promote to env-prod" not in html
    assert "Break glass" not in html  # a deployer may not: CONTROLPLANE_BREAK_GLASS_ROLES is admin
    assert AuditEvent.objects.filter(action="policy.deny").count() == 0  # a confirmation asks; it is no refusal


def test_an_admin_is_offered_break_glass(as_role, saturday):
    html = main(as_role("admin").get(PROMOTE))
    assert f'<a class="button" href="{BREAK_GLASS}">Break glass…</a>' in html.replace("&amp;", "&")
    assert not offers_a_post(html)


def test_allowed_the_confirmation_says_what_is_evaluated(as_role, monday):
    response = as_role("deployer").get(PROMOTE)
    html = main(response)
    assert response.status_code == 200
    assert (
        "Allowed now. Evaluated: <code>policy:change-window:weekday</code>, <code>policy:requires:env-staging</code>, "
        "<code>policy:incident-gate:critical</code>." in html
    )
    assert offers_a_post(html) and "Break glass" not in html


def test_a_refusal_no_time_lifts_says_so(as_role, monday):
    draft = Release(service_id="svc-demo", environment_id="env-prod", sha="abcdef1", version="2")
    draft.save()
    html = main(as_role("admin").get(f"/releases/{draft.pk}/deploy/"))
    assert "<code>policy:requires:env-staging</code>: env-prod is reached only by promotion" in html
    assert "No time alone allows it." in html
    assert "Break glass…" in html  # promotion order is one of what break-glass overrides


@pytest.fixture
def operator_policy(settings, tmp_path):
    """An operator's own policy (CONTROLPLANE_POLICY_DIR), which break-glass never overrides."""
    (tmp_path / "hold.cedar").write_text(
        '@id("hold-demo")\n@reason("svc-demo is on hold by the operators")\n'
        'forbid (principal, action == ControlPlane::Action::"promote", resource)\n'
        'when { context.service == "svc-demo" };\n'
    )
    settings.CONTROLPLANE_POLICY_DIR = str(tmp_path)
    engine.book.cache_clear()
    yield
    engine.book.cache_clear()


@pytest.mark.usefixtures("operator_policy")
def test_a_refusal_break_glass_cannot_override_offers_none(as_role, monday):
    admin = as_role("admin")
    html = main(admin.get(PROMOTE))
    assert "<code>hold-demo</code>: svc-demo is on hold by the operators" in html
    assert "Break glass" not in html
    page = admin.get(BREAK_GLASS)
    assert page.status_code == 409 and not offers_a_post(main(page))
    assert "break-glass overrides windows, freezes, incident gates and promotion order only." in main(page)
    posted = admin.post(BREAK_GLASS, {"envId": "env-prod", "reason": REASON})
    assert posted.status_code == 409 and "svc-demo is on hold by the operators" in main(posted)
    assert not Release.objects.filter(environment_id="env-prod").exists()


# --- break glass ---


def test_break_glass_asks_a_reason_then_promotes_and_is_audited(as_role, saturday):
    admin = as_role("admin")
    page = admin.get(BREAK_GLASS)
    html = main(page)
    assert page.status_code == 200 and f"<code>policy:change-window:weekday</code>: {OUTSIDE}" in html
    assert '<textarea id="reason" name="reason"' in html and "Break glass and promote to env-prod" in html

    for short in ("", "too short", " " * 40):
        refused = admin.post(BREAK_GLASS, {"envId": "env-prod", "reason": short})
        assert refused.status_code == 400
        assert 'id="reason-error">reason: is required, 10-500 characters.' in main(refused)
    assert admin.post(BREAK_GLASS, {"envId": "env-prod", "reason": "x" * 501}).status_code == 400
    assert not Release.objects.filter(environment_id="env-prod").exists()

    done = admin.post(BREAK_GLASS, {"envId": "env-prod", "reason": REASON})
    promoted = Release.objects.get(environment_id="env-prod")
    assert done.status_code == 302 and done["Location"] == f"/releases/{promoted.pk}/"
    override = AuditEvent.objects.get(action="policy.override")
    assert override.metadata["reason"] == REASON
    assert override.metadata["overridden"] == [{"policy": "policy:change-window:weekday", "reason": OUTSIDE}]


def test_break_glass_by_a_role_not_allowed_it_is_a_403_naming_the_setting(as_role, saturday):
    deployer = as_role("deployer")
    said = "break-glass is allowed to the roles in CONTROLPLANE_BREAK_GLASS_ROLES (admin); you are deployer."
    page = deployer.get(BREAK_GLASS)
    assert page.status_code == 403 and said in main(page) and not offers_a_post(main(page))
    posted = deployer.post(BREAK_GLASS, {"envId": "env-prod", "reason": REASON})  # the domain says the same
    assert posted.status_code == 403 and said in main(posted)
    viewer = as_role("viewer").post(BREAK_GLASS, {"envId": "env-prod", "reason": REASON})
    assert viewer.status_code == 403 and "release.promote needs the deployer role" in main(viewer)
    assert not Release.objects.filter(environment_id="env-prod").exists()


def test_break_glass_needs_the_csrf_token(as_role, saturday):
    browser = Client(enforce_csrf_checks=True)
    browser.cookies = as_role("admin").cookies
    assert browser.post(BREAK_GLASS, {"envId": "env-prod", "reason": REASON}).status_code == 403
    assert not Release.objects.filter(environment_id="env-prod").exists()


def test_break_glass_with_nothing_to_override_says_so(as_role, monday):
    page = as_role("admin").get(BREAK_GLASS)
    assert page.status_code == 200 and "Nothing to override: the policies allow it now." in main(page)
    assert not offers_a_post(main(page))


def test_break_glass_for_a_bad_target_or_a_refused_action_is_the_domains_answer(as_role, saturday):
    admin = as_role("admin")
    unknown = admin.get("/releases/rel-123/promote/break-glass/?envId=env-nope")
    assert unknown.status_code == 400 and "unknown environment" in main(unknown)
    same = admin.post("/releases/rel-123/deploy/break-glass/", {"reason": REASON})  # Active: not deployable
    assert same.status_code == 409 and "is Active" in main(same)


# --- each environment, open or closed, on the dashboard ---


def test_the_dashboard_says_whether_each_environment_is_open_and_until_when(as_role, saturday):
    viewer = as_role("viewer")
    index = viewer.get("/").content.decode()
    closed = '<span class="open-status closed" title="changes at 2026-12-07 08:00 UTC">'
    assert f"{closed}closed · opens Mon 09:00 Europe/Berlin</span>" in index
    assert '<span class="open-status open">open</span>' in index  # env-staging: no window, no freeze
    # live.js asks again when the first status changes (in seconds, as the server counts them), or on events
    # about an environment, a window or a freeze.
    assert f'data-live-refresh-in="{2 * 86400 - 2 * 3600 + 1}"' in index
    # (the columns in promotion order: env-prod requires env-staging)
    assert 'data-live-src="/?fragment=columns" data-live-match="env-staging env-prod ChangeWindow Freeze"' in index
    columns = viewer.get("/?fragment=columns").content.decode()
    assert columns.startswith('<tr id="columns"') and "closed · opens Mon 09:00 Europe/Berlin" in columns
    for path in ("/environments/", "/environments/?fragment=rows", "/environments/env-prod/"):
        assert "closed · opens Mon 09:00 Europe/Berlin" in viewer.get(path).content.decode(), path
    Freeze(title="Year end", starts_at=SATURDAY, ends_at=SATURDAY + timedelta(days=30), env_ids=["env-prod"]).save()
    assert "frozen until 2027-01-04 10:00 UTC" in viewer.get("/environments/env-prod/").content.decode()


def test_a_signed_out_fragment_is_a_401(client, demo):
    assert client.get("/?fragment=columns").status_code == 401
    assert client.get("/environments/?fragment=rows").status_code == 401


def count(client, path: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code in (200, 409), response.content[:300]
    return len(captured)


def more_environments(n: int):
    """`n` environments more, each with a window and a freeze to come."""
    window = ChangeWindow.objects.get(name="weekday")
    for i in range(n):
        env = Environment(
            name=f"more-{Environment.objects.count()}-{i}", policy_refs=[f"policy:change-window:{window.name}"]
        )
        env.save()
        Freeze(title="f", starts_at=MONDAY, ends_at=MONDAY + timedelta(days=1), env_ids=[env.pk]).save()


# Each with the session and its user: the windows named and the freezes not ended are two queries whatever
# their number (and one Cedar batch).
PINNED = {
    # the trail's head, then the content computed (the drifted targets among it): a change precedes each count
    # (tests/pages/test_index.py)
    "/": 12,
    "/?fragment=columns": 5,
    "/environments/": 5,
    "/environments/?fragment=rows": 5,
    "/environments/env-prod/": 7,  # what the last drift check saw there among them
    PROMOTE: 16,  # one more than before approvals: is a run awaiting approval there (releases.workflows.busy)
    BREAK_GLASS: 16,
}


@pytest.mark.parametrize("path", list(PINNED))
def test_query_counts_do_not_grow_with_environments_windows_and_freezes(as_role, saturday, path):
    admin = as_role("admin")
    more_environments(1)
    small = count(admin, path)
    more_environments(5)
    assert count(admin, path) == small == PINNED[path]


# --- in a real browser, against the real server (whose clock runs) ---

SETTLE_MS = 30_000


def hhmm(instant: datetime) -> str:
    return f"{instant:%H:%M}"


def window_of_now(name: str, opens: timedelta, closes: timedelta) -> ChangeWindow:
    """A window on every day, in UTC, from now + `opens` to now + `closes` (to the minute): open now when
    `opens` is negative, closed when positive, whatever the hour the test runs at (across midnight included)."""
    now = datetime.now(UTC)
    window = ChangeWindow(
        name=name, timezone="UTC", days=[1, 2, 3, 4, 5, 6, 7], start=hhmm(now + opens), end=hhmm(now + closes)
    )
    window.save()
    return window


def prod_refs(*refs: str):
    prod = Environment.objects.get(pk="env-prod")
    prod.policy_refs = list(refs)
    prod.save()


# Data is written before the browser is: Django's ORM refuses to run while playwright's event loop is marked
# running (tests/live.py, `browser`), so these fixtures come before `web` and `watched` in a test's arguments.


@pytest.fixture
def closed_prod(committed_demo):
    """env-prod's window opens in two hours: closed now."""
    later = window_of_now("later", timedelta(hours=2), timedelta(hours=3))
    prod_refs("policy:change-window:later", "policy:requires:env-staging")
    return later


@pytest.fixture
def open_prod_frozen_staging(committed_demo):
    """env-prod's window opened an hour ago; env-staging is frozen for a few seconds more. With when env-prod
    closes as the dashboard says it: "02:11", or "Tue 00:11" when that is tomorrow (a test run after 22:00 UTC)."""
    now = datetime.now(UTC)
    window_of_now("open-now", -timedelta(hours=1), timedelta(hours=2))
    prod_refs("policy:change-window:open-now")
    ends = now + timedelta(seconds=15)
    Freeze(title="Short", starts_at=now - timedelta(minutes=1), ends_at=ends, env_ids=["env-staging"]).save()
    closes = now + timedelta(hours=2)
    return f"{closes:%a} {hhmm(closes)}" if closes.date() != now.date() else hhmm(closes), ends


def test_a_refused_promotion_shows_why_and_an_admin_breaks_glass(closed_prod, web, worker, watched):
    later = closed_prod
    base = web()
    worker(CONTROLPLANE_STEP_DELAY_SECONDS=0.1)

    deployer = watched(base)
    deployer.sign_in("deployer", then="/releases/rel-123/")
    page = deployer.page
    response = page.goto(f"{base}{PROMOTE}")
    assert response.status == 409
    decision = page.locator("#policy-decision")
    expect(decision).to_contain_text(
        f"policy:change-window:later: outside later (Mon{DASH}Sun {later.start}{DASH}{later.end} UTC)"
    )
    expect(page.locator("#next-allowed")).to_contain_text(f"{later.start} UTC")
    assert page.get_by_role("button", name="Promote to env-prod").count() == 0
    assert page.get_by_role("link", name="Break glass…").count() == 0
    deployer.screenshots("release-confirm-refused")
    assert deployer.errors == ["Failed to load resource: the server responded with a status of 409 (Conflict)"]
    deployer.errors.clear()
    deployer.clean()

    admin = watched(base)
    admin.sign_in("admin", then="/releases/rel-123/")
    page = admin.page
    page.goto(f"{base}{PROMOTE}")
    page.get_by_role("link", name="Break glass…").click()
    page.wait_for_url("**/promote/break-glass/?envId=env-prod")
    expect(page.get_by_role("heading", level=1)).to_have_text("Break glass: promote rel-123 to env-prod?")
    page.fill("#reason", "too short")
    page.get_by_role("button", name="Break glass and promote to env-prod").click()
    expect(page.locator("#reason-error")).to_have_text("reason: is required, 10-500 characters.")
    admin.screenshots("release-break-glass")
    assert admin.errors == [
        "Failed to load resource: the server responded with a status of 409 (Conflict)",  # the confirmation
        "Failed to load resource: the server responded with a status of 400 (Bad Request)",
    ]
    admin.errors.clear()
    page.fill("#reason", REASON)
    page.get_by_role("button", name="Break glass and promote to env-prod").click()
    page.wait_for_url(lambda url: "/releases/rel-" in url and "rel-123" not in url)
    expect(page.locator("#release-summary .badge.Active")).to_be_visible(timeout=SETTLE_MS)  # it follows the run
    assert "Current in env-prod" in page.inner_text("#release-summary")
    admin.clean()

    trail = requests.get(
        f"{base}/api/audit-events/?action=policy.override",
        headers={"Authorization": f"Bearer {TOKENS['admin']}"},
        timeout=30,
    ).json()["results"]
    assert [event["metadata"]["reason"] for event in trail] == [REASON]


def test_the_dashboard_shows_each_environment_open_or_closed_and_changes_when_time_does(
    open_prod_frozen_staging, web, watched
):
    closes, ends = open_prod_frozen_staging
    user = watched(web())
    page = user.sign_in("viewer", then="/")
    prod = page.locator("#columns a[href='/environments/env-prod/'] + .sub")
    staging = page.locator("#columns a[href='/environments/env-staging/'] + .sub")
    expect(prod).to_have_text(f"open · closes {closes} UTC")
    expect(staging).to_have_text(f"frozen until {hhmm(ends)} UTC")
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads
    expect(staging).to_have_text("open", timeout=SETTLE_MS)  # when the freeze ends, with no event and no reload
    assert page.evaluate("window.__sameDocument") is True
    expect(prod).to_have_text(f"open · closes {closes} UTC")
    user.screenshots("index-open-or-closed")

    page.goto(f"{user.base}/environments/")
    expect(page.locator("#environments-live")).to_contain_text(f"open · closes {closes} UTC")
    user.clean()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_confirmations_meet_wcag_aa(closed_prod, web, browser, scheme):
    url = web()
    context = browser.new_context(bypass_csp=True, color_scheme=scheme, viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(f"{url}/login/?next=/")
    page.fill("#token", TOKENS["admin"])
    page.get_by_role("button", name="Sign in with dev token").click()
    page.wait_for_url(f"{url}/")
    found = {}
    for path in (PROMOTE, BREAK_GLASS, "/", "/environments/", "/environments/env-prod/"):
        page.goto(f"{url}{path}")
        page.evaluate(AXE)
        result = page.evaluate("async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG)
        assert len(result["passes"]) > 10, f"axe checked little on {path}"
        problems = [f"{v['id']}: {v['help']} — {[n['target'] for n in v['nodes']][:3]}" for v in result["violations"]]
        if problems:
            found[path] = problems
    context.close()
    assert not found, found
