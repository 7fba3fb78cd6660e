"""Each of the twenty mutations: what it does, one broken rule each with its code and field, nothing written
when refused, partial updates, and the audit trail it leaves, compared with the same REST write's."""

import datetime
import re

import pytest
from django.apps import apps
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.models import AuditEvent
from controlplane.timestamps import parse_rfc3339
from incidents.models import Incident
from releases import lifecycle as release_lifecycle
from releases import runs
from releases.models import Release, WorkflowRun
from services import lifecycle as service_lifecycle
from services.models import Environment, Freeze, Service
from tests.api.conftest import Api
from tests.conftest import loaded_once
from tests.live import DEMO_PROD_REFS
from tests.platforms import connect

# --- what the tests share (test_queries.py, test_roles.py and test_parity.py use these too) ---


# Each mutation: its arguments' types and what its payload is asked for.
SERVICE = "service { id name repo adapters { deployments } environments { id } archived archivedAt }"
ENVIRONMENT = "environment { id name region cluster policyRefs archived archivedAt }"
RELEASE = "id serviceId envId sha version status isCurrent activatedAt"
RUN = "id kind state actor releaseId sourceReleaseId finishedAt release { id status envId }"
INCIDENT = "incident { id serviceId title severity status link startedAt acknowledgedAt resolvedAt }"
CHANGE_WINDOW = "changeWindow { id name timezone days start end summary createdAt }"
FREEZE = "freeze { id title startsAt endsAt envIds reason createdAt }"
OBSERVATION = "serviceId adapter currentReleaseId expected running drifted error checkedAt"
DRIFT = f"drift {{ envId connection mode checkedAt drifted {{ {OBSERVATION} }} services {{ {OBSERVATION} }} }}"
MUTATIONS = {
    "serviceCreate": ({"input": "ServiceCreateInput!"}, SERVICE),
    "serviceUpdate": ({"id": "ID!", "input": "ServiceUpdateInput!"}, SERVICE),
    "serviceArchive": ({"id": "ID!"}, SERVICE),
    "serviceRestore": ({"id": "ID!"}, SERVICE),
    "environmentCreate": ({"input": "EnvironmentCreateInput!"}, ENVIRONMENT),
    "environmentUpdate": ({"id": "ID!", "input": "EnvironmentUpdateInput!"}, ENVIRONMENT),
    "environmentArchive": ({"id": "ID!"}, ENVIRONMENT),
    "environmentRestore": ({"id": "ID!"}, ENVIRONMENT),
    "releaseCreate": ({"input": "ReleaseCreateInput!"}, f"release {{ {RELEASE} }}"),
    "releaseUpdate": ({"id": "ID!", "input": "ReleaseUpdateInput!"}, f"release {{ {RELEASE} }}"),
    "releaseDeploy": ({"id": "ID!"}, f"run {{ {RUN} }}"),
    "releasePromote": ({"id": "ID!", "envId": "ID!"}, f"release {{ {RELEASE} }} run {{ {RUN} }}"),
    "incidentCreate": ({"input": "IncidentCreateInput!"}, INCIDENT),
    "incidentUpdate": ({"id": "ID!", "input": "IncidentUpdateInput!"}, INCIDENT),
    "incidentAcknowledge": ({"id": "ID!"}, INCIDENT),
    "incidentResolve": ({"id": "ID!"}, INCIDENT),
    "changeWindowCreate": ({"input": "ChangeWindowCreateInput!"}, CHANGE_WINDOW),
    "changeWindowUpdate": ({"id": "ID!", "input": "ChangeWindowUpdateInput!"}, CHANGE_WINDOW),
    "freezeCreate": ({"input": "FreezeCreateInput!"}, FREEZE),
    "freezeUpdate": ({"id": "ID!", "input": "FreezeUpdateInput!"}, FREEZE),
    "workflowRunApprove": ({"id": "ID!", "comment": "String"}, f"run {{ {RUN} }}"),
    "workflowRunReject": ({"id": "ID!", "comment": "String!"}, f"run {{ {RUN} }}"),
    "workflowRunCancel": ({"id": "ID!"}, f"run {{ {RUN} }}"),
    "serviceRollback": ({"input": "ServiceRollbackInput!"}, f"release {{ {RELEASE} }} run {{ {RUN} }}"),
    "checkDrift": ({"envId": "ID!"}, DRIFT),
}


def document(name: str) -> str:
    types, payload = MUTATIONS[name]
    declared = ", ".join(f"${argument}: {kind}" for argument, kind in types.items())
    passed = ", ".join(f"{argument}: ${argument}" for argument in types)
    return f"mutation ({declared}) {{ {name}({passed}) {{ {payload} errors {{ field code message }} }} }}"


def mutate(client, name: str, **arguments) -> dict:
    """The payload of mutation `name` (a document without top-level errors)."""
    return client(document(name), **arguments)[name]


