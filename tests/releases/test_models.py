import datetime as dt

import pytest
from django.core.management import call_command
from django.core.management.sql import emit_post_migrate_signal
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from audit.models import AuditEvent
from controlplane import lifecycle as status_moves
from controlplane import triggers
from controlplane.errors import AppendOnly, Conflict, DeletionRefused
from controlplane.lifecycle import TransitionRefused
from releases import lifecycle, runs
from releases.models import Release, RunApproval, RunLogEntry, WorkflowRun
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


def test_saving_a_copy_read_before_a_move_never_writes_the_old_status_back(make_release):
    release = make_release()
    stale = Release.objects.get(pk=release.pk)  # read while Draft
    lifecycle.begin_rollout(release)
    stale.version = "1.0.1"
    with pytest.raises(Conflict, match="is Promoting now"):
        stale.save()
    stored = Release.objects.get(pk=release.pk)
    assert (stored.status, stored.version) == ("Promoting", "1.0.0")


def test_an_edit_writes_the_edited_fields_only(make_release):
    release = make_release()
    release.version = "1.0.1"
    release.save()
    assert Release.objects.filter(pk=release.pk).values_list("status", "version").get() == ("Draft", "1.0.1")


def test_the_activation_time_is_set_by_the_move_never_by_an_edit(make_release):
    """save() never writes what a move stamps, so an edit of it would be audited yet never stored."""
    release = make_release()
    lifecycle.begin_rollout(release)
    lifecycle.activate(release)
    activated = release.activated_at
    events = AuditEvent.objects.count()
    release.activated_at = activated - dt.timedelta(days=1)
    refused(release.save, "activated_at", "is set by deploy and promote, never by editing the release.")
    assert Release.objects.get(pk=release.pk).activated_at == activated
    assert AuditEvent.objects.count() == events  # no event for a change that was never made
    assert not AuditEvent.objects.filter(action="release.update", subject_id=release.pk).exists()
    svc = release.service
    new = Release(service=svc, environment=release.environment, sha="abcdef1", version="2", activated_at=activated)
    refused(new.save, "activated_at", "is set by deploy and promote, never by editing the release.")


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


def rolling_out(release):
    """The release moved to Promoting, as a deploy or promotion does before it creates the run."""
    return lifecycle.begin_rollout(release)


