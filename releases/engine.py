"""Executes a workflow run: plans the release through each of the service's adapters and runs the
steps in order, logging as it goes. Runs in the worker process, as `system:worker`."""

import logging

from controlplane import adapters
from controlplane.adapters import StepFailed, Target
from releases.models import RunState, WorkflowRun
from releases.workflows import finish, log

logger = logging.getLogger(__name__)


def targets(run: WorkflowRun):
    release, service, env = run.release, run.release.service, run.release.environment
    for name in service.deployment_adapters:
        adapter = adapters.get(name)
        region, cluster = adapter.effective_placement(env.region, env.cluster)
        yield (
            adapter,
            Target(
                service_id=service.id,
                service_name=service.name,
                repo=service.repo,
                release_id=release.id,
                sha=release.sha,
                version=release.version,
                environment=env.name,
                region=region,
                cluster=cluster,
            ),
        )


def still_running(run: WorkflowRun) -> bool:
    """False when someone else (the recovery) has ended the run meanwhile."""
    return WorkflowRun.objects.filter(pk=run.pk, state=RunState.RUNNING).exists()


def execute(run_id: str) -> str:
    run = WorkflowRun.objects.select_related("release__service", "release__environment").filter(pk=run_id).first()
    if run is None or run.state != RunState.RUNNING:
        return "nothing to do"  # a repeated or stale task: the run already ended
    release = run.release
    what = f"{run.kind} of {release.id} ({release.version}, {release.sha}) to {release.environment.name}"
    log(
        run,
        f"{what}: started",
        kind=run.kind,
        startedBy=run.actor,
        **({"sourceReleaseId": run.source_release_id} if run.source_release_id else {}),
    )
    try:
        plan = list(targets(run))
        for adapter, target in plan:
            problems = adapter.validate(target)
            if problems:
                raise StepFailed(f"{adapter.name}: {'; '.join(problems)}")
            log(
                run,
                f"{adapter.name}: deploying to region {target.region}, cluster {target.cluster}",
                adapter=adapter.name,
                region=target.region,
                cluster=target.cluster,
                defaults=not (release.environment.region and release.environment.cluster),
            )
        for adapter, target in plan:
            for step in adapter.plan(target):
                if not still_running(run):
                    return "ended by someone else"
                log(run, f"{adapter.name}: {step.description}", level="debug", adapter=adapter.name, step=step.name)
                done = adapter.execute(step, target)
                log(run, f"{adapter.name}: {step.name} done", adapter=adapter.name, step=step.name, result=done)
    except StepFailed as e:
        finish(run, succeeded=False, reason=str(e))
        return "failed"
    except Exception as e:  # a bug in an adapter must still end the run, explained
        logger.exception("run %s crashed", run.id)
        finish(run, succeeded=False, reason=f"the run crashed: {type(e).__name__}: {e}")
        return "crashed"
    finish(run, succeeded=True, reason=f"{what}: succeeded")
    return "succeeded"
