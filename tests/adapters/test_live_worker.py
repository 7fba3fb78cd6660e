"""A live deploy through the real worker process and its task queue, and the worker's periodic drift check:
the worker reaches the emulated cluster through CONTROLPLANE_CONNECTIONS, as it would a real one."""

import json

from audit.models import AuditEvent
from releases.models import Observation, Release
from services.models import Environment, Service
from tests.api.conftest import Api
from tests.environment import wait_for


def test_the_worker_deploys_for_real_and_notices_drift(committed_demo, kube, worker):
    connections = {"k8s-test": {"adapter": "k8s", "kubeconfig": kube.kubeconfig, "namespace": "shop", "pollSeconds": 1}}
    Environment.objects.filter(pk="env-staging").update(connection="k8s-test")
    Service.objects.filter(pk="svc-demo").update(deployment_adapters=["k8s"])
    api = Api("deployer")
    created = api.post(
        "/api/releases/", {"serviceId": "svc-demo", "envId": "env-staging", "sha": "4f2a9c1", "version": "3"}
    )
    release_id = created.json()["id"]
    assert api.post(f"/api/releases/{release_id}/deploy/").status_code == 202
    # Started once the deploy is queued: before it, the demo's current release in env-staging (rel-123) runs
    # nowhere on this empty cluster, which a check would rightly call drift.
    worker(CONTROLPLANE_CONNECTIONS=json.dumps(connections), CONTROLPLANE_DRIFT_INTERVAL="1")
    wait_for(lambda: kube.deployment("shop", "demo"), what="the worker's apply")
    kube.report("shop", "demo", replicas=2, updatedReplicas=2, availableReplicas=2)
    wait_for(lambda: Release.objects.get(pk=release_id).status == "Active", what="the rollout")

    # In sync: the worker's next check says so, and writes nothing to the audit trail.
    wait_for(
        lambda: Observation.objects.filter(service_id="svc-demo", drifted=False, release_id=release_id).exists(),
        what="a check of the new current release",
    )
    kube.apps.patch_namespaced_deployment(
        "demo", "shop", {"spec": {"template": {"spec": {"containers": [{"name": "demo", "image": "by-hand:1"}]}}}}
    )

    def verdicts():
        return [
            (e.action, e.actor, e.metadata["running"]) for e in AuditEvent.objects.filter(action__startswith="drift.")
        ]

    wait_for(lambda: verdicts(), what="the worker to notice the drift")
    # Noticed by the worker, once: its own rollout, seen by a check while under way, was not drift.
    assert verdicts() == [("drift.detected", "system:worker", "by-hand:1")], (
        verdicts(),
        list(Observation.objects.values_list("expected", "running", "drifted", "error", "checked_at")),
    )