def done(client, name: str, **arguments) -> dict:
    """The payload of a mutation that must succeed."""
    payload = mutate(client, name, **arguments)
    assert payload["errors"] == [], payload
    return payload


def stored() -> dict:
    """Every row the domain writes (entities, links, runs and their tasks, the trail and its head, the read
    model), to compare before and after a refused write."""
    written = ("services", "releases", "incidents", "audit", "overview", "django_tasks_database")
    models = [m for m in apps.get_models(include_auto_created=True) if m._meta.app_label in written]
    assert len(models) >= 11
    return {model._meta.label: list(model.objects.order_by("pk").values()) for model in models}


def refused(payload: dict, *errors: tuple) -> None:
    """`payload` has no object and exactly `errors`, each (field, code, message or a part of it)."""
    assert all(value is None for key, value in payload.items() if key != "errors"), payload
    assert len(payload["errors"]) == len(errors), payload["errors"]
    for error, (field, code, message) in zip(payload["errors"], errors, strict=True):
        assert (error["field"], error["code"]) == (field, code), error
        assert message in error["message"], error


def draft(pk: str = "rel-draft", env: str = "env-staging") -> Release:
    release = Release(id=pk, service_id="svc-demo", environment_id=env, sha="abcdef1", version="2.0.0")
    release.save()
    return release


def triggered(pk: str = "inc-new") -> Incident:
    incident = Incident(id=pk, service_id="svc-demo", severity="medium", link="https://pd.example.com/new")
    incident.save()
    return incident


# Promotions into env-prod run while its change window is open (test_policies.py tests the gate itself).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("window_open", "k8s_platform")]
demo = loaded_once("demo")

# --- services ---


def test_service_create(admin):
    payload = done(
        admin,
        "serviceCreate",
        input={
            "id": "svc-new",
            "name": "New",
            "repo": "https://GitHub.com/acme/new.git",
            "adapters": {"deployments": ["k8s", "aws"]},
            "environments": ["env-staging"],
        },
    )
    assert payload["service"] == {
        "id": "svc-new",
        "name": "New",
        "repo": "github.com/acme/new",  # normalised
        "adapters": {"deployments": ["k8s", "aws"]},
        "environments": [{"id": "env-staging"}],
        "archived": False,
        "archivedAt": None,
    }
    assert Api("viewer").get("/api/services/svc-new/").json()["repo"] == "github.com/acme/new"
    generated = done(
        admin,
        "serviceCreate",
        input={"name": "Generated", "repo": "github.com/a/g", "adapters": {"deployments": ["fly"]}},
    )
    assert re.fullmatch(r"svc-[a-z0-9-]+", generated["service"]["id"])
    assert generated["service"]["environments"] == []


def test_service_create_with_an_unknown_environment_writes_nothing(admin):
    before = stored()
    payload = mutate(
        admin,
        "serviceCreate",
        input={
            "id": "svc-new",
            "name": "New",
            "repo": "github.com/acme/new",
            "adapters": {"deployments": ["k8s"]},
            "environments": ["env-prod", "env-nope"],
        },
    )
    refused(payload, ("environments", "INVALID", "unknown environment 'env-nope'."))
    assert stored() == before
    assert not Service.objects.filter(pk="svc-new").exists()


def test_service_update_changes_only_the_given_fields(admin):
    payload = done(admin, "serviceUpdate", id="svc-demo", input={"name": "Renamed"})
    assert payload["service"] == {
        "id": "svc-demo",
        "name": "Renamed",
        "repo": "github.com/blackroad/demo",
        "adapters": {"deployments": ["aws", "fly"]},
        "environments": [{"id": "env-prod"}, {"id": "env-staging"}],
        "archived": False,
        "archivedAt": None,
    }
    payload = done(admin, "serviceUpdate", id="svc-demo", input={"adapters": {"deployments": ["gcp"]}})
    assert (payload["service"]["name"], payload["service"]["adapters"]) == ("Renamed", {"deployments": ["gcp"]})
    assert payload["service"]["environments"] == [{"id": "env-prod"}, {"id": "env-staging"}]
    stored_service = Service.objects.get(pk="svc-demo")
    assert (stored_service.name, stored_service.repo, stored_service.deployment_adapters) == (
        "Renamed",
        "github.com/blackroad/demo",
        ["gcp"],
    )


def test_service_update_sets_the_whole_set_of_environments(admin):
    qa = Environment(id="env-qa", name="qa")
    qa.save()
    payload = done(admin, "serviceUpdate", id="svc-demo", input={"environments": ["env-staging", "env-qa"]})
    # env-prod had no release of svc-demo, so it may go; env-staging has rel-123 and stays.
    assert payload["service"]["environments"] == [{"id": "env-qa"}, {"id": "env-staging"}]


