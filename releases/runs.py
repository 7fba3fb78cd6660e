"""A workflow run's life after it is started: claimed by one worker, kept alive by its heartbeat, logged,
and ended together with its release. Every change is a compare-and-swap, so a worker, a duplicate task
and the recovery racing for the same run cannot both win."""

import logging
import os
import socket
import threading
from contextlib import contextmanager

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from releases import lifecycle
from releases.models import RunLogEntry, RunState, WorkflowRun

logger = logging.getLogger(__name__)


def worker_id() -> str:
    """Who executes a run: this process, as host:pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def log(run: WorkflowRun, message: str, level: str = "info", **meta) -> None:
    RunLogEntry(run=run, level=level, message=message, meta=meta).save()


def progress(release_ids) -> dict[str, tuple[int, int]]:
    """Per Promoting release (of `release_ids`), how far its running rollout is: (steps done, steps planned),
    from its run's log (the engine logs each adapter's plan size, then each step done). One query."""
    entries = (
        RunLogEntry.objects.filter(run__release_id__in=release_ids, run__state=RunState.RUNNING)
        .filter(Q(meta__has_key="steps") | Q(message__endswith=" done", meta__has_key="step"))
        .values_list("run__release_id", "meta")
    )
    result: dict[str, tuple[int, int]] = {}
    for release_id, meta in entries:
        done, planned = result.get(release_id, (0, 0))
        result[release_id] = (done, planned + meta["steps"]) if "steps" in meta else (done + 1, planned)
    return result


def claim(run_id: str, worker: str) -> WorkflowRun | None:
    """Take a queued run for `worker`: only a Running run that nobody has claimed yet. None when it was
    claimed already (a duplicate task) or has ended."""
    now = timezone.now()
    claimed = WorkflowRun.objects.filter(pk=run_id, state=RunState.RUNNING, claimed_at__isnull=True).update(
        claimed_at=now, claimed_by=worker, heartbeat_at=now
    )
    if not claimed:
        return None
    return WorkflowRun.objects.select_related("release__service", "release__environment").get(pk=run_id)


def beat(run: WorkflowRun, worker: str) -> bool:
    """Stamp the run's heartbeat; False once the run has ended (or is not this worker's)."""
    return bool(
        WorkflowRun.objects.filter(pk=run.pk, state=RunState.RUNNING, claimed_by=worker).update(
            heartbeat_at=timezone.now()
        )
    )


@contextmanager
def heartbeat(run: WorkflowRun, worker: str, interval: float | None = None):
    """While the block runs, a thread stamps the run's heartbeat every `interval` seconds (default
    `CONTROLPLANE_HEARTBEAT_SECONDS`), so the recovery can tell a working worker from a dead one."""
    interval = settings.CONTROLPLANE_WORKFLOWS["heartbeatSeconds"] if interval is None else interval
    stop = threading.Event()

    def keep_beating():
        try:
            while not stop.wait(interval):
                try:
                    if not beat(run, worker):
                        return
                except Exception:  # a busy database: the next beat retries, well within the stale time
                    logger.warning("heartbeat of run %s failed", run.pk, exc_info=True)
        finally:
            connection.close()  # this thread's own

    thread = threading.Thread(target=keep_beating, name=f"heartbeat-{run.pk}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def still_running(run: WorkflowRun) -> bool:
    """False when someone else (the recovery) has ended the run meanwhile."""
    return WorkflowRun.objects.filter(pk=run.pk, state=RunState.RUNNING).exists()


@transaction.atomic
def finish(run: WorkflowRun, succeeded: bool, reason: str = "", only_if: Q | None = None) -> bool:
    """End a run and its release's rollout together, in one transaction: Succeeded and Active, or Failed
    and Failed (`lifecycle.end_rollout`), with `reason` as the run's last log entry. When two parties race
    to end it (a slow worker and the recovery), exactly one does: the run's row is locked and checked first
    (SQLite's IMMEDIATE transactions serialise this already), and `only_if` is what must still hold of it
    then; the moves themselves are compare-and-swaps. Returns whether we ended it."""
    running = (
        WorkflowRun.objects.select_for_update(of=("self",))
        .filter(Q(pk=run.pk, state=RunState.RUNNING) & (only_if or Q()))
        .select_related("release")
        .first()
    )
    if running is None:
        return False
    if reason:
        log(running, reason, level="info" if succeeded else "error")
    lifecycle.end_rollout(running, succeeded)
    run.refresh_from_db()
    return True
