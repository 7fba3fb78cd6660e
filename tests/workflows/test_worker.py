"""Deploys and promotions through the real worker process, on the real task queue."""

import signal
import threading

import pytest
from django.db import connections
from django.test import Client

from audit.models import AuditEvent
from releases.models import Release, RunLogEntry, WorkflowRun
from tests.api.conftest import Api
from tests.conftest import TOKENS
from tests.environment import wait_for


def create_release(api, env="env-staging", version="3.0.0"):
    response = api.post("/api/releases/", {"serviceId": "svc-demo", "envId": env, "sha": "4f2a9c1", "version": version})
    assert response.status_code == 201, response.content
    return response.json()["id"]


def settled(release_id):
    status = Release.objects.filter(pk=release_id).values_list("status", flat=True).first()
    return status if status in ("Active", "Failed") else None


def test_deploy_then_promote_to_active(committed_demo, worker):
    worker()
    api = Api("deployer")
    release_id = create_release(api)
    response = api.post(f"/api/releases/{release_id}/deploy/")
    assert response.status_code == 202
    run = response.json()
    assert response["Location"] == f"/api/workflow-runs/{run['id']}/"
    assert (run["kind"], run["state"], run["actor"]) == (
        "Deploy",
        "Running",
        "dev-deployer",
    ) and "finishedAt" not in run
    assert wait_for(lambda: settled(release_id), what="the deploy") == "Active"

    promoted = api.post(f"/api/releases/{release_id}/promote/", {"envId": "env-prod"})
    assert promoted.status_code == 202
    target = promoted.json()["releaseId"]
    assert promoted.json()["sourceReleaseId"] == release_id and target != release_id
    assert wait_for(lambda: settled(target), what="the promotion") == "Active"

    index = api.get("/api/services/index/").json()["results"][0]["environments"]
    prod = next(e for e in index if e["id"] == "env-prod")
    assert prod["currentRelease"]["id"] == target and prod["latestRelease"]["id"] == target

    timeline = api.get(f"/api/releases/{release_id}/timeline/").json()
    assert [(r["kind"], r["state"]) for r in timeline] == [("Deploy", "Succeeded"), ("Promote", "Succeeded")]
    logs = timeline[0]["logs"]
    assert logs[0]["message"].startswith("Deploy of") and logs[-1]["message"].endswith("succeeded")
    placement = [entry["meta"] for entry in logs if "region" in entry["meta"]]
    planned = placement[0].pop("steps")
    assert placement[0] == {
        "adapter": "aws",
        "region": "us-east-1",
        "cluster": "default",
        "defaults": True,
        "mode": "simulated",
    }
    # The plan's size, logged first, is what the run then did: its progress counts against it.
    assert planned == len([e for e in logs if e["message"].startswith("aws: ") and e["message"].endswith(" done")]) > 0
    manifests = [
        e["meta"]["result"]
        for e in logs
        if e["meta"].get("step") == "register-task-definition" and "result" in e["meta"]
    ]
    assert manifests[0]["taskDefinition"]["containerDefinitions"][0]["image"] == "github.com/blackroad/demo:4f2a9c1"
    actions = list(AuditEvent.objects.filter(seq__gt=2).values_list("action", "actor"))
    assert actions == [
        ("release.create", "dev-deployer"),
        ("deploy.create", "dev-deployer"),
        ("release.activate", "system:worker"),
        ("release.create", "dev-deployer"),
        ("release.promote", "dev-deployer"),
        ("release.activate", "system:worker"),
    ]


def test_a_failing_step_fails_the_run_and_the_release(committed_demo, worker):
    worker(CONTROLPLANE_FAIL_STEPS="fly:deploy-machines")
    api = Api("deployer")
    release_id = create_release(api)
    run_id = api.post(f"/api/releases/{release_id}/deploy/").json()["id"]
    assert wait_for(lambda: settled(release_id), what="the deploy") == "Failed"
    run = WorkflowRun.objects.get(pk=run_id)
    assert run.state == "Failed" and run.finished_at >= run.started_at
    last = run.logs.order_by("-pk").first()
    assert (last.level, last.message) == ("error", "fly: deploy-machines failed (injected by CONTROLPLANE_FAIL_STEPS)")
    assert AuditEvent.objects.order_by("-seq").first().action == "release.fail"


def test_a_worker_killed_mid_run_leaves_the_run_failed_and_explained(committed_demo, worker):
    doomed = worker(CONTROLPLANE_STEP_DELAY_SECONDS=30)
    api = Api("deployer")
    release_id = create_release(api)
    run_id = api.post(f"/api/releases/{release_id}/deploy/").json()["id"]
    wait_for(lambda: RunLogEntry.objects.filter(run_id=run_id).count() >= 3, what="the run to start")
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    worker(CONTROLPLANE_STALE_RUN_SECONDS=1, CONTROLPLANE_RECOVERY_INTERVAL_SECONDS=0.5)
    assert wait_for(lambda: settled(release_id), what="recovery") == "Failed"
    run = WorkflowRun.objects.get(pk=run_id)
    assert run.state == "Failed" and run.claimed_by.endswith(f":{doomed.pid}")  # the dead worker had claimed it
    last = RunLogEntry.objects.filter(run_id=run_id).order_by("-pk").first()
    assert (last.level, last.message) == (
        "error",
        f"no heartbeat for over 1s from {run.claimed_by}: the worker running it stopped; marked failed by recovery",
    )


def test_twenty_concurrent_deploys_of_one_release_start_exactly_one_run(committed_demo):
    release_id = create_release(Api("deployer"))
    barrier, statuses = threading.Barrier(20), []

    def request():
        client = Client(HTTP_AUTHORIZATION=f"Bearer {TOKENS['deployer']}")
        barrier.wait()
        statuses.append(client.post(f"/api/releases/{release_id}/deploy/", content_type="application/json").status_code)
        connections.close_all()

    threads = [threading.Thread(target=request) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [202] + [409] * 19
    assert WorkflowRun.objects.filter(release_id=release_id).count() == 1
    assert AuditEvent.objects.filter(action="deploy.create", subject_id=release_id).count() == 1


@pytest.mark.parametrize(("role", "expected"), [("viewer", 403), ("deployer", 202), ("admin", 202)])
def test_who_may_deploy(committed_demo, role, expected):
    release_id = create_release(Api("deployer"))
    assert Api(role).post(f"/api/releases/{release_id}/deploy/").status_code == expected


def test_illegal_deploys_and_promotions_are_conflicts(committed_demo):
    api = Api("deployer")
    assert api.post("/api/releases/rel-123/deploy/").json() == {
        "detail": "release rel-123 is Active: it cannot move to Promoting; it is final."
    }
    draft = create_release(api)
    conflict = api.post(f"/api/releases/{draft}/promote/", {"envId": "env-prod"})
    assert conflict.status_code == 409 and "only an Active release can be promoted" in conflict.json()["detail"]
    same = api.post("/api/releases/rel-123/promote/", {"envId": "env-staging"})
    assert same.status_code == 409 and "already in env-staging" in same.json()["detail"]
    unknown = api.post("/api/releases/rel-123/promote/", {"envId": "env-nowhere"})
    assert unknown.status_code == 400 and unknown.json() == {"envId": ["unknown environment 'env-nowhere'."]}
    Api("admin").post("/api/environments/", {"id": "env-qa", "name": "qa"})
    unlinked = api.post("/api/releases/rel-123/promote/", {"envId": "env-qa"})
    assert unlinked.status_code == 400 and "is not linked to service 'svc-demo'" in unlinked.json()["envId"][0]
    assert not Release.objects.filter(environment_id="env-qa").exists()