def test_service_update_refused_changes_nothing(admin):
    before = stored()
    # The name is valid, the environments are not (env-prod would go, env-nope is unknown): nothing changes.
    payload = mutate(
        admin, "serviceUpdate", id="svc-demo", input={"name": "Renamed", "environments": ["env-staging", "env-nope"]}
    )
    refused(payload, ("environments", "INVALID", "unknown environment 'env-nope'."))
    assert stored() == before
    payload = mutate(admin, "serviceUpdate", id="svc-demo", input={"environments": ["env-prod"]})
    refused(payload, ("environments", "INVALID", "env-staging"))  # rel-123 ran there: it stays linked
    payload = mutate(admin, "serviceUpdate", id="svc-nope", input={"name": "x"})
    refused(payload, (None, "NOT_FOUND", "No Service matches the given query."))
    assert stored() == before


def test_service_archive_and_restore(admin, viewer):
    archived = done(admin, "serviceArchive", id="svc-demo")["service"]
    assert archived["archived"] is True and archived["archivedAt"].endswith("Z")
    listed = viewer("{ services { edges { node { id } } } }")["services"]["edges"]
    assert listed == []  # no longer in use
    assert viewer('{ service(id: "svc-demo") { archived } }') == {"service": {"archived": True}}
    restored = done(admin, "serviceRestore", id="svc-demo")["service"]
    assert (restored["archived"], restored["archivedAt"]) == (False, None)
    assert [e["node"]["id"] for e in viewer("{ services { edges { node { id } } } }")["services"]["edges"]] == [
        "svc-demo"
    ]


def test_service_archive_twice_is_a_conflict_and_writes_nothing(admin):
    done(admin, "serviceArchive", id="svc-demo")
    before = stored()
    refused(mutate(admin, "serviceArchive", id="svc-demo"), (None, "CONFLICT", "is already archived."))
    refused(mutate(admin, "serviceArchive", id="svc-nope"), (None, "NOT_FOUND", "No Service matches"))
    assert stored() == before


def test_an_archived_service_refuses_an_update(admin):
    done(admin, "serviceArchive", id="svc-demo")
    before = stored()
    payload = mutate(admin, "serviceUpdate", id="svc-demo", input={"name": "Renamed"})
    refused(payload, (None, "INVALID", "is archived; restore it before changing it."))
    assert stored() == before


def test_service_restore_of_one_in_use_is_a_conflict(admin):
    before = stored()
    refused(mutate(admin, "serviceRestore", id="svc-demo"), (None, "CONFLICT", "is not archived."))
    assert stored() == before


# --- environments ---


def test_environment_create(admin):
    payload = done(
        admin,
        "environmentCreate",
        input={
            "id": "env-eu",
            "name": "prod-eu",
            "region": "eu-west-1",
            "cluster": "eu-1",
            "policyRefs": ["policy:approval:2"],
        },
    )
    assert payload["environment"] == {
        "id": "env-eu",
        "name": "prod-eu",
        "region": "eu-west-1",
        "cluster": "eu-1",
        "policyRefs": ["policy:approval:2"],
        "archived": False,
        "archivedAt": None,
    }
    plain = done(admin, "environmentCreate", input={"name": "qa"})["environment"]
    assert (plain["region"], plain["cluster"], plain["policyRefs"]) == (None, None, [])
    assert plain["id"].startswith("env-")


def test_environment_create_refused_writes_nothing(admin):
    before = stored()
    payload = mutate(admin, "environmentCreate", input={"name": "production", "region": "eu-west-1"})
    refused(payload, ("cluster", "INVALID", "is required for a production environment ('production')."))
    payload = mutate(admin, "environmentCreate", input={"name": "staging"})
    refused(payload, ("name", "INVALID", "already exists"))
    assert stored() == before


def test_environment_update_changes_only_the_given_fields(admin):
    payload = done(admin, "environmentUpdate", id="env-prod", input={"cluster": "prod-2"})
    assert payload["environment"] == {
        "id": "env-prod",
        "name": "prod",
        "region": "us-east-1",
        "cluster": "prod-2",
        "policyRefs": DEMO_PROD_REFS,
        "archived": False,
        "archivedAt": None,
    }
    # null: back to the adapters' defaults (staging is not production).
    done(admin, "environmentUpdate", id="env-staging", input={"region": "eu-west-1"})
    payload = done(admin, "environmentUpdate", id="env-staging", input={"region": None})
    assert (payload["environment"]["region"], payload["environment"]["name"]) == (None, "staging")
    assert Environment.objects.get(pk="env-staging").region == ""


def test_environment_update_refused_changes_nothing(admin):
    before = stored()
    payload = mutate(
        admin, "environmentUpdate", id="env-prod", input={"region": None, "policyRefs": ["policy:incident-gate"]}
    )
    refused(payload, ("region", "INVALID", "is required for a production environment ('prod')."))
    refused(
        mutate(admin, "environmentUpdate", id="env-nope", input={"cluster": "x"}),
        (None, "NOT_FOUND", "No Environment matches the given query."),
    )
    assert stored() == before


