"""Fixtures are restores: they load whole or not at all, and every invariant holds for them too."""

import copy
import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditEvent
from incidents.models import Incident
from releases.models import Release, RunLogEntry, WorkflowRun
from services.models import Environment, Service
from tests.api.conftest import Api

DEMO = json.loads((Path(__file__).parent.parent / "fixtures" / "demo.json").read_text())


def write_fixture(tmp_path, objects):
    path = tmp_path / "fixture.json"
    path.write_text(json.dumps(objects))
    return str(path)


def edited_demo(pk, **fields):
    objects = copy.deepcopy(DEMO)
    (obj,) = [o for o in objects if o["pk"] == pk]
    if "new_pk" in fields:
        obj["pk"] = fields.pop("new_pk")
    obj["fields"].update(fields)
    return objects


def test_demo_loads_with_every_rfc_example(shipped_demo):
    assert Service.objects.get(pk="svc-demo").deployment_adapters == ["aws", "fly"]
    assert set(Service.objects.get(pk="svc-demo").environments.values_list("pk", flat=True)) == {
        "env-staging",
        "env-prod",
    }
    assert Environment.objects.get(pk="env-prod").policy_refs == [
        "policy:change-window:weekday",
        "policy:requires:env-staging",
        "policy:incident-gate:critical",
    ]
    release = Release.objects.get(pk="rel-123")
    assert (release.status, release.sha, release.environment_id) == ("Active", "9f3b7de", "env-staging")
    run = WorkflowRun.objects.get(pk="run-456")
    assert (run.kind, run.actor, run.state) == ("Deploy", "alice@blackroad.io", "Succeeded")
    assert list(run.logs.values_list("message", "meta")) == [("Plan generated", {"steps": 4})]
    assert Incident.objects.get(pk="inc-789").severity == "high"
    assert AuditEvent.objects.get(seq=1).action == "deploy.create"


def test_load_demo_fills_an_empty_database_and_leaves_one_with_data_alone(db, capsys):
    call_command("load_demo")
    assert Service.objects.count() == 1
    call_command("load_demo")
    assert "not loaded" in capsys.readouterr().out
    assert Service.objects.count() == 1
    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["deploy.create", "fixture.load"]


INVALID = [
    (edited_demo("svc-demo", new_pk="service-demo"), "services.Service(pk=service-demo)", "must start with 'svc-'"),
    (edited_demo("env-prod", region=""), "services.Environment(pk=env-prod)", "region: is required for a production"),
    (edited_demo("env-prod", policy_refs=["change-window"]), "services.Environment(pk=env-prod)", "policy_refs:"),
    (edited_demo("svc-demo", deployment_adapters=["aws", "heroku"]), "services.Service(pk=svc-demo)", "'heroku'"),
    (
        edited_demo("svc-demo", environments=["env-staging", "env-gone"]),
        "services.Service(pk=svc-demo)",
        "unknown environment 'env-gone'",
    ),
    (edited_demo("rel-123", sha="XYZ"), "releases.Release(pk=rel-123)", "sha: must be 7-40 lower-case hex"),
    (
        edited_demo("svc-demo", environments=["env-prod"]),
        "releases.Release(pk=rel-123)",
        "'env-staging' is not linked to service 'svc-demo'",
    ),
    (edited_demo("rel-123", status="Shipped"), "releases.Release(pk=rel-123)", "status:"),
    (edited_demo("rel-123", activated_at=None), "releases.Release(pk=rel-123)", "Active release has an activation"),
    (
        edited_demo("run-456", finished_at="2024-10-01T18:00:00Z"),
        "releases.WorkflowRun(pk=run-456)",
        "finishedAt must not be before startedAt",
    ),
    (edited_demo("run-456", kind="Promote"), "releases.WorkflowRun(pk=run-456)", "names its source release"),
    (edited_demo("inc-789", severity="sev1"), "incidents.Incident(pk=inc-789)", "severity:"),
    (edited_demo("inc-789", link="ftp://x.example.com"), "incidents.Incident(pk=inc-789)", "absolute http(s) URL"),
    (edited_demo("inc-789", acknowledged_at=None), "incidents.Incident(pk=inc-789)", "acknowledgement time"),
]


