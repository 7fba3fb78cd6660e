"""The deployment-state read model (`overview.deployment_state`): each change keeps it equal to what history
says, a fixture load recomputes it, `check_read_models` names the first way it differs, and the database
itself refuses two current releases."""

import json
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction

from audit.models import AuditEvent
from incidents import lifecycle as incidents
from incidents.models import Incident
from overview import deployment_state
from overview.models import DeploymentState, ServiceState
from releases import runs, workflows
from releases.models import Release
from services import lifecycle as services
from services.models import Environment, Service

# --- helpers ---


def row(service, environment) -> DeploymentState:
    return DeploymentState.objects.get(service=service, environment=environment)


def fresh(release: Release) -> Release:
    return Release.objects.get(pk=release.pk)


def rolled_out(release: Release, succeeded: bool = True) -> Release:
    """Deploy `release` and end its run as the worker would."""
    run = workflows.deploy(release)
    assert runs.finish(run, succeeded=succeeded)
    return fresh(release)


def consistent() -> None:
    assert list(deployment_state.differences()) == []


def tail_of(service) -> AuditEvent:
    return ServiceState.objects.select_related("audit_tail").get(service=service).audit_tail


@pytest.fixture
def env(make_environment):
    return make_environment()


@pytest.fixture
def svc(make_service, env):
    return make_service(environments=[env])


# --- releases: latest, promoting, current, superseded ---


def test_a_new_release_becomes_the_latest(svc, env, make_release):
    first = make_release(service=svc)
    state = row(svc, env)
    assert (state.latest_id, state.latest_since) == (first.pk, fresh(first).created_at)
    assert (state.current_id, state.current_since, state.promoting_id) == (None, None, None)

    second = make_release(service=svc, version="1.0.1")
    state = row(svc, env)
    assert (state.latest_id, state.latest_since) == (second.pk, fresh(second).created_at)
    consistent()


def test_deploy_makes_the_release_promoting_since_its_run_started(svc, env, make_release):
    release = make_release(service=svc)
    run = workflows.deploy(release)
    run.refresh_from_db()
    state = row(svc, env)
    assert (state.promoting_id, state.promoting_since) == (release.pk, run.started_at)
    assert state.current_id is None and state.latest_id == release.pk
    assert not fresh(release).is_current  # promoting is not current
    consistent()


def test_a_successful_rollout_makes_the_release_current_and_supersedes_the_previous(svc, env, make_release):
    first = rolled_out(make_release(service=svc, version="1"))
    state = row(svc, env)
    assert (state.current_id, state.current_since) == (first.pk, first.activated_at)
    assert (state.promoting_id, state.promoting_since) == (None, None)
    assert (first.is_current, first.superseded_by_id, first.superseded_at) == (True, None, None)
    first_activation = AuditEvent.objects.get(action="release.activate", subject_id=first.pk)
    assert "supersedes" not in first_activation.metadata  # nothing ran there before

    second = rolled_out(make_release(service=svc, version="2"))
    first = fresh(first)
    state = row(svc, env)
    assert (state.current_id, state.current_since) == (second.pk, second.activated_at)
    assert state.promoting_id is None and state.latest_id == second.pk
    assert (second.is_current, second.superseded_by_id) == (True, None)
    assert (first.is_current, first.superseded_by_id, first.superseded_at) == (False, second.pk, second.activated_at)
    activation = AuditEvent.objects.get(action="release.activate", subject_id=second.pk)
    assert activation.metadata["supersedes"] == first.pk
    assert list(Release.objects.filter(is_current=True).values_list("pk", flat=True)) == [second.pk]
    consistent()


def test_a_failed_rollout_clears_promoting_and_leaves_current_alone(svc, env, make_release):
    current = rolled_out(make_release(service=svc, version="1"))
    failed = rolled_out(make_release(service=svc, version="2"), succeeded=False)
    assert failed.status == "Failed"
    state = row(svc, env)
    assert (state.current_id, state.current_since) == (current.pk, current.activated_at)
    assert (state.promoting_id, state.promoting_since) == (None, None)
    assert state.latest_id == failed.pk  # the latest, in any status
    assert fresh(current).is_current and not failed.is_current and failed.superseded_by_id is None
    assert "supersedes" not in AuditEvent.objects.get(action="release.fail", subject_id=failed.pk).metadata
    consistent()


