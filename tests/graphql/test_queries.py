"""Every query root field and every object field over GraphQL: filters, relations, pages and cursors, unknown
ids, and the same values as REST gives for the same object."""

import base64
import datetime

import pytest
from django.core import signing

from audit.models import AuditEvent
from controlplane.identity.context import Principal, acting_as
from controlplane.identity.roles import Role
from incidents import lifecycle as incident_lifecycle
from incidents.models import Incident
from releases import runs, workflows
from releases.models import Release, WorkflowRun
from services import lifecycle as service_lifecycle
from services.models import Environment, Service
from tests.api.conftest import Api
from tests.graphql.conftest import before_the_policies
from tests.graphql.test_mutations import loaded_once
from tests.live import DEMO_PROD_REFS

pytestmark = pytest.mark.django_db

REFUSED_CURSOR = "after: is not a cursor this API issued."
CAROL = Principal(actor="carol@example.com", role=Role.DEPLOYER, auth_method="oidc")


def ids(connection: dict, key: str = "id") -> list:
    return [edge["node"][key] for edge in connection["edges"]]


def rollout(release: Release, succeeded: bool | None = True, logs=()) -> WorkflowRun:
    """Deploy `release` as carol; log `logs` (message, level, meta) on its run; end it unless `succeeded` is None."""
    with acting_as(CAROL):
        run = workflows.deploy(release)
    for message, level, meta in logs:
        runs.log(run, message, level, **meta)
    if succeeded is not None:
        assert runs.finish(run, succeeded=succeeded)
    return run


def build_world() -> dict:
    """Beside the demo (svc-demo in staging and prod; rel-123 Active in staging with run-456 by alice; inc-789
    acknowledged, high): qa, three more services (one archived), releases in every status, incidents in every
    status, and a promotion from rel-123 to prod still running with a log."""
    qa = Environment(id="env-qa", name="qa", region="eu-west-1", cluster="qa-1", policy_refs=["policy:incident-gate"])
    qa.save()
    api = Service(id="svc-api", name="API", repo="github.com/acme/api", deployment_adapters=["k8s"])
    api.save()
    api.environments.set(["env-staging", "env-qa"])
    web = Service(id="svc-web", name="Web", repo="gitlab.com/acme/web", deployment_adapters=["render", "aws"])
    web.save()
    web.environments.set(["env-prod"])
    old = Service(id="svc-old", name="Old", repo="github.com/acme/old", deployment_adapters=["gcp"])
    old.save()
    old.environments.set(["env-qa"])
    service_lifecycle.archive(old)

    with before_the_policies("env-prod"):  # releases made in prod, which its refs now refuse
        first = Release(id="rel-p1", service_id="svc-demo", environment_id="env-prod", sha="aaaaaaa1", version="3.0.0")
        first.save()
        rollout(first)
        second = Release(id="rel-p2", service_id="svc-demo", environment_id="env-prod", sha="bbbbbbb2", version="3.0.1")
        second.save()
        rollout(second)
    Release(id="rel-draft", service_id="svc-api", environment_id="env-staging", sha="ccccccc3", version="0.1.0").save()
    failed = Release(id="rel-failed", service_id="svc-api", environment_id="env-qa", sha="ddddddd4", version="0.0.9")
    failed.save()
    rollout(failed, succeeded=False)
    with acting_as(CAROL), before_the_policies("env-prod"):  # whatever the hour: its window may be closed
        promotion = workflows.promote(Release.objects.get(pk="rel-123"), Environment.objects.get(pk="env-prod"))
    runs.log(promotion, "Plan generated", "info", steps=3)
    runs.log(promotion, "Waiting for health checks", "warning", apiKey="hunter2", attempt=1)
    runs.log(promotion, "Healthy", "debug", attempt=2)

    Incident(id="inc-api", service_id="svc-api", severity="critical", link="https://pd.example.com/api").save()
    gone = Incident(id="inc-gone", service_id="svc-demo", severity="low", link="https://pd.example.com/gone")
    gone.save()
    incident_lifecycle.resolve(gone)
    return {"promotion": promotion}


world = loaded_once("world", build_world)


# --- me ---


@pytest.mark.parametrize("role", ["viewer", "deployer", "admin"])
def test_me_is_the_caller_as_rest_sees_it(graphql, role):
    me = graphql(role)("{ me { actor role authMethod } }")["me"]
    assert me == {"actor": f"dev-{role}", "role": role, "authMethod": "devToken"}
    assert me == Api(role).get("/api/me/").json()


# --- services and environments ---

SERVICE = """
query ($id: ID!) {
  service(id: $id) {
    id name repo archived archivedAt createdAt adapters { deployments }
    environments { id name }
    currentReleases { id envId }
    releases(first: 10) { edges { node { id status } } }
    draft: releases(status: Draft) { edges { node { id } } }
    inProd: releases(envId: "env-prod", first: 10) { edges { node { id } } }
    incidents { edges { node { id } } }
    open: incidents(open: true) { edges { node { id } } }
    resolved: incidents(open: false) { edges { node { id } } }
    critical: incidents(severity: critical) { edges { node { id } } }
    acknowledged: incidents(status: acknowledged) { edges { node { id } } }
    auditEvents(first: 3) { edges { node { seq action subjectId } } }
  }
}
"""


