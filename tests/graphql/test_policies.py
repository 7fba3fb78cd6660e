"""Policies through GraphQL (issue 22): a refusal is a POLICY_DENIED error with the decision on the payload
and one `policy.deny` event; break-glass overrides it for an admin and is audited; `Environment.policy`
answers "why not, and until when?" at any instant; change windows and freezes are listed, read and written
as REST writes them."""

import pytest
import time_machine

from audit.models import AuditEvent
from releases.models import Release
from services.models import DASH, ChangeWindow, Environment, Freeze
from tests.api.conftest import Api
from tests.conftest import loaded_once
from tests.graphql.test_mutations import stored

pytestmark = pytest.mark.django_db
demo = loaded_once("demo", as_shipped=True)  # env-prod gated as `make run` loads it

SUNDAY = "2026-12-06T12:00:00Z"  # the demo's window (weekdays 09:00 to 17:00 in Berlin) is closed
MONDAY_OPENING = "2026-12-07T08:00:00Z"  # Monday 09:00 in Berlin
SUMMARY = f"Mon{DASH}Fri 09:00{DASH}17:00 Europe/Berlin"
WEEKDAY = {"policy": "policy:change-window:weekday", "reason": f"outside weekday ({SUMMARY})"}
REASON = "checkout is down; the fix cannot wait for Monday"

PROMOTE = """
mutation Promote($id: ID!, $envId: ID!, $breakGlass: BreakGlassInput) {
  releasePromote(id: $id, envId: $envId, breakGlass: $breakGlass) {
    release { id envId status }
    run { id kind sourceReleaseId }
    decision { allowed deniedBy { policy reason } nextAllowedAt }
    errors { field code message }
  }
}
"""

DEPLOY = """
mutation Deploy($id: ID!, $breakGlass: BreakGlassInput) {
  releaseDeploy(id: $id, breakGlass: $breakGlass) {
    run { id kind }
    decision { allowed deniedBy { policy reason } nextAllowedAt }
    errors { field code message }
  }
}
"""

POLICY = """
query Policy($env: ID!, $service: ID, $action: PolicyAction, $at: DateTime) {
  environment(id: $env) {
    policy(serviceId: $service, action: $action, at: $at) {
      allowed deniedBy { policy reason } nextAllowedAt
      windows { name ref timezone summary open nextChangeAt }
      evaluated
    }
  }
}
"""


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("seq"))


def entities(rows: dict) -> dict:
    return {label: values for label, values in rows.items() if label.split(".")[0] not in ("audit", "overview")}


def prod_draft() -> Release:
    release = Release(id="rel-prod-draft", service_id="svc-demo", environment_id="env-prod", sha="abcdef9", version="9")
    release.save()
    return release


# --- a refusal ---


def test_a_promotion_outside_the_window_is_policy_denied_with_the_decision_and_one_deny_event(deployer):
    with time_machine.travel(SUNDAY, tick=False):
        before = stored()
        payload = deployer(PROMOTE, id="rel-123", envId="env-prod")["releasePromote"]

    assert payload["release"] is None and payload["run"] is None
    [error] = payload["errors"]
    assert (error["field"], error["code"]) == (None, "POLICY_DENIED")
    assert error["message"] == (
        f"Refused by policy (policy:change-window:weekday: outside weekday ({SUMMARY}))."
        f" It is next allowed at {MONDAY_OPENING}."
    )
    assert payload["decision"] == {"allowed": False, "deniedBy": [WEEKDAY], "nextAllowedAt": MONDAY_OPENING}
    # Nothing of the promotion was written; the refusal was audited once, after the transaction rolled back.
    after = stored()
    trail = after.pop("audit.AuditEvent"), before.pop("audit.AuditEvent")
    assert [e["action"] for e in trail[0][len(trail[1]) :]] == ["policy.deny"]
    # (the trail's head and the service's audit tail in the read model follow the event)
    assert entities(after) == entities(before)
    [deny] = events("policy.deny")
    assert (deny.actor, deny.subject_id, deny.service_id) == ("dev-deployer", "rel-123", "svc-demo")
    assert deny.metadata["action"] == "promote" and deny.metadata["deniedBy"] == [WEEKDAY]


