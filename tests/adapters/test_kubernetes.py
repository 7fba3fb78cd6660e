"""The Kubernetes adapter, live, against an emulated API server (kmock; tests/platforms.py): the test plays the
Deployment controller by writing the Deployment's status, as the controller does."""

import pytest

from audit.models import AuditEvent
from controlplane import redaction
from controlplane.identity.context import acting_as
from releases import drift, runs, workflows
from releases.models import Release, RunLogEntry, WorkflowRun
from services.models import Environment, Service
from tests.api.conftest import Api
from tests.environment import wait_for
from tests.platforms import KUBE_TOKEN, connection, logged, messages

NAMESPACE = "payments"


@pytest.fixture
def live_staging(committed_demo, kube, settings):
    """env-staging deploys svc-demo through a k8s connection to the emulated cluster, in namespace payments."""
    settings.CONTROLPLANE_CONNECTIONS = {
        "k8s-test": connection(
            "k8s-test",
            "k8s",
            kubeconfig=kube.kubeconfig,
            context="test",
            namespace=NAMESPACE,
            pollSeconds=1,
            timeoutSeconds=60,
        )
    }
    Environment.objects.filter(pk="env-staging").update(connection="k8s-test")
    Service.objects.filter(pk="svc-demo").update(deployment_adapters=["k8s"])
    return kube


def start_deploy(sha="4f2a9c1", version="3.0.0") -> WorkflowRun:
    response = Api("deployer").post(
        "/api/releases/", {"serviceId": "svc-demo", "envId": "env-staging", "sha": sha, "version": version}
    )
    assert response.status_code == 201, response.content
    deployed = Api("deployer").post(f"/api/releases/{response.json()['id']}/deploy/")
    assert deployed.status_code == 202, deployed.content
    assert deployed.json()["mode"] == "live"
    return WorkflowRun.objects.get(pk=deployed.json()["id"])


def test_a_deploy_applies_the_deployment_and_follows_the_rollout_to_active(live_staging, execute):
    kube = live_staging
    run = start_deploy()
    execution = execute(run)
    deployment = wait_for(lambda: kube.deployment(NAMESPACE, "demo"), what="the Deployment")

    # Server-side apply, as field manager controlplane, of the release's image, named after the service.
    apply = next(r for r in kube.requests("patch") if r.subresource is None)
    assert apply.headers["Content-Type"].startswith("application/apply-patch+yaml")
    assert apply.params["fieldManager"] == "controlplane" and apply.params["force"] == "true"
    container = deployment.spec.template.spec.containers[0]
    assert (container.name, container.image) == ("demo", "github.com/blackroad/demo:4f2a9c1")
    annotations = deployment.metadata.annotations
    assert annotations["controlplane.dev/service"] == "svc-demo"
    assert annotations["controlplane.dev/release"] == run.release_id
    assert annotations["controlplane.dev/sha"] == "4f2a9c1"
    assert annotations["controlplane.dev/actor"] == "dev-deployer"
    assert deployment.metadata.labels["app.kubernetes.io/managed-by"] == "controlplane"

    # A check while it rolls out: the new image is not drift (nor would be the old one, or nothing yet).
    assert drift.check(Environment.objects.get(pk="env-staging")).drifted == []

    # The controller at work: each status change is a log entry of the run, as it happens.
    wait_for(lambda: logged(run, "waiting for the controller to pick up generation 1"), what="the first status")
    kube.report(NAMESPACE, "demo", replicas=1, updatedReplicas=1, availableReplicas=0)
    wait_for(lambda: logged(run, "1 of 2 new replicas updated"), what="the second status")
    kube.report(NAMESPACE, "demo", replicas=3, updatedReplicas=2, availableReplicas=1)
    wait_for(lambda: logged(run, "1 old replicas pending termination"), what="the third status")
    kube.report(NAMESPACE, "demo", replicas=2, updatedReplicas=2, availableReplicas=2)

    assert execution.result() == "succeeded"
    assert run.state == "Succeeded" and run.release.status == "Active"
    log = messages(run)
    assert "k8s: deploying to region local, cluster test (live, connection k8s-test)" in log
    assert f"k8s: {NAMESPACE}/demo: rolled out: 2 of 2 replicas updated and available" in log
    assert not RunLogEntry.objects.filter(run=run, level__in=["warning", "error"]).exists()  # a watch's end is no fault
    # Nothing of the kubeconfig's token reached the log, nor the audit trail.
    everything = str(list(RunLogEntry.objects.values_list("message", "meta"))) + str(
        list(AuditEvent.objects.values_list("metadata", flat=True))
    )
    assert KUBE_TOKEN not in everything
    # The token the adapter read from the kubeconfig is one the redactor now knows, in any text.
    assert redaction.redact_text(f"retrying with {KUBE_TOKEN}") == "retrying with [REDACTED]"


