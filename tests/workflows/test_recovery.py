"""Recovery fails only runs that will never end by themselves: a claimed run whose worker stopped beating,
an unclaimed run whose task was lost. A run waiting in the queue is never failed for waiting."""

import datetime as dt
import logging

import pytest
from django.db.models import Q
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from controlplane.identity.context import acting_as
from controlplane.lifecycle import TransitionRefused
from releases import engine, recovery, runs, workflows
from releases.models import Release, RunLogEntry, WorkflowRun
from releases.tasks import execute_run
from services.models import Environment, Service
from tests.environment import wait_for

STALE = 2  # seconds, as the tests' settings and workers use


@pytest.fixture
def stale_after(settings):
    settings.CONTROLPLANE_WORKFLOWS = {**settings.CONTROLPLANE_WORKFLOWS, "staleAfterSeconds": STALE}


def deploy_new_releases(count: int, env_id: str = "env-staging") -> list[WorkflowRun]:
    """`count` services linked to the environment, each with a Draft release, deployed (so queued)."""
    environment = Environment.objects.get(pk=env_id)
    started = []
    with acting_as("test"):
        for n in range(count):
            service = Service(
                id=f"svc-q{n:02d}", name=f"queued {n}", repo=f"github.com/q/s{n}", deployment_adapters=["k8s"]
            )
            service.save()
            service.environments.set([environment])
            release = Release(service=service, environment=environment, sha="4f2a9c1", version="1")
            release.save()
            started.append(workflows.deploy(release))
    return started


def states(run_ids) -> dict[str, int]:
    counts: dict[str, int] = {}
    for state in WorkflowRun.objects.filter(pk__in=run_ids).values_list("state", flat=True):
        counts[state] = counts.get(state, 0) + 1
    return counts


# --- through the real worker ---


def test_thirty_deploys_queued_behind_one_worker_all_succeed(committed_demo, worker):
    """The queue takes several times the stale time; runs waiting in it are not failed for waiting."""
    run_ids = [run.id for run in deploy_new_releases(30)]
    worker(
        CONTROLPLANE_STALE_RUN_SECONDS=STALE,
        CONTROLPLANE_RECOVERY_INTERVAL_SECONDS=0.25,
        CONTROLPLANE_STEP_DELAY_SECONDS=0.1,
    )
    wait_for(lambda: states(run_ids).get("Running", 0) == 0, timeout=120, what="the queue to drain")
    assert states(run_ids) == {"Succeeded": 30}, RunLogEntry.objects.filter(level="error").first()
    last_started = WorkflowRun.objects.filter(pk__in=run_ids).order_by("-claimed_at").first()
    assert last_started.claimed_at - last_started.started_at > dt.timedelta(seconds=STALE)  # it really waited
    assert not RunLogEntry.objects.filter(run_id__in=run_ids, message__contains="recovery").exists()


def test_a_run_whose_task_was_lost_is_failed_explained(committed_demo, worker):
    lost, kept = deploy_new_releases(2)
    DBTaskResult.objects.filter(id=lost.task_id).delete()  # the queue lost it (or someone deleted the row)
    worker(CONTROLPLANE_STALE_RUN_SECONDS=1, CONTROLPLANE_RECOVERY_INTERVAL_SECONDS=0.25)
    wait_for(lambda: states([lost.id, kept.id]).get("Running", 0) == 0, what="recovery and the kept run")
    assert WorkflowRun.objects.get(pk=kept.id).state == "Succeeded"
    assert Release.objects.get(pk=lost.release_id).status == "Failed"
    last = RunLogEntry.objects.filter(run_id=lost.id).order_by("-pk").first()
    assert (last.level, last.message) == (
        "error",
        f"never started: its task {lost.task_id} is missing from the queue; marked failed by recovery",
    )


def test_a_duplicate_task_for_a_run_does_nothing(committed_demo, worker):
    (run,) = deploy_new_releases(1)
    duplicate = execute_run.enqueue(run.id)  # say, re-queued by hand
    worker()
    wait_for(lambda: DBTaskResult.objects.filter(id=duplicate.id, status="SUCCESSFUL").exists(), what="both tasks")
    assert WorkflowRun.objects.get(pk=run.id).state == "Succeeded"
    assert RunLogEntry.objects.filter(run_id=run.id, message__endswith=": started").count() == 1
    assert DBTaskResult.objects.get(id=duplicate.id).return_value == "nothing to do"


# --- the rules, in one process, with a controlled clock ---


def later(seconds: float) -> dt.datetime:
    return timezone.now() + dt.timedelta(seconds=seconds)


def recovered_ids(now) -> list[str]:
    with acting_as("worker"):
        return [r.run_id for r in recovery.recover(now=now)]


def test_a_queued_run_is_never_failed_for_waiting(demo, stale_after):
    (run,) = deploy_new_releases(1)
    assert recovered_ids(later(3600)) == []
    assert WorkflowRun.objects.get(pk=run.id).state == "Running"