def test_the_same_refusal_over_rest(deployer):
    """The message and decision are REST's 409 body, word for word."""
    with time_machine.travel(SUNDAY, tick=False):
        response = Api("deployer").post("/api/releases/rel-123/promote/", {"envId": "env-prod"})
        payload = deployer(PROMOTE, id="rel-123", envId="env-prod")["releasePromote"]
    assert response.status_code == 409
    body = response.json()
    assert payload["errors"][0]["message"] == body["detail"]
    assert payload["decision"] == body["decision"]
    assert len(events("policy.deny")) == 2


def test_a_deploy_of_a_release_made_in_prod_is_denied_with_no_time_that_allows_it(deployer):
    release = prod_draft()
    with time_machine.travel(SUNDAY, tick=False):
        payload = deployer(DEPLOY, id=release.pk)["releaseDeploy"]
    assert payload["run"] is None
    assert [e["code"] for e in payload["errors"]] == ["POLICY_DENIED"]
    decision = payload["decision"]
    assert decision["allowed"] is False and decision["nextAllowedAt"] is None
    assert [d["policy"] for d in decision["deniedBy"]] == [WEEKDAY["policy"], "policy:requires:env-staging"]
    assert "created in env-prod" in decision["deniedBy"][1]["reason"]
    assert "No time alone allows it." in payload["errors"][0]["message"]
    release.refresh_from_db()
    assert release.status == "Draft"
    assert len(events("policy.deny")) == 1


def test_other_refusals_carry_no_decision(deployer):
    payload = deployer(PROMOTE, id="rel-123", envId="env-staging")["releasePromote"]
    assert [e["code"] for e in payload["errors"]] == ["CONFLICT"]
    assert payload["decision"] is None
    assert events("policy.deny") == []


def test_inside_the_window_the_promotion_goes_through_and_records_the_decision(deployer):
    with time_machine.travel("2026-12-07T10:00:00+01:00", tick=False):
        payload = deployer(PROMOTE, id="rel-123", envId="env-prod")["releasePromote"]
    assert payload["errors"] == [] and payload["decision"] is None
    assert payload["release"]["envId"] == "env-prod"
    [promoted] = events("release.promote")
    assert promoted.metadata["policy"]["allowed"] is True
    assert "policy:change-window:weekday" in promoted.metadata["policy"]["evaluated"]
    assert events("policy.deny") == [] and events("policy.override") == []


# --- break-glass ---


def test_break_glass_by_an_admin_goes_through_and_is_audited(admin):
    with time_machine.travel(SUNDAY, tick=False):
        payload = admin(PROMOTE, id="rel-123", envId="env-prod", breakGlass={"reason": REASON})["releasePromote"]
    assert payload["errors"] == [] and payload["decision"] is None
    assert payload["release"]["envId"] == "env-prod" and payload["run"]["kind"] == "Promote"
    [override] = events("policy.override")
    assert override.actor == "dev-admin" and override.subject_id == "rel-123"
    assert override.metadata == {"action": "promote", "reason": REASON, "overridden": [WEEKDAY]}
    [promoted] = events("release.promote")
    assert promoted.metadata["policy"]["overridden"] == [WEEKDAY]
    assert events("policy.deny") == []


def test_break_glass_on_a_deploy(admin):
    release = prod_draft()
    with time_machine.travel(SUNDAY, tick=False):
        payload = admin(DEPLOY, id=release.pk, breakGlass={"reason": REASON})["releaseDeploy"]
    assert payload["errors"] == [] and payload["run"]["kind"] == "Deploy"
    [override] = events("policy.override")
    assert [d["policy"] for d in override.metadata["overridden"]] == [
        "policy:change-window:weekday",
        "policy:requires:env-staging",
    ]


