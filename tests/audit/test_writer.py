"""Exactly one event per change, for every write path; none for refused or rolled-back changes."""

import subprocess
import sys

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import transaction

from audit.models import AuditEvent
from controlplane.errors import DeletionRefused
from controlplane.identity.context import acting_as
from incidents import lifecycle as incident_lifecycle
from incidents.models import Incident
from releases import lifecycle
from services import lifecycle as service_lifecycle
from services.models import Environment, Service
from tests.conftest import sign_in


def test_creating_a_service_writes_one_event_with_what_was_created(trail):
    with acting_as("test"):
        Service(id="svc-pay", name="Payments", repo="github.com/acme/pay", deployment_adapters=["k8s"]).save()
    (e,) = trail.new()
    assert (e.action, e.subject_type, e.subject_id, e.actor) == ("service.create", "Service", "svc-pay", "system:test")
    assert e.metadata == {"name": "Payments", "repo": "github.com/acme/pay", "adapters": ["k8s"]}


def test_an_update_records_the_changed_fields_only(make_service, trail):
    svc = make_service()
    trail.new()
    before = svc.name
    svc.name = "Renamed"
    svc.save()
    (e,) = trail.new()
    assert e.action == "service.update" and e.metadata == {"changes": {"name": [before, "Renamed"]}}


def test_saving_without_a_change_writes_nothing(make_service, trail):
    svc = make_service()
    trail.new()
    svc.save()
    assert trail.new() == []


def test_a_refused_change_writes_nothing(make_service, trail):
    svc = make_service()
    trail.new()
    svc.deployment_adapters = ["heroku"]
    with pytest.raises(ValidationError):
        svc.save()
    with pytest.raises(ValidationError), transaction.atomic():
        Environment(name="prod").save()  # production without region and cluster
    with pytest.raises(DeletionRefused):
        svc.delete()
    assert trail.new() == []


def test_a_rolled_back_change_takes_its_event_with_it(make_service, trail, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as mirrored, pytest.raises(RuntimeError), transaction.atomic():
        Environment(name="doomed").save()
        raise RuntimeError("something later in the request failed")
    assert trail.new() == [] and not Environment.objects.filter(name="doomed").exists()
    assert mirrored == []  # nothing scheduled for the JSON Lines file either


def test_archive_and_restore_are_their_own_actions(make_environment, trail):
    env = make_environment()
    trail.new()
    service_lifecycle.archive(env)
    service_lifecycle.restore(env)
    assert trail.actions() == [("environment.archive", env.pk), ("environment.restore", env.pk)]


def test_release_moves_are_named_actions_carrying_the_release_context(make_release, trail):
    release = make_release()
    created = trail.new()[-1]
    assert created.action == "release.create" and created.metadata["envId"] == release.environment_id
    lifecycle.begin_rollout(release)
    lifecycle.activate(release)
    events = trail.new()
    assert [e.action for e in events] == ["deploy.create", "release.activate"]
    assert events[0].metadata == {
        "serviceId": release.service_id,
        "envId": release.environment_id,
        "sha": "9f3b7de",
        "version": "1.0.0",
        "from": "Draft",
        "to": "Promoting",
    }


def test_a_refused_move_writes_nothing(make_release, trail):
    release = make_release()
    trail.new()
    with pytest.raises(Exception, match="cannot move"):
        lifecycle.activate(release)
    assert trail.new() == []


def test_incident_moves(make_service, trail):
    inc = Incident(service=make_service(), severity="low", link="https://pd.example.com/1")
    inc.save()
    incident_lifecycle.acknowledge(inc)
    incident_lifecycle.resolve(inc)
    assert [a for a, _ in trail.actions()][-3:] == ["incident.create", "incident.acknowledge", "incident.resolve"]


def test_links_from_either_side_write_one_event_per_service(make_service, make_environment, trail):
    a, b = make_service(), make_service()
    env = make_environment(name="shared")
    trail.new()
    a.environments.add(env)
    a.environments.add(env)  # already linked: no change, no event
    env.services.add(b)  # the reverse side
    a.environments.remove(env)
    b.environments.clear()
    assert trail.actions() == [
        ("service.link", a.pk),
        ("service.link", b.pk),
        ("service.unlink", a.pk),
        ("service.unlink", b.pk),
    ]


def test_the_admin_writes_events_as_the_signed_in_principal(client, demo, trail):
    sign_in(client, "admin")
    response = client.post("/admin/services/environment/add/", {"name": "qa", "policy_refs": ""})
    assert response.status_code == 302
    (e,) = [e for e in trail.new() if e.action == "environment.create"]
    assert e.actor == "dev-admin" and e.metadata["name"] == "qa"


def test_an_invalid_admin_form_writes_nothing(client, demo, trail):
    sign_in(client, "admin")
    client.post("/admin/services/environment/add/", {"name": "prod"})
    assert trail.new() == []


def test_loading_a_fixture_is_one_event_and_restores_its_own_events(trail):
    call_command("loaddata", "fixtures/demo.json", verbosity=0)
    restored, load = trail.new()
    assert (restored.seq, restored.action, restored.actor) == (1, "deploy.create", "alice@blackroad.io")
    assert (load.seq, load.action, load.actor, load.subject_id) == (2, "fixture.load", "system:loaddata", "demo.json")
    assert load.metadata["objects"] == {
        "audit.auditevent": 1,
        "services.changewindow": 1,
        "incidents.incident": 1,
        "releases.release": 1,
        "releases.runlogentry": 1,
        "releases.workflowrun": 1,
        "services.environment": 2,
        "services.service": 1,
    }
    call_command("audit_verify")


def test_a_management_command_acts_as_system_command(tmp_path):
    """A real `manage.py` process on its own database: its changes are attributed to system:<command>."""
    env = {
        "DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cmd.sqlite3'}",
        "CONTROLPLANE_AUDIT_LOG": "",
        "PATH": "/usr/bin:/bin",
    }
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True)
    code = "from services.models import Environment; Environment(name='from-shell').save()"
    subprocess.run([*manage, "shell", "-v0", "-c", code], env=env, check=True)
    show = "from audit.models import AuditEvent; e = AuditEvent.objects.get(); print(e.actor, e.action)"
    out = subprocess.run([*manage, "shell", "-v0", "-c", show], env=env, check=True, capture_output=True, text=True)
    assert out.stdout.split() == ["system:shell", "environment.create"]


def test_every_event_is_hashed_into_the_chain(make_release, trail):
    make_release()
    assert all(len(e.hash) == 64 for e in AuditEvent.objects.all())
    call_command("audit_verify")
