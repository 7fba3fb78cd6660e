"""The Amazon ECS adapter, live: against moto's ECS in server mode (boto3 over HTTP), and, for the waiting that
moto never finishes (its rollouts stay IN_PROGRESS), against recorded answers of ECS's DescribeServices."""

import datetime as dt

import boto3
import pytest
from botocore.stub import Stubber

from audit.models import AuditEvent
from controlplane import redaction
from controlplane.adapters import Progress, StepFailed, Target
from controlplane.adapters.aws import AwsAdapter
from releases import drift
from releases.models import RunLogEntry, WorkflowRun
from services.models import Environment, Service
from tests.api.conftest import Api
from tests.platforms import connection, messages

IMAGE = "github.com/blackroad/demo:4f2a9c1"


@pytest.fixture
def live_prod(committed_demo, ecs, settings):
    """env-prod deploys svc-demo through an ECS connection to moto (which never finishes a rollout: wait false)."""

    def connect(**options):
        options = {"region": "eu-west-1", "cluster": "prod", "endpointUrl": ecs.url, "wait": False, **options}
        settings.CONTROLPLANE_CONNECTIONS = {"ecs-test": connection("ecs-test", "aws", **options)}

    connect()
    Environment.objects.filter(pk="env-prod").update(connection="ecs-test")
    Service.objects.filter(pk="svc-demo").update(deployment_adapters=["aws"])
    ecs.connect = connect
    return ecs


def deploy(execute) -> tuple:
    api = Api("deployer")
    release = api.post(
        "/api/releases/", {"serviceId": "svc-demo", "envId": "env-prod", "sha": "4f2a9c1", "version": "3"}
    )
    assert release.status_code == 201, release.content
    started = api.post(f"/api/releases/{release.json()['id']}/deploy/")
    assert started.status_code == 202, started.content
    run = WorkflowRun.objects.get(pk=started.json()["id"])
    return run, execute(run).result()


def test_a_deploy_registers_a_revision_with_the_new_image_and_points_the_service_at_it(live_prod, execute):
    ecs = live_prod
    before = ecs.service("prod", "demo")
    run, outcome = deploy(execute)
    assert outcome == "succeeded" and run.release.status == "Active"

    running = ecs.running("prod", "demo")
    definition = running["taskDefinition"]
    assert definition["taskDefinitionArn"] != before and definition["family"] == "demo-task"
    assert definition["revision"] == 2
    # The service's own definition, with only the image changed.
    assert [(c["name"], c["image"]) for c in definition["containerDefinitions"]] == [("demo", IMAGE)]
    assert (definition["cpu"], definition["memory"], definition["networkMode"]) == ("256", "512", "awsvpc")
    tags = {t["key"]: t["value"] for t in running["tags"]}
    assert tags == {
        "controlplane:service": "svc-demo",
        "controlplane:release": run.release_id,
        "controlplane:sha": "4f2a9c1",
        "controlplane:actor": "dev-deployer",
    }
    log = messages(run)
    assert "aws: deploying to region eu-west-1, cluster prod (live, connection ecs-test)" in log
    # The secret key the SDK found is one the redactor now knows, wherever it would appear.
    assert redaction.redact_text("key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY") == "key [REDACTED]"
    waited = RunLogEntry.objects.get(run=run, meta__step="wait-stable", message__endswith="done").meta["result"]
    assert waited == {"waited": False, "why": "the connection says wait: false"}


def test_a_service_that_does_not_exist_fails_the_run_saying_so(live_prod, execute):
    live_prod.client.create_cluster(clusterName="prod")
    run, outcome = deploy(execute)
    assert outcome == "failed" and run.release.status == "Failed"
    assert messages(run)[-1] == (
        "aws: ECS service demo not found in cluster prod (eu-west-1); the control plane updates services, it does "
        "not create them"
    )


def test_a_cluster_that_does_not_exist_fails_the_run_with_ecs_reason(live_prod, execute):
    live_prod.connect(cluster="nowhere")
    run, outcome = deploy(execute)
    assert outcome == "failed"
    assert messages(run)[-1].startswith("aws: describe service demo in cluster nowhere: ClusterNotFoundException")


def test_a_connection_names_the_service_and_container_on_the_platform(live_prod, execute):
    ecs = live_prod
    ecs.service("prod", "payments-api")
    ecs.connect(names={"svc-demo": "payments-api"})
    _, outcome = deploy(execute)
    assert outcome == "succeeded"
    containers = ecs.running("prod", "payments-api")["taskDefinition"]["containerDefinitions"]
    assert [(c["name"], c["image"]) for c in containers] == [("payments-api", IMAGE)]


def test_drift_when_the_service_runs_another_definition(live_prod, execute):
    ecs = live_prod
    before = ecs.service("prod", "demo")
    _, outcome = deploy(execute)
    assert outcome == "succeeded"
    env = Environment.objects.get(pk="env-prod")
    assert drift.check(env).drifted == []

    ecs.client.update_service(cluster="prod", service="demo", taskDefinition=before)  # by hand, behind our back
    (drifted,) = drift.check(env).drifted
    assert (drifted.service_id, drifted.expected, drifted.running) == ("svc-demo", IMAGE, "registry.example/demo:old")
    assert AuditEvent.objects.filter(action="drift.detected", subject_id="svc-demo").exists()


# --- waiting for the rollout, against recorded answers ---


