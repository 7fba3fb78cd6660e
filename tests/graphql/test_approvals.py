"""Approvals and rollback over GraphQL (issue 23): `workflowRunApprove`, `workflowRunReject`, `workflowRunCancel`,
`serviceRollback`; WorkflowRun's `approvalsRequired`, `approvals`, `waitingReason`; Release's `rollbackOf`,
`restores`. The domain's rules are REST's (tests/api/test_approvals.py, test_rollback.py): here, the door."""

import pytest
from django.test import Client

from releases import lifecycle
from releases.models import Release, RunApproval, WorkflowRun
from services.models import Environment
from tests.approvers import people, token  # noqa: F401 - fixture
from tests.conftest import loaded_once
from tests.graphql.conftest import GraphQL

demo = loaded_once("demo")  # env-prod's change window open all week

SELF = "the run's own actor cannot approve or reject it (no self-approval, admins included)."
PAYLOAD = (
    "{ run { id state approvalsRequired waitingReason approvals { actor decision comment at } } "
    "errors { field code message } }"
)
APPROVE = f"mutation($id: ID!, $c: String) {{ workflowRunApprove(id: $id, comment: $c) {PAYLOAD} }}"
REJECT = f"mutation($id: ID!, $c: String!) {{ workflowRunReject(id: $id, comment: $c) {PAYLOAD} }}"
CANCEL = f"mutation($id: ID!) {{ workflowRunCancel(id: $id) {PAYLOAD} }}"
ROLLBACK = """mutation($input: ServiceRollbackInput!) { serviceRollback(input: $input) {
  run { id kind state release { id sha version status rollbackOf restores } }
  release { id }
  errors { field code message }
  decision { allowed }
} }"""
REASON = "2.0 breaks the checkout page"


@pytest.fixture(autouse=True)
def two_approvals(db, people):  # noqa: F811
    Environment.objects.filter(pk="env-prod").update(policy_refs=["policy:change-window:weekday", "policy:approval:2"])


def person(name: str) -> GraphQL:
    client = GraphQL(None)
    client.client = Client(HTTP_AUTHORIZATION=f"Bearer {token(name)}")
    return client


def waiting(by: str = "deployer") -> str:
    """A release deployed into env-prod by `by`: its run's id, awaiting approval."""
    client = person(by)
    create = (
        "mutation($input: ReleaseCreateInput!) { releaseCreate(input: $input) { release { id } errors { message } } }"
    )
    release = client(create, input={"serviceId": "svc-demo", "envId": "env-prod", "sha": "abcdef1", "version": "3.0"})
    deploy = "mutation($id: ID!) { releaseDeploy(id: $id) { run { id state } errors { message } } }"
    run = client(deploy, id=release["releaseCreate"]["release"]["id"])["releaseDeploy"]["run"]
    assert run["state"] == "AwaitingApproval"
    return run["id"]


def test_two_approvals_start_the_run():
    run_id = waiting()
    first = person("admin")(APPROVE, id=run_id, c="looks right")["workflowRunApprove"]
    assert first["errors"] == [] and first["run"]["state"] == "AwaitingApproval"
    assert first["run"]["approvalsRequired"] == 2 and first["run"]["waitingReason"] is None
    [approval] = first["run"]["approvals"]
    assert (approval["actor"], approval["decision"], approval["comment"]) == ("dev-admin", "approve", "looks right")
    second = person("deployer-2")(APPROVE, id=run_id)["workflowRunApprove"]
    assert second["errors"] == [] and second["run"]["state"] == "Running"
    assert Release.objects.get(runs__pk=run_id).status == "Promoting"
    listed = person("viewer")("{ workflowRuns(state: Running) { edges { node { id } } } }")["workflowRuns"]["edges"]
    assert run_id in [edge["node"]["id"] for edge in listed]


@pytest.mark.parametrize("who", ["deployer", "admin"])
def test_self_approval_is_forbidden(who):
    run_id = waiting(by=who)
    for document, variables in ((APPROVE, {}), (REJECT, {"c": "changed my mind"})):
        payload = next(iter(person(who)(document, id=run_id, **variables).values()))
        assert payload["run"] is None
        assert payload["errors"] == [{"field": None, "code": "FORBIDDEN", "message": SELF}]
    assert not RunApproval.objects.exists()


def test_a_viewer_is_forbidden_by_role():
    run_id = waiting()
    payload = person("viewer")(APPROVE, id=run_id)["workflowRunApprove"]
    assert payload["errors"] == [
        {"field": None, "code": "FORBIDDEN", "message": "run.approve needs the deployer role; dev-viewer has viewer."}
    ]


def test_a_duplicate_or_late_decision_is_a_conflict():
    run_id = waiting()
    assert person("admin")(APPROVE, id=run_id)["workflowRunApprove"]["errors"] == []
    [duplicate] = person("admin")(APPROVE, id=run_id)["workflowRunApprove"]["errors"]
    assert duplicate["code"] == "CONFLICT" and "each principal counts once" in duplicate["message"]
    assert RunApproval.objects.filter(run_id=run_id).count() == 1
    rejected = person("deployer-2")(REJECT, id=run_id, c="not this week")["workflowRunReject"]
    assert rejected["errors"] == [] and rejected["run"]["state"] == "Rejected"
    assert [a["decision"] for a in rejected["run"]["approvals"]] == ["approve", "reject"]
    [late] = person("deployer-3")(APPROVE, id=run_id)["workflowRunApprove"]["errors"]
    assert late == {
        "field": None,
        "code": "CONFLICT",
        "message": f"run {run_id} is Rejected: it is not awaiting approval.",
    }
    assert Release.objects.get(runs__pk=run_id).status == "Draft"