def test_promote_to_another_environment(make_service, make_environment, make_release):
    staging, prod = make_environment(), make_environment()
    svc = make_service(environments=[staging, prod])
    source = rolled_out(make_release(service=svc, environment=staging))

    run = workflows.promote(source, prod)
    run.refresh_from_db()
    target = run.release
    assert (target.environment_id, run.source_release_id) == (prod.pk, source.pk)
    state = row(svc, prod)
    assert (state.latest_id, state.promoting_id, state.promoting_since) == (target.pk, target.pk, run.started_at)
    assert state.current_id is None
    assert row(svc, staging).current_id == source.pk  # the source's environment is not touched

    assert runs.finish(run, succeeded=True)
    target = fresh(target)
    state = row(svc, prod)
    assert (state.current_id, state.current_since, state.promoting_id) == (target.pk, target.activated_at, None)
    # One current release per environment: the source stays current where it runs, superseded by nothing.
    assert fresh(source).is_current and fresh(source).superseded_by_id is None
    assert target.is_current
    assert "supersedes" not in AuditEvent.objects.get(action="release.activate", subject_id=target.pk).metadata
    consistent()


# --- incidents ---


def counts(service) -> tuple:
    state = ServiceState.objects.get(service=service)
    return (state.open_low, state.open_medium, state.open_high, state.open_critical, state.highest_open_severity)


def test_open_incidents_by_severity_follow_create_edit_acknowledge_and_resolve(svc):
    assert counts(svc) == (0, 0, 0, 0, "")
    high = Incident(service=svc, severity="high", link="https://pd.example.com/1")
    high.save()
    assert counts(svc) == (0, 0, 1, 0, "high")
    low = Incident(service=svc, severity="low", link="https://pd.example.com/2")
    low.save()
    assert counts(svc) == (1, 0, 1, 0, "high")

    low.severity = "critical"  # an edit moves it between counts
    low.save()
    assert counts(svc) == (0, 0, 1, 1, "critical")

    incidents.acknowledge(low)  # acknowledged is still open
    assert counts(svc) == (0, 0, 1, 1, "critical")
    incidents.resolve(low)
    assert counts(svc) == (0, 0, 1, 0, "high")
    incidents.resolve(high)
    assert counts(svc) == (0, 0, 0, 0, "")
    consistent()


def test_incidents_count_only_for_their_own_service(make_service):
    burning, quiet = make_service(), make_service()
    Incident(service=burning, severity="medium", link="https://pd.example.com/3").save()
    assert counts(burning) == (0, 1, 0, 0, "medium")
    assert counts(quiet) == (0, 0, 0, 0, "")


# --- the audit tail ---


def test_the_audit_tail_follows_every_event_about_the_service(svc, make_service, make_release):
    other = make_service()
    last = AuditEvent.objects.filter(service_id=svc.pk).latest("seq")
    assert tail_of(svc) == last and last.action == "service.link"  # make_service links it after creating it

    release = make_release(service=svc)
    assert (tail_of(svc).action, tail_of(svc).subject_id) == ("release.create", release.pk)

    services.archive(svc)
    assert tail_of(svc).action == "service.archive"
    services.restore(svc)
    restored = tail_of(svc)
    assert (restored.action, restored.subject_id) == ("service.restore", svc.pk)

    other_tail = tail_of(other)
    Incident(service=svc, severity="low", link="https://pd.example.com/4").save()
    assert tail_of(svc).action == "incident.create" and tail_of(svc).seq > restored.seq
    assert tail_of(other) == other_tail  # an event about another service does not move it
    assert tail_of(svc) == AuditEvent.objects.filter(service_id=svc.pk).latest("seq")
    consistent()


# --- links, from either side ---


def linked_rows() -> set[tuple[str, str]]:
    return set(DeploymentState.objects.values_list("service_id", "environment_id"))


