"""Executes a workflow run: claims it, plans the release through each of the service's adapters and runs
the steps in order, logging as it goes, with a heartbeat while it works. Runs in the worker process, as
`system:worker`."""

import logging

from controlplane import adapters
from controlplane.adapters import StepFailed, Target
from releases.models import WorkflowRun
from releases.runs import claim, finish, heartbeat, log, still_running, worker_id

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


def execute(run_id: str) -> str:
    me = worker_id()
    run = claim(run_id, me)
    if run is None:
        return "nothing to do"  # a duplicate task (another worker has the run) or a stale one (it ended)
    with heartbeat(run, me):
        return _execute(run, me)


def _execute(run: WorkflowRun, me: str) -> str:
    release = run.release
    what = f"{run.kind} of {release.id} ({release.version}, {release.sha}) to {release.environment.name}"
    log(
        run,
        f"{what}: started",
        kind=run.kind,
        startedBy=run.actor,
        worker=me,
        **({"sourceReleaseId": run.source_release_id} if run.source_release_id else {}),
    )
    try:
        plan = [(adapter, target, list(adapter.plan(target))) for adapter, target in targets(run)]
        for adapter, target, steps in plan:
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
                steps=len(steps),  # what the run's progress counts against (releases.runs.progress)
            )
        for adapter, target, steps in plan:
            for step in steps:
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