def test_run_is_created_running_with_utc_times(make_release):
    started = dt.datetime(2024, 10, 1, 20, 32, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    r = run(rolling_out(make_release()), started_at=started)
    r.save()
    stored = WorkflowRun.objects.get(pk=r.pk)
    assert stored.id.startswith("run-") and stored.state == "Running" and stored.finished_at is None
    assert stored.started_at == dt.datetime(2024, 10, 1, 18, 32, tzinfo=UTC)


def test_naive_times_are_refused(make_release):
    refused(run(make_release(), started_at=dt.datetime(2024, 10, 1, 18, 32)).save, "started_at", "time zone")


def test_a_run_is_created_running_only(make_release):
    release = make_release()  # Draft
    done = run(release, state="Succeeded", finished_at=timezone.now())
    refused(
        done.save,
        "state",
        "a workflow run is created AwaitingApproval or Running; it moves on only by the workflow engine and approvals",
    )
    refused(run(release, state="Exploded").save, "state", "'Exploded' is not a state; the states are AwaitingApproval")
    assert not WorkflowRun.objects.filter(release=release).exists()


def test_the_database_keeps_finish_times_and_states_together(make_release):
    r = run(rolling_out(make_release()))
    r.save()
    earlier = r.started_at - dt.timedelta(seconds=1)
    changes = [{"state": "Succeeded"}, {"finished_at": timezone.now()}, {"state": "Failed", "finished_at": earlier}]
    for change in changes:
        with pytest.raises(IntegrityError), transaction.atomic():
            WorkflowRun.objects.filter(pk=r.pk).update(**change)
    assert WorkflowRun.objects.get(pk=r.pk).state == "Running"


def test_kind_and_actor_are_required(make_release):
    release = make_release()
    refused(run(release, kind="Redeploy").save, "kind")
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
    run(rolling_out(make_release(service=svc, environment=prod)), kind="Promote", source_release=source).save()


def started(make_release):
    """A release Promoting with its Running run, as a deploy leaves them."""
    release = lifecycle.begin_rollout(make_release())
    r = run(release)
    r.save()
    return release, r


def test_a_run_starts_only_with_its_releases_rollout_and_is_its_only_run(make_release):
    """Runs are created Running together with their release's move to Promoting: a run on a release that is
    not rolling out, or a second one, could never end with its release."""
    release = make_release()  # Draft
    refused(
        run(release).save,
        "release",
        f"release {release.pk} is Draft: a run starts only with its release's rollout (deploy or promote), "
        "while the release is Promoting.",
    )
    lifecycle.begin_rollout(release)
    first = run(release)
    first.save()
    refused(
        run(release).save,
        "release",
        f"release {release.pk} is already being rolled out by run {first.pk}; a rollout has one run.",
    )
    runs.finish(first, succeeded=True)
    refused(run(release).save, "release", f"release {release.pk} is Active: a run starts only")
    assert list(WorkflowRun.objects.filter(release=release).values_list("pk", flat=True)) == [first.pk]


def test_who_started_a_run_never_changes(make_release):
    _, r = started(make_release)
    r.actor = "mallory"
    refused(r.save, "actor", "cannot be changed")


def test_a_runs_state_is_never_edited_so_it_never_ends_without_its_release(make_release):
    release, r = started(make_release)
    r.state, r.finished_at = "Succeeded", timezone.now()
    refused(r.save, "state", "changes only by the workflow engine and approvals, with its release, never by editing")
    r.state = "Running"
    refused(
        r.save,
        "finished_at",
        "is set by the workflow engine and approvals, with its release, never by editing the workflow",
    )
    assert WorkflowRun.objects.get(pk=r.pk).state == "Running"
    assert Release.objects.get(pk=release.pk).status == "Promoting"


@pytest.mark.parametrize(("succeeded", "state", "status"), [(True, "Succeeded", "Active"), (False, "Failed", "Failed")])
def test_a_run_ends_with_its_release(make_release, succeeded, state, status):
    release, r = started(make_release)
    assert runs.finish(r, succeeded, reason="done")
    stored = WorkflowRun.objects.get(pk=r.pk)
    assert (stored.state, Release.objects.get(pk=release.pk).status) == (state, status)
    assert stored.finished_at >= stored.started_at and stored.logs.last().message == "done"
    # The run's own move is not audited; its release's is, naming the run.
    event = AuditEvent.objects.order_by("-seq").first()
    assert event.action == f"release.{'activate' if succeeded else 'fail'}" and event.metadata["runId"] == r.pk
    assert not AuditEvent.objects.filter(subject_type="WorkflowRun").exists()


def test_a_run_ends_once_by_compare_and_swap(make_release):
    release, r = started(make_release)
    stale = WorkflowRun.objects.get(pk=r.pk)
    assert runs.finish(r, succeeded=True)
    assert not runs.finish(stale, succeeded=False)
    with pytest.raises(TransitionRefused, match=r"is Succeeded: it cannot move to Failed; it is final\."):
        lifecycle.end_rollout(stale, succeeded=False)
    assert (WorkflowRun.objects.get(pk=r.pk).state, Release.objects.get(pk=release.pk).status) == (
        "Succeeded",
        "Active",
    )


def test_a_run_whose_release_cannot_end_does_not_end_either(make_release):
    # Its release is still Draft, so it cannot become Active. (Validation refuses such a run now; an older
    # database may hold one, and bulk_create skips validation.)
    (r,) = WorkflowRun.objects.bulk_create([run(make_release(), id="run-orphan")])
    with pytest.raises(TransitionRefused, match="is Draft: it cannot move to Active"):
        runs.finish(r, succeeded=True, reason="done")
    assert WorkflowRun.objects.get(pk=r.pk).state == "Running" and not r.logs.exists()


def test_a_run_is_claimed_once_and_only_its_worker_beats(make_release):
    _, r = started(make_release)
    for field, value in (("claimed_by", "me:1"), ("task_id", "forged"), ("heartbeat_at", timezone.now())):
        setattr(r, field, value)
        refused(r.save, field, "is set by the workflow engine and approvals, with its release, never by editing")
        r.refresh_from_db()
    claimed = runs.claim(r.pk, "host-a:1")
    assert claimed.claimed_by == "host-a:1" and claimed.claimed_at == claimed.heartbeat_at
    assert runs.claim(r.pk, "host-b:2") is None  # a duplicate task
    assert runs.beat(r, "host-a:1") and not runs.beat(r, "host-b:2")
    assert WorkflowRun.objects.get(pk=r.pk).heartbeat_at > claimed.heartbeat_at
    runs.finish(r, succeeded=True)
    assert not runs.beat(r, "host-a:1")  # ended: the heartbeat stops


def test_a_claim_is_whole_in_the_database(make_release):
    _, r = started(make_release)
    for change in ({"claimed_at": timezone.now()}, {"claimed_by": "x:1"}, {"heartbeat_at": timezone.now()}):
        with pytest.raises(IntegrityError), transaction.atomic():
            WorkflowRun.objects.filter(pk=r.pk).update(**change)


# --- run log entries ---


def test_log_entries_are_structured_and_append_only(make_release):
    r = run(rolling_out(make_release()))
    r.save()
    entry = RunLogEntry(run=r, level="info", message="Plan generated", meta={"steps": 4})
    entry.save()
    refused(RunLogEntry(run=r, level="fatal", message="x").save, "level")
    refused(RunLogEntry(run=r, message="x", meta=["not", "an", "object"]).save, "meta", "JSON object")
    refused(RunLogEntry(run=r, message=" ").save, "message", "blank")
    entry.message = "rewritten"
    for attempt in (
        entry.save,
        entry.delete,
        lambda: RunLogEntry.objects.filter(pk=entry.pk).update(message="rewritten"),
        lambda: RunLogEntry.objects.update(level="debug"),
        lambda: RunLogEntry.objects.all().delete(),
    ):
        with pytest.raises(AppendOnly, match="run log entries are"):
            attempt()
    assert RunLogEntry.objects.get(pk=entry.pk).message == "Plan generated"


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE releases_runlogentry SET message = 'rewritten'",
        "DELETE FROM releases_runlogentry",
        "DELETE FROM releases_runlogentry WHERE message = 'Plan generated'",
    ],
)
def test_the_database_itself_refuses_rewriting_a_log(make_release, statement):
    r = run(rolling_out(make_release()))
    r.save()
    RunLogEntry(run=r, message="Plan generated").save()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)
    assert RunLogEntry.objects.get(run=r).message == "Plan generated"


