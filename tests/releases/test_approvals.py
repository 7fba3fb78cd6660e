"""Approvals (docs/domain.md, "Approvals"), at the domain's level: a deploy or promotion into an environment with
`policy:approval:<n>` waits for n distinct principals other than its actor; the n-th approval starts it, once;
a rejection, a cancellation or the TTL ends it; each decision is audited in its own transaction."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from audit import writer
from controlplane.errors import Conflict
from controlplane.governance import Forbidden
from controlplane.identity.context import acting_as
from overview.models import DeploymentState
from releases import approvals, runs, workflows
from releases.models import Release, RunApproval, WorkflowRun
from tests.releases.conftest import ALICE, BOB, CAROL, ROOT, Trail, deploy, fresh, person, rolled_out, tasks

MONDAY = datetime(2026, 12, 7, tzinfo=UTC)  # a Monday


def at(day: datetime, hh_mm: str) -> datetime:
    hours, minutes = map(int, hh_mm.split(":"))
    return day + timedelta(hours=hours, minutes=minutes)


@pytest.fixture
def gated(make_environment):
    """An environment that needs two approvals."""
    return make_environment(policy_refs=["policy:approval:2"])


@pytest.fixture
def svc(make_service, gated, make_environment):
    return make_service(environments=[make_environment(), gated])


@pytest.fixture
def draft(make_release, svc, gated):
    return make_release(service=svc, environment=gated)


def approve(run, by, comment=""):
    with acting_as(by):
        return approvals.approve(run, comment)


def reject(run, by, comment="not on a Friday"):
    with acting_as(by):
        return approvals.reject(run, comment)


def cancel(run, by):
    with acting_as(by):
        return approvals.cancel(run)


def sweep(now=None):
    with acting_as("worker"):
        approvals.sweep(now)


def waits(run, release_id=None):
    """The run awaits approval, its release is Draft, and nothing was queued for it."""
    run = fresh(run)
    assert (run.state, run.finished_at, run.task_id) == ("AwaitingApproval", None, "")
    assert Release.objects.get(pk=release_id or run.release_id).status == "Draft"
    return run


# --- asking ---


def test_a_deploy_into_an_environment_needing_approvals_waits_and_says_so(draft, gated, trail):
    run = deploy(draft)
    assert (run.kind, run.actor, run.approvals_required) == ("Deploy", "alice", 2)
    waits(run)
    assert tasks() == 0
    (event,) = trail.events()  # no deploy.create: nothing rolls out yet
    assert (event.action, event.actor, event.subject_type, event.subject_id) == (
        "approval.request",
        "alice",
        "Release",
        draft.pk,
    )
    assert event.metadata["runId"] == run.pk and event.metadata["approvalsRequired"] == 2
    assert event.metadata["kind"] == "Deploy" and event.metadata["policy"]["allowed"] is True
    state = DeploymentState.objects.get(service=draft.service, environment=gated)
    assert state.promoting_id is None and state.current_id is None


def test_a_promotion_into_it_waits_with_its_new_release_draft(make_release, svc, gated):
    source = rolled_out(make_release(service=svc, environment=svc.environments.exclude(pk=gated.pk).get()))
    marker = Trail()
    with acting_as(ALICE):
        run = workflows.promote(source, gated.pk)
    target = waits(run).release
    assert (run.kind, run.source_release_id, target.environment_id, target.sha) == (
        "Promote",
        source.pk,
        gated.pk,
        source.sha,
    )
    assert marker.actions() == ["release.create", "approval.request"]  # the new record, then the request
    assert marker.events()[1].metadata["sourceReleaseId"] == source.pk


def test_an_environment_without_the_ref_starts_at_once(make_release, svc, gated):
    release = make_release(service=svc, environment=svc.environments.exclude(pk=gated.pk).get())
    run = deploy(release)
    assert (run.state, run.approvals_required, fresh(release).status) == ("Running", 0, "Promoting")


def test_while_a_run_waits_another_deploy_or_promotion_there_is_refused_naming_it(make_release, svc, gated, draft):
    waiting = deploy(draft)
    other = make_release(service=svc, environment=gated, sha="abcdef1", version="1.0.1")
    source = rolled_out(make_release(service=svc, environment=svc.environments.exclude(pk=gated.pk).get()))
    trail = Trail()
    for attempt in (lambda: deploy(other, by=BOB), lambda: workflows.promote(source, gated.pk)):
        with acting_as(BOB), pytest.raises(Conflict, match=f"run {waiting.pk} of {svc.pk} is awaiting approval"):
            attempt()
    assert workflows.deploy_refusal(other) == workflows.busy(svc.pk, gated.pk)
    assert trail.actions() == [] and fresh(other).status == "Draft"
    assert Release.objects.filter(environment=gated).count() == 2  # the refused promotion left no release
    # Once it has ended, the place is free again.
    cancel(waiting, ALICE)
    assert deploy(other, by=BOB).state == "AwaitingApproval"


# --- who may decide ---


@pytest.mark.parametrize("asker", [ALICE, ROOT], ids=["deployer", "admin"])
def test_no_one_approves_or_rejects_their_own_run_admins_included(draft, asker):
    run = deploy(draft, by=asker)
    trail = Trail()
    for decide in (approve, reject):
        with pytest.raises(Forbidden, match="no self-approval, admins included"):
            decide(run, asker)
    waits(run)
    assert not RunApproval.objects.exists() and trail.actions() == []
    assert approvals.decision_refusal(asker, run) == approvals.SELF_APPROVAL
    assert approvals.decision_refusal(BOB if asker is not BOB else CAROL, run) is None


def test_each_principal_counts_once(draft):
    run = deploy(draft)
    approve(run, BOB, "looks fine")
    trail = Trail()
    with pytest.raises(Conflict, match="bob has already decided on run"):
        approve(run, BOB, "really fine")
    with pytest.raises(Conflict, match="bob has already decided"):
        reject(run, BOB)
    waits(run)
    assert list(run.approvals.values_list("actor", "decision", "comment")) == [("bob", "approve", "looks fine")]
    assert trail.actions() == []


# --- the n-th approval starts it, once ---


def test_n_distinct_approvals_start_the_run_once(draft, trail):
    run = deploy(draft)
    approve(run, BOB, "ok by me")
    assert waits(run).approvals.count() == 1
    started = approve(run, ROOT)
    assert (started.state, started.waiting_reason, fresh(draft).status) == ("Running", "", "Promoting")
    assert tasks() == 1 and started.task_id
    # Both tries to start it again (a racing approval, the worker's sweep) find it started: one run, one task.
    stale = WorkflowRun.objects.get(pk=run.pk)
    assert approvals.start(run) is False and approvals.start(stale) is False
    sweep()
    assert tasks() == 1 and WorkflowRun.objects.filter(release=draft).count() == 1
    assert trail.actions() == ["approval.request", "run.approve", "run.approve", "deploy.create"]
    first, second, rollout = trail.events()[1:]
    assert (first.actor, first.subject_type, first.subject_id, first.service_id) == (
        "bob",
        "WorkflowRun",
        run.pk,
        draft.service_id,
    )
    assert (first.metadata["approvals"], first.metadata["approvalsRequired"], first.metadata["comment"]) == (
        1,
        2,
        "ok by me",
    )
    assert (second.actor, second.metadata["approvals"]) == ("root", 2)
    assert (rollout.actor, rollout.subject_id, rollout.metadata["runId"], rollout.metadata["approved"]) == (
        "root",
        draft.pk,
        run.pk,
        True,
    )
    # It goes on like any deploy.
    assert runs.finish(started, succeeded=True)
    assert (fresh(draft).status, fresh(draft).is_current) == ("Active", True)


def test_a_decision_on_a_run_no_longer_waiting_is_refused(draft):
    run = deploy(draft)
    approve(run, BOB)
    approve(run, CAROL)
    trail = Trail()
    for decide in (approve, reject):
        with pytest.raises(Conflict, match=f"run {run.pk} is Running: it is not awaiting approval"):
            decide(run, ROOT)
    with pytest.raises(Conflict, match="is Running: it is not awaiting approval"):
        cancel(run, ALICE)
    assert trail.actions() == [] and run.approvals.count() == 2


# --- ends: rejected, cancelled, expired ---


def test_a_rejection_ends_the_run_and_the_release_can_be_deployed_again(draft):
    run = deploy(draft)
    approve(run, BOB)
    trail = Trail()
    rejected = reject(run, CAROL, "the migration is not reversible")
    assert rejected.state == "Rejected" and rejected.finished_at is not None
    assert fresh(draft).status == "Draft" and tasks() == 0
    (event,) = trail.events()
    assert (event.action, event.actor, event.subject_id, event.metadata["comment"]) == (
        "run.reject",
        "carol",
        run.pk,
        "the migration is not reversible",
    )
    with pytest.raises(Conflict, match="is Rejected: it is not awaiting approval"):
        approve(run, ROOT)
    again = deploy(draft)  # a new run: its approvals start from none
    assert waits(again).approvals.count() == 0 and again.pk != run.pk


def test_the_runs_actor_or_an_admin_cancels_it_no_one_else(draft, trail):
    run = deploy(draft)
    with pytest.raises(Forbidden, match="only the run's actor or an admin may cancel it"):
        cancel(run, BOB)
    waits(run)
    cancelled = cancel(run, ALICE)
    assert (cancelled.state, fresh(draft).status) == ("Cancelled", "Draft") and cancelled.finished_at
    assert trail.actions() == ["approval.request", "run.cancel"] and trail.events()[1].actor == "alice"
    # An admin cancels someone else's.
    again = deploy(draft, by=BOB)
    assert cancel(again, ROOT).state == "Cancelled"


def test_a_run_without_its_approvals_expires_after_the_ttl_and_not_before(draft, settings):
    settings.CONTROLPLANE_APPROVAL_TTL_SECONDS = 3600
    with time_machine.travel(at(MONDAY, "10:00"), tick=False):
        run = deploy(draft)
        approve(run, BOB)  # one of two: not enough
    trail = Trail()
    sweep(at(MONDAY, "10:59"))  # the sweep's own `now`
    waits(run)
    with time_machine.travel(at(MONDAY, "10:59"), tick=False):
        sweep()
    waits(run)
    assert trail.actions() == []
    with time_machine.travel(at(MONDAY, "11:00"), tick=False):
        sweep()
    expired = fresh(run)
    assert (expired.state, expired.finished_at, fresh(draft).status) == ("Expired", at(MONDAY, "11:00"), "Draft")
    (event,) = trail.events()
    assert (event.action, event.actor, event.subject_id, event.metadata["approvalsRequired"]) == (
        "run.expire",
        "system:worker",
        run.pk,
        2,
    )
    with pytest.raises(Conflict, match="is Expired: it is not awaiting approval"):
        approve(run, CAROL)
    assert deploy(draft).state == "AwaitingApproval"  # the release may ask again


@pytest.mark.parametrize(
    ("action", "decide"),
    [
        ("run.approve", lambda run: approve(run, BOB)),
        ("run.reject", lambda run: reject(run, BOB)),
        ("run.cancel", lambda run: cancel(run, ALICE)),
        ("run.expire", lambda run: sweep(timezone_now_plus_ttl())),
    ],
    ids=["approve", "reject", "cancel", "expire"],
)
def test_a_decision_and_its_audit_event_commit_together_or_not_at_all(draft, monkeypatch, action, decide):
    run = deploy(draft)
    record = writer.record

    def failing(name, *args, **kwargs):
        if name == action:
            raise RuntimeError("the audit trail is unavailable")
        return record(name, *args, **kwargs)

    monkeypatch.setattr(writer, "record", failing)
    trail = Trail()
    if action == "run.expire":
        decide(run)  # the sweep logs the failure and retries next round
    else:
        with pytest.raises(RuntimeError, match="audit trail is unavailable"):
            decide(run)
    waits(run)
    assert not RunApproval.objects.exists() and trail.actions() == []
    monkeypatch.setattr(writer, "record", record)
    decide(run)
    assert trail.actions() == [action]
    assert run.approvals.count() == 1 if action == "run.approve" else fresh(run).state != "AwaitingApproval"


def timezone_now_plus_ttl():
    from django.conf import settings
    from django.utils import timezone

    return timezone.now() + timedelta(seconds=settings.CONTROLPLANE_APPROVAL_TTL_SECONDS + 1)


# --- approved while a policy is closed: it waits, and the worker starts it ---


def test_an_approved_run_a_closed_window_holds_waits_and_the_sweep_starts_it_when_it_opens(
    make_environment, make_service, make_release, office, settings
):
    settings.CONTROLPLANE_APPROVAL_TTL_SECONDS = 3600  # bounds waiting for approvals, not for the window
    env = make_environment(policy_refs=["policy:change-window:office", "policy:approval:1"])
    release = make_release(service=make_service(environments=[env]), environment=env)
    with time_machine.travel(at(MONDAY, "16:50"), tick=False):
        run = deploy(release)  # inside the window: asked, waiting for one approval
    trail = Trail()
    with time_machine.travel(at(MONDAY, "17:10"), tick=False):
        approve(run, BOB, "go")
    held = waits(run)
    assert "office" in held.waiting_reason and held.approvals.count() == 1
    assert trail.actions() == ["run.approve"]  # neither a rollout nor a policy.deny: it waits
    for when in (at(MONDAY, "23:00"), at(MONDAY + timedelta(days=1), "08:59")):
        with time_machine.travel(when, tick=False):
            sweep()
        assert waits(run).waiting_reason == held.waiting_reason
    assert tasks() == 0 and trail.actions() == ["run.approve"]
    with time_machine.travel(at(MONDAY + timedelta(days=1), "09:00"), tick=False):
        sweep()
        sweep()  # the next round finds it started
    started = fresh(run)
    assert (started.state, started.waiting_reason, fresh(release).status) == ("Running", "", "Promoting")
    assert tasks() == 1 and trail.actions() == ["run.approve", "deploy.create"]
    rollout = trail.events()[1]
    assert (rollout.actor, rollout.metadata["runId"], rollout.metadata["approved"]) == ("system:worker", run.pk, True)


def test_the_sweep_leaves_runs_it_cannot_handle_for_the_next_round(draft, monkeypatch, caplog):
    run = deploy(draft)
    approve(run, BOB)
    # The last approval recorded, its start not made: `approve` commits the decision, then starts (a crash between).
    RunApproval(run=run, actor="carol", decision="approve").save()

    def broken(run):
        raise RuntimeError("database unavailable")

    monkeypatch.setattr(approvals, "start", broken)
    sweep()
    assert "the approvals sweep could not handle run" in caplog.text
    waits(run)
    monkeypatch.undo()
    sweep()
    assert fresh(run).state == "Running" and tasks() == 1


def test_a_principal_with_another_name_is_another_approver(draft):
    # Approvals count principals (their actor), whatever their role.
    run = deploy(draft)
    approve(run, person("dana"))
    approve(run, person("erin", ROOT.role))
    assert fresh(run).state == "Running"
