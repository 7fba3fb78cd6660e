"""Live adapters over GraphQL: an environment's `connection` and `mode`, a run's `mode`, `environmentDrift` (what the
last check saw, as REST's GET .../drift/) and `checkDrift` (ask now, as REST's POST): its role, its CONFLICT for an
environment that simulates, and the audit events a change of verdict writes."""

import pytest

from audit.models import AuditEvent
from services.models import Environment
from tests.api.conftest import Api
from tests.graphql.test_mutations import done, loaded_once, mutate, refused, stored
from tests.platforms import IMAGE, connect, observe

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("k8s_platform")]
demo = loaded_once("demo")

OBSERVATION = "serviceId adapter currentReleaseId expected running drifted error checkedAt"
DRIFT = f"envId connection mode checkedAt drifted {{ {OBSERVATION} }} services {{ {OBSERVATION} }}"
ENVIRONMENT_DRIFT = f"query ($envId: ID!) {{ environmentDrift(envId: $envId) {{ {DRIFT} }} }}"


def test_an_environment_shows_its_connection_and_mode(viewer):
    document = '{ environment(id: "env-staging") { connection mode } }'
    assert viewer(document)["environment"] == {"connection": None, "mode": "simulated"}
    connect("env-staging")
    assert viewer(document)["environment"] == {"connection": "k8s-test", "mode": "live"}
    rest = Api("viewer").get("/api/environments/env-staging/").json()
    assert (rest["connection"], rest["mode"]) == ("k8s-test", "live")


def test_a_run_shows_its_mode(viewer):
    data = viewer('{ workflowRun(id: "run-456") { mode } release(id: "rel-123") { timeline { id mode } } }')
    assert data["workflowRun"] == {"mode": "simulated"}
    assert data["release"]["timeline"] == [{"id": "run-456", "mode": "simulated"}]
    assert Api("viewer").get("/api/workflow-runs/run-456/").json()["mode"] == "simulated"


def test_environment_drift_is_what_rest_answers(viewer):
    never = viewer(ENVIRONMENT_DRIFT, envId="env-staging")["environmentDrift"]
    assert never == {
        "envId": "env-staging",
        "connection": None,
        "mode": "simulated",
        "checkedAt": None,
        "drifted": [],
        "services": [],
    }
    connect("env-staging", "svc-demo")
    observe()
    drift = viewer(ENVIRONMENT_DRIFT, envId="env-staging")["environmentDrift"]
    assert drift == Api("viewer").get("/api/environments/env-staging/drift/").json()
    assert (drift["mode"], drift["connection"]) == ("live", "k8s-test")
    assert [o["serviceId"] for o in drift["drifted"]] == ["svc-demo"]
    assert drift["drifted"][0]["expected"] == IMAGE and drift["drifted"][0]["error"] is None


def test_environment_drift_of_an_unknown_environment_is_null(viewer):
    assert viewer(ENVIRONMENT_DRIFT, envId="env-nope")["environmentDrift"] is None
    assert viewer(ENVIRONMENT_DRIFT, envId="env-\x00")["environmentDrift"] is None


def test_check_drift_asks_the_platform_and_audits_a_change_of_verdict(deployer, k8s_platform):
    connect("env-staging", "svc-demo")
    head = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    first = done(deployer, "checkDrift", envId="env-staging")["drift"]  # nothing runs there
    assert [(o["serviceId"], o["expected"], o["running"], o["drifted"]) for o in first["services"]] == [
        ("svc-demo", IMAGE, None, True)
    ]
    assert first["drifted"] == first["services"] and first["checkedAt"] == first["services"][0]["checkedAt"]
    k8s_platform["svc-demo"] = IMAGE
    second = done(deployer, "checkDrift", envId="env-staging")["drift"]
    assert (second["drifted"], second["services"][0]["running"]) == ([], IMAGE)
    events = AuditEvent.objects.filter(seq__gt=head).order_by("seq")
    assert [(e.action, e.subject_id, e.metadata["envId"], e.actor) for e in events] == [
        ("drift.detected", "svc-demo", "env-staging", "dev-deployer"),
        ("drift.resolved", "svc-demo", "env-staging", "dev-deployer"),
    ]
    # The answer is REST's GET afterwards.
    assert second == Api("viewer").get("/api/environments/env-staging/drift/").json()


def test_a_platform_that_cannot_be_asked_keeps_the_verdict_and_says_why(deployer, k8s_platform):
    connect("env-staging", "svc-demo")
    done(deployer, "checkDrift", envId="env-staging")
    k8s_platform.unreachable()
    drift = done(deployer, "checkDrift", envId="env-staging")["drift"]
    ((drifted, error),) = [(o["drifted"], o["error"]) for o in drift["services"]]
    assert drifted and error.startswith("k8s: connection k8s-test: cannot load its kubeconfig: ")


def test_check_drift_needs_the_deployer_role(viewer):
    connect("env-staging", "svc-demo")
    before = stored()
    payload = mutate(viewer, "checkDrift", envId="env-staging")
    refused(payload, (None, "FORBIDDEN", "drift.check needs the deployer role; dev-viewer has viewer."))
    assert stored() == before


def test_check_drift_of_an_environment_without_a_connection_is_a_conflict(deployer):
    before = stored()
    payload = mutate(deployer, "checkDrift", envId="env-prod")
    rest = Api("deployer").post("/api/environments/env-prod/drift/")
    assert rest.status_code == 409
    refused(payload, (None, "CONFLICT", "env-prod names no connection: its adapters simulate"))
    assert payload["errors"][0]["message"] == rest.json()["detail"]
    refused(mutate(deployer, "checkDrift", envId="env-nope"), (None, "NOT_FOUND", "No Environment matches"))
    assert stored() == before


def test_an_environment_is_given_a_connection_by_name(admin):
    created = done(admin, "environmentCreate", input={"id": "env-qa", "name": "qa", "connection": "k8s-test"})
    assert Environment.objects.get(pk="env-qa").connection == "k8s-test"
    assert created["environment"]["id"] == "env-qa"
    document = "mutation ($id: ID!, $input: EnvironmentUpdateInput!) { environmentUpdate(id: $id, input: $input) { "
    document += "environment { connection mode } errors { field code message } } }"
    cleared = admin(document, id="env-qa", input={"connection": None})["environmentUpdate"]
    assert cleared == {"environment": {"connection": None, "mode": "simulated"}, "errors": []}
    again = admin(document, id="env-qa", input={"connection": "k8s-test"})["environmentUpdate"]
    assert again["environment"] == {"connection": "k8s-test", "mode": "live"}


def test_an_unknown_connection_is_refused_naming_the_field(admin):
    before = stored()
    payload = mutate(admin, "environmentCreate", input={"name": "qa", "connection": "nowhere"})
    refused(payload, ("connection", "INVALID", "unknown connection 'nowhere'; configured: k8s-test."))
    payload = mutate(admin, "environmentUpdate", id="env-staging", input={"connection": "nowhere"})
    refused(payload, ("connection", "INVALID", "unknown connection 'nowhere'"))
    rest = Api("admin").patch("/api/environments/env-staging/", {"connection": "nowhere"})
    assert rest.status_code == 400 and rest.json()["connection"] == [payload["errors"][0]["message"]]
    assert stored() == before
