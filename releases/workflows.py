"""Deploy and promote (decisions.md): the state changes that start a rollout, and the ones that end it.

Starting is synchronous and race-safe (a compare-and-swap on the release's status, one Promoting
release per service and environment); the rollout itself runs in the background worker
(`releases.tasks.execute_run`), which ends it with `finish`.
"""

from functools import partial

from django.db import transaction
from django.utils import timezone

from controlplane.errors import Conflict
from controlplane.identity.context import current_actor
from controlplane.models import new_id
from releases import lifecycle
from releases.models import Release, ReleaseStatus, RunKind, RunLogEntry, RunState, WorkflowRun
from services.models import Environment


def _start(release: Release, kind: str, action: str, source: Release | None = None) -> WorkflowRun:
    run = WorkflowRun(
        id=new_id(WorkflowRun.ID_PREFIX), kind=kind, release=release, source_release=source, actor=current_actor()
    )
    details = {"runId": run.id, **({"sourceReleaseId": source.id} if source else {})}
    lifecycle.begin_rollout(release, action=action, details=details)
    run.save()
    from releases.tasks import execute_run

    # After commit, so the worker never looks for a run that is not there yet. Should the process die
    # in between, the run makes no progress and the worker's recovery fails it, explained.
    transaction.on_commit(partial(execute_run.enqueue, run.id))
    return run


@transaction.atomic
def deploy(release: Release) -> WorkflowRun:
    """Draft → Promoting in the release's own environment, with a Deploy run (`deploy.create`)."""
    return _start(release, RunKind.DEPLOY, "deploy.create")


@transaction.atomic
def promote(release: Release, environment: Environment) -> WorkflowRun:
    """Take an Active release to another environment: a new release record (same service, sha and
    version), Draft → Promoting there, with a Promote run that names its source (`release.promote`)."""
    release.refresh_from_db()
    if release.status != ReleaseStatus.ACTIVE:
        raise Conflict(f"release {release.id} is {release.status}: only an Active release can be promoted.")
    if environment.pk == release.environment_id:
        raise Conflict(f"release {release.id} is already in {environment.pk}; promote it to another environment.")
    target = Release(service_id=release.service_id, environment=environment, sha=release.sha, version=release.version)
    target.save()
    return _start(target, RunKind.PROMOTE, "release.promote", source=release)


def log(run: WorkflowRun, message: str, level: str = "info", **meta) -> None:
    RunLogEntry(run=run, level=level, message=message, meta=meta).save()


@transaction.atomic
def finish(run: WorkflowRun, succeeded: bool, reason: str = "") -> bool:
    """End a run and its release's rollout together. When two parties race to end it (a slow worker
    and the recovery), exactly one does: the run's row is locked and its state checked first (SQLite's
    IMMEDIATE transactions serialise this already). Returns whether we ended it."""
    running = WorkflowRun.objects.select_for_update().filter(pk=run.pk, state=RunState.RUNNING).first()
    if running is None:
        return False
    if reason:
        log(running, reason, level="info" if succeeded else "error")
    state = RunState.SUCCEEDED if succeeded else RunState.FAILED
    WorkflowRun.objects.filter(pk=run.pk).update(state=state, finished_at=timezone.now())
    details = {"runId": run.id, "startedBy": run.actor}
    (lifecycle.activate if succeeded else lifecycle.fail)(running.release, details=details)
    run.refresh_from_db()
    return True