def test_service_and_its_relations(viewer, world):
    service = viewer(SERVICE, id="svc-demo")["service"]
    assert service["archived"] is False and service["archivedAt"] is None
    assert service["adapters"] == {"deployments": ["aws", "fly"]}
    assert service["environments"] == [{"id": "env-prod", "name": "prod"}, {"id": "env-staging", "name": "staging"}]
    # What runs where, by environment name: the second prod release, rel-123 in staging (its promotion runs).
    assert service["currentReleases"] == [
        {"id": "rel-p2", "envId": "env-prod"},
        {"id": "rel-123", "envId": "env-staging"},
    ]
    promoted = world["promotion"].release_id
    assert ids(service["releases"]) == [promoted, "rel-p2", "rel-p1", "rel-123"]  # newest first
    assert service["releases"]["edges"][0]["node"]["status"] == "Promoting"
    assert ids(service["draft"]) == []
    assert ids(service["inProd"]) == [promoted, "rel-p2", "rel-p1"]
    assert ids(service["incidents"]) == ["inc-gone", "inc-789"]
    assert ids(service["open"]) == ["inc-789"]
    assert ids(service["resolved"]) == ["inc-gone"]
    assert ids(service["critical"]) == []
    assert ids(service["acknowledged"]) == ["inc-789"]
    # Its own audit events, newest first: the resolution is the latest of svc-demo's.
    recent = [edge["node"] for edge in service["auditEvents"]["edges"]]
    assert recent[0] == {"seq": recent[0]["seq"], "action": "incident.resolve", "subjectId": "inc-gone"}
    assert [e["seq"] for e in recent] == sorted(_service_event_seqs("svc-demo"), reverse=True)[:3]

    other = viewer(SERVICE, id="svc-api")["service"]
    assert ids(other["draft"]) == ["rel-draft"]
    assert ids(other["critical"]) == ["inc-api"]
    assert other["currentReleases"] == []  # a Draft and a Failed release: nothing runs


def _service_event_seqs(service_id: str) -> set:
    return set(AuditEvent.objects.filter(service_id=service_id).values_list("seq", flat=True))


def test_an_archived_service_says_so(viewer):
    service = viewer('{ service(id: "svc-old") { archived archivedAt environments { id } } }')["service"]
    assert service["archived"] is True and service["archivedAt"].endswith("Z")
    assert service["environments"] == [{"id": "env-qa"}]


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ("", ["API", "Demo Service", "Web"]),
        ('name: "de"', ["Demo Service"]),
        ('q: "gitlab"', ["Web"]),  # the repo
        ('q: "svc-ap"', ["API"]),  # the id
        ('adapter: "aws"', ["Demo Service", "Web"]),
        ('adapter: "gcp"', []),  # svc-old, archived
        ('envId: "env-qa"', ["API"]),
        ('envId: "env-prod"', ["Demo Service", "Web"]),
        ('archived: "true"', ["Old"]),
        ('archived: "all"', ["API", "Demo Service", "Old", "Web"]),
        ('archived: "all", adapter: "gcp"', ["Old"]),
    ],
)
def test_services_filters(viewer, arguments, expected):
    found = viewer(f"{{ services{f'({arguments})' if arguments else ''} {{ edges {{ node {{ name }} }} }} }}")
    assert ids(found["services"], "name") == expected


def test_a_bad_filter_value_is_refused_with_rests_message(viewer):
    body = viewer.post('{ services(adapter: "heroku") { edges { node { id } } } }').json()
    rest = Api("viewer").get("/api/services/?adapter=heroku")
    assert rest.status_code == 400
    assert body["data"] is None
    assert body["errors"][0]["message"] == f"adapter: {rest.json()['adapter'][0]}"
    assert body["errors"][0]["extensions"]["fields"] == rest.json()


@pytest.mark.parametrize(
    ("document", "url"),
    [
        ('{ services(q: "") { edges { node { id } } } }', "/api/services/?q="),
        ('{ auditEvents(actor: " ") { edges { node { seq } } } }', "/api/audit-events/?actor=%20"),
        ('{ releases(sha: "\\t") { edges { node { id } } } }', "/api/releases/?sha=%09"),
    ],
)
def test_an_empty_text_filter_is_refused_as_rest_refuses_it(viewer, document, url):
    # Read as no filter at all, an empty filter would list everything the caller meant to narrow.
    body = viewer.post(document).json()
    rest = Api("viewer").get(url)
    assert rest.status_code == 400
    assert body["data"] is None
    assert body["errors"][0]["extensions"] == {"code": "INVALID", "fields": rest.json()}


ENVIRONMENT = """
query ($id: ID!) {
  environment(id: $id) {
    id name region cluster policyRefs archived archivedAt createdAt
    placements { adapter region cluster default }
    services { edges { node { id } } }
    archivedToo: services(archived: "all") { edges { node { id } } }
    currentReleases { edges { node { id serviceId } } }
  }
}
"""


def nodes(connection) -> list:
    return [edge["node"] for edge in connection["edges"]]