def test_a_claimed_run_fails_only_once_its_heartbeat_is_stale(demo, stale_after):
    (run,) = deploy_new_releases(1)
    runs.claim(run.id, "host-a:41")
    assert recovered_ids(later(STALE / 2)) == []  # beating recently enough
    assert recovered_ids(later(STALE + 1)) == [run.id]
    ended = WorkflowRun.objects.get(pk=run.id)
    assert ended.state == "Failed" and Release.objects.get(pk=run.release_id).status == "Failed"
    assert ended.logs.last().message == (
        f"no heartbeat for over {STALE}s from host-a:41: the worker running it stopped; marked failed by recovery"
    )


@pytest.mark.parametrize(
    ("task_status", "started", "problem"),
    [
        ("SUCCESSFUL", None, "ended (SUCCESSFUL) without running it"),
        ("FAILED", None, "ended (FAILED) without running it"),
        ("RUNNING", -3600, "was taken by worker-9, which never started it"),
    ],
)
def test_an_unclaimed_run_fails_when_its_task_cannot_run_it(demo, stale_after, task_status, started, problem):
    (run,) = deploy_new_releases(1)
    DBTaskResult.objects.filter(id=run.task_id).update(
        status=task_status, started_at=later(started) if started else None, worker_ids=["worker-9"]
    )
    assert recovered_ids(later(STALE + 1)) == [run.id]
    message = WorkflowRun.objects.get(pk=run.id).logs.last().message
    assert message == f"never started: its task {run.task_id} {problem}; marked failed by recovery"


def test_a_run_that_cannot_be_ended_does_not_stall_the_recovery_of_the_others(demo, stale_after, caplog):
    (dead,) = deploy_new_releases(1)
    runs.claim(dead.id, "host-a:41")  # and then its worker died
    # A run whose release cannot end with it (a Draft release, say): validation refuses to create one now,
    # but an older database may hold it (bulk_create skips validation). Started after the dead worker's run,
    # so the recovery meets it first.
    draft = Release(service_id=dead.release.service_id, environment_id="env-staging", sha="4f2a9c1", version="2")
    draft.save()
    claimed = timezone.now()
    WorkflowRun.objects.bulk_create(
        [
            WorkflowRun(
                id="run-broken",
                kind="Deploy",
                release=draft,
                actor="test",
                started_at=claimed,
                claimed_at=claimed,
                claimed_by="host-b:7",
                heartbeat_at=claimed,
            )
        ]
    )
    assert WorkflowRun.objects.filter(state="Running").first().pk == "run-broken"  # met first
    caplog.set_level(logging.ERROR, logger="releases.recovery")

    def broken_run_logged() -> bool:
        (logged,) = [r for r in caplog.records if r.name == "releases.recovery"]
        caplog.clear()
        return "run run-broken" in logged.getMessage() and logged.exc_info[0] is TransitionRefused

    assert recovered_ids(later(STALE + 1)) == [dead.id]
    assert broken_run_logged()
    assert recovered_ids(later(STALE + 1)) == []  # each round meets it again, logs it and carries on
    assert broken_run_logged()
    assert WorkflowRun.objects.get(pk=dead.id).state == "Failed"
    assert Release.objects.get(pk=dead.release_id).status == "Failed"
    assert WorkflowRun.objects.get(pk="run-broken").state == "Running"
    assert not RunLogEntry.objects.filter(run_id="run-broken").exists()  # its failing round was rolled back


def test_a_task_just_taken_by_a_worker_is_left_to_it(demo, stale_after):
    (run,) = deploy_new_releases(1)
    DBTaskResult.objects.filter(id=run.task_id).update(status="RUNNING", started_at=later(STALE + 0.5))
    assert recovered_ids(later(STALE + 1)) == []


def test_a_slow_worker_that_beats_in_time_keeps_its_run(demo, stale_after):
    (run,) = deploy_new_releases(1)
    runs.claim(run.id, "host-a:41")
    seen_by_recovery = WorkflowRun.objects.get(pk=run.id)
    cutoff = later(1)  # recovery's view: the heartbeat is older than this
    WorkflowRun.objects.filter(pk=run.id).update(heartbeat_at=later(2))  # and then the worker beat
    with acting_as("worker"):
        assert not runs.finish(seen_by_recovery, succeeded=False, only_if=Q(heartbeat_at__lt=cutoff))
    assert WorkflowRun.objects.get(pk=run.id).state == "Running"


def test_the_engine_leaves_a_run_claimed_by_another_worker_alone(demo):
    (run,) = deploy_new_releases(1)
    runs.claim(run.id, "elsewhere:7")
    assert engine.execute(run.id) == "nothing to do"
    assert not RunLogEntry.objects.filter(run_id=run.id).exists()
    assert WorkflowRun.objects.get(pk=run.id).claimed_by == "elsewhere:7"
