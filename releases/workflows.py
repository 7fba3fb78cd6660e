"""Deploy and promote (docs/domain.md, "Deploy and promote"): the state changes that start a rollout.

Starting is synchronous and race-safe (a compare-and-swap on the release's status, one Promoting
release per service and environment). The rollout itself runs in the background worker
(`releases.tasks.execute_run` → `releases.engine`), which claims the run and ends it with its release
(`releases.runs`).
"""

from django.core.exceptions import ValidationError
from django.db import transaction

from controlplane import governance
from controlplane.errors import Conflict
from controlplane.identity.context import current_actor
from controlplane.models import ID_PATTERN, new_id
from controlplane.signals import action_performed
from releases import lifecycle
from releases.models import Release, ReleaseStatus, RunKind, RunState, WorkflowRun
from releases.tasks import execute_run
from services import policy_refs
from services.models import Environment


def approvals_required(environment: Environment) -> int:
    """How many distinct approvals a deploy or promotion into `environment` needs (its `policy:approval:<n>`)."""
    return next((ref.approvals for ref in policy_refs.parse_all(environment.policy_refs) if ref.kind == "approval"), 0)


def _start(
    release: Release, kind: str, action: str, verdict, source: Release | None = None, approvals: int = 0
) -> WorkflowRun:
    """The run that rolls `release` out: Running at once, or, when the environment asks for approvals,
    AwaitingApproval (its release stays Draft; `releases.approvals` starts it)."""
    run = new_run(release, kind, source, approvals)
    details = {"runId": run.id, **({"sourceReleaseId": source.id} if source else {}), "policy": verdict.metadata}
    verdict.record()
    if approvals:
        # Held: one run waiting or running per service and environment (the environment's row is locked, so two
        # requests cannot both find the place free).
        Environment.objects.select_for_update().filter(pk=release.environment_id).first()
        if refusal := busy(release.service_id, release.environment_id):
            raise Conflict(refusal)
        run.save()
        # The rollout's own event (`deploy.create`, `release.promote`) is written when it starts (approvals).
        action_performed.send(
            sender=Release,
            instance=release,
            action="approval.request",
            metadata={**details, "kind": kind, "approvalsRequired": approvals},
        )
        return run
    lifecycle.begin_rollout(release, action=action, details=details)
    enqueue(run)
    return run


def new_run(release: Release, kind: str, source: Release | None = None, approvals: int = 0) -> WorkflowRun:
    """The run (not saved yet) that rolls `release` out, by the current principal."""
    return WorkflowRun(
        id=new_id(WorkflowRun.ID_PREFIX),
        kind=kind,
        release=release,
        source_release=source,
        actor=current_actor(),
        mode=release.environment.mode,
        approvals_required=approvals,
        state=RunState.AWAITING_APPROVAL if approvals else RunState.RUNNING,
    )


def enqueue(run: WorkflowRun) -> None:
    """Queue the run's execution. The task is written in this same transaction (django-tasks' database backend
    shares the database), so the run and its task commit together or not at all; the run names its task for the
    recovery."""
    run.task_id = str(execute_run.enqueue(run.id).id)
    if run._state.adding:
        run.save()
    else:
        WorkflowRun.objects.filter(pk=run.pk).update(task_id=run.task_id)


def deploy_refusal(release: Release) -> str | None:
    """Why `deploy(release)` would be refused as things stand (it is not Draft, or another release is promoting
    there), or None: what a confirmation says instead of what would happen."""
    return release.move_refusal(ReleaseStatus.PROMOTING) or busy(release.service_id, release.environment_id)


def busy(service_id: str, environment_id: str) -> str | None:
    """One rollout at a time per service and environment, waiting for approval or running: what `begin_rollout`
    would refuse, foreseen (the database's unique index still decides a race)."""
    waiting = (
        WorkflowRun.objects.filter(
            state=RunState.AWAITING_APPROVAL,
            release__service_id=service_id,
            release__environment_id=environment_id,
        )
        .values_list("pk", flat=True)
        .first()
    )
    if waiting:
        return (
            f"run {waiting} of {service_id} is awaiting approval in {environment_id}; approve, reject or cancel it "
            "first."
        )
    promoting = Release.objects.filter(
        service_id=service_id, environment_id=environment_id, status=ReleaseStatus.PROMOTING
    )
    return lifecycle.busy_refusal(service_id, environment_id) if promoting.exists() else None