def test_linking_from_the_service_side_creates_and_removes_rows(make_service, make_environment):
    a, b, c = make_environment(), make_environment(), make_environment()
    svc = make_service(environments=[a])
    assert linked_rows() == {(svc.pk, a.pk)}
    svc.environments.add(b, c)
    assert linked_rows() == {(svc.pk, a.pk), (svc.pk, b.pk), (svc.pk, c.pk)}
    assert row(svc, b).latest_id is None and row(svc, b).current_id is None
    svc.environments.remove(b)
    assert linked_rows() == {(svc.pk, a.pk), (svc.pk, c.pk)}
    svc.environments.clear()
    assert linked_rows() == set()
    consistent()


def test_linking_from_the_environment_side_creates_and_removes_rows(make_service, make_environment):
    env = make_environment()
    one, two, three = (make_service(environments=[]) for _ in range(3))
    env.services.add(one, two, three)
    assert linked_rows() == {(one.pk, env.pk), (two.pk, env.pk), (three.pk, env.pk)}
    env.services.remove(two)
    assert linked_rows() == {(one.pk, env.pk), (three.pk, env.pk)}
    other = make_environment()
    one.environments.add(other)
    env.services.clear()
    assert linked_rows() == {(one.pk, other.pk)}  # only that environment's rows
    consistent()


@pytest.mark.parametrize("side", ["service", "environment"])
def test_relinking_an_environment_with_old_releases_recomputes_its_row_from_them(
    side, make_service, make_environment, make_release
):
    env = make_environment()
    svc = make_service(environments=[env])
    current = rolled_out(make_release(service=svc, version="1"))
    latest = make_release(service=svc, version="2")
    # The releases pin the link (unlinking is refused); a link dropped behind the model's back (a repair by
    # hand, an old restore) is the one way to lose it, and its row with it.
    Service.environments.through.objects.filter(service=svc, environment=env).delete()
    DeploymentState.objects.filter(service=svc, environment=env).delete()
    assert linked_rows() == set()

    if side == "service":
        Service.objects.get(pk=svc.pk).environments.add(env)
    else:
        Environment.objects.get(pk=env.pk).services.add(svc)

    state = row(svc, env)
    assert (state.current_id, state.current_since) == (current.pk, current.activated_at)
    assert (state.latest_id, state.latest_since) == (latest.pk, fresh(latest).created_at)
    consistent()


# --- fixture loads: derived fields recomputed ---


def fixture_objects(stale: str | None = None) -> list[dict]:
    """A service in one environment with releases in several states: activation order (b, c, a) is neither
    id order nor creation order; d failed; e is a draft; f is rolling out, its run started at 09:01 on the
    6th. With `stale`, the fixture says (as an old dump would) that release is current, besides a, which it
    also says is: believed, that is two current releases, which the database refuses."""

    def release(pk, status, created, activated=None):
        fields = {
            "service": "svc-fx",
            "environment": "env-fx",
            "sha": "abcdef1",
            "version": pk,
            "status": status,
            "created_at": created,
            "activated_at": activated,
        }
        if stale and pk in (stale, "rel-fx-a"):
            fields.update(is_current=True, superseded_by=None, superseded_at=None)
        return {"model": "releases.release", "pk": pk, "fields": fields}

    return [
        {
            "model": "services.environment",
            "pk": "env-fx",
            "fields": {"name": "fx", "created_at": "2024-09-01T09:00:00Z"},
        },
        {
            "model": "services.service",
            "pk": "svc-fx",
            "fields": {
                "name": "Fixture service",
                "repo": "github.com/acme/fx",
                "deployment_adapters": ["k8s"],
                "environments": ["env-fx"],
                "created_at": "2024-09-01T09:05:00Z",
            },
        },
        release("rel-fx-a", "Active", "2024-10-01T10:00:00Z", "2024-10-03T12:00:00Z"),
        release("rel-fx-b", "Active", "2024-10-01T11:00:00Z", "2024-10-01T12:00:00Z"),
        release("rel-fx-c", "Active", "2024-10-01T09:00:00Z", "2024-10-02T12:00:00.250000Z"),
        release("rel-fx-d", "Failed", "2024-10-04T09:00:00Z"),
        release("rel-fx-e", "Draft", "2024-10-05T09:00:00Z"),
        release("rel-fx-f", "Promoting", "2024-10-06T09:00:00Z"),
        {
            "model": "releases.workflowrun",
            "pk": "run-fx",
            "fields": {
                "kind": "Deploy",
                "release": "rel-fx-f",
                "actor": "alice@example.com",
                "state": "Running",
                "started_at": "2024-10-06T09:01:00Z",
            },
        },
        {
            "model": "incidents.incident",
            "pk": "inc-fx",
            "fields": {
                "service": "svc-fx",
                "severity": "medium",
                "status": "triggered",
                "started_at": "2024-10-02T03:20:00Z",
                "link": "https://pd.example.com/fx",
            },
        },
    ]