def test_break_glass_by_a_deployer_is_forbidden_naming_the_setting(deployer):
    with time_machine.travel(SUNDAY, tick=False):
        before = stored()
        payload = deployer(PROMOTE, id="rel-123", envId="env-prod", breakGlass={"reason": REASON})["releasePromote"]
        assert stored() == before
    [error] = payload["errors"]
    assert (error["field"], error["code"]) == (None, "FORBIDDEN")
    assert "CONTROLPLANE_BREAK_GLASS_ROLES" in error["message"]
    assert payload["release"] is None and payload["decision"] is None


@pytest.mark.parametrize("reason", ["too short", " " * 20, "x" * 501])
def test_a_break_glass_reason_is_10_to_500_characters_as_over_rest(admin, reason):
    with time_machine.travel(SUNDAY, tick=False):
        body = {"envId": "env-prod", "breakGlass": {"reason": reason}}
        response = Api("admin").post("/api/releases/rel-123/promote/", body)
        payload = admin(PROMOTE, id="rel-123", envId="env-prod", breakGlass={"reason": reason})["releasePromote"]
    assert response.status_code == 400 and list(response.json()) == ["breakGlass"]
    messages = response.json()["breakGlass"]
    assert payload["errors"] == [{"field": "breakGlass", "code": "INVALID", "message": m} for m in messages]
    assert events("policy.override") == [] and events("release.promote") == []


def test_a_break_glass_without_a_reason_is_refused_by_the_schema(admin):
    response = admin.post(PROMOTE, id="rel-123", envId="env-prod", breakGlass={})
    [error] = response.json()["errors"]  # GraphQL's own validation: a top-level error, nothing ran
    assert "reason" in error["message"] and "data" not in response.json()


# --- why not, and until when ---


def test_environment_policy_at_an_instant(viewer):
    policy = viewer(POLICY, env="env-prod", service="svc-demo", action="promote", at=SUNDAY)["environment"]["policy"]
    assert policy == {
        "allowed": False,
        "deniedBy": [WEEKDAY],
        "nextAllowedAt": MONDAY_OPENING,
        "windows": [
            {
                "name": "weekday",
                "ref": "policy:change-window:weekday",
                "timezone": "Europe/Berlin",
                "summary": SUMMARY,
                "open": False,
                "nextChangeAt": MONDAY_OPENING,
            }
        ],
        "evaluated": ["policy:change-window:weekday", "policy:requires:env-staging", "policy:incident-gate:critical"],
    }
    # Monday 10:00 in Berlin: open, until 17:00 (16:00 UTC).
    monday = viewer(POLICY, env="env-prod", service="svc-demo", action="promote", at="2026-12-07T10:00:00+01:00")
    policy = monday["environment"]["policy"]
    assert (policy["allowed"], policy["deniedBy"], policy["nextAllowedAt"]) == (True, [], None)
    assert [(w["open"], w["nextChangeAt"]) for w in policy["windows"]] == [(True, "2026-12-07T16:00:00Z")]


def test_environment_policy_defaults_to_a_deploy_now(viewer):
    with time_machine.travel(SUNDAY, tick=False):
        policy = viewer(POLICY, env="env-prod")["environment"]["policy"]
    # A deploy into prod is of a release made there: no time alone allows it.
    assert policy["allowed"] is False and policy["nextAllowedAt"] is None
    assert [d["policy"] for d in policy["deniedBy"]] == ["policy:change-window:weekday", "policy:requires:env-staging"]
    assert events("policy.deny") == []  # asking is not being refused


