"""`cpctl drift`, `cpctl environments` and runs' mode against a live server: what the last drift check saw (rows
written here as a check writes them), a check asked for now, the exit code a script gates on (7: drifted), and
whether an environment and a run are live or simulated."""

import json
from datetime import UTC, datetime

import pytest
from django.db import connection

from releases.models import Observation, WorkflowRun
from services.models import Environment, Service
from tests.cli.conftest import new_release

pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="the client's reads: tested on SQLite")

# A Kubernetes connection whose kubeconfig does not exist: a check through it cannot ask the cluster.
CONNECTIONS = json.dumps({"k8s-test": {"adapter": "k8s", "kubeconfig": "/nonexistent"}})
CHECKED = datetime(2026, 12, 7, 20, 0, tzinfo=UTC)
EXPECTED = "github.com/blackroad/demo:9f3b7de"


@pytest.fixture
def cpctl(cpctl_here):
    return cpctl_here


@pytest.fixture
def plane(committed_demo, web):
    return web(CONTROLPLANE_CONNECTIONS=CONNECTIONS)


def connect(env_id="env-staging", name="k8s-test"):
    Environment.objects.filter(pk=env_id).update(connection=name)


def a_k8s_service(service_id="svc-api") -> Service:
    service = Service(
        id=service_id, name=service_id, repo=f"github.com/blackroad/{service_id}", deployment_adapters=["k8s"]
    )
    service.save()
    service.environments.add("env-staging")
    return service


def observe(service_id, adapter, *, running, drifted, expected=EXPECTED, release_id="rel-123", error=""):
    Observation.objects.create(
        service_id=service_id,
        environment_id="env-staging",
        adapter=adapter,
        connection="k8s-test",
        release_id=release_id,
        expected=expected,
        running=running,
        drifted=drifted,
        error=error,
        checked_at=CHECKED,
    )


def test_environments_say_which_are_live_and_through_which_connection(plane, cpctl):
    connect()

    listed = cpctl("environments", url=plane, role="viewer")

    assert listed.code == 0, listed.err
    header, *rows = listed.out.splitlines()
    assert header.split() == ["ENVIRONMENT", "NAME", "REGION", "CLUSTER", "MODE", "CONNECTION"]
    assert rows[0].split() == ["env-prod", "prod", "us-east-1", "prod-cluster", "simulated", "—"]
    assert rows[1].split()[0] == "env-staging" and rows[1].split()[-2:] == ["live", "k8s-test"]
    found = cpctl("environments", "-o", "json", url=plane, role="viewer").json()
    assert [(e["id"], e["mode"], e["connection"]) for e in found] == [
        ("env-prod", "simulated", None),
        ("env-staging", "live", "k8s-test"),
    ]
    shown = cpctl("service", "show", "svc-demo", url=plane, role="viewer").out
    staging = next(line for line in shown.splitlines() if line.startswith("env-staging"))
    assert "live (connection k8s-test)" in staging


def test_a_simulated_environment_has_nothing_to_compare(plane, cpctl):
    shown = cpctl("drift", "env-prod", url=plane, role="viewer")

    assert shown.code == 0, shown.err
    assert shown.out.startswith("env-prod is simulated: nothing to compare")
    assert cpctl("drift", "env-prod", "-o", "json", url=plane).json()["mode"] == "simulated"

    checked = cpctl("drift", "env-prod", "--check", url=plane)  # the server's 409: no platform to ask
    assert checked.code == 5 and "env-prod names no connection" in checked.err
    assert cpctl("drift", "env-nope", url=plane).code == 4