def test_environment_archive_and_restore(admin, viewer):
    archived = done(admin, "environmentArchive", id="env-prod")["environment"]
    assert archived["archived"] is True and archived["archivedAt"].endswith("Z")
    names = viewer("{ environments { edges { node { name } } } }")["environments"]["edges"]
    assert names == [{"node": {"name": "staging"}}]
    restored = done(admin, "environmentRestore", id="env-prod")["environment"]
    assert (restored["archived"], restored["archivedAt"]) == (False, None)


def test_environment_archive_twice_and_restore_in_use_are_conflicts(admin):
    done(admin, "environmentArchive", id="env-prod")
    before = stored()
    refused(mutate(admin, "environmentArchive", id="env-prod"), (None, "CONFLICT", "is already archived."))
    refused(mutate(admin, "environmentRestore", id="env-staging"), (None, "CONFLICT", "is not archived."))
    assert stored() == before


# --- releases ---


def test_release_create(deployer):
    payload = done(
        deployer,
        "releaseCreate",
        input={"id": "rel-new", "serviceId": "svc-demo", "envId": "env-prod", "sha": "abcdef1", "version": "2.0.0"},
    )
    assert payload["release"] == {
        "id": "rel-new",
        "serviceId": "svc-demo",
        "envId": "env-prod",
        "sha": "abcdef1",
        "version": "2.0.0",
        "status": "Draft",
        "isCurrent": False,
        "activatedAt": None,
    }
    assert Api("viewer").get("/api/releases/rel-new/").json()["status"] == "Draft"


def test_release_create_refused_writes_nothing(deployer):
    Environment(id="env-qa", name="qa").save()
    before = stored()
    payload = mutate(
        deployer, "releaseCreate", input={"serviceId": "svc-demo", "envId": "env-qa", "sha": "abcdef1", "version": "1"}
    )
    refused(payload, ("envId", "INVALID", "env-qa"))  # not one of svc-demo's environments
    payload = mutate(
        deployer, "releaseCreate", input={"serviceId": "svc-demo", "envId": "env-prod", "sha": "ABC", "version": "1"}
    )
    refused(payload, ("sha", "INVALID", "must be 7-40 lower-case hexadecimal characters."))
    assert stored() == before


def test_release_update_changes_the_version_while_draft(deployer):
    draft()
    payload = done(deployer, "releaseUpdate", id="rel-draft", input={"version": "2.0.1"})
    assert payload["release"]["version"] == "2.0.1"
    assert (payload["release"]["sha"], payload["release"]["status"]) == ("abcdef1", "Draft")
    assert Release.objects.get(pk="rel-draft").version == "2.0.1"
    # An empty input changes nothing and is no error.
    assert done(deployer, "releaseUpdate", id="rel-draft", input={})["release"]["version"] == "2.0.1"


def test_release_update_after_draft_is_refused_and_writes_nothing(deployer):
    before = stored()
    payload = mutate(deployer, "releaseUpdate", id="rel-123", input={"version": "9"})
    refused(payload, ("version", "INVALID", "can change only while the release is Draft (it is Active)."))
    refused(
        mutate(deployer, "releaseUpdate", id="rel-nope", input={"version": "9"}),
        (None, "NOT_FOUND", "No Release matches the given query."),
    )
    assert stored() == before


def test_release_deploy_returns_the_running_run_started_by_the_caller(deployer):
    draft()
    run = done(deployer, "releaseDeploy", id="rel-draft")["run"]
    assert run["kind"] == "Deploy" and run["state"] == "Running" and run["finishedAt"] is None
    assert run["actor"] == "dev-deployer"
    assert (run["releaseId"], run["sourceReleaseId"]) == ("rel-draft", None)
    assert run["release"] == {"id": "rel-draft", "status": "Promoting", "envId": "env-staging"}
    stored_run = WorkflowRun.objects.get(pk=run["id"])
    assert stored_run.actor == "dev-deployer" and stored_run.task_id  # queued for the worker
    assert Api("viewer").get(f"/api/workflow-runs/{run['id']}/").json()["state"] == "Running"


def test_release_deploy_twice_is_a_conflict_and_writes_nothing(deployer):
    draft()
    done(deployer, "releaseDeploy", id="rel-draft")
    before = stored()
    refused(
        mutate(deployer, "releaseDeploy", id="rel-draft"),
        (None, "CONFLICT", "release rel-draft is Promoting: it cannot move to Promoting"),
    )
    refused(mutate(deployer, "releaseDeploy", id="rel-nope"), (None, "NOT_FOUND", "No Release matches"))
    assert stored() == before