def _log_and_audit_cases():
    log = copy.deepcopy(DEMO)
    next(o for o in log if o["model"] == "releases.runlogentry")["fields"]["level"] = "fatal"
    audit = copy.deepcopy(DEMO)
    next(o for o in audit if o["model"] == "audit.auditevent")["fields"]["action"] = "Deploy"
    second_rollout = copy.deepcopy(DEMO)
    second_rollout += [
        {"model": "releases.release", "pk": f"rel-{n}", "fields": {**release_fields, "status": "Promoting"}}
        for n in (1, 2)
        for release_fields in [{"service": "svc-demo", "environment": "env-prod", "sha": "abcdef1", "version": "2"}]
    ]
    return [
        (second_rollout, "releases.Release(pk=rel-2)", "already promoting to this environment"),
        (edited_demo("run-456", started_at="2024-10-01T18:32:00"), "releases.WorkflowRun(pk=run-456)", "time zone"),
        (log, "releases.RunLogEntry(pk=1)", "level:"),
        (audit, "audit.AuditEvent(pk=1)", "action: must be <noun>.<verb>"),
    ]


@pytest.mark.parametrize(("objects", "label", "rule"), INVALID + _log_and_audit_cases())
def test_a_fixture_breaking_an_invariant_is_refused_whole(db, tmp_path, objects, label, rule):
    with pytest.raises(CommandError) as caught:
        call_command("loaddata", write_fixture(tmp_path, objects), verbosity=0)
    message = str(caught.value)
    assert "fixture.json" in message and label in message and rule in message
    for model in (Service, Environment, Release, WorkflowRun, RunLogEntry, Incident, AuditEvent):
        assert not model.objects.exists(), f"{model.__name__} rows survived a refused fixture"


def test_a_restore_cannot_move_a_release_backwards(demo, tmp_path):
    objects = [o for o in edited_demo("rel-123", status="Draft", activated_at=None) if o["pk"] == "rel-123"]
    with pytest.raises(CommandError, match=r"releases.Release\(pk=rel-123\).*is Active: it cannot move to Draft"):
        call_command("loaddata", write_fixture(tmp_path, objects), verbosity=0)
    assert Release.objects.get(pk="rel-123").status == "Active"


def test_a_restore_cannot_rewrite_history(demo, tmp_path):
    objects = [o for o in DEMO if o["model"] == "audit.auditevent"]
    objects[0]["fields"]["actor"] = "mallory"
    with pytest.raises(CommandError, match=r"audit.AuditEvent\(pk=1\) already exists and cannot be rewritten"):
        call_command("loaddata", write_fixture(tmp_path, objects), verbosity=0)
    assert AuditEvent.objects.get(seq=1).actor == "alice@blackroad.io"


def test_a_restore_may_update_what_may_change(demo, tmp_path):
    objects = [o for o in edited_demo("svc-demo", name="Demo Service (renamed)") if o["pk"] == "svc-demo"]
    call_command("loaddata", write_fixture(tmp_path, objects), verbosity=0)
    assert Service.objects.get(pk="svc-demo").name == "Demo Service (renamed)"


def test_a_restore_with_a_secret_in_an_entity_field_is_refused_naming_object_and_field(tmp_path, db):
    objects = edited_demo("rel-123", version="2024.10 Bearer sekritsekrit123")
    with pytest.raises(CommandError) as caught:
        call_command("loaddata", write_fixture(tmp_path, objects), verbosity=0)
    assert "Could not load releases.Release(pk=rel-123)" in str(caught.value)
    assert "version: must not contain a secret (found a bearer token)" in str(caught.value)
    assert "sekritsekrit123" not in str(caught.value)
    assert not Release.objects.exists()


def test_the_demo_read_models_match_history_and_the_index_shows_its_current_releases(demo):
    out = StringIO()
    call_command("check_read_models", stdout=out)
    assert out.getvalue().strip() == "The read models match history."
    assert list(Release.objects.filter(is_current=True).values_list("pk", flat=True)) == ["rel-123"]

    (entry,) = Api("viewer").get("/api/services/index/").json()["results"]
    current = {env["id"]: env["currentRelease"] for env in entry["environments"]}
    assert current["env-prod"] is None
    assert (current["env-staging"]["id"], current["env-staging"]["activatedAt"]) == ("rel-123", "2024-10-01T18:36:12Z")
    assert set(current) == {"env-staging", "env-prod"}
    assert entry["incidents"]["highestOpenSeverity"] == "high"
    assert entry["auditTail"]["seq"] == AuditEvent.objects.filter(service_id="svc-demo").latest("seq").seq