def test_drift_shows_expected_and_running_and_exits_7_while_a_service_has_drifted(plane, cpctl):
    connect()
    a_k8s_service()
    observe("svc-demo", "aws", running="github.com/blackroad/demo:0000000", drifted=True)
    observe("svc-api", "k8s", running="", expected="", release_id=None, drifted=False)

    shown = cpctl("drift", "env-staging", url=plane, role="viewer")

    assert shown.code == 7, shown.err
    lines = shown.out.splitlines()
    assert lines[0] == "env-staging is live (connection k8s-test); checked 2026-12-07 20:00:00Z."
    assert lines[1].split() == ["SERVICE", "ADAPTER", "RELEASE", "EXPECTED", "RUNNING", "STATE", "CHECKED"]
    in_sync = "svc-api k8s — no current release nothing runs in sync 2026-12-07 20:00:00Z"
    assert lines[2].split() == in_sync.split()
    assert lines[3].split()[:6] == [
        "svc-demo",
        "aws",
        "rel-123",
        EXPECTED,
        "github.com/blackroad/demo:0000000",
        "drifted",
    ]
    assert lines[-1] == "1 of 2 drifted."
    assert "\x1b[" not in shown.out  # piped: no colour

    as_json = cpctl("drift", "env-staging", "-o", "json", url=plane, role="viewer")
    assert as_json.code == 7  # the same code for scripts reading JSON
    report = as_json.json()
    assert (report["envId"], report["connection"], report["mode"]) == ("env-staging", "k8s-test", "live")
    assert [o["serviceId"] for o in report["drifted"]] == ["svc-demo"]

    Observation.objects.update(drifted=False, running=EXPECTED)
    in_sync = cpctl("drift", "env-staging", url=plane, role="viewer")
    assert in_sync.code == 0 and in_sync.out.splitlines()[-1] == "2 of 2 in sync."


def test_a_check_asks_the_platform_now_and_says_when_it_cannot(plane, cpctl):
    connect()
    never = cpctl("drift", "env-staging", url=plane, role="viewer")
    assert never.code == 0
    assert never.out.strip() == (
        "env-staging is live (connection k8s-test) and has not been checked yet: cpctl drift env-staging --check"
    )
    nothing = cpctl("drift", "env-staging", "--check", url=plane)  # svc-demo deploys through aws and fly only
    assert nothing.code == 0, nothing.err
    assert (
        nothing.out.strip()
        == "env-staging is live (connection k8s-test) and has no service deploying through its connection."
    )
    a_k8s_service()

    refused = cpctl("drift", "env-staging", "--check", url=plane, role="viewer")  # drift.check: deployers and up
    assert refused.code == 3 and not Observation.objects.exists()

    checked = cpctl("drift", "env-staging", "--check", url=plane)

    assert checked.code == 1, checked.err  # the platform could not be asked: not a pass
    row = next(line for line in checked.out.splitlines() if line.startswith("svc-api"))
    assert row.split()[:3] == ["svc-api", "k8s", "—"] and "unknown" in row
    assert "svc-api (k8s): the platform could not be asked: k8s:" in checked.out
    assert checked.out.splitlines()[-1] == "0 of 1 in sync. 1 could not be checked (the last verdict is kept)."
    observation = Observation.objects.get()
    assert (observation.service_id, observation.adapter, observation.error != "") == ("svc-api", "k8s", True)


def test_runs_say_whether_they_are_simulated(plane, cpctl):
    release_id = cpctl(*new_release("2024.10.02"), url=plane).out.strip()

    started = cpctl("deploy", release_id, "--yes", "--no-follow", url=plane)  # no worker: it stays Running

    run = WorkflowRun.objects.get(release_id=release_id)
    assert started.code == 0, started.err
    assert started.out.splitlines()[0] == f"{run.id} started: Deploy of {release_id} to env-staging (simulated)."
    shown = cpctl("runs", "show", run.id, url=plane, role="viewer")
    assert shown.code == 0, shown.err
    rows = {line.split(maxsplit=1)[0]: line.split(maxsplit=1)[1] for line in shown.out.splitlines()[:7]}
    assert (rows["Run"], rows["State"], rows["Mode"]) == (f"{run.id} (Deploy)", "Running", "simulated")
    assert cpctl("runs", "show", run.id, "-o", "json", url=plane).json()["mode"] == "simulated"