def test_release_promote_makes_a_new_release_with_a_run_in_the_target(deployer, viewer):
    payload = done(deployer, "releasePromote", id="rel-123", envId="env-prod")
    release, run = payload["release"], payload["run"]
    assert release["id"] != "rel-123"
    assert {k: release[k] for k in ("serviceId", "envId", "sha", "version", "status", "isCurrent")} == {
        "serviceId": "svc-demo",
        "envId": "env-prod",
        "sha": "9f3b7de",
        "version": "2024.10.01",
        "status": "Promoting",
        "isCurrent": False,
    }
    assert (run["kind"], run["state"], run["actor"]) == ("Promote", "Running", "dev-deployer")
    assert (run["releaseId"], run["sourceReleaseId"]) == (release["id"], "rel-123")
    source = viewer('{ release(id: "rel-123") { status isCurrent envId } }')["release"]
    assert source == {"status": "Active", "isCurrent": True, "envId": "env-staging"}  # untouched
    # Promoting the same Active release again, once that rollout ended, makes yet another record.
    assert runs.finish(WorkflowRun.objects.get(pk=run["id"]), succeeded=True)
    again = done(deployer, "releasePromote", id="rel-123", envId="env-prod")["release"]
    assert again["id"] not in ("rel-123", release["id"])


def test_release_promote_refused_writes_nothing(deployer):
    draft()
    before = stored()
    refused(
        mutate(deployer, "releasePromote", id="rel-draft", envId="env-staging"),
        (None, "CONFLICT", "release rel-draft is Draft: only an Active release can be promoted."),
    )
    refused(
        mutate(deployer, "releasePromote", id="rel-123", envId="env-nope"),
        ("envId", "INVALID", "unknown environment 'env-nope'."),
    )
    refused(
        mutate(deployer, "releasePromote", id="rel-nope", envId="env-prod"), (None, "NOT_FOUND", "No Release matches")
    )
    assert stored() == before


# --- incidents ---


def test_incident_create(deployer):
    payload = done(
        deployer,
        "incidentCreate",
        input={
            "id": "inc-new",
            "serviceId": "svc-demo",
            "title": "Checkout errors",
            "severity": "critical",
            "link": "https://status.example.com/42",
            "startedAt": "2024-10-02T16:30:00+02:00",
        },
    )
    assert payload["incident"] == {
        "id": "inc-new",
        "serviceId": "svc-demo",
        "title": "Checkout errors",
        "severity": "critical",
        "status": "triggered",
        "link": "https://status.example.com/42",
        "startedAt": "2024-10-02T14:30:00Z",  # in UTC
        "acknowledgedAt": None,
        "resolvedAt": None,
    }
    now = done(
        deployer, "incidentCreate", input={"serviceId": "svc-demo", "severity": "low", "link": "https://x.example.com"}
    )["incident"]
    assert now["startedAt"] > "2025" and now["title"] == ""


def test_incident_create_refused_writes_nothing(deployer):
    before = stored()
    payload = mutate(
        deployer, "incidentCreate", input={"serviceId": "svc-demo", "severity": "low", "link": "mailto:ops@x.com"}
    )
    refused(payload, ("link", "INVALID", "must be an absolute http(s) URL"))
    payload = mutate(
        deployer, "incidentCreate", input={"serviceId": "svc-nope", "severity": "low", "link": "https://x.example.com"}
    )
    refused(payload, ("serviceId", "INVALID", "unknown service 'svc-nope'."))
    assert stored() == before


def test_incident_update_changes_only_the_given_fields(deployer):
    payload = done(deployer, "incidentUpdate", id="inc-789", input={"severity": "critical"})
    assert payload["incident"] == {
        "id": "inc-789",
        "serviceId": "svc-demo",
        "title": "Elevated error rate on the demo service",
        "severity": "critical",
        "status": "acknowledged",
        "link": "https://incidents.example.com/inc-789",
        "startedAt": "2024-10-02T03:20:00Z",
        "acknowledgedAt": "2024-10-02T03:24:10Z",
        "resolvedAt": None,
    }
    payload = done(
        deployer, "incidentUpdate", id="inc-789", input={"title": "Errors", "link": "https://x.example.com/1"}
    )
    assert (payload["incident"]["title"], payload["incident"]["severity"]) == ("Errors", "critical")
    assert Incident.objects.get(pk="inc-789").link == "https://x.example.com/1"


def test_incident_update_refused_changes_nothing(deployer):
    before = stored()
    payload = mutate(deployer, "incidentUpdate", id="inc-789", input={"severity": "low", "link": "not a url"})
    refused(payload, ("link", "INVALID", "must be an absolute http(s) URL"))
    refused(
        mutate(deployer, "incidentUpdate", id="inc-nope", input={"title": "x"}),
        (None, "NOT_FOUND", "No Incident matches the given query."),
    )
    assert stored() == before


def test_incident_acknowledge(deployer):
    triggered()
    incident = done(deployer, "incidentAcknowledge", id="inc-new")["incident"]
    assert incident["status"] == "acknowledged" and incident["acknowledgedAt"].endswith("Z")
    assert incident["resolvedAt"] is None


def test_incident_acknowledge_twice_is_a_conflict_and_writes_nothing(deployer):
    before = stored()
    refused(
        mutate(deployer, "incidentAcknowledge", id="inc-789"),
        (None, "CONFLICT", "incident inc-789 is acknowledged: it cannot move to acknowledged"),
    )
    assert stored() == before


