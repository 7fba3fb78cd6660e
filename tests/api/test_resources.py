"""Each resource through REST: the RFC's shapes, camelCase keys, and the domain's rules as 400/409."""

import pytest

from audit.models import AuditEvent
from releases import lifecycle
from releases.models import Release
from services.models import Environment, Service
from tests.conftest import loaded_once

demo = loaded_once("demo")  # every test here runs on the demo data, loaded once for the module


# --- environments ---


def test_environment_shape(viewer):
    body = viewer.get("/api/environments/env-staging/").json()
    assert body == {
        "id": "env-staging",
        "name": "staging",
        "region": None,
        "cluster": None,
        "policyRefs": [],
        "order": None,
        "connection": None,
        "mode": "simulated",
        "archivedAt": None,
        "createdAt": "2024-09-01T09:00:00Z",
    }


def test_create_environment_with_a_client_id(admin):
    response = admin.post("/api/environments/", {"id": "env-qa", "name": "qa", "policyRefs": ["policy:approval:2"]})
    assert response.status_code == 201
    assert response.json()["id"] == "env-qa" and Environment.objects.get(pk="env-qa").policy_refs == [
        "policy:approval:2"
    ]


@pytest.mark.parametrize(
    ("body", "field", "rule"),
    [
        ({"name": "prod-eu"}, "region", "is required for a production environment ('prod-eu')."),
        ({"name": "qa", "policyRefs": ["nope"]}, "policyRefs", "'nope' is not of the form 'policy:<kind>[:<arg>...]'."),
        ({"name": "Q A"}, "name", "must be 1-63 lower-case letters"),
        ({"name": "staging"}, "name", "already exists"),
        ({"id": "svc-x", "name": "qa"}, "id", "must start with 'env-'."),
        ({"name": "qa", "colour": "blue"}, "colour", "is not a field of this resource."),
        ({"name": "qa", "archivedAt": "2024-01-01T00:00:00Z"}, "archivedAt", "is read-only."),
    ],
)
def test_environment_rules_are_400s_naming_the_field(admin, body, field, rule):
    response = admin.post("/api/environments/", body)
    assert response.status_code == 400
    assert any(rule in message for message in response.json()[field]), response.json()
    assert not Environment.objects.filter(name=body.get("name", "")).exclude(pk="env-staging").exists()


@pytest.mark.parametrize("order", [-1, 1001, "2", 2.5, True, [1]])
def test_an_environments_order_is_a_whole_number_from_0_to_1000_or_null(admin, order):
    rule = ["must be a whole number from 0 to 1000, or null (after the ordered environments)."]
    response = admin.patch("/api/environments/env-staging/", {"order": order})
    assert response.status_code == 400 and response.json() == {"order": rule}
    created = admin.post("/api/environments/", {"name": "qa", "order": order})
    assert created.status_code == 400 and created.json() == {"order": rule}
    assert Environment.objects.get(pk="env-staging").order is None and not Environment.objects.filter(name="qa")


def test_an_environments_order_puts_it_in_promotion_order(admin, viewer):
    assert admin.post("/api/environments/", {"id": "env-dev", "name": "dev", "order": 0}).json()["order"] == 0
    assert admin.patch("/api/environments/env-staging/", {"order": 1000}).json()["order"] == 1000
    assert list(Environment.objects.values_list("pk", flat=True)) == ["env-dev", "env-staging", "env-prod"]
    event = AuditEvent.objects.order_by("-seq").first()
    assert (event.action, event.metadata["changes"]) == ("environment.update", {"order": [None, 1000]})
    assert admin.patch("/api/environments/env-staging/", {"order": None}).json()["order"] is None
    # The list stays by name: an edit renumbers environments no one edited, which would move them across a
    # client's pages (docs/domain.md, "Promotion order").
    listed = viewer.get("/api/environments/").json()["results"]
    assert [e["id"] for e in listed] == ["env-dev", "env-prod", "env-staging"]


def test_update_environment_and_null_region_means_the_adapters_default(admin):
    response = admin.patch("/api/environments/env-prod/", {"cluster": "blue"})
    assert response.status_code == 200 and response.json()["cluster"] == "blue"
    response = admin.patch("/api/environments/env-prod/", {"region": None})
    assert response.status_code == 400 and "production" in response.json()["region"][0]


def test_an_id_cannot_be_changed(admin):
    response = admin.patch("/api/environments/env-prod/", {"id": "env-other"})
    assert response.status_code == 400 and response.json() == {"id": ["is read-only."]}
    full = admin.get("/api/environments/env-prod/").json()
    assert admin.put("/api/environments/env-prod/", full).status_code == 200  # a GET body can be PUT back