def load(tmp_path, objects) -> None:
    path = tmp_path / "fixture.json"
    path.write_text(json.dumps(objects))
    call_command("loaddata", str(path), verbosity=0)


def assert_succession_of_the_fixture() -> None:
    a, b, c = (Release.objects.get(pk=f"rel-fx-{x}") for x in "abc")
    assert list(Release.objects.filter(is_current=True).values_list("pk", flat=True)) == ["rel-fx-a"]
    assert (b.superseded_by_id, b.superseded_at) == ("rel-fx-c", c.activated_at)
    assert (c.superseded_by_id, c.superseded_at) == ("rel-fx-a", a.activated_at)
    assert (a.superseded_by_id, a.superseded_at) == (None, None)
    assert Release.objects.filter(status__in=["Failed", "Draft"], superseded_by__isnull=False).count() == 0
    state = DeploymentState.objects.get(service_id="svc-fx", environment_id="env-fx")
    assert (state.current_id, state.current_since) == ("rel-fx-a", datetime(2024, 10, 3, 12, tzinfo=UTC))
    assert (state.latest_id, state.latest_since) == ("rel-fx-f", Release.objects.get(pk="rel-fx-f").created_at)
    assert (state.promoting_id, state.promoting_since) == ("rel-fx-f", datetime(2024, 10, 6, 9, 1, tzinfo=UTC))
    assert counts("svc-fx") == (0, 1, 0, 0, "medium")
    consistent()


def test_a_fixture_load_recomputes_the_read_model(db, tmp_path):
    load(tmp_path, fixture_objects())
    assert_succession_of_the_fixture()


def test_a_stale_is_current_in_a_fixture_is_not_believed(db, tmp_path):
    load(tmp_path, fixture_objects(stale="rel-fx-b"))
    assert not Release.objects.get(pk="rel-fx-b").is_current
    assert_succession_of_the_fixture()


def test_loading_the_same_fixture_again_over_its_data_keeps_it_consistent(db, tmp_path):
    load(tmp_path, fixture_objects())
    load(tmp_path, fixture_objects(stale="rel-fx-c"))
    assert_succession_of_the_fixture()


def test_read_model_rows_in_a_dump_are_not_loaded_but_recomputed(db, tmp_path):
    stale = [
        {"model": "overview.servicestate", "pk": "svc-fx", "fields": {"open_high": 99, "audit_tail": 999999}},
        {
            "model": "overview.deploymentstate",
            "pk": 424242,
            "fields": {"service": "svc-fx", "environment": "env-fx", "current": "rel-fx-b"},
        },
    ]
    load(tmp_path, fixture_objects() + stale)  # the tail points at no event: loaded, it would break a key
    assert not DeploymentState.objects.filter(pk=424242).exists()
    assert_succession_of_the_fixture()


# --- check_read_models and rebuild_read_models ---


@pytest.fixture
def history(make_service, make_environment, make_release):
    """A service in two environments: in the first, two rollouts (the second current); an open incident."""
    first_env, second_env = make_environment(), make_environment()
    svc = make_service(environments=[first_env, second_env])
    old = rolled_out(make_release(service=svc, environment=first_env, version="1"))
    new = rolled_out(make_release(service=svc, environment=first_env, version="2"))
    Incident(service=svc, severity="high", link="https://pd.example.com/5").save()
    return {"svc": svc, "env": first_env, "other_env": second_env, "old": old, "new": new}