def test_environment_policy_sees_freezes_and_rollbacks_pass_windows(viewer):
    Freeze(
        id="frz-xmas",
        title="Christmas",
        starts_at="2026-12-20T00:00:00Z",
        ends_at="2026-12-28T00:00:00Z",
        env_ids=["env-prod"],
    ).save()
    at = "2026-12-22T10:00:00Z"  # a Tuesday, inside the window
    policy = viewer(POLICY, env="env-prod", service="svc-demo", action="promote", at=at)["environment"]["policy"]
    assert [d["policy"] for d in policy["deniedBy"]] == ["freeze:frz-xmas"]
    assert policy["nextAllowedAt"] == "2026-12-28T08:00:00Z"  # Monday 09:00 Berlin, once the freeze ends
    rollback = viewer(POLICY, env="env-prod", service="svc-demo", action="rollback", at=SUNDAY)["environment"]
    assert rollback["policy"]["allowed"] is True


@pytest.mark.parametrize(
    ("variables", "query"),
    [
        ({"at": "2026-12-06"}, "at=2026-12-06"),
        ({"at": "2026-12-06T12:00:00"}, "at=2026-12-06T12:00:00"),
        ({"service": "svc-nope"}, "serviceId=svc-nope"),
        ({"service": "svc-demo\x00"}, "serviceId=svc-demo%00"),
    ],
)
def test_environment_policy_refuses_bad_arguments_as_rest_does(viewer, variables, query):
    rest = Api("viewer").get(f"/api/environments/env-prod/policy/?{query}")
    assert rest.status_code == 400
    response = viewer.post(POLICY, env="env-prod", **variables)
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "INVALID", "fields": rest.json()}
    assert error["message"].startswith(f"{next(iter(rest.json()))}: ")


def test_an_unknown_action_is_refused_by_the_schema(viewer):
    response = viewer.post(POLICY, env="env-prod", action="delete")
    assert "PolicyAction" in response.json()["errors"][0]["message"]


# --- change windows and freezes, read ---

WINDOWS = """
{
  changeWindows(first: 10) {
    edges { node { id name timezone days start end summary createdAt } }
    pageInfo { hasNextPage endCursor }
  }
  changeWindow(id: "cw-weekday") { name }
}
"""