def test_incident_resolve_from_triggered_and_from_acknowledged(deployer):
    triggered()
    for pk in ("inc-new", "inc-789"):
        incident = done(deployer, "incidentResolve", id=pk)["incident"]
        assert incident["status"] == "resolved" and incident["resolvedAt"].endswith("Z")
    assert Incident.objects.get(pk="inc-new").acknowledged_at is None  # straight to resolved


def test_incident_resolve_twice_is_a_conflict_and_writes_nothing(deployer):
    done(deployer, "incidentResolve", id="inc-789")
    before = stored()
    refused(
        mutate(deployer, "incidentResolve", id="inc-789"),
        (None, "CONFLICT", "incident inc-789 is resolved: it cannot move to resolved"),
    )
    refused(
        mutate(deployer, "incidentAcknowledge", id="inc-789"),
        (None, "CONFLICT", "incident inc-789 is resolved: it cannot move to acknowledged; it is final."),
    )
    assert stored() == before


# --- several mutations in one document ---


def test_mutations_in_one_document_run_in_order_each_on_its_own(deployer):
    triggered()
    data = deployer(
        'mutation { first: incidentAcknowledge(id: "inc-new") { incident { status } errors { code } }'
        ' again: incidentAcknowledge(id: "inc-new") { incident { status } errors { code } }'
        ' resolve: incidentResolve(id: "inc-new") { incident { status } errors { code } } }'
    )
    assert data == {
        "first": {"incident": {"status": "acknowledged"}, "errors": []},
        "again": {"incident": None, "errors": [{"code": "CONFLICT"}]},
        "resolve": {"incident": {"status": "resolved"}, "errors": []},
    }


# --- the audit trail: the same events as the same REST write ---


TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


class _Undo(Exception):
    pass


def trail_of(write) -> list[tuple]:
    """The audit events `write()` records, then undone: (action, actor, subject type, subject id, service id,
    metadata), with the ids `write()` returns as generated (a run's, a promotion's release) named by role, and
    times from now on as <now>."""
    head = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    now = timezone.now() - datetime.timedelta(seconds=1)
    try:
        with transaction.atomic():
            generated = write()
            events = [
                (e.action, e.actor, e.subject_type, e.subject_id, e.service_id, e.metadata)
                for e in AuditEvent.objects.filter(seq__gt=head).order_by("seq")
            ]
            raise _Undo
    except _Undo:
        pass
    return _named(events, {value: f"<{key}>" for key, value in generated.items() if value}, now)


def _named(value, names: dict, now):
    if isinstance(value, str):
        if TIME.fullmatch(value) and parse_rfc3339(value) >= now:
            return "<now>"
        return names.get(value, value)
    if isinstance(value, list | tuple):
        return type(value)(_named(item, names, now) for item in value)
    if isinstance(value, dict):
        return {key: _named(item, names, now) for key, item in value.items()}
    return value


def _rest(role: str, method: str, url: str, body=None, generated=("run",)):
    def write():
        api = Api(role)
        response = getattr(api, method)(url, body) if body is not None else getattr(api, method)(url)
        assert response.status_code in (200, 201, 202, 204), response.content
        run = response.json() if response.status_code == 202 or "/workflow-runs/" in url else {}
        made = "promote" in url or "rollback" in url  # a new release, its id generated
        return {"run": run.get("id"), "release": run.get("releaseId") if made else None}

    return write


def _graphql(graphql, role: str, name: str, **arguments):
    def write():
        payload = done(graphql(role), name, **arguments)
        run, release = payload.get("run") or {}, payload.get("release") or {}
        made = name in ("releasePromote", "serviceRollback")
        return {"run": run.get("id"), "release": release.get("id") if made else None}

    return write


