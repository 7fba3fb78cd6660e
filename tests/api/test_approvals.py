"""Approvals over REST (issue 23): a deploy into an environment with `policy:approval:<n>` waits, AwaitingApproval,
for n distinct approvers other than its actor; `POST /api/workflow-runs/{id}/approve/`, `…/reject/`, `…/cancel/`."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client
from django_tasks_db.models import DBTaskResult

from audit.models import AuditEvent
from releases import approvals
from releases.models import Release, RunApproval, WorkflowRun
from services.models import ChangeWindow, Environment
from tests.api.conftest import Api
from tests.approvers import actor, people, token  # noqa: F401 - fixture
from tests.conftest import loaded_once

demo = loaded_once("demo")  # env-prod's change window open all week: these tests are about approvals

OPEN = ["policy:change-window:weekday"]
SELF = "the run's own actor cannot approve or reject it (no self-approval, admins included)."


@pytest.fixture(autouse=True)
def two_approvals(db, people):  # noqa: F811
    Environment.objects.filter(pk="env-prod").update(policy_refs=[*OPEN, "policy:approval:2"])


def person(name: str) -> Api:
    client = Api(None)
    client.client = Client(HTTP_AUTHORIZATION=f"Bearer {token(name)}")
    return client


def waiting(by: str = "deployer", version: str = "3.0.0") -> dict:
    """A release created in env-prod and deployed by `by`: its run, awaiting approval."""
    client = person(by)
    created = client.post(
        "/api/releases/", {"serviceId": "svc-demo", "envId": "env-prod", "sha": "abcdef1", "version": version}
    )
    assert created.status_code == 201, created.content
    started = client.post(f"/api/releases/{created.json()['id']}/deploy/")
    assert started.status_code == 202, started.content
    return started.json()


def run_url(run: dict, action: str = "") -> str:
    return f"/api/workflow-runs/{run['id']}/" + (f"{action}/" if action else "")


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, actor__startswith="dev-").order_by("seq"))


def queued() -> int:
    return DBTaskResult.objects.count()


def test_a_deploy_into_an_environment_needing_approvals_waits_and_rolls_nothing_out():
    tasks = queued()
    run = waiting()
    assert run["state"] == "AwaitingApproval" and run["kind"] == "Deploy"
    assert (run["approvalsRequired"], run["approvals"], run["waitingReason"]) == (2, [], None)
    assert "finishedAt" not in run
    assert Release.objects.get(pk=run["releaseId"]).status == "Draft"
    assert queued() == tasks and WorkflowRun.objects.get(pk=run["id"]).task_id == ""
    [request] = events("approval.request")
    assert request.subject_id == run["releaseId"] and request.metadata["approvalsRequired"] == 2


@pytest.mark.parametrize("who", ["deployer", "admin"])
def test_the_runs_own_actor_cannot_approve_or_reject_it_admins_included(who):
    run = waiting(by=who)
    approve = person(who).post(run_url(run, "approve"), {"comment": "mine, so fine"})
    reject = person(who).post(run_url(run, "reject"), {"comment": "changed my mind"})
    assert (approve.status_code, reject.status_code) == (403, 403)
    assert approve.json() == {"detail": SELF} and reject.json() == {"detail": SELF}
    assert not RunApproval.objects.exists() and WorkflowRun.objects.get(pk=run["id"]).state == "AwaitingApproval"


def test_a_viewer_may_not_decide_whatever_run_it_is():
    run = waiting()
    for action, body in (("approve", {}), ("reject", {"comment": "no"}), ("cancel", None)):
        response = person("viewer").post(run_url(run, action), body)
        assert response.status_code == 403
        assert response.json() == {"detail": f"run.{action} needs the deployer role; dev-viewer has viewer."}
    assert not RunApproval.objects.exists()


def test_n_distinct_approvers_start_the_run():
    run = waiting()
    tasks = queued()
    first = person("admin").post(run_url(run, "approve"), {"comment": "looks right"})
    assert first.status_code == 200, first.content
    body = first.json()
    assert body["state"] == "AwaitingApproval"
    [approval] = body["approvals"]
    assert (approval["actor"], approval["decision"], approval["comment"]) == ("dev-admin", "approve", "looks right")
    assert approval["at"].endswith("Z") and queued() == tasks

    second = person("deployer-2").post(run_url(run, "approve"))  # an empty body: no comment
    assert second.status_code == 200, second.content
    body = second.json()
    assert body["state"] == "Running" and body["waitingReason"] is None
    assert [(a["actor"], a["comment"]) for a in body["approvals"]] == [
        ("dev-admin", "looks right"),
        ("dev-deployer-2", ""),
    ]
    assert Release.objects.get(pk=run["releaseId"]).status == "Promoting"
    task_id = WorkflowRun.objects.get(pk=run["id"]).task_id
    assert queued() == tasks + 1 and DBTaskResult.objects.filter(id=task_id).exists()
    assert [e.actor for e in events("run.approve")] == ["dev-admin", "dev-deployer-2"]
    [started] = [e for e in events("deploy.create") if e.subject_id == run["releaseId"]]
    assert started.metadata["runId"] == run["id"] and started.metadata["approved"] is True
    # The run as anyone reads it afterwards.
    read = person("viewer").get(run_url(run)).json()
    assert read["state"] == "Running" and len(read["approvals"]) == 2


def test_a_second_approval_by_the_same_principal_is_a_409_that_changes_nothing():
    run = waiting()
    assert person("admin").post(run_url(run, "approve")).status_code == 200
    again = person("admin").post(run_url(run, "approve"), {"comment": "really"})
    assert again.status_code == 409
    assert again.json() == {"detail": f"dev-admin has already decided on run {run['id']}; each principal counts once."}
    rejected_after = person("admin").post(run_url(run, "reject"), {"comment": "second thoughts"})
    assert rejected_after.status_code == 409
    assert RunApproval.objects.filter(run_id=run["id"]).count() == 1 and len(events("run.approve")) == 1
    assert WorkflowRun.objects.get(pk=run["id"]).state == "AwaitingApproval"


def end(run: dict, how: str) -> str:
    """End a waiting run one way: its state afterwards."""
    if how == "reject":
        assert person("admin").post(run_url(run, "reject"), {"comment": "not this week"}).status_code == 200
    elif how == "cancel":
        assert person("deployer").post(run_url(run, "cancel")).status_code == 200
    else:
        approvals.sweep(now=datetime.now(UTC) + approvals.ttl() + timedelta(seconds=1))
    return WorkflowRun.objects.get(pk=run["id"]).state


@pytest.mark.parametrize(("how", "state"), [("reject", "Rejected"), ("expire", "Expired"), ("cancel", "Cancelled")])
def test_a_late_approval_is_a_409(how, state):
    run = waiting()
    assert end(run, how) == state
    decided = RunApproval.objects.filter(run_id=run["id"]).count()
    late = person("deployer-2").post(run_url(run, "approve"))
    assert late.status_code == 409
    assert late.json() == {"detail": f"run {run['id']} is {state}: it is not awaiting approval."}
    assert person("admin").post(run_url(run, "cancel")).status_code == 409
    assert RunApproval.objects.filter(run_id=run["id"]).count() == decided
    assert Release.objects.get(pk=run["releaseId"]).status == "Draft"


@pytest.mark.parametrize("body", [{}, {"comment": ""}, {"comment": "   "}])
def test_a_reject_needs_a_comment(body):
    run = waiting()
    response = person("admin").post(run_url(run, "reject"), body)
    assert response.status_code == 400
    assert list(response.json()) == ["comment"]
    assert not RunApproval.objects.exists() and WorkflowRun.objects.get(pk=run["id"]).state == "AwaitingApproval"


@pytest.mark.parametrize(
    ("action", "body", "field"),
    [
        ("approve", {"comment": 1}, "comment"),
        ("approve", {"comment": "x" * 2001}, "comment"),
        ("approve", {"approve": True}, "approve"),
        ("reject", {"comment": "no", "reason": "no"}, "reason"),
        ("cancel", {"comment": "no"}, "comment"),
    ],
)
def test_a_bad_body_is_a_400_naming_the_field(action, body, field):
    run = waiting()
    response = person("admin").post(run_url(run, action), body)
    assert response.status_code == 400 and field in response.json(), response.content


def test_a_rejected_release_stays_draft_and_is_deployed_again_with_new_approvals():
    run = waiting()
    response = person("deployer-2").post(run_url(run, "reject"), {"comment": "the migration is not reversible"})
    assert response.status_code == 200
    body = response.json()
    assert body["state"] == "Rejected" and body["finishedAt"].endswith("Z")
    assert [(a["actor"], a["decision"], a["comment"]) for a in body["approvals"]] == [
        ("dev-deployer-2", "reject", "the migration is not reversible")
    ]
    assert Release.objects.get(pk=run["releaseId"]).status == "Draft"
    [event] = events("run.reject")
    assert event.subject_id == run["id"] and event.metadata["comment"] == "the migration is not reversible"

    again = person("deployer").post(f"/api/releases/{run['releaseId']}/deploy/")
    assert again.status_code == 202, again.content
    assert again.json()["id"] != run["id"]
    assert (again.json()["state"], again.json()["approvals"]) == ("AwaitingApproval", [])


def test_a_run_nobody_approves_expires_after_the_ttl():
    with time_machine.travel(datetime(2026, 12, 7, 9, 0, tzinfo=UTC), tick=False):
        run = waiting()
    assert person("admin").post(run_url(run, "approve")).status_code == 200  # one of two: not enough
    started = WorkflowRun.objects.get(pk=run["id"]).started_at
    approvals.sweep(now=started + approvals.ttl() - timedelta(seconds=1))
    assert WorkflowRun.objects.get(pk=run["id"]).state == "AwaitingApproval"
    approvals.sweep(now=started + approvals.ttl())
    read = person("viewer").get(run_url(run)).json()
    assert read["state"] == "Expired" and read["finishedAt"] == "2026-12-08T09:00:00Z"
    assert Release.objects.get(pk=run["releaseId"]).status == "Draft"
    [event] = AuditEvent.objects.filter(action="run.expire", subject_id=run["id"])
    assert event.metadata["approvalsRequired"] == 2


@pytest.mark.parametrize("who", ["deployer", "admin"])
def test_the_actor_or_an_admin_cancels_a_waiting_run(who):
    run = waiting()
    response = person(who).post(run_url(run, "cancel"))
    assert response.status_code == 200, response.content
    assert response.json()["state"] == "Cancelled" and response.json()["finishedAt"].endswith("Z")
    assert Release.objects.get(pk=run["releaseId"]).status == "Draft"
    [event] = events("run.cancel")
    assert (event.subject_id, event.actor) == (run["id"], actor(who))


def test_another_deployer_may_not_cancel_it():
    run = waiting()
    response = person("deployer-2").post(run_url(run, "cancel"))
    assert response.status_code == 403
    assert response.json() == {"detail": "only the run's actor or an admin may cancel it."}
    assert WorkflowRun.objects.get(pk=run["id"]).state == "AwaitingApproval" and not events("run.cancel")


def test_another_deploy_there_while_one_waits_is_a_409_naming_it():
    run = waiting()
    other = person("deployer").post(
        "/api/releases/", {"serviceId": "svc-demo", "envId": "env-prod", "sha": "abcdef2", "version": "3.0.1"}
    )
    response = person("deployer").post(f"/api/releases/{other.json()['id']}/deploy/")
    assert response.status_code == 409 and run["id"] in response.json()["detail"]


def test_two_last_approvals_start_the_run_once():
    """Both racers' approvals committed, and both go on to start the run: one start wins (a compare-and-swap on the
    run's state), one task is queued. tests/api/test_approval_race.py races real threads on PostgreSQL."""
    run = waiting()
    stored = WorkflowRun.objects.get(pk=run["id"])
    for name in ("admin", "deployer-2"):
        RunApproval(run=stored, actor=actor(name), decision="approve").save()
    tasks = queued()
    first, second = WorkflowRun.objects.get(pk=run["id"]), WorkflowRun.objects.get(pk=run["id"])
    assert [approvals.start(first), approvals.start(second)] == [True, False]
    assert WorkflowRun.objects.get(pk=run["id"]).state == "Running" and queued() == tasks + 1
    assert Release.objects.get(pk=run["releaseId"]).status == "Promoting"
    # A third approval, late: the run no longer waits.
    assert person("deployer-3").post(run_url(run, "approve")).status_code == 409