def test_a_progress_deadline_exceeded_fails_the_run_with_the_clusters_reason(live_staging, execute):
    kube = live_staging
    run = start_deploy()
    execution = execute(run)
    wait_for(lambda: logged(run, "waiting for the controller"), what="the watch")
    kube.report(
        NAMESPACE,
        "demo",
        replicas=2,
        updatedReplicas=1,
        availableReplicas=0,
        conditions=[
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": 'ReplicaSet "demo-5d8c7b9f4" has timed out progressing.',
            }
        ],
    )
    assert execution.result() == "failed"
    assert run.state == "Failed" and run.release.status == "Failed"
    assert messages(run)[-1] == (
        f"k8s: Deployment {NAMESPACE}/demo failed: ProgressDeadlineExceeded: "
        'ReplicaSet "demo-5d8c7b9f4" has timed out progressing.'
    )


def test_a_forbidden_namespace_fails_the_run_with_the_clusters_403(live_staging, execute):
    kube = live_staging
    kube.forbid(NAMESPACE)
    run = start_deploy()
    assert execute(run).result() == "failed"
    assert run.release.status == "Failed"
    reason = messages(run)[-1]
    assert reason.startswith(f"k8s: apply Deployment {NAMESPACE}/demo: 403 Forbidden: ")
    assert f'cannot patch resource "deployments" in API group "apps" in the namespace "{NAMESPACE}"' in reason


def test_a_run_ended_by_the_recovery_stops_watching(live_staging, execute):
    run = start_deploy()
    execution = execute(run)
    wait_for(lambda: logged(run, "waiting for the controller"), what="the watch")
    runs.finish(run, succeeded=False, reason="no heartbeat: marked failed by recovery")  # as the recovery does
    assert execution.result(timeout=15) == "ended by someone else"
    assert messages(run)[-1] == "no heartbeat: marked failed by recovery"
    assert not logged(run, "wait-rollout done")


def test_a_rollback_applies_the_restored_releases_image(live_staging, execute):
    kube = live_staging
    for sha, version in (("4f2a9c1", "3.0.0"), ("9b1d2e3", "3.1.0")):
        run = start_deploy(sha, version)
        execution = execute(run)
        wait_for(lambda run=run: logged(run, "waiting for the controller"), what="the watch")
        kube.report(NAMESPACE, "demo", replicas=2, updatedReplicas=2, availableReplicas=2)
        assert execution.result() == "succeeded"
    assert kube.deployment(NAMESPACE, "demo").spec.template.spec.containers[0].image.endswith(":9b1d2e3")

    response = Api("deployer").post(
        "/api/services/svc-demo/rollback/", {"envId": "env-staging", "reason": "3.1.0 breaks checkout"}
    )
    assert response.status_code == 202, response.content
    rollback = WorkflowRun.objects.get(release_id=response.json()["releaseId"])
    execution = execute(rollback)
    wait_for(lambda: kube.deployment(NAMESPACE, "demo").metadata.generation == 3, what="the rollback's apply")
    assert kube.deployment(NAMESPACE, "demo").spec.template.spec.containers[0].image.endswith(":4f2a9c1")
    kube.report(NAMESPACE, "demo", replicas=2, updatedReplicas=2, availableReplicas=2)
    assert execution.result() == "succeeded"
    assert Release.objects.get(pk=rollback.release_id).is_current