def test_delete_archives_and_the_id_stays_taken(admin):
    assert admin.delete("/api/environments/env-staging/").status_code == 204
    assert Environment.objects.get(pk="env-staging").is_archived
    assert "env-staging" not in [e["id"] for e in admin.get("/api/environments/").json()["results"]]
    assert [e["id"] for e in admin.get("/api/environments/?archived=true").json()["results"]] == ["env-staging"]
    assert admin.get("/api/environments/env-staging/").status_code == 200
    assert admin.post("/api/environments/", {"id": "env-staging", "name": "staging-2"}).status_code == 400
    assert admin.delete("/api/environments/env-staging/").status_code == 409
    restored = admin.post("/api/environments/env-staging/restore/")
    assert restored.status_code == 200 and restored.json()["archivedAt"] is None


# --- services ---


def test_service_shape(viewer):
    body = viewer.get("/api/services/svc-demo/").json()
    assert body == {
        "id": "svc-demo",
        "name": "Demo Service",
        "repo": "github.com/blackroad/demo",
        "adapters": {"deployments": ["aws", "fly"]},
        # In promotion order: by name here (the tests' demo drops env-prod's requires ref: tests/live.py).
        "environments": [{"id": "env-prod", "name": "prod"}, {"id": "env-staging", "name": "staging"}],
        "archivedAt": None,
        "createdAt": "2024-09-01T09:05:00Z",
    }


def test_create_service_with_environment_ids_or_objects(admin):
    body = {
        "name": "Payments",
        "repo": "https://github.com/acme/payments.git",
        "adapters": {"deployments": ["k8s"]},
        "environments": ["env-staging", {"id": "env-prod"}],
    }
    response = admin.post("/api/services/", body)
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["repo"] == "github.com/acme/payments" and created["id"].startswith("svc-")
    assert [e["id"] for e in created["environments"]] == ["env-prod", "env-staging"]  # in promotion order


@pytest.mark.parametrize(
    ("patch", "field", "rule"),
    [
        ({"adapters": {"deployments": ["heroku"]}}, "adapters", "unknown adapter 'heroku'; valid adapters: aws, fly"),
        ({"adapters": ["aws"]}, "adapters", 'must be an object {"deployments": [adapter names]}.'),
        ({"environments": ["env-prod", "env-staging", "env-gone"]}, "environments", "unknown environment 'env-gone'."),
        ({"repo": "nope"}, "repo", "is not a repository of the form host/owner/name."),
        ({"name": ""}, "name", "may not be blank."),
    ],
)
def test_service_rules_are_400s_and_nothing_is_half_written(admin, patch, field, rule):
    before = admin.get("/api/services/svc-demo/").json()
    response = admin.patch("/api/services/svc-demo/", patch)
    assert response.status_code == 400
    assert any(rule in m for m in response.json()[field]), response.json()
    assert admin.get("/api/services/svc-demo/").json() == before


def test_a_service_created_with_a_bad_environment_is_not_created(admin):
    body = {
        "id": "svc-new",
        "name": "N",
        "repo": "github.com/a/b",
        "adapters": {"deployments": ["aws"]},
        "environments": ["env-missing"],
    }
    assert admin.post("/api/services/", body).status_code == 400
    assert not Service.objects.filter(pk="svc-new").exists()
    assert not AuditEvent.objects.filter(subject_id="svc-new").exists()


def test_services_filter_by_adapter_environment_and_search(admin, viewer):
    admin.post(
        "/api/services/",
        {
            "id": "svc-k8s",
            "name": "Kube",
            "repo": "github.com/a/kube",
            "adapters": {"deployments": ["k8s"]},
            "environments": ["env-prod"],
        },
    )
    ids = lambda query: [s["id"] for s in viewer.get(f"/api/services/{query}").json()["results"]]  # noqa: E731
    assert ids("?adapter=k8s") == ["svc-k8s"]
    assert ids("?adapter=aws") == ["svc-demo"]
    assert ids("?envId=env-staging") == ["svc-demo"]
    assert ids("?q=kube") == ["svc-k8s"]
    assert viewer.get("/api/services/?adapter=heroku").status_code == 400


# --- releases ---


def new_release(deployer, **body):
    body = {"serviceId": "svc-demo", "envId": "env-prod", "sha": "abcdef1", "version": "2.0.0", **body}
    return deployer.post("/api/releases/", body)


def test_a_release_is_always_created_draft(deployer):
    response = new_release(deployer)
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "Draft" and body["activatedAt"] is None and body["envId"] == "env-prod"


