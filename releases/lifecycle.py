"""A release's status moves, and a workflow run's. They are the only way either changes; the workflow
engine calls them (`releases.runs.finish` ends a run and its release together)."""

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from controlplane.lifecycle import move
from releases.models import Release, WorkflowRun

Status = Release.Status


def begin_rollout(release: Release, action: str = "deploy.create", details: dict | None = None) -> Release:
    """Draft → Promoting: a deploy (or, as `release.promote`, a promotion) has started.
    One at a time per (service, environment)."""
    busy = busy_refusal(release.service_id, release.environment_id)
    return move(release, Status.PROMOTING, action=action, details=details, on_integrity_error=busy)


def busy_refusal(service_id: str, environment_id: str) -> str:
    return f"another release of {service_id} is already promoting to {environment_id}."


@transaction.atomic
def activate(release: Release, details: dict | None = None) -> Release:
    """Promoting → Active: the rollout succeeded; the release becomes its environment's current one, and
    the one it replaces there is superseded by it (recorded on the event as `supersedes`)."""
    now = timezone.now()
    before, after = neighbours(release, now)
    if before:
        Release.objects.filter(pk=before).update(is_current=False, superseded_by=release.pk, superseded_at=now)
        details = {**(details or {}), "supersedes": before}
    return move(
        release,
        Status.ACTIVE,
        action="release.activate",
        details=details,
        activated_at=now,
        # Activations are ordered by time: a later one already stored (a restored history) stays current.
        is_current=after is None,
        superseded_by=after["pk"] if after else None,
        superseded_at=after["activated_at"] if after else None,
    )


def neighbours(release: Release, activated_at) -> tuple[str | None, dict | None]:
    """Among the Active releases of `release`'s service and environment, the one activated just before
    `activated_at` (its id) and the one just after (its id and activation time), ties broken by id, in
    the database's own order (the one `overview.deployment_state` recomputes with)."""
    active_there = Release.objects.filter(
        service_id=release.service_id, environment_id=release.environment_id, status=Status.ACTIVE
    ).exclude(pk=release.pk)
    earlier = Q(activated_at__lt=activated_at) | Q(activated_at=activated_at, id__lt=release.pk)
    before = active_there.filter(earlier).order_by("-activated_at", "-id").values_list("pk", flat=True).first()
    after = active_there.exclude(earlier).order_by("activated_at", "id").values("pk", "activated_at").first()
    return before, after


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
