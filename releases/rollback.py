"""Rollback (docs/domain.md, "Rollback"): put an earlier release of a service back in an environment.

RFC 0001 re-activates only through a new record, so a rollback is a new release with the restored release's sha
and version (`restores`), naming the release it replaces (`rollbackOf`), rolled out by a run of kind Rollback.
It is never held for approvals; the policies decide it as action `rollback` (the shipped ones let it through
windows, freezes and incident gates; an operator's Cedar policy may not: docs/policies.md).
"""

from django.core.exceptions import ValidationError
from django.db import transaction

from controlplane import governance
from controlplane.errors import Conflict
from controlplane.models import ID_PATTERN
from releases import lifecycle, workflows
from releases.models import Release, RunKind
from services.models import Environment, Service

REASON = (10, 500)


def reason_problem(reason) -> str | None:
    low, high = REASON
    if not isinstance(reason, str) or not low <= len(reason.strip()) <= high:
        return f"is required, {low}-{high} characters: why the release is rolled back."
    return None


def targets(service: Service, environment: Environment, to_release_id: str | None = None) -> tuple[Release, Release]:
    """The release current there now and the one a rollback would restore (by default the one the current one
    superseded), or a Conflict saying why there is nothing to roll back to."""
    current = Release.objects.filter(service=service, environment=environment, is_current=True).first()
    if current is None:
        raise Conflict(f"{service.pk} has no current release in {environment.pk}: there is nothing to roll back.")
    if to_release_id:
        # Not an id at all (a NUL byte, which PostgreSQL refuses in a query): no such release, without asking.
        restored = Release.objects.filter(pk=to_release_id).first() if ID_PATTERN.fullmatch(to_release_id) else None
        if (
            restored is None
            or (restored.service_id, restored.environment_id) != (service.pk, environment.pk)
            or restored.status != Release.Status.ACTIVE
            or restored.is_current
        ):
            raise Conflict(
                f"{to_release_id} is not an earlier Active release of {service.pk} in {environment.pk} "
                f"(the current one is {current.pk}); roll back to one of those."
            )
    else:
        restored = Release.objects.filter(superseded_by=current).order_by("-activated_at", "-id").first()
        if restored is None:
            raise Conflict(
                f"{current.pk} superseded no release of {service.pk} in {environment.pk}: there is nothing to roll "
                "back to."
            )
    return current, restored


def rollback(
    service: Service,
    environment: Environment | str,
    reason: str,
    to_release_id: str | None = None,
    break_glass: dict | None = None,
):
    """A new release restoring an earlier one in `environment`, Draft → Promoting with a Rollback run
    (`release.rollback {reason, rollbackOf, restores}`), once the policies allow it."""
    if isinstance(environment, str):
        environment = workflows.promotion_target(environment)
    if problem := reason_problem(reason):
        raise ValidationError({"reason": [problem]})
    current, restored = targets(service, environment, to_release_id)
    if refusal := workflows.busy(service.pk, environment.pk):
        raise Conflict(refusal)
    verdict = governance.check("rollback", environment=environment, release=current, break_glass=break_glass)
    with transaction.atomic():
        release = Release(
            service=service,
            environment=environment,
            sha=restored.sha,
            version=restored.version,
            committed_at=restored.committed_at,
            rollback_of=current,
            restores=restored,
        )
        release.save()
        run = workflows.new_run(release, RunKind.ROLLBACK)
        details = {
            "runId": run.id,
            "reason": reason.strip(),
            "rollbackOf": current.pk,
            "restores": restored.pk,
            "policy": verdict.metadata,
        }
        verdict.record()
        lifecycle.begin_rollout(release, action="release.rollback", details=details)
        workflows.enqueue(run)
        return run