def test_a_fully_approved_run_a_policy_holds_waits_and_says_why():
    ChangeWindow(name="mondays", timezone="UTC", days=[1], start="00:00", end="01:00").save()
    with time_machine.travel(datetime(2026, 12, 8, 12, 0, tzinfo=UTC), tick=False):  # a Tuesday
        run = waiting()
        assert person("admin").post(run_url(run, "approve")).status_code == 200
        # Before the last approval, the environment closes but on Monday nights: the run stays approved and
        # waiting, and says why.
        Environment.objects.filter(pk="env-prod").update(
            policy_refs=["policy:change-window:mondays", "policy:approval:2"]
        )
        body = person("deployer-2").post(run_url(run, "approve")).json()
    assert body["state"] == "AwaitingApproval" and "mondays" in body["waitingReason"]
    assert len(body["approvals"]) == 2 and Release.objects.get(pk=run["releaseId"]).status == "Draft"
    with time_machine.travel(datetime(2026, 12, 14, 0, 30, tzinfo=UTC), tick=False):  # the worker's round, Monday
        approvals.sweep()
    read = person("viewer").get(run_url(run)).json()
    assert read["state"] == "Running" and read["waitingReason"] is None
    assert Release.objects.get(pk=run["releaseId"]).status == "Promoting"