def test_environment_and_its_relations(viewer):
    prod = viewer(ENVIRONMENT, id="env-prod")["environment"]
    assert (prod["region"], prod["cluster"], prod["policyRefs"]) == (
        "us-east-1",
        "prod-cluster",
        DEMO_PROD_REFS,
    )
    assert nodes(prod["services"]) == [{"id": "svc-demo"}, {"id": "svc-web"}]  # by name
    assert nodes(prod["currentReleases"]) == [{"id": "rel-p2", "serviceId": "svc-demo"}]
    # Its own region and cluster for every adapter.
    assert {(p["adapter"], p["region"], p["cluster"], p["default"]) for p in prod["placements"]} == {
        (name, "us-east-1", "prod-cluster", False) for name in ("aws", "fly", "gcp", "k8s", "render")
    }

    staging = viewer(ENVIRONMENT, id="env-staging")["environment"]
    assert staging["region"] is None and staging["cluster"] is None  # each adapter's default applies
    placements = {p["adapter"]: (p["region"], p["cluster"], p["default"]) for p in staging["placements"]}
    assert placements["aws"] == ("us-east-1", "default", True)
    assert placements["fly"] == ("iad", "personal", True)
    assert placements["k8s"] == ("local", "in-cluster", True)
    assert nodes(staging["services"]) == [{"id": "svc-api"}, {"id": "svc-demo"}]
    assert nodes(staging["currentReleases"]) == [{"id": "rel-123", "serviceId": "svc-demo"}]

    qa = viewer(ENVIRONMENT, id="env-qa")["environment"]
    # Archived services stay linked; like every list, the environment's shows those in use unless asked.
    assert nodes(qa["services"]) == [{"id": "svc-api"}]
    assert nodes(qa["archivedToo"]) == [{"id": "svc-api"}, {"id": "svc-old"}]


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ("", ["prod", "qa", "staging"]),
        ('name: "A"', ["qa", "staging"]),  # any case
        ('region: "eu-west-1"', ["qa"]),
        ('cluster: "prod-cluster"', ["prod"]),
        ('archived: "true"', ["gone"]),
        ('archived: "all"', ["gone", "prod", "qa", "staging"]),
    ],
)
def test_environments_filters(viewer, arguments, expected):
    gone = Environment(name="gone")
    gone.save()
    service_lifecycle.archive(gone)
    found = viewer(f"{{ environments{f'({arguments})' if arguments else ''} {{ edges {{ node {{ name }} }} }} }}")
    assert ids(found["environments"], "name") == expected


# --- releases and runs ---

RELEASE = """
query ($id: ID!) {
  release(id: $id) {
    id serviceId envId sha version status createdAt activatedAt isCurrent supersededBy supersededAt
    service { id name }
    environment { id name }
    runs { id kind }
    timeline { id kind releaseId sourceReleaseId }
  }
}
"""


def test_release_and_its_relations(viewer, world):
    promotion = world["promotion"]
    source = viewer(RELEASE, id="rel-123")["release"]
    assert source["service"] == {"id": "svc-demo", "name": "Demo Service"}
    assert source["environment"] == {"id": "env-staging", "name": "staging"}
    assert source["runs"] == [{"id": "run-456", "kind": "Deploy"}]  # its own only
    # Its deploy, then the promotion made from it, in time order.
    assert source["timeline"] == [
        {"id": "run-456", "kind": "Deploy", "releaseId": "rel-123", "sourceReleaseId": None},
        {"id": promotion.id, "kind": "Promote", "releaseId": promotion.release_id, "sourceReleaseId": "rel-123"},
    ]
    assert (source["status"], source["isCurrent"], source["supersededBy"]) == ("Active", True, None)

    target = viewer(RELEASE, id=promotion.release_id)["release"]
    assert (target["status"], target["envId"], target["sha"], target["version"]) == (
        "Promoting",
        "env-prod",
        "9f3b7de",
        "2024.10.01",
    )
    assert target["runs"] == [{"id": promotion.id, "kind": "Promote"}]
    assert [run["id"] for run in target["timeline"]] == [promotion.id]
    assert target["activatedAt"] is None and target["isCurrent"] is False

    first, second = (viewer(RELEASE, id=pk)["release"] for pk in ("rel-p1", "rel-p2"))
    assert (first["isCurrent"], first["supersededBy"], first["supersededAt"]) == (
        False,
        "rel-p2",
        second["activatedAt"],
    )
    assert (second["isCurrent"], second["supersededBy"], second["supersededAt"]) == (True, None, None)


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('serviceId: "svc-api"', {"rel-failed", "rel-draft"}),
        ('envId: "env-prod"', {"promoted", "rel-p2", "rel-p1"}),
        ("status: Draft", {"rel-draft"}),
        ("status: Failed", {"rel-failed"}),
        ("status: Promoting", {"promoted"}),
        ("status: Active", {"rel-p2", "rel-p1", "rel-123"}),
        ('sha: "bbbb"', {"rel-p2"}),  # a prefix
        ('sha: "bbbbbbb2"', {"rel-p2"}),
        ('sha: "bbbbbbb"', {"rel-p2"}),
        ('version: "3.0.0"', {"rel-p1"}),
        ("isCurrent: true", {"rel-p2", "rel-123"}),
        ("isCurrent: false", {"promoted", "rel-p1", "rel-failed", "rel-draft"}),
        ('serviceId: "svc-demo", isCurrent: true, envId: "env-staging"', {"rel-123"}),
    ],
)
def test_releases_filters(viewer, world, arguments, expected):
    found = ids(viewer(f"{{ releases({arguments}) {{ edges {{ node {{ id }} }} }} }}")["releases"])
    promoted = world["promotion"].release_id
    assert set(found) == {promoted if pk == "promoted" else pk for pk in expected}
    assert len(found) == len(set(found))


def test_releases_are_newest_first(viewer, world):
    found = ids(viewer("{ releases { edges { node { id } } } }")["releases"])
    created = dict(Release.objects.values_list("id", "created_at"))
    assert found == sorted(created, key=lambda pk: (created[pk], pk), reverse=True)
    assert found[0] == world["promotion"].release_id and found[-1] == "rel-123"


RUN = """
query ($id: ID!) {
  workflowRun(id: $id) {
    id kind state actor startedAt finishedAt releaseId sourceReleaseId
    release { id envId }
    sourceRelease { id envId }
    logs { level message meta }
    lastTwo: logs(last: 2) { message }
    none: logs(last: 0) { message }
  }
}
"""