def check() -> str:
    out = StringIO()
    call_command("check_read_models", stdout=out)
    return out.getvalue()


def test_check_read_models_passes_on_a_consistent_database(history):
    assert check().strip() == "The read models match history."


def corrupt_is_current(h):
    Release.objects.filter(pk=h["new"].pk).update(is_current=False)
    return f"release {h['new'].pk}: is_current is False in the stored state, True recomputed from history"


def corrupt_current(h):
    DeploymentState.objects.filter(service=h["svc"], environment=h["env"]).update(current=h["old"].pk)
    return (
        f"deployment {h['svc'].pk} in {h['env'].pk}: current_id is {h['old'].pk!r} in the stored state, "
        f"{h['new'].pk!r} recomputed from history"
    )


def corrupt_open_high(h):
    ServiceState.objects.filter(service=h["svc"]).update(open_high=5)
    return f"service {h['svc'].pk}: open_high is 5 in the stored state, 1 recomputed from history"


def delete_a_row(h):
    DeploymentState.objects.filter(service=h["svc"], environment=h["other_env"]).delete()
    return f"deployment {h['svc'].pk} in {h['other_env'].pk}: missing from the stored state"


@pytest.mark.parametrize("corrupt", [corrupt_is_current, corrupt_current, corrupt_open_high, delete_a_row])
def test_check_read_models_names_the_first_difference_and_rebuild_repairs_it(history, corrupt):
    expected = corrupt(history)
    with pytest.raises(CommandError) as caught:
        check()
    assert caught.value.returncode == 1
    message = str(caught.value)
    assert message == (
        f"the read models differ from history: {expected}. `manage.py rebuild_read_models` recomputes them."
    )

    call_command("rebuild_read_models", verbosity=0)
    assert check().strip() == "The read models match history."
    svc, env = history["svc"], history["env"]
    assert row(svc, env).current_id == history["new"].pk
    assert fresh(history["new"]).is_current and not fresh(history["old"]).is_current
    assert fresh(history["old"]).superseded_by_id == history["new"].pk
    assert ServiceState.objects.get(service=svc).open_high == 1
    assert linked_rows() == {(svc.pk, env.pk), (svc.pk, history["other_env"].pk)}


def test_check_read_models_counts_the_other_differences(history):
    first = corrupt_is_current(history)
    corrupt_open_high(history)
    delete_a_row(history)
    with pytest.raises(CommandError) as caught:
        check()
    assert f": {first} (2 more differences)." in str(caught.value)


def test_rebuild_read_models_reports_what_it_wrote(history):
    out = StringIO()
    call_command("rebuild_read_models", stdout=out)
    assert "2 releases in a succession, 2 deployment states, 1 service states." in out.getvalue()


# --- the database's own guard ---


def refused_by_the_database(update, constraint: str, sqlite_says: str) -> None:
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        update()
    said = sqlite_says if connection.vendor == "sqlite" else constraint
    assert said in str(caught.value), str(caught.value)


def test_the_database_refuses_two_current_releases_in_one_environment(history):
    old = history["old"].pk
    refused_by_the_database(
        lambda: Release.objects.filter(pk=old).update(is_current=True, superseded_by=None, superseded_at=None),
        "releases_release_one_current",
        "UNIQUE constraint failed: releases_release.service_id, releases_release.environment_id",
    )
    assert list(Release.objects.filter(is_current=True).values_list("pk", flat=True)) == [history["new"].pk]


def test_the_database_refuses_is_current_on_a_release_that_is_not_active(svc, make_release):
    draft = make_release(service=svc)
    refused_by_the_database(
        lambda: Release.objects.filter(pk=draft.pk).update(is_current=True),
        "releases_release_succession_active_only",
        "CHECK constraint failed: releases_release_succession_active_only",
    )
    assert not fresh(draft).is_current