def test_after_every_migrate_every_append_only_table_has_its_triggers(make_release):
    _, r = started(make_release)  # audited: events too
    RunLogEntry(run=r, message="Plan generated").save()
    RunApproval(run=awaiting(make_release), actor="bob", decision="approve").save()
    triggers.uninstall(connection)
    emit_post_migrate_signal(verbosity=0, interactive=False, db=connection.alias)
    assert sorted(triggers.append_only_tables(connection)) == [
        "audit_auditevent",
        "releases_runapproval",
        "releases_runlogentry",
    ]
    for table in ("audit_auditevent", "releases_runlogentry", "releases_runapproval"):
        assert table in triggers.append_only_tables(connection)
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {table}")


def test_flush_empties_the_append_only_tables_and_guards_them_again(transactional_db, make_release):
    _, r = started(make_release)
    RunLogEntry(run=r, message="Plan generated").save()
    call_command("flush", interactive=False, verbosity=0)
    assert not RunLogEntry.objects.exists() and not AuditEvent.objects.exists()
    r = run(rolling_out(make_release()))
    r.save()
    RunLogEntry(run=r, message="again").save()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE releases_runlogentry SET message = 'rewritten'")


def test_a_finished_runs_log_is_closed(make_release):
    _, r = started(make_release)
    runs.finish(r, succeeded=False, reason="gave up")
    refused(RunLogEntry(run=r, message="late").save, "run", "its log is closed")


# --- runs awaiting approval, and their decisions ---


def awaiting(make_release, **fields):
    """A Draft release's run created AwaitingApproval, as a deploy into an environment with approvals does."""
    r = run(make_release(), state="AwaitingApproval", approvals_required=2, **fields)
    r.save()
    return r


