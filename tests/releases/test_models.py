import datetime as dt

import pytest
from django.utils import timezone

from controlplane.errors import AppendOnly, DeletionRefused
from controlplane.lifecycle import TransitionRefused
from releases import lifecycle
from releases.models import Release, RunLogEntry, WorkflowRun
from services import lifecycle as service_lifecycle
from tests.conftest import refused

UTC = dt.UTC


# --- releases ---


def test_release_is_created_draft(make_release):
    release = make_release()
    assert release.id.startswith("rel-") and release.status == "Draft" and release.activated_at is None


def test_release_refers_to_existing_service_and_environment(make_service):
    svc = make_service()
    error = refused(Release(service_id="svc-missing", environment_id="env-missing", sha="abcdef1", version="1").save)
    assert "service" in error.message_dict and "environment" in error.message_dict
    assert not Release.objects.filter(service=svc).exists()


def test_release_environment_must_be_one_of_the_services(make_service, make_environment):
    svc, other = make_service(), make_environment(name="elsewhere")
    linked = svc.environments.get().pk
    refused(
        Release(service=svc, environment=other, sha="abcdef1", version="1").save,
        "environment",
        f"environment '{other.pk}' is not linked to service '{svc.pk}' (linked: {linked}).",
    )


@pytest.mark.parametrize("sha", ["abc12", "ABCDEF1", "g123456", "a" * 41, ""])
def test_sha_must_be_7_to_40_lower_case_hex(make_service, sha):
    svc = make_service()
    refused(Release(service=svc, environment=svc.environments.get(), sha=sha, version="1").save, "sha")


@pytest.mark.parametrize("field", ["sha", "service", "environment"])
def test_sha_service_and_environment_are_immutable(make_release, make_service, field):
    release = make_release()
    other = make_service()
    new = {"sha": "1234567", "service": other, "environment": other.environments.get()}[field]
    setattr(release, field, new)
    refused(release.save, field, "cannot be changed once set")
    assert Release.objects.get(pk=release.pk).sha == "9f3b7de"


def test_version_is_required_and_at_most_64_characters(make_service):
    svc = make_service()
    env = svc.environments.get()
    refused(Release(service=svc, environment=env, sha="abcdef1", version=" ").save, "version", "blank")
    refused(Release(service=svc, environment=env, sha="abcdef1", version="v" * 65).save, "version", "at most 64")


def test_version_can_change_only_while_draft(make_release):
    release = make_release()
    release.version = "1.0.1"
    release.save()
    lifecycle.begin_rollout(release)
    release.version = "1.0.2"
    refused(release.save, "version", "only while the release is Draft (it is Promoting)")


def test_release_cannot_be_created_in_another_status(make_service):
    svc = make_service()
    release = Release(service=svc, environment=svc.environments.get(), sha="abcdef1", version="1", status="Active")
    refused(release.save, "status", "created Draft")


def test_status_cannot_be_edited_directly(make_release):
    release = make_release()
    release.status = "Promoting"
    refused(release.save, "status", "changes only by deploy and promote")
    assert Release.objects.get(pk=release.pk).status == "Draft"


def test_releases_in_archived_services_or_environments_are_refused(make_service):
    svc = make_service()
    env = svc.environments.get()
    service_lifecycle.archive(env)
    refused(Release(service=svc, environment=env, sha="abcdef1", version="1").save, "environment", "archived")
    service_lifecycle.archive(svc)
    refused(Release(service=svc, environment=env, sha="abcdef1", version="1").save, "service", "archived")


def test_releases_are_never_deleted(make_release):
    release = make_release()
    with pytest.raises(DeletionRefused):
        release.delete()
    with pytest.raises(DeletionRefused):
        Release.objects.all().delete()


# --- the status machine ---


def test_rollout_moves_draft_to_promoting_to_active(make_release):
    release = make_release()
    lifecycle.begin_rollout(release)
    assert release.status == "Promoting"
    lifecycle.activate(release)
    stored = Release.objects.get(pk=release.pk)
    assert stored.status == "Active" and stored.activated_at is not None


def test_rollout_can_fail(make_release):
    release = lifecycle.begin_rollout(make_release())
    lifecycle.fail(release)
    assert Release.objects.get(pk=release.pk).status == "Failed"


@pytest.mark.parametrize(
    ("moves", "refused_move", "message"),
    [
        ([], lifecycle.activate, "is Draft: it cannot move to Active; it can move to Promoting."),
        ([], lifecycle.fail, "is Draft: it cannot move to Failed; it can move to Promoting."),
        ([lifecycle.begin_rollout], lifecycle.begin_rollout, "is Promoting: it cannot move to Promoting"),
        ([lifecycle.begin_rollout, lifecycle.activate], lifecycle.begin_rollout, "is Active: it cannot move"),
        ([lifecycle.begin_rollout, lifecycle.activate], lifecycle.fail, "it is final."),
        ([lifecycle.begin_rollout, lifecycle.fail], lifecycle.activate, "is Failed: it cannot move to Active"),
    ],
)
def test_illegal_moves_are_conflicts_that_say_what_is_allowed(make_release, moves, refused_move, message):
    release = make_release()
    for move in moves:
        move(release)
    before = Release.objects.get(pk=release.pk).status
    with pytest.raises(TransitionRefused, match=message.replace("(", r"\(").replace(")", r"\)")):
        refused_move(release)
    assert Release.objects.get(pk=release.pk).status == before