def test_workflow_run_and_its_relations(viewer, world):
    promotion = world["promotion"]
    run = viewer(RUN, id=promotion.id)["workflowRun"]
    assert (run["kind"], run["state"], run["actor"], run["finishedAt"]) == (
        "Promote",
        "Running",
        "carol@example.com",
        None,
    )
    assert run["release"] == {"id": promotion.release_id, "envId": "env-prod"}
    assert run["sourceRelease"] == {"id": "rel-123", "envId": "env-staging"}
    assert run["logs"] == [
        {"level": "info", "message": "Plan generated", "meta": {"steps": 3}},
        {"level": "warning", "message": "Waiting for health checks", "meta": {"apiKey": "[REDACTED]", "attempt": 1}},
        {"level": "debug", "message": "Healthy", "meta": {"attempt": 2}},
    ]
    assert run["lastTwo"] == [{"message": "Waiting for health checks"}, {"message": "Healthy"}]  # still oldest first
    assert run["none"] == []

    deploy = viewer(RUN, id="run-456")["workflowRun"]
    assert (deploy["kind"], deploy["state"], deploy["finishedAt"]) == ("Deploy", "Succeeded", "2024-10-01T18:36:12Z")
    assert deploy["sourceRelease"] is None and deploy["sourceReleaseId"] is None
    assert deploy["logs"] == [{"level": "info", "message": "Plan generated", "meta": {"steps": 4}}]


def test_a_negative_last_is_refused(viewer):
    body = viewer.post('{ workflowRun(id: "run-456") { logs(last: -1) { message } } }').json()
    assert body["errors"][0]["message"] == "last: must be 0 or more."
    assert body["data"] == {"workflowRun": None}


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('releaseId: "rel-123"', {"run-456"}),
        ('serviceId: "svc-api"', {"failed"}),
        ('envId: "env-prod"', {"p1", "p2", "promotion"}),
        ("kind: Promote", {"promotion"}),
        ("kind: Deploy", {"run-456", "p1", "p2", "failed"}),
        ("state: Running", {"promotion"}),
        ("state: Failed", {"failed"}),
        ("state: Succeeded", {"run-456", "p1", "p2"}),
        ('actor: "alice@blackroad.io"', {"run-456"}),
        ('actor: "carol@example.com", state: Succeeded', {"p1", "p2"}),
    ],
)
def test_workflow_runs_filters(viewer, world, arguments, expected):
    run_of = dict(WorkflowRun.objects.values_list("release_id", "id"))
    names = {
        "run-456": "run-456",
        "p1": run_of["rel-p1"],
        "p2": run_of["rel-p2"],
        "failed": run_of["rel-failed"],
        "promotion": world["promotion"].id,
    }
    found = ids(viewer(f"{{ workflowRuns({arguments}) {{ edges {{ node {{ id }} }} }} }}")["workflowRuns"])
    assert sorted(found) == sorted(names[name] for name in expected)


# --- incidents ---


def test_incident_and_its_service(viewer):
    incident = viewer(
        '{ incident(id: "inc-789") { id serviceId title severity status link startedAt acknowledgedAt resolvedAt'
        " service { id name } } }"
    )["incident"]
    assert incident == {
        "id": "inc-789",
        "serviceId": "svc-demo",
        "title": "Elevated error rate on the demo service",
        "severity": "high",
        "status": "acknowledged",
        "link": "https://incidents.example.com/inc-789",
        "startedAt": "2024-10-02T03:20:00Z",
        "acknowledgedAt": "2024-10-02T03:24:10Z",
        "resolvedAt": None,
        "service": {"id": "svc-demo", "name": "Demo Service"},
    }


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ("", ["inc-gone", "inc-api", "inc-789"]),  # newest first
        ('serviceId: "svc-api"', ["inc-api"]),
        ("severity: low", ["inc-gone"]),
        ("status: triggered", ["inc-api"]),
        ("status: resolved", ["inc-gone"]),
        ("open: true", ["inc-api", "inc-789"]),
        ("open: false", ["inc-gone"]),
        ('open: true, serviceId: "svc-demo"', ["inc-789"]),
    ],
)
def test_incidents_filters(viewer, arguments, expected):
    found = viewer(f"{{ incidents{f'({arguments})' if arguments else ''} {{ edges {{ node {{ id }} }} }} }}")
    assert ids(found["incidents"]) == expected


# --- audit events ---


def test_audit_events_oldest_first_with_their_metadata(viewer):
    events = [
        e["node"]
        for e in viewer("{ auditEvents(first: 500) { edges { node { seq actor action metadata } } } }")["auditEvents"][
            "edges"
        ]
    ]
    assert [e["seq"] for e in events] == list(range(1, AuditEvent.objects.count() + 1))
    assert events[0] == {
        "seq": 1,
        "actor": "alice@blackroad.io",
        "action": "deploy.create",
        "metadata": {"serviceId": "svc-demo", "envId": "env-staging"},
    }
    created = next(e for e in events if e["action"] == "environment.create")
    assert created["metadata"] == {
        "name": "qa",
        "region": "eu-west-1",
        "cluster": "qa-1",
        "policyRefs": ["policy:incident-gate"],
        "connection": "",  # none: it simulates
        "order": None,  # none: after the ordered environments
    }


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('actor: "alice@blackroad.io"', [("deploy.create", "rel-123")]),
        ('action: "incident.resolve"', [("incident.resolve", "inc-gone")]),
        (
            'subjectType: "Incident"',
            [("incident.create", "inc-api"), ("incident.create", "inc-gone"), ("incident.resolve", "inc-gone")],
        ),
        (
            'subjectId: "svc-old"',
            [("service.create", "svc-old"), ("service.link", "svc-old"), ("service.archive", "svc-old")],
        ),
        ('serviceId: "svc-web"', [("service.create", "svc-web"), ("service.link", "svc-web")]),
        (
            'actor: "carol@example.com", action: "deploy.create"',
            [("deploy.create", "rel-p1"), ("deploy.create", "rel-p2"), ("deploy.create", "rel-failed")],
        ),
    ],
)
def test_audit_events_filters(viewer, arguments, expected):
    found = viewer(f"{{ auditEvents({arguments}) {{ edges {{ node {{ action subjectId }} }} }} }}")["auditEvents"]
    assert [(e["node"]["action"], e["node"]["subjectId"]) for e in found["edges"]] == expected


