"""Upgrades: runs started before 0005 did not name their task, though the code of the time queued it."""

import datetime as dt

from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from controlplane.identity.context import acting_as
from controlplane.models import new_id
from releases import lifecycle, recovery
from releases.models import WorkflowRun
from releases.tasks import execute_run

BEFORE = ("releases", "0005_run_claim_heartbeat_and_append_only_log")


def migrate(target):
    executor = MigrationExecutor(connection)
    executor.migrate([target])


def migrate_to_latest():
    """Through 0006, and the migrations since (the rows are written by today's models, so they are
    read back on today's schema)."""
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def old_run(release, state="Running"):
    """A run as the code before 0005 left it: no task named (validation would refuse it now)."""
    rolling = lifecycle.begin_rollout(release)
    run = WorkflowRun(id=new_id("run-"), kind="Deploy", release=rolling, actor="alice", state=state)
    if state != "Running":
        run.finished_at = timezone.now()
    (run,) = WorkflowRun.objects.bulk_create([run])
    return run


def queued(run_id, status=None, task_path=None):
    """Its task, as the code of the time queued it (on commit, with the run's id)."""
    task_id = execute_run.enqueue(run_id).id
    changes = {"status": status} if status else {}
    changes.update({"task_path": task_path} if task_path else {})
    if changes:
        DBTaskResult.objects.filter(id=task_id).update(**changes)
    return str(task_id)


def task_ids(*runs) -> list[str]:
    stored = dict(WorkflowRun.objects.values_list("pk", "task_id"))
    return [stored[run.pk] for run in runs]


def test_0006_names_the_queued_task_of_each_running_run(transactional_db, make_release):
    # Written as the code before 0005 left them, on today's schema, which keeps them through the way back.
    waiting, duplicated, lost = (old_run(make_release()) for _ in range(3))
    ended = old_run(make_release(), state="Failed")
    waiting_task = queued(waiting.pk)
    duplicated_task = queued(duplicated.pk)
    queued(duplicated.pk, status="SUCCESSFUL")  # a duplicate queued by hand later, which found it claimed
    queued(lost.pk, task_path="releases.tasks.something_else")  # not its task
    queued(ended.pk, status="SUCCESSFUL")
    assert task_ids(waiting, duplicated, lost, ended) == ["", "", "", ""]
    migrate(BEFORE)

    migrate_to_latest()

    assert task_ids(waiting, duplicated, lost, ended) == [waiting_task, duplicated_task, "", ""]
    # So the recovery leaves the runs whose task is still waiting in the queue, and fails only the lost one.
    with acting_as("worker"):
        recovered = recovery.recover(now=timezone.now() + dt.timedelta(hours=1))
    assert [(r.run_id, r.reason) for r in recovered] == [
        (lost.pk, "never started: no task was queued for it; marked failed by recovery")
    ]


def test_0006_reverses_as_a_no_op(transactional_db, make_release):
    run = old_run(make_release())
    task = queued(run.pk)
    WorkflowRun.objects.filter(pk=run.pk).update(task_id=task)
    migrate(BEFORE)
    assert task_ids(run) == [task]
    migrate_to_latest()