def test_status_cannot_be_set_by_a_client(deployer):
    response = new_release(deployer, status="Active")
    assert response.status_code == 400
    assert response.json() == {"status": ["is read-only: it changes only by deploy and promote."]}


@pytest.mark.parametrize(
    ("body", "field", "rule"),
    [
        ({"sha": "XYZ"}, "sha", "must be 7-40 lower-case hexadecimal characters."),
        ({"serviceId": "svc-gone"}, "serviceId", "unknown service 'svc-gone'."),
        ({"envId": "env-gone"}, "envId", "unknown environment 'env-gone'."),
        ({"version": "v" * 65}, "version", "at most 64"),
    ],
)
def test_release_rules_are_400s(deployer, body, field, rule):
    response = new_release(deployer, **body)
    assert response.status_code == 400
    assert any(rule in m for m in response.json()[field]), response.json()


def test_the_environment_must_be_one_of_the_services(deployer, admin):
    admin.post("/api/environments/", {"id": "env-qa", "name": "qa"})
    response = new_release(deployer, envId="env-qa")
    assert response.status_code == 400
    assert response.json()["envId"] == [
        "environment 'env-qa' is not linked to service 'svc-demo' (linked: env-prod, env-staging)."
    ]


def test_sha_is_immutable_and_version_changes_only_while_draft(deployer):
    release = new_release(deployer).json()
    url = f"/api/releases/{release['id']}/"
    assert deployer.patch(url, {"sha": "1234567"}).json() == {"sha": ["cannot be changed once set."]}
    assert deployer.patch(url, {"version": "2.0.1"}).json()["version"] == "2.0.1"
    lifecycle.begin_rollout(Release.objects.get(pk=release["id"]))
    response = deployer.patch(url, {"version": "2.0.2"})
    assert response.status_code == 400 and "only while the release is Draft" in response.json()["version"][0]


def test_releases_filter_by_service_environment_and_status(deployer, viewer):
    new_release(deployer)
    results = viewer.get("/api/releases/?serviceId=svc-demo&status=Active").json()["results"]
    assert [r["id"] for r in results] == ["rel-123"]
    assert len(viewer.get("/api/releases/?envId=env-prod").json()["results"]) == 1
    assert viewer.get("/api/releases/?status=Shipped").status_code == 400


def test_releases_cannot_be_deleted(admin):
    assert admin.delete("/api/releases/rel-123/").status_code == 405


def test_timeline_merges_own_runs_and_promotions_from_it_in_time_order(viewer):
    from django.utils import timezone

    from releases.models import WorkflowRun

    target = Release(service_id="svc-demo", environment_id="env-prod", sha="9f3b7de", version="2024.10.01")
    target.save()
    lifecycle.begin_rollout(target)  # as promote does, before it creates the run
    promotion = WorkflowRun(
        kind="Promote", release=target, source_release_id="rel-123", actor="bob", started_at=timezone.now()
    )
    promotion.save()
    runs = viewer.get("/api/releases/rel-123/timeline/").json()
    assert [(r["id"], r["kind"]) for r in runs] == [("run-456", "Deploy"), (promotion.id, "Promote")]
    assert "finishedAt" not in runs[1] and runs[1]["sourceReleaseId"] == "rel-123"
    assert "sourceReleaseId" not in runs[0]
    assert [r["id"] for r in viewer.get(f"/api/releases/{target.id}/timeline/").json()] == [promotion.id]


# --- workflow runs ---


def test_workflow_runs_are_read_only_with_logs(viewer, admin):
    run = viewer.get("/api/workflow-runs/run-456/").json()
    assert run == {
        "id": "run-456",
        "kind": "Deploy",
        "releaseId": "rel-123",
        "actor": "alice@blackroad.io",
        "mode": "simulated",
        "state": "Succeeded",
        "startedAt": "2024-10-01T18:32:00Z",
        "finishedAt": "2024-10-01T18:36:12Z",
        "approvalsRequired": 0,
        "approvals": [],
        "waitingReason": None,
        "logs": [{"ts": "2024-10-01T18:32:05Z", "level": "info", "message": "Plan generated", "meta": {"steps": 4}}],
    }
    assert admin.post("/api/workflow-runs/", {"kind": "Deploy"}).status_code == 405
    assert admin.delete("/api/workflow-runs/run-456/").status_code == 405
    assert [
        r["id"] for r in viewer.get("/api/workflow-runs/?serviceId=svc-demo&state=Succeeded").json()["results"]
    ] == ["run-456"]


