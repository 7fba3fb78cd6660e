"""Runs that will never end by themselves. The worker fails them, explained, on start and periodically,
so a release is never left Promoting forever:

- a claimed run whose worker stopped stamping its heartbeat for `CONTROLPLANE_STALE_RUN_SECONDS`
  (the worker died, or lost its database);
- an unclaimed run, older than that, whose task is gone from the queue, ended without claiming it, or
  was taken that long ago by a worker that never claimed the run.

A run waiting in the queue (its task ready) is never failed for waiting, however long the queue is.
A run that cannot be ended (say, one whose release cannot move) is logged, naming it, and the others are
still seen to: one such run never stalls the recovery of the rest.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django_tasks.base import TaskResultStatus
from django_tasks.exceptions import TaskResultDoesNotExist, TaskResultMismatch

from releases.models import RunState, WorkflowRun
from releases.runs import finish
from releases.tasks import execute_run

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recovered:
    run_id: str
    reason: str


def _lost_task(run: WorkflowRun, cutoff: datetime) -> str | None:
    """Why the unclaimed `run` will never be claimed, or None while its task may still run it."""
    if not run.task_id:
        return "no task was queued for it"
    try:
        task = execute_run.get_result(run.task_id)
    except (TaskResultDoesNotExist, TaskResultMismatch):
        return f"its task {run.task_id} is missing from the queue"
    if task.is_finished:
        return f"its task {run.task_id} ended ({task.status}) without running it"
    if task.status == TaskResultStatus.RUNNING and task.started_at and task.started_at < cutoff:
        taken_by = task.worker_ids[-1] if task.worker_ids else "a worker"
        return f"its task {run.task_id} was taken by {taken_by}, which never started it"
    return None  # ready: waiting in the queue is not a failure


def _stale(now: datetime | None) -> tuple[float, datetime]:
    stale = settings.CONTROLPLANE_WORKFLOWS["staleAfterSeconds"]
    return stale, (now or timezone.now()) - timedelta(seconds=stale)


def _silent(run: WorkflowRun, stale: float, cutoff: datetime) -> Recovered | None:
    reason = (
        f"no heartbeat for over {stale:g}s from {run.claimed_by}: the worker running it stopped; "
        "marked failed by recovery"
    )
    # Under the run's lock, the heartbeat must still be that old: a slow worker that just beat wins.
    if finish(run, succeeded=False, reason=reason, only_if=Q(heartbeat_at__lt=cutoff)):
        return Recovered(run.pk, reason)
    return None


def _queued(run: WorkflowRun, stale: float, cutoff: datetime) -> Recovered | None:
    problem = _lost_task(run, cutoff)
    if problem is None:
        return None
    reason = f"never started: {problem}; marked failed by recovery"
    if finish(run, succeeded=False, reason=reason, only_if=Q(claimed_at__isnull=True)):
        return Recovered(run.pk, reason)
    return None


def recover(now: datetime | None = None) -> list[Recovered]:
    stale, cutoff = _stale(now)
    recovered = []
    running = WorkflowRun.objects.filter(state=RunState.RUNNING)
    rounds = (
        (running.filter(claimed_at__isnull=False, heartbeat_at__lt=cutoff), _silent),
        (running.filter(claimed_at__isnull=True, started_at__lt=cutoff), _queued),
    )
    for candidates, fail in rounds:
        for run in candidates:
            try:
                # `finish` is atomic: a run that cannot end is rolled back whole, and the next one is tried.
                done = fail(run, stale, cutoff)
            except Exception:
                logger.exception(
                    "recovery could not fail run %s (release %s); it stays Running", run.pk, run.release_id
                )
                continue
            if done:
                recovered.append(done)
    return recovered