WINDOW_INPUT = {
    "id": "cw-nights",
    "name": "nights",
    "timezone": "Asia/Kolkata",
    "days": [7],
    "start": "22:00",
    "end": "06:00",
}
FREEZE_INPUT = {
    "id": "frz-xmas",
    "title": "Christmas",
    "startsAt": "2026-12-20T00:00:00+01:00",
    "endsAt": "2026-12-28T00:00:00+01:00",
    "envIds": ["env-prod"],
    "reason": "Everyone is away.",
}
SERVICE_INPUT = {"id": "svc-new", "name": "New", "repo": "github.com/acme/new", "adapters": {"deployments": ["aws"]}}
# mutation, its arguments, the role, the REST request (method, url, body), what to set up first
SAME_WRITES = [
    (
        "serviceCreate",
        {"input": {**SERVICE_INPUT, "environments": ["env-prod"]}},
        "admin",
        ("post", "/api/services/", {**SERVICE_INPUT, "environments": ["env-prod"]}),
    ),
    (
        "serviceUpdate",
        {"id": "svc-demo", "input": {"name": "Renamed", "environments": ["env-staging"]}},
        "admin",
        ("patch", "/api/services/svc-demo/", {"name": "Renamed", "environments": ["env-staging"]}),
    ),
    ("serviceArchive", {"id": "svc-demo"}, "admin", ("delete", "/api/services/svc-demo/", None)),
    ("serviceRestore", {"id": "svc-demo"}, "admin", ("post", "/api/services/svc-demo/restore/", None)),
    (
        "environmentCreate",
        {"input": {"id": "env-qa", "name": "qa", "cluster": "c1"}},
        "admin",
        ("post", "/api/environments/", {"id": "env-qa", "name": "qa", "cluster": "c1"}),
    ),
    (
        "environmentUpdate",
        {"id": "env-prod", "input": {"cluster": "c2"}},
        "admin",
        ("patch", "/api/environments/env-prod/", {"cluster": "c2"}),
    ),
    ("environmentArchive", {"id": "env-staging"}, "admin", ("delete", "/api/environments/env-staging/", None)),
    ("environmentRestore", {"id": "env-staging"}, "admin", ("post", "/api/environments/env-staging/restore/", None)),
    (
        "releaseCreate",
        {"input": {"id": "rel-new", "serviceId": "svc-demo", "envId": "env-prod", "sha": "abcdef1", "version": "2"}},
        "deployer",
        (
            "post",
            "/api/releases/",
            {"id": "rel-new", "serviceId": "svc-demo", "envId": "env-prod", "sha": "abcdef1", "version": "2"},
        ),
    ),
    (
        "releaseUpdate",
        {"id": "rel-draft", "input": {"version": "2.1"}},
        "deployer",
        ("patch", "/api/releases/rel-draft/", {"version": "2.1"}),
    ),
    ("releaseDeploy", {"id": "rel-draft"}, "deployer", ("post", "/api/releases/rel-draft/deploy/", None)),
    (
        "releasePromote",
        {"id": "rel-123", "envId": "env-prod"},
        "deployer",
        ("post", "/api/releases/rel-123/promote/", {"envId": "env-prod"}),
    ),
    (
        "incidentCreate",
        {
            "input": {
                "id": "inc-x",
                "serviceId": "svc-demo",
                "severity": "low",
                "link": "https://x.example.com",
                "startedAt": "2024-10-02T14:30:00Z",
            }
        },
        "deployer",
        (
            "post",
            "/api/incidents/",
            {
                "id": "inc-x",
                "serviceId": "svc-demo",
                "severity": "low",
                "link": "https://x.example.com",
                "startedAt": "2024-10-02T14:30:00Z",
            },
        ),
    ),
    (
        "incidentUpdate",
        {"id": "inc-789", "input": {"severity": "low", "title": "T"}},
        "deployer",
        ("patch", "/api/incidents/inc-789/", {"severity": "low", "title": "T"}),
    ),
    ("incidentAcknowledge", {"id": "inc-new"}, "deployer", ("post", "/api/incidents/inc-new/acknowledge/", None)),
    ("incidentResolve", {"id": "inc-new"}, "deployer", ("post", "/api/incidents/inc-new/resolve/", None)),
    ("changeWindowCreate", {"input": WINDOW_INPUT}, "admin", ("post", "/api/change-windows/", WINDOW_INPUT)),
    (
        "changeWindowUpdate",
        {"id": "cw-weekday", "input": {"end": "18:00", "days": [1, 2, 3, 4]}},
        "admin",
        ("patch", "/api/change-windows/cw-weekday/", {"end": "18:00", "days": [1, 2, 3, 4]}),
    ),
    ("freezeCreate", {"input": FREEZE_INPUT}, "admin", ("post", "/api/freezes/", FREEZE_INPUT)),
    (
        "freezeUpdate",
        {"id": "frz-xmas", "input": {"endsAt": "2026-12-30T00:00:00+01:00", "envIds": ["env-staging"]}},
        "admin",
        ("patch", "/api/freezes/frz-xmas/", {"endsAt": "2026-12-30T00:00:00+01:00", "envIds": ["env-staging"]}),
    ),
    (
        "workflowRunApprove",
        {"id": "run-wait", "comment": "fine by me"},
        "deployer",
        ("post", "/api/workflow-runs/run-wait/approve/", {"comment": "fine by me"}),
    ),
    (
        "workflowRunReject",
        {"id": "run-wait", "comment": "not this week"},
        "deployer",
        ("post", "/api/workflow-runs/run-wait/reject/", {"comment": "not this week"}),
    ),
    ("workflowRunCancel", {"id": "run-wait"}, "deployer", ("post", "/api/workflow-runs/run-wait/cancel/", None)),
    (
        "serviceRollback",
        {"input": {"serviceId": "svc-demo", "envId": "env-prod", "reason": "2.1 breaks the checkout"}},
        "deployer",
        ("post", "/api/services/svc-demo/rollback/", {"envId": "env-prod", "reason": "2.1 breaks the checkout"}),
    ),
    ("checkDrift", {"envId": "env-staging"}, "deployer", ("post", "/api/environments/env-staging/drift/", None)),
]
ACTIONS = {
    "serviceCreate": ["service.create", "service.link"],
    "serviceUpdate": ["service.update", "service.unlink"],
    "serviceArchive": ["service.archive"],
    "serviceRestore": ["service.restore"],
    "environmentCreate": ["environment.create"],
    "environmentUpdate": ["environment.update"],
    "environmentArchive": ["environment.archive"],
    "environmentRestore": ["environment.restore"],
    "releaseCreate": ["release.create"],
    "releaseUpdate": ["release.update"],
    "releaseDeploy": ["deploy.create"],
    "releasePromote": ["release.create", "release.promote"],
    "incidentCreate": ["incident.create"],
    "incidentUpdate": ["incident.update"],
    "incidentAcknowledge": ["incident.acknowledge"],
    "incidentResolve": ["incident.resolve"],
    "changeWindowCreate": ["changewindow.create"],
    "changeWindowUpdate": ["changewindow.update"],
    "freezeCreate": ["freeze.create"],
    "freezeUpdate": ["freeze.update"],
    "workflowRunApprove": ["run.approve", "deploy.create"],  # the one approval it needs starts it
    "workflowRunReject": ["run.reject"],
    "workflowRunCancel": ["run.cancel"],
    "serviceRollback": ["release.create", "release.rollback"],
    "checkDrift": ["drift.detected"],  # svc-demo's current release in env-staging runs nowhere on k8s-test
}