# --- queries ---


def make_waiting(count: int) -> None:
    """`count` runs awaiting approval, each with two decisions (straight into the tables: the list's cost alone)."""
    for n in range(count):
        release = Release(service_id="svc-demo", environment_id="env-prod", sha="abcdef1", version=f"9.{n}")
        release.save()
        run = WorkflowRun(
            kind="Deploy", release=release, actor="someone", state="AwaitingApproval", approvals_required=3
        )
        run.save()
        for name in ("a", "b"):
            RunApproval(run=run, actor=name, decision="approve", comment="ok").save()


# The page of runs, their logs, their approvals: whatever the page holds.
RUNS_LIST = 3


@pytest.mark.parametrize("size", [2, 8])
def test_the_runs_list_reads_approvals_in_one_query_whatever_its_size(size, django_assert_num_queries):
    make_waiting(size)
    viewer = person("viewer")
    with django_assert_num_queries(RUNS_LIST):
        body = viewer.get("/api/workflow-runs/?state=AwaitingApproval").json()
    assert len(body["results"]) == size and all(len(r["approvals"]) == 2 for r in body["results"])


@pytest.mark.parametrize("state", ["AwaitingApproval", "Rejected", "Expired", "Cancelled"])
def test_the_runs_list_filters_by_the_new_states(state):
    run = waiting()
    if state != "AwaitingApproval":
        end(run, {"Rejected": "reject", "Expired": "expire", "Cancelled": "cancel"}[state])
    response = person("viewer").get(f"/api/workflow-runs/?state={state}")
    assert response.status_code == 200, response.content
    assert [r["id"] for r in response.json()["results"]] == [run["id"]]
