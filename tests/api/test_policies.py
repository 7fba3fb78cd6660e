"""Policies over REST: change windows and freezes as resources, policy refs on environments, break-glass on
deploy and promote, a refusal's 409, and "why not, and until when?" (`GET /api/environments/{id}/policy/`)."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from releases.models import Release, WorkflowRun
from services.models import ChangeWindow, Environment, Freeze, Service
from tests.api.conftest import Api
from tests.conftest import loaded_once

# The demo as shipped: env-prod carries weekday (Mon-Fri 09:00-17:00 Europe/Berlin),
# requires:env-staging and incident-gate:critical; rel-123 is Active in env-staging.
demo = loaded_once("demo", as_shipped=True)

SUNDAY = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
MONDAY_MORNING = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)  # 11:00 in Berlin: the window is open
WINDOW = {"name": "nights", "timezone": "Asia/Kolkata", "days": [1, 2, 3], "start": "22:00", "end": "06:00"}
FREEZE = {
    "title": "Year-end freeze",
    "startsAt": "2026-12-20T00:00:00+01:00",
    "endsAt": "2027-01-04T00:00:00+01:00",
    "envIds": ["env-prod"],
    "reason": "Nobody on call.",
}
REASON = "checkout is down, hotfix"
SUMMARY = "Mon\u2013Fri 09:00\u201317:00 Europe/Berlin"  # en dashes
OUTSIDE = f"outside weekday ({SUMMARY})"


def events(action: str):
    """The events of `action` this test's requests wrote (the demo's trail has its own, by its people)."""
    return list(AuditEvent.objects.filter(action=action, actor__startswith="dev-").order_by("seq"))


def travel(when: datetime):
    return time_machine.travel(when, tick=False)


# --- change windows ---


def test_a_change_window_as_the_api_shows_it(viewer):
    body = viewer.get("/api/change-windows/cw-weekday/").json()
    assert body == {
        "id": "cw-weekday",
        "name": "weekday",
        "timezone": "Europe/Berlin",
        "days": [1, 2, 3, 4, 5],
        "start": "09:00",
        "end": "17:00",
        "createdAt": "2024-09-01T09:00:00Z",
    }
    assert [w["name"] for w in viewer.get("/api/change-windows/").json()["results"]] == ["weekday"]


def test_an_admin_creates_a_window_and_the_trail_records_it(admin):
    response = admin.post("/api/change-windows/", {**WINDOW, "days": [3, 1, 2]})
    assert response.status_code == 201, response.content
    window = response.json()
    assert window["id"].startswith("cw-") and window["days"] == [1, 2, 3]
    [event] = events("changewindow.create")
    assert (event.subject_type, event.subject_id, event.actor) == ("ChangeWindow", window["id"], "dev-admin")
    assert event.metadata == {
        "name": "nights",
        "timezone": "Asia/Kolkata",
        "days": [1, 2, 3],
        "start": "22:00",
        "end": "06:00",
    }


def test_an_admin_edits_a_window_and_the_trail_lists_the_change(admin):
    response = admin.patch("/api/change-windows/cw-weekday/", {"end": "18:00"})
    assert response.status_code == 200 and response.json()["end"] == "18:00"
    [event] = events("changewindow.update")
    assert event.metadata == {"changes": {"end": ["17:00", "18:00"]}}


@pytest.mark.parametrize("role", ["viewer", "deployer"])
def test_only_admins_write_windows_and_freezes(api, role):
    client = api(role)
    assert client.post("/api/change-windows/", WINDOW).status_code == 403
    assert client.patch("/api/change-windows/cw-weekday/", {"end": "18:00"}).status_code == 403
    assert client.post("/api/freezes/", FREEZE).status_code == 403
    assert client.get("/api/change-windows/").status_code == 200 and client.get("/api/freezes/").status_code == 200
    assert not ChangeWindow.objects.filter(name="nights").exists() and not Freeze.objects.exists()


def test_windows_and_freezes_are_never_deleted(admin):
    assert admin.delete("/api/change-windows/cw-weekday/").status_code == 405
    frz = admin.post("/api/freezes/", FREEZE).json()["id"]
    assert admin.delete(f"/api/freezes/{frz}/").status_code == 405
    assert ChangeWindow.objects.filter(pk="cw-weekday").exists() and Freeze.objects.filter(pk=frz).exists()


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone", "'Mars/Olympus' is not an IANA time zone name"),
        ({"timezone": "europe/berlin"}, "timezone", "is not an IANA time zone name"),
        ({"days": []}, "days", "must list ISO weekdays 1 (Monday) to 7 (Sunday)"),
        ({"days": [0, 8]}, "days", "must list ISO weekdays"),
        ({"days": [1, 1]}, "days", "each once"),
        ({"days": ["1"]}, "days", "must be a whole number."),
        ({"days": [True]}, "days", "must be a whole number."),
        ({"start": "9:00"}, "start", 'must be a time "HH:MM" from 00:00 to 23:59.'),
        ({"end": "24:01"}, "end", 'must be a time "HH:MM" from 00:00 to 24:00.'),
        ({"end": "22:00"}, "end", "must differ from start"),
        ({"name": "weekday"}, "name", "already exists"),
        ({"colour": "red"}, "colour", "is not a field of this resource."),
    ],
)
def test_a_bad_window_is_a_400_naming_the_field(admin, change, field, rule):
    response = admin.post("/api/change-windows/", {**WINDOW, **change})
    assert response.status_code == 400, response.content
    assert any(rule in message for message in response.json()[field]), response.json()
    assert ChangeWindow.objects.count() == 1 and not events("changewindow.create")


def test_a_window_an_environment_names_cannot_be_renamed(admin):
    response = admin.patch("/api/change-windows/cw-weekday/", {"name": "workday"})
    assert response.status_code == 400
    assert response.json() == {"name": ["is named by the policy refs of env-prod; change those first."]}
    unused = admin.post("/api/change-windows/", WINDOW).json()["id"]
    assert admin.patch(f"/api/change-windows/{unused}/", {"name": "late-nights"}).status_code == 200


# --- freezes ---


def test_an_admin_creates_a_freeze_and_times_come_back_in_utc(admin, viewer):
    response = admin.post("/api/freezes/", FREEZE)
    assert response.status_code == 201, response.content
    freeze = response.json()
    assert freeze["id"].startswith("frz-")
    assert {k: freeze[k] for k in ("startsAt", "endsAt", "envIds")} == {
        "startsAt": "2026-12-19T23:00:00Z",
        "endsAt": "2027-01-03T23:00:00Z",
        "envIds": ["env-prod"],
    }
    assert viewer.get(f"/api/freezes/{freeze['id']}/").json() == freeze
    [event] = events("freeze.create")
    assert (event.subject_type, event.subject_id, event.metadata["envIds"]) == ("Freeze", freeze["id"], ["env-prod"])
    assert admin.patch(f"/api/freezes/{freeze['id']}/", {"title": "Holidays"}).status_code == 200
    [event] = events("freeze.update")
    assert event.metadata == {"changes": {"title": ["Year-end freeze", "Holidays"]}}


def test_the_freeze_list_is_newest_first_and_filters_by_environment(admin, viewer):
    admin.post("/api/freezes/", FREEZE)
    admin.post(
        "/api/freezes/",
        {
            **FREEZE,
            "title": "Later",
            "startsAt": "2027-02-01T00:00:00Z",
            "endsAt": "2027-02-02T00:00:00Z",
            "envIds": ["env-staging"],
        },
    )
    assert [f["title"] for f in viewer.get("/api/freezes/").json()["results"]] == ["Later", "Year-end freeze"]
    assert [f["title"] for f in viewer.get("/api/freezes/?envId=env-prod").json()["results"]] == ["Year-end freeze"]
    assert viewer.get("/api/freezes/?envId=env-").json()["results"] == []


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"endsAt": "2026-12-19T00:00:00Z"}, "endsAt", "must be after startsAt."),
        ({"startsAt": "2026-12-20"}, "startsAt", "must be an RFC 3339 time with an offset"),
        ({"envIds": []}, "envIds", "must list one or more environment ids."),
        ({"envIds": ["env-nope"]}, "envIds", "unknown environment 'env-nope'."),
        ({"envIds": ["env-prod", "env-prod"]}, "envIds", "more than once"),
        ({"envIds": [1]}, "envIds", "must be a string."),
        ({"title": " "}, "title", ""),
        ({"reason": "a" * 2001}, "reason", "must be at most 2000 characters (it has 2001)."),
    ],
)
def test_a_bad_freeze_is_a_400_naming_the_field(admin, change, field, rule):
    response = admin.post("/api/freezes/", {**FREEZE, **change})
    assert response.status_code == 400, response.content
    assert any(rule in message for message in response.json()[field]), response.json()
    assert not Freeze.objects.exists() and not events("freeze.create")


# --- policy refs on environments ---


@pytest.mark.parametrize(
    ("ref", "rule"),
    [
        ("policy:two-person", "unknown policy kind 'two-person'"),
        ("policy:change-window:nope", "nope"),
        ("policy:requires:env-nope", "env-nope"),
        ("policy:requires:env-staging:2w", "is not a duration like 30m, 2h or 1d."),
        ("policy:incident-gate:sev1", "takes at most one severity"),
    ],
)
def test_a_bad_policy_ref_is_a_400_under_policy_refs(admin, ref, rule):
    for response in (
        admin.post("/api/environments/", {"name": "qa", "policyRefs": [ref]}),
        admin.patch("/api/environments/env-staging/", {"policyRefs": [ref]}),
    ):
        assert response.status_code == 400, response.content
        assert any(rule in message for message in response.json()["policyRefs"]), response.json()
    assert Environment.objects.get(pk="env-staging").policy_refs == []


def test_refs_to_what_exists_are_taken(admin):
    refs = ["policy:change-window:weekday", "policy:requires:env-prod:30m", "policy:incident-gate", "policy:approval:2"]
    response = admin.patch("/api/environments/env-staging/", {"policyRefs": refs})
    assert response.status_code == 200 and response.json()["policyRefs"] == refs


# --- deploy and promote: refusals and break-glass ---


def promote_to_prod(client, **body):
    return client.post("/api/releases/rel-123/promote/", {"envId": "env-prod", **body})


def test_a_promotion_outside_the_window_is_a_409_with_the_decision(deployer):
    releases, runs = Release.objects.count(), WorkflowRun.objects.count()
    with travel(SUNDAY):
        response = promote_to_prod(deployer)
    assert response.status_code == 409, response.content
    body = response.json()
    assert body["decision"] == {
        "allowed": False,
        "deniedBy": [{"policy": "policy:change-window:weekday", "reason": OUTSIDE}],
        "nextAllowedAt": "2026-12-07T08:00:00Z",
    }
    assert "policy:change-window:weekday" in body["detail"] and "2026-12-07T08:00:00Z" in body["detail"]
    [denial] = events("policy.deny")
    assert (denial.actor, denial.subject_id) == ("dev-deployer", "rel-123")
    assert denial.metadata["deniedBy"] == body["decision"]["deniedBy"]
    assert (Release.objects.count(), WorkflowRun.objects.count()) == (releases, runs)
    assert not events("release.promote")


def test_break_glass_by_an_admin_goes_through_and_is_audited(admin):
    with travel(SUNDAY):
        response = promote_to_prod(admin, breakGlass={"reason": REASON})
    assert response.status_code == 202, response.content
    [override] = events("policy.override")
    assert override.metadata["reason"] == REASON
    assert [d["policy"] for d in override.metadata["overridden"]] == ["policy:change-window:weekday"]
    [promotion] = events("release.promote")
    assert promotion.metadata["policy"]["overridden"] == override.metadata["overridden"]
    assert not events("policy.deny")


def test_break_glass_is_for_the_roles_the_setting_names(deployer, settings):
    with travel(SUNDAY):
        response = promote_to_prod(deployer, breakGlass={"reason": REASON})
        assert response.status_code == 403
        assert "CONTROLPLANE_BREAK_GLASS_ROLES" in response.json()["detail"]
        settings.CONTROLPLANE_BREAK_GLASS_ROLES = ["deployer", "admin"]
        assert promote_to_prod(deployer, breakGlass={"reason": REASON}).status_code == 202
    assert len(events("policy.override")) == 1


@pytest.mark.parametrize(
    "break_glass",
    [{"reason": "too short"}, {"reason": "a" * 501}, {"reason": " " * 20}, {}, {"reason": 12345678901}, "why", None],
    ids=["9-chars", "501-chars", "blank", "no-reason", "number", "string", "null"],
)
def test_a_bad_break_glass_is_a_400_naming_it(admin, break_glass):
    releases = Release.objects.count()
    with travel(SUNDAY):
        response = promote_to_prod(admin, breakGlass=break_glass)
    assert response.status_code == 400, response.content
    assert list(response.json()) == ["breakGlass"], response.json()
    assert Release.objects.count() == releases and not events("policy.override") and not events("policy.deny")


def test_break_glass_refuses_keys_it_does_not_take(admin, make_release):
    response = admin.post(
        "/api/releases/rel-123/promote/", {"envId": "env-prod", "breakGlass": {"reason": REASON, "force": True}}
    )
    assert response.status_code == 400 and response.json() == {
        "breakGlass": ["force: is not a field of this resource."]
    }


def test_an_allowed_deploy_records_the_decision(deployer, make_release):
    draft = make_release(
        service=Service.objects.get(pk="svc-demo"), environment=Environment.objects.get(pk="env-staging")
    )
    with travel(SUNDAY):
        response = deployer.post(f"/api/releases/{draft.id}/deploy/")
    assert response.status_code == 202, response.content
    [event] = events("deploy.create")
    assert event.metadata["policy"] == {"allowed": True, "evaluated": [], "overridden": []}


def test_a_deploy_takes_break_glass_too(admin, deployer, make_release):
    draft = make_release(service=Service.objects.get(pk="svc-demo"), environment=Environment.objects.get(pk="env-prod"))
    with travel(MONDAY_MORNING):
        refused = deployer.post(f"/api/releases/{draft.id}/deploy/")
        assert refused.status_code == 409
        assert [d["policy"] for d in refused.json()["decision"]["deniedBy"]] == ["policy:requires:env-staging"]
        assert refused.json()["decision"]["nextAllowedAt"] is None
        assert deployer.post(f"/api/releases/{draft.id}/deploy/", {"breakGlass": {"reason": REASON}}).status_code == 403
        response = admin.post(f"/api/releases/{draft.id}/deploy/", {"breakGlass": {"reason": REASON}})
    assert response.status_code == 202, response.content
    [override] = events("policy.override")
    assert [d["policy"] for d in override.metadata["overridden"]] == ["policy:requires:env-staging"]


# --- why not, and until when? ---

PROD_POLICY = "/api/environments/env-prod/policy/"


def test_why_not_and_until_when(viewer):
    response = viewer.get(f"{PROD_POLICY}?serviceId=svc-demo&action=promote&at=2026-12-06T12:00:00Z")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "allowed": False,
        "deniedBy": [{"policy": "policy:change-window:weekday", "reason": OUTSIDE}],
        "nextAllowedAt": "2026-12-07T08:00:00Z",
        "windows": [
            {
                "name": "weekday",
                "ref": "policy:change-window:weekday",
                "timezone": "Europe/Berlin",
                "summary": SUMMARY,
                "open": False,
                "nextChangeAt": "2026-12-07T08:00:00Z",
            }
        ],
        "evaluated": ["policy:change-window:weekday", "policy:requires:env-staging", "policy:incident-gate:critical"],
        "action": "promote",
        "at": "2026-12-06T12:00:00Z",
    }
    assert not events("policy.deny")  # an explanation is not a refusal


def test_at_defaults_to_now_and_takes_any_offset(viewer):
    with travel(MONDAY_MORNING):
        now = viewer.get(f"{PROD_POLICY}?serviceId=svc-demo&action=promote").json()
    assert now["allowed"] is True and now["at"] == "2026-12-07T10:00:00Z"
    assert now["windows"][0]["open"] is True and now["windows"][0]["nextChangeAt"] == "2026-12-07T16:00:00Z"
    berlin = viewer.get(f"{PROD_POLICY}?serviceId=svc-demo&action=promote&at=2026-12-07T11:00:00%2B01:00").json()
    assert berlin == now


def test_a_deploy_into_prod_is_explained_as_one_created_there(viewer):
    body = viewer.get(f"{PROD_POLICY}?serviceId=svc-demo&at=2026-12-07T10:00:00Z").json()
    assert body["action"] == "deploy" and body["allowed"] is False and body["nextAllowedAt"] is None
    assert [d["policy"] for d in body["deniedBy"]] == ["policy:requires:env-staging"]


def test_rollbacks_pass_windows_and_freezes(viewer, admin):
    admin.post("/api/freezes/", {**FREEZE, "startsAt": "2026-12-01T00:00:00Z"})
    body = viewer.get(f"{PROD_POLICY}?serviceId=svc-demo&action=rollback&at=2026-12-06T12:00:00Z").json()
    assert body["allowed"] is True and body["deniedBy"] == []


def test_a_freeze_is_named_and_the_next_opening_comes_after_it(viewer, admin):
    freeze = admin.post("/api/freezes/", FREEZE).json()
    body = viewer.get(f"{PROD_POLICY}?serviceId=svc-demo&action=promote&at=2026-12-22T10:00:00Z").json()
    assert [d["policy"] for d in body["deniedBy"]] == [f"freeze:{freeze['id']}"]
    # The freeze ends on Sunday 2027-01-03 at 23:00 UTC; the window opens on Monday at 08:00 UTC.
    assert body["nextAllowedAt"] == "2027-01-04T08:00:00Z"


def test_an_open_incident_at_the_gate_has_no_time_to_wait_for(viewer, admin):
    admin.post("/api/incidents/", {"serviceId": "svc-demo", "severity": "critical", "link": "https://pd.example.com/9"})
    body = viewer.get(f"{PROD_POLICY}?serviceId=svc-demo&action=promote&at=2026-12-07T10:00:00Z").json()
    assert [d["policy"] for d in body["deniedBy"]] == ["policy:incident-gate:critical"]
    assert body["nextAllowedAt"] is None
    # Without a service, the gate has nobody's incidents to judge.
    assert viewer.get(f"{PROD_POLICY}?at=2026-12-07T10:00:00Z&action=rollback").json()["allowed"] is True


@pytest.mark.parametrize(
    ("query", "field", "rule"),
    [
        ("at=2026-12-06", "at", "must be an RFC 3339 time with an offset"),
        ("at=2026-12-06T12:00:00+01:00", "at", "In a query string, write + as %2B."),
        ("at=", "at", "is empty"),
        ("action=merge", "action", '"merge" is not a valid choice.'),
        ("action=Deploy", "action", "is not a valid choice."),
        ("serviceId=svc-nope", "serviceId", "unknown service 'svc-nope'."),
        ("serviceId=svc-a%00b", "serviceId", "Null characters are not allowed."),
        ("serviceId=env-prod", "serviceId", "unknown service 'env-prod'."),
        ("envId=env-prod", "envId", "is not a parameter of the policy endpoint (it takes serviceId, action, at)."),
        ("action=deploy&action=promote", "action", "is given more than once."),
    ],
)
def test_bad_parameters_are_400s_naming_them(viewer, query, field, rule):
    response = viewer.get(f"{PROD_POLICY}?{query}")
    assert response.status_code == 400, response.content
    assert any(rule in message for message in response.json()[field]), response.json()


def test_the_policy_endpoint_is_a_read_for_everyone_about_an_environment_that_exists(api):
    assert api("viewer").get("/api/environments/env-nope/policy/").status_code == 404
    assert api(None).get(PROD_POLICY).status_code == 401
    assert api("viewer").post(PROD_POLICY).status_code == 405


# --- query counts ---


def queries(url: str) -> int:
    viewer = Api("viewer")
    with CaptureQueriesContext(connection) as captured:
        response = viewer.get(url)
    assert response.status_code == 200, response.content
    return len(captured)


def grow(n: int):
    for i in range(ChangeWindow.objects.count(), n):
        ChangeWindow(name=f"w{i}", timezone="UTC", days=[1], start="00:00", end="01:00").save()
        Freeze(
            title=f"f{i}",
            starts_at=datetime(2026, 1, 1, tzinfo=UTC),
            ends_at=datetime(2026, 1, 2 + i, tzinfo=UTC),
            env_ids=["env-prod"],
        ).save()


# The list's page (cursor pages never count); the policy endpoint: the environment, the service, the windows its
# refs name, the freezes, the service's open incidents, the promotion's source.
PINNED = {"/api/change-windows/": 1, "/api/freezes/": 1, f"{PROD_POLICY}?serviceId=svc-demo&action=promote": 6}


@pytest.mark.parametrize("url", list(PINNED))
def test_a_constant_number_of_queries(url):
    grow(2)
    small = queries(url)
    grow(30)
    assert queries(url) == small == PINNED[url]