# --- incidents ---


def test_incident_lifecycle(deployer):
    created = deployer.post(
        "/api/incidents/",
        {
            "serviceId": "svc-demo",
            "severity": "critical",
            "link": "https://pd.example.com/i/1",
            "title": "Checkout down",
        },
    )
    assert created.status_code == 201 and created.json()["status"] == "triggered"
    url = f"/api/incidents/{created.json()['id']}/"
    assert deployer.post(url + "acknowledge/").json()["status"] == "acknowledged"
    resolved = deployer.post(url + "resolve/").json()
    assert resolved["status"] == "resolved" and resolved["resolvedAt"]
    conflict = deployer.post(url + "acknowledge/")
    assert conflict.status_code == 409
    assert conflict.json() == {
        "detail": f"incident {created.json()['id']} is resolved: it cannot move to acknowledged; it is final."
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [({"severity": "sev1"}, "severity"), ({"link": "ftp://x.example.com"}, "link"), ({"status": "resolved"}, "status")],
)
def test_incident_rules(deployer, body, field):
    body = {"serviceId": "svc-demo", "severity": "low", "link": "https://pd.example.com/i/2", **body}
    response = deployer.post("/api/incidents/", body)
    assert response.status_code == 400 and field in response.json()


def test_open_incidents_filter(viewer, deployer):
    deployer.post("/api/incidents/inc-789/resolve/")
    assert viewer.get("/api/incidents/?open=true").json()["results"] == []
    assert [i["id"] for i in viewer.get("/api/incidents/?open=false").json()["results"]] == ["inc-789"]


# --- audit events ---


def test_audit_events_page_by_sequence_and_filter(viewer, admin):
    for n in range(4):
        admin.post("/api/environments/", {"name": f"audit-{n}"})
    page = viewer.get("/api/audit-events/?pageSize=3").json()
    assert [e["seq"] for e in page["results"]] == [1, 2, 3]
    second = viewer.get(page["next"].removeprefix("http://testserver")).json()
    assert [e["seq"] for e in second["results"]] == [4, 5, 6]
    creates = viewer.get("/api/audit-events/?action=environment.create&actor=dev-admin").json()["results"]
    assert len(creates) == 4 and all(e["subjectType"] == "Environment" for e in creates)
    assert [
        e["seq"] for e in viewer.get("/api/audit-events/?subjectType=Release&subjectId=rel-123").json()["results"]
    ] == [1]
    assert viewer.get("/api/audit-events/?since=2030-01-01T00:00:00Z").json()["results"] == []
    assert len(viewer.get("/api/audit-events/?until=2025-01-01T00:00:00Z").json()["results"]) == 1
    assert viewer.get("/api/audit-events/1/").json()["action"] == "deploy.create"
    assert viewer.get("/api/audit-events/?since=yesterday").status_code == 400


def test_tail_starts_a_list_at_its_end_and_reads_back(viewer, admin):
    for n in range(5):
        admin.post("/api/environments/", {"name": f"tail-{n}"})
    head = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    last = viewer.get("/api/audit-events/?tail=true&pageSize=2").json()
    assert [e["seq"] for e in last["results"]] == [head - 1, head]  # the newest, still oldest first
    assert last["next"] is None
    before = viewer.get(last["previous"].removeprefix("http://testserver")).json()
    assert [e["seq"] for e in before["results"]] == [head - 3, head - 2]
    # With filters, the end of the filtered list; any list takes it (releases are newest first: the oldest).
    creates = viewer.get("/api/audit-events/?tail=true&pageSize=1&action=environment.create").json()["results"]
    assert [e["subjectId"] for e in creates] == [Environment.objects.get(name="tail-4").pk]
    oldest = viewer.get("/api/releases/?tail=true&pageSize=1").json()["results"]
    assert [r["id"] for r in oldest] == [Release.objects.order_by("created_at", "id").first().pk]
    refused = viewer.get("/api/audit-events/?tail=yes")
    assert refused.status_code == 400 and refused.json() == {"tail": ["must be true or false."]}
    # With a cursor too (a tail page's own links keep its tail=true): never read as nothing.
    assert viewer.get(last["previous"]).status_code == 200 and "tail=true" in last["previous"]
    refused = viewer.get(last["previous"].replace("tail=true", "tail=yes"))
    assert refused.status_code == 400 and refused.json() == {"tail": ["must be true or false."]}


def test_audit_events_are_read_only(admin):
    assert admin.post("/api/audit-events/", {"actor": "x"}).status_code == 405
    assert admin.delete("/api/audit-events/1/").status_code == 405