@pytest.mark.parametrize("comment", ["", "   "])
def test_a_reject_needs_a_comment(comment):
    run_id = waiting()
    payload = person("admin")(REJECT, id=run_id, c=comment)["workflowRunReject"]
    assert payload["run"] is None
    assert [(e["field"], e["code"]) for e in payload["errors"]] == [("comment", "INVALID")]
    assert WorkflowRun.objects.get(pk=run_id).state == "AwaitingApproval"


def test_cancel_by_the_actor_or_an_admin_not_another_deployer():
    run_id = waiting()
    [refused] = person("deployer-2")(CANCEL, id=run_id)["workflowRunCancel"]["errors"]
    assert refused == {"field": None, "code": "FORBIDDEN", "message": "only the run's actor or an admin may cancel it."}
    cancelled = person("admin")(CANCEL, id=run_id)["workflowRunCancel"]
    assert cancelled["errors"] == [] and cancelled["run"]["state"] == "Cancelled"
    [missing] = person("admin")(CANCEL, id="run-nope")["workflowRunCancel"]["errors"]
    assert missing["code"] == "NOT_FOUND"


# --- rollback ---


def activated(version: str, sha: str) -> Release:
    release = Release(service_id="svc-demo", environment_id="env-prod", sha=sha, version=version)
    release.save()
    lifecycle.begin_rollout(release)
    run = WorkflowRun(kind="Deploy", release=release, actor="dev-deployer")
    run.save()
    lifecycle.end_rollout(run, succeeded=True)
    return release


def test_a_rollback_makes_a_new_release_with_a_rollback_run():
    first, second = activated("1.0", "1111111"), activated("2.0", "2222222")
    payload = person("deployer")(ROLLBACK, input={"serviceId": "svc-demo", "envId": "env-prod", "reason": REASON})
    rollback = payload["serviceRollback"]
    assert rollback["errors"] == [] and rollback["decision"] is None
    assert (rollback["run"]["kind"], rollback["run"]["state"]) == ("Rollback", "Running")
    release = rollback["run"]["release"]
    assert release["id"] == rollback["release"]["id"]
    assert (release["sha"], release["version"], release["status"]) == ("1111111", "1.0", "Promoting")
    assert (release["rollbackOf"], release["restores"]) == (second.pk, first.pk)
    again = person("viewer")("query($id: ID!) { release(id: $id) { rollbackOf restores } }", id=release["id"])
    assert again["release"] == {"rollbackOf": second.pk, "restores": first.pk}
    runs = person("viewer")("{ workflowRuns(kind: Rollback) { edges { node { id } } } }")["workflowRuns"]["edges"]
    assert [edge["node"]["id"] for edge in runs] == [rollback["run"]["id"]]


@pytest.mark.parametrize(
    ("change", "errors"),
    [
        ({"reason": "short"}, [("reason", "INVALID")]),
        ({"envId": "env-nope"}, [("envId", "INVALID")]),
        ({"envId": ""}, [("envId", "INVALID")]),
        ({"toReleaseId": "rel-123"}, [(None, "CONFLICT")]),
        ({"serviceId": "svc-nope"}, [(None, "NOT_FOUND")]),
    ],
)
def test_a_refused_rollback_says_why(change, errors):
    activated("1.0", "1111111"), activated("2.0", "2222222")
    before = Release.objects.count()
    body = {"serviceId": "svc-demo", "envId": "env-prod", "reason": REASON, **change}
    payload = person("deployer")(ROLLBACK, input=body)["serviceRollback"]
    assert payload["run"] is None
    assert [(e["field"], e["code"]) for e in payload["errors"]] == errors
    assert Release.objects.count() == before


def test_nothing_to_roll_back_to_is_a_conflict_and_a_viewer_is_forbidden():
    only = activated("1.0", "1111111")
    body = {"serviceId": "svc-demo", "envId": "env-prod", "reason": REASON}
    [conflict] = person("deployer")(ROLLBACK, input=body)["serviceRollback"]["errors"]
    assert conflict["code"] == "CONFLICT" and only.pk in conflict["message"]
    [forbidden] = person("viewer")(ROLLBACK, input=body)["serviceRollback"]["errors"]
    assert forbidden == {
        "field": None,
        "code": "FORBIDDEN",
        "message": "rollback needs the deployer role; dev-viewer has viewer.",
    }


# --- queries ---

RUNS_WITH_APPROVALS = "{ workflowRuns(state: AwaitingApproval) { edges { node { id approvals { actor decision } } } } }"
# The page of runs; their approvals (one batch for the page).
APPROVALS_QUERIES = 2


@pytest.mark.parametrize("size", [2, 8])
def test_approvals_load_in_one_batch_whatever_the_page(size, django_assert_num_queries):
    for n in range(size):
        release = Release(service_id="svc-demo", environment_id="env-prod", sha="abcdef1", version=f"9.{n}")
        release.save()
        run = WorkflowRun(
            kind="Deploy", release=release, actor="someone", state="AwaitingApproval", approvals_required=3
        )
        run.save()
        for name in ("a", "b"):
            RunApproval(run=run, actor=name, decision="approve").save()
    viewer = person("viewer")
    with django_assert_num_queries(APPROVALS_QUERIES):
        edges = viewer(RUNS_WITH_APPROVALS)["workflowRuns"]["edges"]
    assert len(edges) == size and all(len(edge["node"]["approvals"]) == 2 for edge in edges)