class Recorded(Progress):
    """A step's progress with its own clock: a wait's deadline passes without waiting for it."""

    def __init__(self):
        super().__init__()
        self.logged, self.now, self.slept = [], 0.0, []
        self.state["taskDefinition"] = NEW

    def log(self, message, **meta):
        self.logged.append(message)

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


OLD = "arn:aws:ecs:eu-west-1:123456789012:task-definition/demo-task:1"
NEW = "arn:aws:ecs:eu-west-1:123456789012:task-definition/demo-task:2"
AT = dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.UTC)


def answer(*deployments) -> dict:
    """DescribeServices as ECS answers it during a rolling deployment (fields the adapter does not read left out)."""
    return {
        "services": [
            {
                "serviceArn": "arn:aws:ecs:eu-west-1:123456789012:service/prod/demo",
                "serviceName": "demo",
                "clusterArn": "arn:aws:ecs:eu-west-1:123456789012:cluster/prod",
                "status": "ACTIVE",
                "desiredCount": 2,
                "taskDefinition": NEW,
                "deployments": list(deployments),
            }
        ],
        "failures": [],
    }


def deployment(definition, status, state, running, reason="", failed=0) -> dict:
    return {
        "id": f"ecs-svc/{abs(hash((definition, status))) % 10**19:019d}",
        "status": status,
        "taskDefinition": definition,
        "desiredCount": 2,
        "pendingCount": 2 - running,
        "runningCount": running,
        "failedTasks": failed,
        "createdAt": AT,
        "updatedAt": AT,
        "rolloutState": state,
        **({"rolloutStateReason": reason} if reason else {}),
    }


def recorded(*answers, timeout=600, poll=5):
    client = boto3.client(
        "ecs", region_name="eu-west-1", aws_access_key_id="AKIAIOSFODNN7EXAMPLE", aws_secret_access_key="x" * 40
    )
    stubber = Stubber(client)
    for body in answers:
        stubber.add_response("describe_services", body, {"cluster": "prod", "services": ["demo"]})
    stubber.activate()
    where = Target(
        service_id="svc-demo",
        service_name="Demo",
        repo="github.com/blackroad/demo",
        release_id="rel-1",
        sha="4f2a9c1",
        version="3",
        environment="prod",
        region="eu-west-1",
        cluster="prod",
        connection=connection(
            "ecs-test", "aws", region="eu-west-1", cluster="prod", timeoutSeconds=timeout, pollSeconds=poll
        ),
    )
    return client, stubber, where


def test_waiting_follows_the_deployment_until_it_completes():
    started = deployment(NEW, "PRIMARY", "IN_PROGRESS", 0)
    old = deployment(OLD, "ACTIVE", "COMPLETED", 2)
    client, stubber, where = recorded(
        answer(started, old),
        answer({**started, "runningCount": 1, "pendingCount": 1}, old),
        answer({**started, "runningCount": 1, "pendingCount": 1}, old),  # no change: not logged again
        answer({**started, "runningCount": 2, "pendingCount": 0, "rolloutState": "COMPLETED"}),
    )
    progress = Recorded()
    done = AwsAdapter().wait_stable(client, where, progress)
    assert done["rolloutState"] == "COMPLETED" and done["taskDefinition"] == NEW
    assert progress.logged == [
        "aws: demo: IN_PROGRESS: 0 of 2 tasks running",
        "aws: demo: IN_PROGRESS: 1 of 2 tasks running",
        "aws: demo: COMPLETED: 2 of 2 tasks running",
    ]
    assert progress.slept == [5, 5, 5]
    stubber.assert_no_pending_responses()


def test_a_deployment_the_circuit_breaker_stops_fails_the_run_with_its_reason():
    started = deployment(NEW, "PRIMARY", "IN_PROGRESS", 0)
    reason = "ECS deployment circuit breaker: tasks failed to start."
    client, _, where = recorded(
        answer(started, deployment(OLD, "ACTIVE", "COMPLETED", 2)),
        answer({**started, "rolloutState": "FAILED", "rolloutStateReason": reason, "failedTasks": 4}),
    )
    progress = Recorded()
    with pytest.raises(StepFailed) as failed:
        AwsAdapter().wait_stable(client, where, progress)
    assert str(failed.value) == f"aws: the deployment of {NEW} to service demo failed: {reason}"
    assert progress.logged[-1] == f"aws: demo: FAILED: 0 of 2 tasks running ({reason})"


def test_a_rollout_past_the_connections_deadline_fails_the_run():
    stuck = answer(deployment(NEW, "PRIMARY", "IN_PROGRESS", 1))
    client, stubber, where = recorded(stuck, stuck, stuck, stuck, timeout=30, poll=10)
    progress = Recorded()
    with pytest.raises(StepFailed) as failed:
        AwsAdapter().wait_stable(client, where, progress)
    assert str(failed.value) == (
        "aws: service demo did not become stable within 30s (last: IN_PROGRESS: 1 of 2 tasks running)"
    )
    # Asked at 0, 10, 20 and 30 s on the step's clock (the test did not wait); not again past the deadline.
    assert progress.now == 30
    stubber.assert_no_pending_responses()


def test_a_deployment_replaced_by_another_fails_the_run():
    other = "arn:aws:ecs:eu-west-1:123456789012:task-definition/demo-task:3"
    client, _, where = recorded(answer(deployment(other, "PRIMARY", "IN_PROGRESS", 0)))
    with pytest.raises(StepFailed, match=r"no longer deploys .*another deployment replaced it"):
        AwsAdapter().wait_stable(client, where, Recorded())
