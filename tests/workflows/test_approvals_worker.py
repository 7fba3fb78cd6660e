"""The worker's recovery round sweeps the runs awaiting approval (`releases.approvals.sweep`): through a real
`manage.py worker`, a run that never got its approvals expires after CONTROLPLANE_APPROVAL_TTL, and a run whose
last approval was recorded but never started (a crash between the two) is started and rolled out."""

from audit.models import AuditEvent
from controlplane.identity.context import acting_as
from releases import workflows
from releases.models import Release, RunApproval, WorkflowRun
from services.models import Environment, Service
from tests.environment import wait_for


def waiting_deploy(service_id: str, environment: Environment) -> WorkflowRun:
    release = Release(service_id=service_id, environment=environment, sha="4f2a9c1", version="9.9.9")
    release.save()
    with acting_as("alice"):
        run = workflows.deploy(release)
    assert run.state == "AwaitingApproval"
    return run


def state(run: WorkflowRun) -> str:
    return WorkflowRun.objects.get(pk=run.pk).state


def test_a_running_worker_expires_unapproved_runs_and_starts_approved_ones(committed_demo, worker):
    staging = Environment.objects.get(pk="env-staging")
    staging.policy_refs = ["policy:approval:1"]
    staging.save()
    other = Service(id="svc-other", name="Other", repo="github.com/acme/other", deployment_adapters=["k8s"])
    other.save()
    other.environments.set([staging])
    unapproved = waiting_deploy("svc-demo", staging)
    approved = waiting_deploy("svc-other", staging)
    RunApproval(run=approved, actor="bob", decision="approve").save()  # its start never made

    worker(CONTROLPLANE_APPROVAL_TTL="1s", CONTROLPLANE_RECOVERY_INTERVAL_SECONDS=0.25)
    wait_for(lambda: state(unapproved) == "Expired", what="the worker to expire the unapproved run")
    wait_for(lambda: state(approved) == "Succeeded", what="the worker to start and roll out the approved run")

    assert Release.objects.get(pk=unapproved.release_id).status == "Draft"
    assert Release.objects.get(pk=approved.release_id).status == "Active"
    expired = AuditEvent.objects.get(action="run.expire")
    assert (expired.actor, expired.subject_id) == ("system:worker", unapproved.pk)
    rollout = AuditEvent.objects.get(action="deploy.create", metadata__runId=approved.pk)
    assert (rollout.actor, rollout.metadata["approved"]) == ("system:worker", True)