FREEZES = """
query Freezes($first: Int, $after: String) {
  freezes(first: $first, after: $after) {
    edges { node { id title startsAt endsAt envIds environments { id name } reason } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


def test_change_windows_are_listed_by_name(viewer):
    ChangeWindow(id="cw-nights", name="nights", timezone="Asia/Kolkata", days=[7, 1], start="22:00", end="06:00").save()
    data = viewer(WINDOWS)
    nodes = [e["node"] for e in data["changeWindows"]["edges"]]
    assert [n["name"] for n in nodes] == ["nights", "weekday"]
    assert nodes[0] | {"createdAt": None} == {
        "id": "cw-nights",
        "name": "nights",
        "timezone": "Asia/Kolkata",
        "days": [1, 7],
        "start": "22:00",
        "end": "06:00",
        "summary": f"Mon, Sun 22:00{DASH}06:00 Asia/Kolkata",
        "createdAt": None,
    }
    assert data["changeWindow"] == {"name": "weekday"}
    assert viewer('{ changeWindow(id: "cw-nope") { id } }') == {"changeWindow": None}


def test_freezes_are_listed_latest_start_first_in_pages(viewer):
    Environment(id="env-qa", name="qa").save()
    for n, day in enumerate((10, 20, 15)):
        Freeze(
            id=f"frz-{n}",
            title=f"freeze {n}",
            starts_at=f"2026-12-{day}T00:00:00Z",
            ends_at=f"2026-12-{day + 1}T00:00:00Z",
            env_ids=["env-prod", "env-qa"] if n else ["env-staging"],
            reason="quiet",
        ).save()
    first = viewer(FREEZES, first=2)["freezes"]
    assert [e["node"]["id"] for e in first["edges"]] == ["frz-1", "frz-2"]
    environments = first["edges"][0]["node"]["environments"]
    assert environments == [{"id": "env-prod", "name": "prod"}, {"id": "env-qa", "name": "qa"}]
    assert first["edges"][0]["node"]["startsAt"] == "2026-12-20T00:00:00Z"
    rest = viewer(FREEZES, first=2, after=first["pageInfo"]["endCursor"])["freezes"]
    assert [e["node"]["id"] for e in rest["edges"]] == ["frz-0"] and not rest["pageInfo"]["hasNextPage"]
    assert rest["edges"][0]["node"]["envIds"] == ["env-staging"]
    assert viewer('{ freeze(id: "frz-0") { title } }') == {"freeze": {"title": "freeze 0"}}


# --- change windows and freezes, written ---

WINDOW_CREATE = """
mutation ($input: ChangeWindowCreateInput!) {
  changeWindowCreate(input: $input) { changeWindow { id name summary } errors { field code message } }
}
"""

FREEZE_CREATE = """
mutation ($input: FreezeCreateInput!) {
  freezeCreate(input: $input) { freeze { id envIds environments { name } } errors { field code message } }
}
"""


def test_a_window_and_a_freeze_made_over_graphql_decide_at_once(admin, viewer):
    """An admin adds a Sunday window to prod and freezes prod on Christmas: the policy answers accordingly."""
    sundays = {"name": "sundays", "timezone": "UTC", "days": [7], "start": "06:00", "end": "22:00"}
    made = admin(WINDOW_CREATE, input=sundays)
    window = made["changeWindowCreate"]
    assert window["errors"] == [] and window["changeWindow"]["summary"] == f"Sun 06:00{DASH}22:00 UTC"
    refs = [*Environment.objects.get(pk="env-prod").policy_refs, "policy:change-window:sundays"]
    update = admin(
        'mutation ($refs: [String!]) { environmentUpdate(id: "env-prod", input: {policyRefs: $refs}) '
        "{ errors { code } } }",
        refs=refs,
    )
    assert update["environmentUpdate"]["errors"] == []
    sunday = viewer(POLICY, env="env-prod", service="svc-demo", action="promote", at=SUNDAY)["environment"]["policy"]
    assert sunday["allowed"] is True and [w["open"] for w in sunday["windows"]] == [False, True]

    freeze = {
        "title": "Sunday freeze",
        "startsAt": SUNDAY,
        "endsAt": "2026-12-06T18:00:00+01:00",
        "envIds": ["env-prod"],
    }
    created = admin(FREEZE_CREATE, input=freeze)["freezeCreate"]
    assert created["errors"] == [] and created["freeze"]["environments"] == [{"name": "prod"}]
    frozen = viewer(POLICY, env="env-prod", service="svc-demo", action="promote", at=SUNDAY)["environment"]["policy"]
    assert [d["policy"] for d in frozen["deniedBy"]] == [f"freeze:{created['freeze']['id']}"]
    assert frozen["nextAllowedAt"] == "2026-12-06T17:00:00Z"  # the freeze's end, while the Sunday window is open


def test_a_deployer_may_not_write_windows_or_freezes(deployer):
    window = {"name": "x", "timezone": "UTC", "days": [1], "start": "00:00", "end": "01:00"}
    payload = deployer(WINDOW_CREATE, input=window)
    assert payload["changeWindowCreate"] == {
        "changeWindow": None,
        "errors": [
            {
                "field": None,
                "code": "FORBIDDEN",
                "message": "changewindow.create needs the admin role; dev-deployer has deployer.",
            }
        ],
    }


def test_a_policy_counts_as_a_decision_against_the_cost_limit(viewer):
    document = "{ environments(first: %d) { edges { node { id policy { allowed } } } } }"
    assert len(viewer(document % 50)["environments"]["edges"]) == 2
    response = viewer.post(document % 500)
    [error] = response.json()["errors"]
    assert response.status_code == 400 and error["extensions"]["code"] == "LIMIT"
    # 500 environments, each with its id, its policy (a weight of 50) and its answer's field, and their edges.
    assert f"costs {1 + 500 * (1 + 1 + 1 + 50 + 1)}," in error["message"]