def test_a_run_awaits_approval_only_for_a_draft_release_and_only_once(make_release):
    r = awaiting(make_release)
    assert (r.state, r.finished_at, Release.objects.get(pk=r.release_id).status) == ("AwaitingApproval", None, "Draft")
    refused(run(r.release, state="AwaitingApproval").save, "release", f"already has run {r.pk} (AwaitingApproval)")
    _, rolling = started(make_release)
    refused(run(rolling.release, state="AwaitingApproval").save, "release", "a run awaits approval only for a Draft")


@pytest.mark.parametrize("state", ["Rejected", "Expired", "Cancelled"])
def test_the_database_keeps_finish_times_with_the_new_ends(make_release, state):
    r = awaiting(make_release)
    with pytest.raises(IntegrityError), transaction.atomic():
        WorkflowRun.objects.filter(pk=r.pk).update(state=state)  # ended without a finish time
    with pytest.raises(IntegrityError), transaction.atomic():
        WorkflowRun.objects.filter(pk=r.pk).update(finished_at=timezone.now())  # waiting with one
    WorkflowRun.objects.filter(pk=r.pk).update(state=state, finished_at=timezone.now())
    refused(RunLogEntry(run=r, message="late").save, "run", "its log is closed")


def test_a_rollback_run_names_no_source(make_release):
    source = make_release()
    refused(run(rolling_out(make_release()), kind="Rollback", source_release=source).save, contains="names its source")
    r = run(rolling_out(make_release()), kind="Rollback")
    r.save()
    assert WorkflowRun.objects.get(pk=r.pk).kind == "Rollback"


def test_one_decision_per_principal_append_only(make_release):
    r = awaiting(make_release)
    decision = RunApproval(run=r, actor="bob", decision="approve", comment="fine")
    decision.save()
    refused(RunApproval(run=r, actor="carol", decision="maybe").save, "decision")
    refused(RunApproval(run=r, actor=" ", decision="approve").save, "actor", "authenticated principal")
    refused(RunApproval(run=r, actor="carol", decision="reject", comment="x" * 2001).save, "comment")
    with pytest.raises(IntegrityError), transaction.atomic():
        RunApproval.objects.bulk_create([RunApproval(run=r, actor="bob", decision="reject")])
    decision.comment = "rewritten"
    for attempt in (
        decision.save,
        decision.delete,
        lambda: RunApproval.objects.filter(pk=decision.pk).update(decision="reject"),
    ):
        with pytest.raises(AppendOnly):
            attempt()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE releases_runapproval SET decision = 'reject'")
    assert list(r.approvals.values_list("actor", "decision", "comment")) == [("bob", "approve", "fine")]


# --- secrets: input is refused, never stored ---


@pytest.mark.parametrize(
    ("version", "secret", "found"),
    [
        ("Bearer sekrit123", "sekrit123", "a bearer token"),
        ("2024.10 AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE", "an AWS access key id"),
        ("v1 eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl", "c2lnbmF0dXJl", "a JWT"),
    ],
)
def test_a_secret_in_a_release_version_is_refused_not_redacted(make_service, version, secret, found):
    svc = make_service()
    release = Release(service=svc, environment=svc.environments.first(), sha="9f3b7de", version=version)
    error = refused(
        release.save,
        "version",
        f"must not contain a secret (found {found}); the control plane stores no credentials.",
    )
    assert secret not in str(error)
    assert not Release.objects.filter(service=svc).exists()


def test_a_draft_keeps_its_version_when_an_edit_with_a_secret_is_refused(make_release):
    release = make_release(version="1.0.0")
    release.version = "1.0.1 Bearer sekritsekrit123"
    refused(release.save, "version", "found a bearer token")
    assert Release.objects.get(pk=release.pk).version == "1.0.0"


def test_a_move_that_breaks_a_rule_no_race_can_break_is_an_error_not_a_conflict(make_release):
    release = make_release()
    lifecycle.begin_rollout(release)
    # A move that forgets the activation time breaks "activated iff Active": a bug, never a 409.
    with pytest.raises(IntegrityError):
        status_moves.move(release, "Active", action=None)