def test_audit_events_since_and_until(viewer):
    # The demo's own event is from 2024; everything the world did is from now.
    old = '{ auditEvents(until: "2024-10-02T03:21:31Z") { edges { node { seq } } } }'
    assert ids(viewer(old)["auditEvents"], "seq") == [1]
    at = '{ auditEvents(since: "2024-10-02T03:21:30Z", until: "2024-10-02T03:21:31Z") { edges { node { seq } } } }'
    assert ids(viewer(at)["auditEvents"], "seq") == [1]  # since is inclusive
    just_after = '{ auditEvents(since: "2024-10-02T05:21:30.000001+02:00") { edges { node { seq } } } }'
    assert 1 not in ids(viewer(just_after)["auditEvents"], "seq")  # an offset is honoured: 03:21:30.000001Z
    boundary = AuditEvent.objects.get(action="incident.resolve").ts
    since = viewer(
        "query ($t: DateTime) { auditEvents(since: $t) { edges { node { action } } } }", t=boundary.isoformat()
    )["auditEvents"]
    until = viewer(
        "query ($t: DateTime) { auditEvents(until: $t) { edges { node { action } } } }", t=boundary.isoformat()
    )["auditEvents"]
    assert ids(since, "action") == ["incident.resolve"]
    assert "incident.resolve" not in ids(until, "action") and len(until["edges"]) == AuditEvent.objects.count() - 1
    later = (boundary + datetime.timedelta(seconds=1)).isoformat()
    assert ids(viewer(f'{{ auditEvents(since: "{later}") {{ edges {{ node {{ seq }} }} }} }}')["auditEvents"]) == []


def test_a_time_without_an_offset_is_refused_as_rest_refuses_it(viewer):
    body = viewer.post('{ auditEvents(since: "2024-10-02T03:21:30") { edges { node { seq } } } }').json()
    rest = Api("viewer").get("/api/audit-events/?since=2024-10-02T03:21:30")
    assert rest.status_code == 400 and body["data"] is None
    assert body["errors"][0]["message"] == f"since: {rest.json()['since'][0]}"


# --- the services index ---

INDEX = """
query ($q: String, $adapter: String, $envId: ID) {
  servicesIndex(q: $q, adapter: $adapter, envId: $envId) {
    edges { node {
      id name repo adapters { deployments }
      environments {
        id name
        latestRelease { id version sha status createdAt activatedAt }
        currentRelease { id version sha status createdAt activatedAt }
      }
      incidents { open { low medium high critical } highestOpenSeverity }
      auditTail { seq ts action }
    } }
  }
}
"""


def without_nulls_rest_leaves_out(node, rest):
    """`node` with the keys REST does not show dropped where they are null (the index's releases show
    createdAt or activatedAt, not both)."""
    if isinstance(node, dict) and isinstance(rest, dict):
        return {k: without_nulls_rest_leaves_out(v, rest.get(k)) for k, v in node.items() if k in rest or v is not None}
    if isinstance(node, list) and isinstance(rest, list) and len(node) == len(rest):
        return [without_nulls_rest_leaves_out(n, r) for n, r in zip(node, rest, strict=True)]
    return node


def test_services_index_entry_is_rests(viewer, world):
    index = viewer(INDEX)["servicesIndex"]
    rest = Api("viewer").get("/api/services/index/").json()["results"]
    assert ids(index) == [entry["id"] for entry in rest] == ["svc-api", "svc-demo", "svc-web"]
    for edge, entry in zip(index["edges"], rest, strict=True):
        assert without_nulls_rest_leaves_out(edge["node"], entry) == entry
    demo = index["edges"][1]["node"]
    prod = demo["environments"][0]
    assert prod["latestRelease"]["id"] == world["promotion"].release_id
    assert prod["latestRelease"]["status"] == "Promoting" and prod["latestRelease"]["activatedAt"] is None
    assert prod["currentRelease"]["id"] == "rel-p2" and prod["currentRelease"]["createdAt"] is None
    assert demo["incidents"] == {
        "open": {"low": 0, "medium": 0, "high": 1, "critical": 0},
        "highestOpenSeverity": "high",
    }
    assert index["edges"][0]["node"]["incidents"]["highestOpenSeverity"] == "critical"


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"q": "acme"}, ["svc-api", "svc-web"]),
        ({"q": "demo"}, ["svc-demo"]),
        ({"adapter": "render"}, ["svc-web"]),
        ({"adapter": "k8s"}, ["svc-api"]),
        ({"envId": "env-staging"}, ["svc-api", "svc-demo"]),
        ({"envId": "env-qa", "q": "old"}, []),  # archived
    ],
)
def test_services_index_filters(viewer, variables, expected):
    assert ids(viewer(INDEX, **variables)["servicesIndex"]) == expected


# --- the same values as REST ---