def deploy(release: Release, break_glass: dict | None = None) -> WorkflowRun:
    """Draft → Promoting in the release's own environment, with a Deploy run (`deploy.create`), once the
    policies allow it (`controlplane.governance`; break-glass overrides the built-in gates)."""
    if refusal := deploy_refusal(release):
        raise Conflict(refusal)
    verdict = governance.check("deploy", environment=release.environment, release=release, break_glass=break_glass)
    with transaction.atomic():
        approvals = approvals_required(release.environment)
        return _start(release, RunKind.DEPLOY, "deploy.create", verdict, approvals=approvals)


def promotion_target(environment_id: str) -> Environment:
    """The environment a promotion names, or a ValidationError naming the unknown id."""
    # Not an id at all (a NUL byte, which PostgreSQL refuses in a query): unknown, without asking the database.
    known = ID_PATTERN.fullmatch(environment_id)
    environment = Environment.objects.filter(pk=environment_id).first() if known else None
    if environment is None:
        raise ValidationError({"environment": [f"unknown environment {environment_id!r}."]})
    return environment


def promote_refusal(release: Release, environment: Environment) -> str | None:
    """Why `promote(release, environment)` would be refused as they stand, or None."""
    if refusal := release.promotion_refusal():
        return refusal
    if environment.pk == release.environment_id:
        return f"release {release.id} is already in {environment.pk}; promote it to another environment."
    return busy(release.service_id, environment.pk)


def _promoted(release: Release, environment: Environment) -> Release:
    """The new release a promotion makes: the same service, sha and version, in `environment` (Draft)."""
    return Release(
        service_id=release.service_id,
        environment=environment,
        sha=release.sha,
        version=release.version,
        committed_at=release.committed_at,  # the same commit: its lead time starts where the source's does
    )


def _check_promotion(release: Release, environment: Environment) -> None:
    """The ValidationError saving the promotion's new release would raise (an environment not linked to the
    service, or archived), raised without saving: a preview answers as `promote()` would. Uniqueness and the
    constraints are the write's own (a new id; a Draft release meets none of their conditions): left to it."""
    _promoted(release, environment).full_clean(validate_unique=False, validate_constraints=False)


def promotion(release: Release, environment: Environment | str) -> tuple[Environment, str | None]:
    """What `promote(release, environment)` would meet now, in its order, without writing: the target (an id's
    unknown environment is its ValidationError), why it would be refused as things stand (or None), and, unless
    refused, the ValidationError of the new release's rules. What a confirmation says, in one call."""
    if isinstance(environment, str):
        environment = promotion_target(environment)
    refusal = promote_refusal(release, environment)
    if refusal is None:
        _check_promotion(release, environment)
    return environment, refusal


def promote(release: Release, environment: Environment | str, break_glass: dict | None = None) -> WorkflowRun:
    """Take an Active release to another environment (given by id, or found): a new release record (same
    service, sha and version), Draft → Promoting there, with a Promote run that names its source
    (`release.promote`), once the policies allow it."""
    if isinstance(environment, str):
        environment = promotion_target(environment)
    release.refresh_from_db()
    problem = promote_refusal(release, environment)
    if problem:
        raise Conflict(problem)
    _check_promotion(release, environment)
    verdict = governance.check("promote", environment=environment, source=release, break_glass=break_glass)
    with transaction.atomic():
        release.refresh_from_db()
        problem = promote_refusal(release, environment)
        if problem:
            raise Conflict(problem)
        target = _promoted(release, environment)
        target.save()
        approvals = approvals_required(environment)
        return _start(target, RunKind.PROMOTE, "release.promote", verdict, source=release, approvals=approvals)