def _set_up(name: str) -> None:
    if name in ("serviceRestore",):
        service_lifecycle.archive(Service.objects.get(pk="svc-demo"))
    if name == "environmentRestore":
        service_lifecycle.archive(Environment.objects.get(pk="env-staging"))
    if name in ("releaseUpdate", "releaseDeploy"):
        draft()
    if name in ("incidentAcknowledge", "incidentResolve"):
        triggered()
    if name == "freezeUpdate":
        Freeze(**{field: FREEZE_INPUT[key] for key, field in FREEZE_FIELDS.items()}).save()
    if name in ("workflowRunApprove", "workflowRunReject", "workflowRunCancel"):
        # Awaiting one approval; asked for by someone else, or (to be cancelled by its actor) by the deployer.
        actor = "dev-deployer" if name == "workflowRunCancel" else "alice@blackroad.io"
        run = WorkflowRun(id="run-wait", kind="Deploy", release=draft(), actor=actor, state="AwaitingApproval")
        run.approvals_required = 1
        run.save()
    if name == "checkDrift":
        connect("env-staging", "svc-demo")  # the k8s_platform fixture's connection; its cluster runs nothing
    if name == "serviceRollback":
        for version in ("2.0", "2.1"):  # two rollouts in env-prod: 2.1 superseded 2.0
            release = draft(f"rel-{version.replace('.', '-')}", "env-prod")
            release_lifecycle.begin_rollout(release)
            rollout = WorkflowRun(kind="Deploy", release=release, actor="alice@blackroad.io")
            rollout.save()
            release_lifecycle.end_rollout(rollout, succeeded=True)


FREEZE_FIELDS = {"id": "id", "title": "title", "startsAt": "starts_at", "endsAt": "ends_at", "envIds": "env_ids"}


@pytest.mark.parametrize(("name", "arguments", "role", "request_"), SAME_WRITES, ids=[w[0] for w in SAME_WRITES])
def test_the_audit_trail_records_a_mutation_as_it_records_the_rest_write(graphql, name, arguments, role, request_):
    _set_up(name)
    method, url, body = request_
    over_rest = trail_of(_rest(role, method, url, body))
    over_graphql = trail_of(_graphql(graphql, role, name, **arguments))
    assert [event[0] for event in over_graphql] == ACTIONS[name]
    assert {event[1] for event in over_graphql} == {f"dev-{role}"}  # the caller
    assert over_graphql == over_rest


@pytest.mark.parametrize(
    ("name", "arguments"),
    [
        ("serviceUpdate", {"input": {"name": "x"}}),
        ("serviceArchive", {}),
        ("environmentRestore", {}),
        ("releaseUpdate", {"input": {"version": "x"}}),
        ("releaseDeploy", {}),
        ("releasePromote", {"envId": "env-staging"}),
        ("incidentUpdate", {"input": {"title": "x"}}),
        ("incidentResolve", {}),
    ],
)
def test_an_id_with_a_nul_byte_is_not_found_without_a_query(admin, name, arguments):
    # An INTERNAL error on PostgreSQL, which refuses a NUL byte in a query; REST's URLs answer 404 for it.
    noun = re.match("[a-z]+", name).group().capitalize()
    with CaptureQueriesContext(connection) as queries:
        payload = mutate(admin, name, id="rel-123\x00", **arguments)
    refused(payload, (None, "NOT_FOUND", f"No {noun} matches the given query."))
    assert not [q["sql"] for q in queries if "SAVEPOINT" not in q["sql"]]  # only the mutation's transaction