def test_a_stale_copy_cannot_move_a_release_twice(make_release):
    release = make_release()
    stale = Release.objects.get(pk=release.pk)
    lifecycle.begin_rollout(release)
    with pytest.raises(TransitionRefused, match="is Promoting"):
        lifecycle.begin_rollout(stale)


def test_one_promoting_release_per_service_and_environment(make_release):
    first = make_release()
    second = make_release(service=first.service)
    lifecycle.begin_rollout(first)
    with pytest.raises(TransitionRefused, match="already promoting"):
        lifecycle.begin_rollout(second)
    assert Release.objects.get(pk=second.pk).status == "Draft"
    lifecycle.activate(first)
    lifecycle.begin_rollout(second)  # free again once the first finished


# --- workflow runs ---


def run(release, **fields):
    fields = {"kind": "Deploy", "actor": "alice@example.com", **fields}
    return WorkflowRun(release=release, **fields)


def test_run_is_created_running_with_utc_times(make_release):
    r = run(make_release(), started_at=dt.datetime(2024, 10, 1, 20, 32, tzinfo=dt.timezone(dt.timedelta(hours=2))))
    r.save()
    stored = WorkflowRun.objects.get(pk=r.pk)
    assert stored.id.startswith("run-") and stored.state == "Running" and stored.finished_at is None
    assert stored.started_at == dt.datetime(2024, 10, 1, 18, 32, tzinfo=UTC)


def test_naive_times_are_refused(make_release):
    refused(run(make_release(), started_at=dt.datetime(2024, 10, 1, 18, 32)).save, "started_at", "time zone")


def test_finished_before_started_is_refused(make_release):
    now = timezone.now()
    r = run(make_release(), started_at=now, finished_at=now - dt.timedelta(seconds=1), state="Succeeded")
    refused(r.save, contains="finishedAt must not be before startedAt")


@pytest.mark.parametrize(("state", "finished"), [("Running", True), ("Succeeded", False), ("Failed", False)])
def test_finish_time_matches_state(make_release, state, finished):
    r = run(make_release(), state=state, finished_at=timezone.now() if finished else None)
    refused(r.save, contains="A running run has no finish time; a finished run has one.")


def test_kind_and_actor_are_required(make_release):
    release = make_release()
    refused(run(release, kind="Rollback").save, "kind")
    refused(run(release, actor=" ").save, "actor", "authenticated principal")


def test_promote_run_names_its_source_and_deploy_does_not(make_release):
    source = make_release()
    refused(run(make_release(service=source.service), kind="Promote").save, contains="names its source release")
    refused(run(source, source_release=source).save, contains="names its source release")


def test_promote_source_must_be_same_service_and_sha_in_another_environment(make_release, make_environment):
    source = make_release()
    svc = source.service
    prod = make_environment(name="prod-x", region="r", cluster="c")
    svc.environments.add(prod)
    refused(
        run(make_release(service=svc, environment=prod, sha="1111111"), kind="Promote", source_release=source).save,
        "source_release",
        "same service and sha",
    )
    refused(
        run(make_release(service=svc, environment=source.environment), kind="Promote", source_release=source).save,
        "source_release",
        "another environment",
    )
    run(make_release(service=svc, environment=prod), kind="Promote", source_release=source).save()


def test_finished_run_is_final_and_who_started_it_never_changes(make_release):
    r = run(make_release())
    r.save()
    r.actor = "mallory"
    refused(r.save, "actor", "cannot be changed")
    r.actor = "alice@example.com"
    r.state, r.finished_at = "Succeeded", timezone.now()
    r.save()
    r.state = "Failed"
    refused(r.save, "state", "has finished (Succeeded)")


# --- run log entries ---


def test_log_entries_are_structured_and_append_only(make_release):
    r = run(make_release())
    r.save()
    entry = RunLogEntry(run=r, level="info", message="Plan generated", meta={"steps": 4})
    entry.save()
    refused(RunLogEntry(run=r, level="fatal", message="x").save, "level")
    refused(RunLogEntry(run=r, message="x", meta=["not", "an", "object"]).save, "meta", "JSON object")
    refused(RunLogEntry(run=r, message=" ").save, "message", "blank")
    entry.message = "rewritten"
    with pytest.raises(AppendOnly):
        entry.save()
    with pytest.raises(AppendOnly):
        entry.delete()
    assert RunLogEntry.objects.get(pk=entry.pk).message == "Plan generated"


def test_a_finished_runs_log_is_closed(make_release):
    now = timezone.now()
    r = run(make_release(), state="Failed", started_at=now, finished_at=now)
    r.save()
    refused(RunLogEntry(run=r, message="late").save, "run", "its log is closed")