SAME_AS_REST = [
    (
        "service",
        "svc-demo",
        "/api/services/svc-demo/",
        "id name repo adapters { deployments } environments { id name } archivedAt createdAt",
    ),
    (
        "environment",
        "env-qa",
        "/api/environments/env-qa/",
        "id name region cluster policyRefs connection order mode archivedAt createdAt",
    ),
    (
        "environment",
        "env-staging",
        "/api/environments/env-staging/",
        "id name region cluster policyRefs connection order mode archivedAt createdAt",
    ),
    (
        "release",
        "rel-p1",
        "/api/releases/rel-p1/",
        "id serviceId envId sha version status createdAt committedAt activatedAt isCurrent supersededBy"
        " supersededAt rollbackOf restores",
    ),
    (
        "incident",
        "inc-gone",
        "/api/incidents/inc-gone/",
        "id serviceId title severity status link startedAt acknowledgedAt resolvedAt source externalId integrationId"
        " releaseId",
    ),
    (
        "workflowRun",
        "run-456",
        "/api/workflow-runs/run-456/",
        "id kind releaseId sourceReleaseId actor mode state startedAt finishedAt approvalsRequired"
        " approvals { actor decision comment at } waitingReason logs { ts level message meta }",
    ),
]


@pytest.mark.parametrize(("root", "pk", "url", "fields"), SAME_AS_REST, ids=[f"{r}-{p}" for r, p, _, _ in SAME_AS_REST])
def test_an_object_has_rests_values(viewer, root, pk, url, fields):
    node = viewer(f'{{ {root}(id: "{pk}") {{ {fields} }} }}')[root]
    rest = Api("viewer").get(url).json()
    assert without_nulls_rest_leaves_out(node, rest) == rest


def test_an_audit_event_has_rests_values(viewer):
    event = AuditEvent.objects.get(action="service.archive")
    node = viewer(
        'query ($id: ID) { auditEvents(subjectId: $id, action: "service.archive") { edges { node {'
        " seq ts actor action subjectType subjectId serviceId metadata hash } } } }",
        id=event.subject_id,
    )["auditEvents"]["edges"][0]["node"]
    assert node == Api("viewer").get(f"/api/audit-events/{event.seq}/").json()
    assert node["metadata"]["changes"]["archivedAt"][0] is None


def test_a_running_promotion_has_rests_values(viewer, world):
    run = world["promotion"]
    node = viewer(
        f'{{ workflowRun(id: "{run.id}") {{ id kind releaseId sourceReleaseId actor mode state startedAt finishedAt'
        " approvalsRequired approvals { actor decision comment at } waitingReason logs { ts level message meta } } }"
    )["workflowRun"]
    rest = Api("viewer").get(f"/api/workflow-runs/{run.id}/").json()
    assert "finishedAt" not in rest and node["finishedAt"] is None  # REST leaves it out, GraphQL says null
    assert without_nulls_rest_leaves_out(node, rest) == rest


# --- unknown ids ---


@pytest.mark.parametrize(
    ("root", "pk"),
    [
        ("service", "svc-nope"),
        ("environment", "env-nope"),
        ("release", "rel-nope"),
        ("workflowRun", "run-nope"),
        ("incident", "inc-nope"),
        ("service", "env-prod"),  # an id of another type
        ("release", "NOT AN ID"),
    ],
)
def test_an_unknown_id_is_null(viewer, root, pk):
    assert viewer(f"query ($id: ID!) {{ {root}(id: $id) {{ id }} }}", id=pk) == {root: None}


@pytest.mark.parametrize("root", ["service", "environment", "release", "workflowRun", "incident"])
@pytest.mark.parametrize("pk", ["svc-demo\x00", "a" * 64, "UPPER"], ids=["nul", "too-long", "upper-case"])
def test_an_id_that_cannot_be_one_is_null_without_a_query(viewer, root, pk, django_assert_num_queries):
    # A NUL byte was an INTERNAL error on PostgreSQL, which refuses it in a query; REST's URLs answer 404.
    with django_assert_num_queries(0):
        assert viewer(f"query ($id: ID!) {{ {root}(id: $id) {{ id }} }}", id=pk) == {root: None}


# --- pages ---

PAGE = "query ($first: Int, $after: String) { %s(first: $first, after: $after%s) { %s } }"
SHAPE = "edges { cursor node { %s } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor }"


def page_of(root: str, key: str, arguments: str = "") -> str:
    return PAGE % (root, f", {arguments}" if arguments else "", SHAPE % key)


def pages(fetch) -> list[dict]:
    """The pages `fetch(after)` gives, from the first, following endCursor while hasNextPage."""
    found, after = [], None
    while True:
        page = fetch(after)
        found.append(page)
        if not page["pageInfo"]["hasNextPage"]:
            return found
        after = page["pageInfo"]["endCursor"]
        assert len(found) < 50, "the walk does not end"


def walk(client, root: str, key: str, first: int, arguments: str = "") -> list[dict]:
    """Every page of `root` (narrowed by `arguments`), `first` at a time."""
    return pages(lambda after: client(page_of(root, key, arguments), first=first, after=after)[root])


@pytest.fixture
def many_services(db):
    """Nine more services: with the world's, twelve in use, two pairs sharing a name (then ordered by id)."""
    names = ["Bravo", "Charlie", "Charlie", "Delta", "Echo", "Foxtrot", "Foxtrot", "Golf", "Hotel"]
    for n, name in enumerate(names):
        Service(id=f"svc-{n}", name=name, repo=f"github.com/acme/s{n}", deployment_adapters=["k8s"]).save()
    return [
        "svc-api",  # API
        "svc-0",  # Bravo
        "svc-1",  # Charlie
        "svc-2",  # Charlie
        "svc-3",  # Delta
        "svc-demo",  # Demo Service
        "svc-4",  # Echo
        "svc-5",  # Foxtrot
        "svc-6",  # Foxtrot
        "svc-7",  # Golf
        "svc-8",  # Hotel
        "svc-web",  # Web
    ]


