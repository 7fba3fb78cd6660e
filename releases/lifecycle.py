"""A release's status moves, and a workflow run's. They are the only way either changes; the workflow
engine calls them (`releases.runs.finish` ends a run and its release together)."""

from django.db import transaction
from django.utils import timezone

from controlplane.lifecycle import move
from releases.models import Release, WorkflowRun

Status = Release.Status


def begin_rollout(release: Release, action: str = "deploy.create", details: dict | None = None) -> Release:
    """Draft → Promoting: a deploy (or, as `release.promote`, a promotion) has started.
    One at a time per (service, environment)."""
    busy = f"another release of {release.service_id} is already promoting to {release.environment_id}."
    return move(release, Status.PROMOTING, action=action, details=details, on_integrity_error=busy)


def activate(release: Release, details: dict | None = None) -> Release:
    """Promoting → Active: the rollout succeeded; the release becomes its environment's current one."""
    return move(release, Status.ACTIVE, action="release.activate", details=details, activated_at=timezone.now())


def fail(release: Release, details: dict | None = None) -> Release:
    """Promoting → Failed: the rollout did not complete."""
    return move(release, Status.FAILED, action="release.fail", details=details)


@transaction.atomic
def end_rollout(run: WorkflowRun, succeeded: bool) -> WorkflowRun:
    """A run and its release end together: Running → Succeeded with Promoting → Active, or Running → Failed
    with Promoting → Failed. The run's move is not audited by itself; its release's move is the record."""
    state = WorkflowRun.State.SUCCEEDED if succeeded else WorkflowRun.State.FAILED
    move(run, state, action=None, finished_at=timezone.now())
    details = {"runId": run.id, "startedBy": run.actor}
    (activate if succeeded else fail)(run.release, details=details)
    return run