def test_drift_is_what_runs_other_than_the_current_release(live_staging, execute):
    kube = live_staging
    run = start_deploy()
    execution = execute(run)
    wait_for(lambda: logged(run, "waiting for the controller"), what="the watch")
    kube.report(NAMESPACE, "demo", replicas=2, updatedReplicas=2, availableReplicas=2)
    assert execution.result() == "succeeded"
    deployer = Api("deployer")

    checked = deployer.post("/api/environments/env-staging/drift/").json()
    assert (checked["mode"], checked["connection"], checked["drifted"]) == ("live", "k8s-test", [])
    assert [(s["serviceId"], s["running"], s["drifted"]) for s in checked["services"]] == [
        ("svc-demo", "github.com/blackroad/demo:4f2a9c1", False)
    ]

    # Someone changes the image behind the control plane's back (kubectl set image).
    kube.apps.patch_namespaced_deployment(
        "demo", NAMESPACE, {"spec": {"template": {"spec": {"containers": [{"name": "demo", "image": "hotfix:1"}]}}}}
    )
    checked = deployer.post("/api/environments/env-staging/drift/").json()
    assert [(d["serviceId"], d["expected"], d["running"]) for d in checked["drifted"]] == [
        ("svc-demo", "github.com/blackroad/demo:4f2a9c1", "hotfix:1")
    ]
    assert deployer.get("/api/environments/env-staging/drift/").json()["drifted"] == checked["drifted"]
    assert drift.drifted_pairs() == {("svc-demo", "env-staging")}
    detected = AuditEvent.objects.filter(action="drift.detected").get()
    assert (detected.subject_id, detected.metadata["running"], detected.actor) == (
        "svc-demo",
        "hotfix:1",
        "dev-deployer",
    )

    # A viewer reads the last check but may not ask the platform.
    assert Api("viewer").get("/api/environments/env-staging/drift/").status_code == 200
    assert Api("viewer").post("/api/environments/env-staging/drift/").status_code == 403

    # Put back: in sync again, said once.
    kube.apps.patch_namespaced_deployment(
        "demo",
        NAMESPACE,
        {
            "spec": {
                "template": {"spec": {"containers": [{"name": "demo", "image": "github.com/blackroad/demo:4f2a9c1"}]}}
            }
        },
    )
    assert deployer.post("/api/environments/env-staging/drift/").json()["drifted"] == []
    assert AuditEvent.objects.filter(action="drift.resolved").count() == 1


def test_a_deployment_missing_from_the_cluster_has_drifted(live_staging):
    with acting_as("test"):
        release = Release(service_id="svc-demo", environment_id="env-staging", sha="4f2a9c1", version="1.0.0")
        release.save()
        run = workflows.deploy(release)
    runs.finish(run, succeeded=True, reason="done elsewhere")  # current, but never applied to this cluster
    report = drift.check(Environment.objects.get(pk="env-staging"))
    assert [(o.service_id, o.running, o.drifted) for o in report.drifted] == [("svc-demo", "", True)]


def test_a_cluster_that_cannot_be_asked_keeps_the_verdict_and_says_why(live_staging, settings):
    settings.CONTROLPLANE_CONNECTIONS = {
        "k8s-test": connection("k8s-test", "k8s", kubeconfig="/nonexistent/kubeconfig")
    }
    report = drift.check(Environment.objects.get(pk="env-staging"))
    (observation,) = report.observations
    assert not observation.drifted and observation.error.startswith(
        "k8s: connection k8s-test: cannot load its kubeconfig: "
    )


def test_a_simulated_environment_has_nothing_to_compare(committed_demo):
    response = Api("deployer").post("/api/environments/env-prod/drift/")
    assert response.status_code == 409
    assert "names no connection: its adapters simulate" in response.json()["detail"]
    body = Api("viewer").get("/api/environments/env-prod/drift/").json()
    assert (body["mode"], body["connection"], body["checkedAt"], body["services"]) == ("simulated", None, None, [])