@pytest.mark.parametrize("first", [1, 2, 3, 5, 12])
def test_walking_services_has_no_duplicates_or_gaps(viewer, many_services, first):
    walked_pages = walk(viewer, "services", "id", first)
    walked = [pk for page in walked_pages for pk in ids(page)]
    assert walked == many_services
    assert [len(page["edges"]) for page in walked_pages[:-1]] == [first] * (len(walked_pages) - 1)
    # hasNextPage is true on every page but the last, also when the last page is exactly full (first 2, 3, 12).
    assert [page["pageInfo"]["hasNextPage"] for page in walked_pages] == [True] * (len(walked_pages) - 1) + [False]
    assert len(walked_pages) == -(-len(many_services) // first)
    for page in walked_pages:
        assert page["pageInfo"]["hasPreviousPage"] is False
        assert page["pageInfo"]["startCursor"] == page["edges"][0]["cursor"]
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]


def test_after_the_last_page_is_an_empty_page(viewer, many_services):
    last = walk(viewer, "services", "id", 6)[-1]
    assert len(last["edges"]) == 6
    beyond = viewer(page_of("services", "id"), first=6, after=last["pageInfo"]["endCursor"])["services"]
    assert beyond == {
        "edges": [],
        "pageInfo": {"hasNextPage": False, "hasPreviousPage": False, "startCursor": None, "endCursor": None},
    }


def test_a_page_is_stable_under_inserts_before_it(viewer, many_services):
    first = viewer(page_of("services", "id"), first=4)["services"]
    Service(id="svc-inserted", name="AAA", repo="github.com/acme/a", deployment_adapters=["k8s"]).save()
    second = viewer(page_of("services", "id"), first=4, after=first["pageInfo"]["endCursor"])["services"]
    assert ids(second) == many_services[4:8]


def test_a_filtered_list_walks_within_its_filter(viewer, many_services):
    walked = [pk for page in walk(viewer, "services", "id", 2, 'q: "acme/s"') for pk in ids(page)]
    assert walked == [pk for pk in many_services if pk.removeprefix("svc-").isdigit()]


def test_walking_releases_with_equal_creation_times(viewer):
    """Newest first, ties broken by id (descending): a page boundary inside a tie loses nothing."""
    service = Service(id="svc-tie", name="Tie", repo="github.com/acme/tie", deployment_adapters=["k8s"])
    service.save()
    service.environments.set(["env-prod"])
    same = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
    for n in range(7):
        created = same if n < 5 else same + datetime.timedelta(days=n)
        Release(
            id=f"rel-tie-{n}",
            service=service,
            environment_id="env-prod",
            sha="abcdef1",
            version=str(n),
            created_at=created,
        ).save()
    expected = ["rel-tie-6", "rel-tie-5", "rel-tie-4", "rel-tie-3", "rel-tie-2", "rel-tie-1", "rel-tie-0"]
    for first in (1, 2, 3):
        walked = [pk for page in walk(viewer, "releases", "id", first, 'serviceId: "svc-tie"') for pk in ids(page)]
        assert walked == expected, first


@pytest.mark.parametrize(
    ("root", "key", "arguments"),
    [
        ("auditEvents", "seq", ""),
        ("auditEvents", "seq", 'serviceId: "svc-demo"'),
        ("incidents", "id", ""),
        ("workflowRuns", "id", ""),
        ("releases", "id", ""),
        ("environments", "id", 'archived: "all"'),
        ("servicesIndex", "id", ""),
    ],
)
def test_walking_every_list(viewer, root, key, arguments):
    everything = ids(viewer(page_of(root, key, arguments), first=500)[root], key)
    assert len(everything) >= 3
    walked = [value for page in walk(viewer, root, key, 2, arguments) for value in ids(page, key)]
    assert walked == everything


def test_walking_a_services_releases(viewer, world):
    document = """
    query ($first: Int, $after: String) {
      service(id: "svc-demo") { releases(first: $first, after: $after) {
        edges { node { id } } pageInfo { hasNextPage endCursor } } }
    }"""
    found = pages(lambda after: viewer(document, first=1, after=after)["service"]["releases"])
    walked = [pk for page in found for pk in ids(page)]
    assert walked == [world["promotion"].release_id, "rel-p2", "rel-p1", "rel-123"]


def test_walking_a_services_audit_events_newest_first(viewer):
    document = """
    query ($first: Int, $after: String) {
      service(id: "svc-demo") { auditEvents(first: $first, after: $after) {
        edges { node { seq } } pageInfo { hasNextPage endCursor } } }
    }"""
    found = pages(lambda after: viewer(document, first=3, after=after)["service"]["auditEvents"])
    walked = [seq for page in found for seq in ids(page, "seq")]
    assert walked == sorted(_service_event_seqs("svc-demo"), reverse=True)


def _cursor(client, root: str, key: str = "id") -> str:
    return client(page_of(root, key), first=1)[root]["pageInfo"]["endCursor"]


def _tampered(cursor: str) -> str:
    """The cursor with another position in it and its signature kept."""
    payload, rest = cursor.split(":", 1)
    values = signing.b64_decode(payload.encode())
    forged = values.replace(b"svc-demo", b"svc-zzzz") if b"svc-demo" in values else values + b" "
    return base64.urlsafe_b64encode(forged).decode().rstrip("=") + ":" + rest


@pytest.mark.parametrize(
    ("root", "borrowed_from", "key"),
    [
        ("services", "environments", "id"),
        ("environments", "services", "id"),
        ("servicesIndex", "services", "id"),  # the same order, another list
        ("services", "servicesIndex", "id"),
        ("releases", "workflowRuns", "id"),
        ("workflowRuns", "releases", "id"),
        ("incidents", "releases", "id"),
        ("auditEvents", "incidents", "seq"),
    ],
)
def test_another_lists_cursor_is_refused(viewer, root, borrowed_from, key):
    borrowed_key = "seq" if borrowed_from == "auditEvents" else "id"
    cursor = _cursor(viewer, borrowed_from, borrowed_key)
    body = viewer.post(page_of(root, key), first=5, after=cursor).json()
    assert body["data"] is None
    assert body["errors"][0]["message"] == REFUSED_CURSOR
    assert body["errors"][0]["extensions"] == {"code": "INVALID", "field": "after"}


