"""The services index: latest and current release per environment, open incidents, audit tail."""

import datetime as dt

import time_machine
from django.utils import timezone

from incidents import lifecycle as incidents
from incidents.models import Incident
from overview import services_index
from releases import lifecycle
from releases.models import Release
from services.models import Service
from tests.conftest import loaded_once

demo = loaded_once("demo")  # every test here runs on the demo data, loaded once for the module


def entry(viewer, service_id="svc-demo"):
    (found,) = [s for s in viewer.get("/api/services/index/").json()["results"] if s["id"] == service_id]
    return found


def rollout(version, env="env-prod", activate=True):
    release = Release(service_id="svc-demo", environment_id=env, sha="abcdef1", version=version)
    release.save()
    lifecycle.begin_rollout(release)
    (lifecycle.activate if activate else lifecycle.fail)(release)
    return release


def test_demo_entry(viewer):
    found = entry(viewer)
    staging = next(e for e in found["environments"] if e["id"] == "env-staging")
    assert staging["latestRelease"] == {
        "id": "rel-123",
        "version": "2024.10.01",
        "sha": "9f3b7de",
        "status": "Active",
        "createdAt": "2024-10-01T18:30:00Z",
    }
    assert staging["currentRelease"] == {
        "id": "rel-123",
        "version": "2024.10.01",
        "sha": "9f3b7de",
        "status": "Active",
        "activatedAt": "2024-10-01T18:36:12Z",
    }
    prod = next(e for e in found["environments"] if e["id"] == "env-prod")
    assert prod == {"id": "env-prod", "name": "prod", "latestRelease": None, "currentRelease": None}
    assert found["incidents"] == {
        "open": {"low": 0, "medium": 0, "high": 1, "critical": 0},
        "highestOpenSeverity": "high",
    }
    assert found["auditTail"]["action"] == "deploy.create" and found["auditTail"]["seq"] == 1


def test_latest_and_current_differ_when_the_newest_rollout_failed(viewer):
    good = rollout("1.0")
    rollout("1.1", activate=False)
    draft = Release(service_id="svc-demo", environment_id="env-prod", sha="abcdef1", version="1.2")
    draft.save()
    prod = next(e for e in entry(viewer)["environments"] if e["id"] == "env-prod")
    assert prod["latestRelease"]["id"] == draft.id and prod["latestRelease"]["status"] == "Draft"
    assert prod["currentRelease"]["id"] == good.id


def test_current_is_the_latest_activation_not_the_latest_creation(viewer):
    older = Release(
        service_id="svc-demo",
        environment_id="env-prod",
        sha="abcdef1",
        version="older",
        created_at=timezone.now() - dt.timedelta(days=1),
    )
    older.save()
    newer = rollout("newer")
    lifecycle.begin_rollout(older)
    lifecycle.activate(older)  # a rollback: the older build activated last
    prod = next(e for e in entry(viewer)["environments"] if e["id"] == "env-prod")
    assert prod["currentRelease"]["id"] == older.id and prod["latestRelease"]["id"] == newer.id


def test_open_incident_counts_and_highest_severity(viewer):
    for severity in ("low", "critical", "critical"):
        Incident(service_id="svc-demo", severity=severity, link="https://pd.example.com/x").save()
    resolved = Incident(service_id="svc-demo", severity="critical", link="https://pd.example.com/y")
    resolved.save()
    incidents.resolve(resolved)
    assert entry(viewer)["incidents"] == {
        "open": {"low": 1, "medium": 0, "high": 1, "critical": 2},
        "highestOpenSeverity": "critical",
    }


def test_audit_tail_follows_the_services_latest_event(viewer):
    rollout("2.0")
    tail = entry(viewer)["auditTail"]
    assert tail["action"] == "release.activate"


def test_a_service_with_nothing_yet(viewer, admin):
    admin.post(
        "/api/services/",
        {"id": "svc-new", "name": "New", "repo": "github.com/a/new", "adapters": {"deployments": ["fly"]}},
    )
    found = entry(viewer, "svc-new")
    assert found["environments"] == [] and found["incidents"]["highestOpenSeverity"] is None
    assert found["auditTail"]["action"] == "service.create"


def test_archived_services_leave_the_index(viewer, admin):
    admin.delete("/api/services/svc-demo/")
    assert viewer.get("/api/services/index/").json()["results"] == []
    assert [s["id"] for s in viewer.get("/api/services/index/?archived=true").json()["results"]] == ["svc-demo"]


def test_a_page_is_served_from_cache_until_anything_changes(viewer, admin):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    first = viewer.get("/api/services/index/").json()
    with CaptureQueriesContext(connection) as captured:
        again = viewer.get("/api/services/index/").json()
    assert again == first and len(captured) == 1  # the trail's head, nothing else
    admin.patch("/api/services/svc-demo/", {"name": "Renamed"})
    assert entry(viewer)["name"] == "Renamed"  # the change wrote an event, so the head moved on
    rollout("3.0")
    prod = next(e for e in entry(viewer)["environments"] if e["id"] == "env-prod")
    assert prod["currentRelease"]["version"] == "3.0"


def test_the_cache_can_be_turned_off(viewer, settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.INDEX_CACHE = False
    viewer.get("/api/services/index/")
    with CaptureQueriesContext(connection) as captured:
        viewer.get("/api/services/index/")
    # the page of services, their deployment states, their service states: no head, no cache
    assert len(captured) == 3, [q["sql"] for q in captured]


def test_times_and_text_are_written_as_the_api_writes_them(viewer):
    # The database writes the entries' JSON (controlplane.db.json_sql): times as rfc3339() prints them, with a
    # fraction only when there is one, and text escaped as JSON, on SQLite and PostgreSQL alike.
    with time_machine.travel(dt.datetime(2025, 3, 30, 0, 59, 59, 5, tzinfo=dt.UTC), tick=False):
        fraction = Release(service_id="svc-demo", environment_id="env-prod", sha="abcdef1", version="3.0")
        fraction.save()
    with time_machine.travel(dt.datetime(2025, 3, 30, 1, 0, tzinfo=dt.UTC), tick=False):
        lifecycle.begin_rollout(fraction)
        lifecycle.activate(fraction)
    Service.objects.filter(pk="svc-demo").update(name='a "quoted" \\ name, é ✓', repo="tab\there")
    found = entry(viewer)
    prod = next(e for e in found["environments"] if e["id"] == "env-prod")
    assert prod["latestRelease"]["createdAt"] == "2025-03-30T00:59:59.000005Z"
    assert prod["currentRelease"]["activatedAt"] == "2025-03-30T01:00:00Z"
    assert (found["name"], found["repo"]) == ('a "quoted" \\ name, é ✓', "tab\there")


def _keys(value):
    """A written entry's keys, nested as services_index.ENTRY_KEYS holds them (a list's by its first object)."""
    if isinstance(value, list):
        return _keys(value[0]) if value else None
    if isinstance(value, dict):
        return tuple((key, _keys(each)) for key, each in value.items())
    return None


def test_the_entry_keys_the_index_declares_are_the_ones_the_database_writes(viewer):
    # GraphQL splices an entry only when the document asks for ENTRY_KEYS: they must be what is written.
    rollout("3.1")  # every object of the demo's entry present: both releases in prod, a tail
    found = entry(viewer)
    found["environments"] = [e for e in found["environments"] if e["id"] == "env-prod"]
    assert _keys(found) == services_index.ENTRY_KEYS
