"""Executes a workflow run: claims it, plans the release through each of the service's adapters and runs
the steps in order, logging as it goes, with a heartbeat while it works. An adapter deploys for real where the
environment's connection is for it, and simulates elsewhere; the log says which. Runs in the worker process,
as `system:worker`."""

import logging

from controlplane import adapters, connections
from controlplane.adapters import Progress, StepFailed, Target
from controlplane.connections import Connection
from releases.models import WorkflowRun
from releases.runs import claim, finish, heartbeat, log, still_running, worker_id

logger = logging.getLogger(__name__)


def connection_for(environment, adapter) -> Connection | None:
    """The connection through which `adapter` deploys to `environment` for real, or None: it simulates. The
    environment's connection serves the adapter it is for; a connection no longer configured fails the run."""
    if not environment.connection:
        return None
    connection = connections.get(environment.connection)
    if connection is None:
        raise StepFailed(
            f"{environment.pk} names connection {environment.connection!r}, which is not configured "
            "(CONTROLPLANE_CONNECTIONS)"
        )
    return connection if connection.adapter == adapter.name and adapter.live else None


def target(adapter, service, environment, release=None, actor: str = "") -> Target:
    """Where `release` (or, without one, the service as it stands) goes through `adapter` in `environment`."""
    connection = connection_for(environment, adapter)
    if connection is None:
        region, cluster = adapter.effective_placement(environment.region, environment.cluster)
    else:
        region, cluster = adapter.connected_placement(connection, environment.region, environment.cluster)
    return Target(
        service_id=service.id,
        service_name=service.name,
        repo=service.repo,
        release_id=release.id if release else "",
        sha=release.sha if release else "",
        version=release.version if release else "",
        environment=environment.name,
        region=region,
        cluster=cluster,
        actor=actor,
        connection=connection,
    )


def targets(run: WorkflowRun):
    release = run.release
    for name in release.service.deployment_adapters:
        adapter = adapters.get(name)
        yield adapter, target(adapter, release.service, release.environment, release, actor=run.actor)


class RunProgress(Progress):
    """A live step's window on its run: what it sees goes in the run's log; a run ended elsewhere stops it."""

    def __init__(self, run: WorkflowRun):
        super().__init__()
        self.run = run

    def log(self, message: str, **meta) -> None:
        log(self.run, message, **meta)

    def cancelled(self) -> bool:
        return not still_running(self.run)


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
        plan = [(adapter, where, list(adapter.plan(where))) for adapter, where in targets(run)]
        for adapter, where, steps in plan:
            problems = adapter.validate(where)
            if problems:
                raise StepFailed(f"{adapter.name}: {'; '.join(problems)}")
            how = f"live, connection {where.connection.name}" if where.connection else "simulated"
            log(
                run,
                f"{adapter.name}: deploying to region {where.region}, cluster {where.cluster} ({how})",
                adapter=adapter.name,
                region=where.region,
                cluster=where.cluster,
                defaults=not (release.environment.region and release.environment.cluster),
                mode=where.mode,
                **({"connection": where.connection.name} if where.connection else {}),
                steps=len(steps),  # what the run's progress counts against (releases.runs.progress)
            )
        for adapter, where, steps in plan:
            progress = RunProgress(run)
            for step in steps:
                if not still_running(run):
                    return "ended by someone else"
                log(run, f"{adapter.name}: {step.description}", level="debug", adapter=adapter.name, step=step.name)
                done = adapter.execute(step, where, progress)
                if not still_running(run):
                    return "ended by someone else"  # a wait stopped by the recovery: nothing more is logged
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