NESTED = 'query ($after: String) { service(id: "svc-demo") { %s(first: 1, after: $after) { %s } } }'


@pytest.mark.parametrize(("relation", "key"), [("auditEvents", "seq"), ("releases", "id"), ("incidents", "id")])
def test_a_top_level_lists_cursor_and_a_services_list_are_not_interchangeable(viewer, relation, key):
    """Service.releases is another list than Query.releases (the same order, other rows): neither takes the
    other's cursor."""
    top = _cursor(viewer, relation, key)
    body = viewer.post(NESTED % (relation, SHAPE % key), after=top).json()
    assert body["errors"][0]["message"] == REFUSED_CURSOR and body["errors"][0]["path"] == ["service", relation]
    nested = viewer(NESTED % (relation, SHAPE % key))["service"][relation]["pageInfo"]["endCursor"]
    assert nested is not None
    body = viewer.post(page_of(relation, key), first=1, after=nested).json()
    assert body["errors"][0]["message"] == REFUSED_CURSOR and body["errors"][0]["path"] == [relation]


@pytest.mark.parametrize(
    "cursor",
    [
        "junk",
        "",
        "WyJBIiwic3ZjLWEiXQ",
        "WyJBIiwic3ZjLWEiXQ:1xWw9D:VHzcHaRujoC1ILymsWVHOtBXuV9NxI3Pq3UM7eFHhDo",
        "tampered",
    ],
)
def test_a_forged_cursor_is_refused(viewer, cursor):
    if cursor == "tampered":
        cursor = _tampered(_cursor(viewer, "services"))
    body = viewer.post(page_of("services", "id"), first=5, after=cursor).json()
    assert body["data"] is None
    assert body["errors"][0]["message"] == REFUSED_CURSOR
    assert body["errors"][0]["extensions"]["field"] == "after"


def test_a_cursor_signed_with_another_key_is_refused(viewer, settings):
    cursor = _cursor(viewer, "services")
    settings.SECRET_KEY = "another-key-" + "x" * 50
    body = viewer.post(page_of("services", "id"), first=5, after=cursor).json()
    assert body["errors"][0]["message"] == REFUSED_CURSOR


@pytest.mark.parametrize("first", [0, -1, 501])
@pytest.mark.parametrize("root", ["services", "releases", "auditEvents", "servicesIndex"])
def test_first_outside_its_range_is_refused(viewer, root, first):
    key = "seq" if root == "auditEvents" else "id"
    body = viewer.post(page_of(root, key), first=first).json()
    assert body["data"] is None
    assert body["errors"][0]["message"] == "first: must be a whole number from 1 to 500."
    assert body["errors"][0]["extensions"] == {"code": "INVALID", "field": "first"}


def test_first_outside_its_range_is_refused_on_a_relation(viewer):
    body = viewer.post('{ service(id: "svc-demo") { releases(first: 0) { edges { node { id } } } } }').json()
    assert body["errors"][0]["message"] == "first: must be a whole number from 1 to 500."


def test_first_at_its_bounds_is_accepted(viewer, many_services):
    assert len(viewer(page_of("services", "id"), first=1)["services"]["edges"]) == 1
    assert ids(viewer(page_of("services", "id"), first=500)["services"]) == many_services


def test_fifty_when_first_is_omitted(viewer, db):
    for n in range(55):
        Incident(service_id="svc-demo", severity="low", link=f"https://pd.example.com/{n}").save()
    page = viewer("{ incidents { edges { node { id } } pageInfo { hasNextPage } } }")["incidents"]
    assert len(page["edges"]) == 50 and page["pageInfo"]["hasNextPage"] is True


def test_services_of_every_sibling_are_right(viewer, world):
    """Relations loaded for a page's services at once still give each service its own."""
    found = viewer(
        '{ services(archived: "all") { edges { node { id environments { id } currentReleases { id }'
        " incidents { edges { node { id } } } releases(first: 2) { edges { node { id } } } } } } }"
    )["services"]
    by_id = {edge["node"]["id"]: edge["node"] for edge in found["edges"]}
    assert [e["id"] for e in by_id["svc-api"]["environments"]] == ["env-qa", "env-staging"]
    assert [e["id"] for e in by_id["svc-web"]["environments"]] == ["env-prod"]
    assert [r["id"] for r in by_id["svc-demo"]["currentReleases"]] == ["rel-p2", "rel-123"]
    assert ids(by_id["svc-api"]["incidents"]) == ["inc-api"]
    assert ids(by_id["svc-api"]["releases"]) == ["rel-failed", "rel-draft"]
    assert ids(by_id["svc-demo"]["releases"]) == [world["promotion"].release_id, "rel-p2"]
    assert ids(by_id["svc-web"]["releases"]) == [] and ids(by_id["svc-old"]["incidents"]) == []


def test_an_environment_s_services_and_current_releases_are_pages(viewer):
    # An environment may hold every service there is: its lists are connections, walked with first/after.
    document = """query($after: String) { environment(id: "env-prod") {
      services(first: 1, after: $after) { edges { node { id } } pageInfo { hasNextPage endCursor } } } }"""
    first = viewer(document)["environment"]["services"]
    assert nodes(first) == [{"id": "svc-demo"}] and first["pageInfo"]["hasNextPage"] is True
    second = viewer(document, after=first["pageInfo"]["endCursor"])["environment"]["services"]
    assert nodes(second) == [{"id": "svc-web"}] and second["pageInfo"]["hasNextPage"] is False
