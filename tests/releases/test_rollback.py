"""Rollback (docs/domain.md, "Rollback"), at the domain's level: a new release restoring an earlier one's sha and
version, rolled out by a Rollback run, audited as `release.rollback`; refused when there is nothing to restore
or the target is not an earlier Active release there; let through windows, freezes, incident gates and
approvals by the shipped policies, but not through an operator's Cedar policy that forbids it."""

from datetime import UTC, datetime

import pytest
import time_machine
from django.core.exceptions import ValidationError

from controlplane.errors import Conflict
from controlplane.governance import PolicyDenied
from controlplane.identity.context import acting_as
from incidents.models import Incident
from overview import deployment_state, services_index
from overview.models import DeploymentState
from policies import engine
from releases import approvals, lifecycle, rollback, runs
from releases.models import Release, WorkflowRun
from services.models import Freeze, Service
from tests.releases.conftest import ALICE, BOB, Trail, deploy, fresh, rolled_out, tasks

REASON = "2024.10.03 breaks checkout; back to the last good one"
SATURDAY_NOON = datetime(2026, 12, 5, 12, tzinfo=UTC)  # the office window is closed
MONDAY_TEN = datetime(2026, 12, 7, 10, tzinfo=UTC)  # and open


@pytest.fixture
def env(make_environment):
    return make_environment()


@pytest.fixture
def svc(make_service, env):
    return make_service(environments=[env])


@pytest.fixture
def history(make_release, svc, env):
    """Three releases rolled out one after the other: the last is current."""
    return [
        rolled_out(make_release(service=svc, environment=env, sha=sha, version=version))
        for sha, version in (("1111111", "2024.10.01"), ("9f3b7de", "2024.10.02"), ("b7e4d21", "2024.10.03"))
    ]


def roll_back(service, env, reason=REASON, to=None, by=BOB):
    with acting_as(by):
        return rollback.rollback(service, env, reason, to)


def current(service, env) -> Release:
    return Release.objects.get(service=service, environment=env, is_current=True)


def index_entry(service) -> dict:
    (entry,) = services_index.entries(services_index.services(Service.objects.filter(pk=service.pk)))
    (environment,) = entry["environments"]
    return environment


def test_by_default_it_restores_the_release_the_current_one_superseded(svc, env, history, trail):
    _, good, bad = history
    run = roll_back(svc, env)
    release = run.release
    assert (run.kind, run.actor, run.state, run.source_release_id) == ("Rollback", "bob", "Running", None)
    assert (release.status, release.sha, release.version) == ("Promoting", good.sha, good.version)
    assert (release.rollback_of_id, release.restores_id, release.environment_id) == (bad.pk, good.pk, env.pk)
    assert release.pk not in {r.pk for r in history}  # a new record (RFC 0001)
    assert tasks() == len(history) + 1 and run.task_id
    assert trail.actions() == ["release.create", "release.rollback"]
    event = trail.events()[1]
    assert (event.actor, event.subject_type, event.subject_id) == ("bob", "Release", release.pk)
    assert {k: event.metadata[k] for k in ("reason", "rollbackOf", "restores", "runId")} == {
        "reason": REASON,
        "rollbackOf": bad.pk,
        "restores": good.pk,
        "runId": run.pk,
    }
    assert event.metadata["policy"]["allowed"] is True
    assert DeploymentState.objects.get(service=svc, environment=env).promoting_id == release.pk

    # The worker ends it like any run: the rollback's release activates and supersedes the bad one.
    assert runs.finish(run, succeeded=True)
    assert current(svc, env).pk == release.pk and fresh(bad).superseded_by_id == release.pk
    assert not fresh(good).is_current  # restored by a copy, never re-activated itself
    state = DeploymentState.objects.get(service=svc, environment=env)
    assert (state.current_id, state.latest_id, state.promoting_id) == (release.pk, release.pk, None)
    shown = index_entry(svc)["currentRelease"]
    assert (shown["id"], shown["sha"], shown["version"]) == (release.pk, good.sha, good.version)
    assert deployment_state.differences() == []


def test_a_named_release_is_restored(svc, env, history):
    first, _, bad = history
    run = roll_back(svc, env, to=first.pk)
    assert (run.release.restores_id, run.release.rollback_of_id, run.release.sha) == (first.pk, bad.pk, first.sha)
    assert runs.finish(run, succeeded=True)
    assert current(svc, env).sha == first.sha and index_entry(svc)["currentRelease"]["sha"] == first.sha


def test_a_rollback_of_a_rollback_restores_what_it_replaced(svc, env, history):
    bad = history[-1]
    assert runs.finish(roll_back(svc, env), succeeded=True)
    again = roll_back(svc, env, reason="it was fine after all, restore it")
    assert (again.release.restores_id, again.release.sha) == (bad.pk, bad.sha)


def test_nothing_to_roll_back_to_is_a_conflict_that_writes_nothing(make_release, svc, env, trail):
    with pytest.raises(Conflict, match=f"{svc.pk} has no current release in {env.pk}: there is nothing to roll back"):
        roll_back(svc, env)
    only = rolled_out(make_release(service=svc, environment=env))
    marker = Trail()
    with pytest.raises(Conflict, match=f"{only.pk} superseded no release of {svc.pk} in {env.pk}"):
        roll_back(svc, env)
    assert marker.actions() == [] and Release.objects.filter(service=svc).count() == 1


@pytest.mark.parametrize("target", ["current", "draft", "failed", "other-service", "other-env", "unknown"])
def test_the_target_must_be_an_earlier_active_release_there(
    make_release, make_service, make_environment, svc, env, history, target
):
    other_env = make_environment()
    svc.environments.add(other_env)
    targets = {
        "current": lambda: history[-1],
        "draft": lambda: make_release(service=svc, environment=env, sha="abcdef1"),
        "failed": lambda: lifecycle.fail(lifecycle.begin_rollout(make_release(service=svc, environment=env))),
        "other-service": lambda: rolled_out(make_release(service=make_service(environments=[env]), environment=env)),
        "other-env": lambda: rolled_out(make_release(service=svc, environment=other_env)),
    }
    to = targets[target]().pk if target in targets else "rel-doesnotexist"
    trail = Trail()
    with pytest.raises(Conflict, match=f"{to} is not an earlier Active release of {svc.pk} in {env.pk}"):
        roll_back(svc, env, to=to)
    assert trail.actions() == [] and not Release.objects.filter(rollback_of__isnull=False).exists()


@pytest.mark.parametrize("reason", ["", "   ", "too short", "x" * 501, None])
def test_a_reason_of_10_to_500_characters_is_required(svc, env, history, reason):
    with pytest.raises(ValidationError) as refused:
        roll_back(svc, env, reason=reason)
    assert "10-500 characters" in refused.value.message_dict["reason"][0]
    assert not Release.objects.filter(rollback_of__isnull=False).exists()


def test_one_rollout_at_a_time_there(make_release, svc, env, history):
    draft = make_release(service=svc, environment=env, sha="abcdef1")
    rolling = deploy(draft)
    with pytest.raises(Conflict, match=f"another release of {svc.pk} is already promoting to {env.pk}"):
        roll_back(svc, env)
    assert runs.finish(rolling, succeeded=False)
    roll_back(svc, env)  # the place is free again
    assert WorkflowRun.objects.filter(kind="Rollback").count() == 1


# --- policies ---


@pytest.fixture
def guarded(make_environment, make_service, make_release, office):
    """A service in an environment behind every built-in gate and two approvals, with two releases rolled out
    (inside the window, approved)."""
    env = make_environment(
        name="prod-eu",
        region="eu-central-1",
        cluster="prod-1",
        policy_refs=["policy:change-window:office", "policy:incident-gate", "policy:approval:2"],
    )
    svc = make_service(environments=[env])
    for hour, sha in ((10, "9f3b7de"), (11, "b7e4d21")):
        with time_machine.travel(MONDAY_TEN.replace(hour=hour), tick=False):
            run = deploy(make_release(service=svc, environment=env, sha=sha))
            for approver in ("bob", "carol"):
                with acting_as(approver):
                    approvals.approve(run)
            assert runs.finish(fresh(run), succeeded=True)
    return svc, env


def test_the_shipped_policies_let_a_rollback_through_a_closed_window_a_freeze_an_incident_and_approvals(
    guarded, make_release
):
    svc, env = guarded
    with time_machine.travel(SATURDAY_NOON, tick=False):
        freeze = Freeze(
            title="Year end", starts_at=SATURDAY_NOON, ends_at=datetime(2027, 1, 4, tzinfo=UTC), env_ids=[env.pk]
        )
        freeze.save()
        Incident(service=svc, title="checkout down", severity="critical", link="https://pd.example/i/1").save()
        # A deploy is refused here now, by each of them...
        with pytest.raises(PolicyDenied) as denied:
            deploy(make_release(service=svc, environment=env, sha="abcdef1"))
        refused_by = {d["policy"] for d in denied.value.decision["deniedBy"]}
        assert refused_by == {"policy:change-window:office", f"freeze:{freeze.pk}", "policy:incident-gate"}
        # ...a rollback goes through, at once: never held for approvals.
        run = roll_back(svc, env, by=ALICE)
    assert (run.state, run.approvals_required, run.release.status) == ("Running", 0, "Promoting")
    assert run.release.sha == "9f3b7de"


FORBID_ROLLBACKS = """
@id("no-rollbacks-here")
@reason("rollbacks are made by a change request in this environment")
forbid (principal, action == ControlPlane::Action::"rollback", resource) when { resource.production };
"""


@pytest.fixture
def operator_policy(settings, tmp_path):
    folder = tmp_path / "operator-policies"
    folder.mkdir()
    (folder / "rollbacks.cedar").write_text(FORBID_ROLLBACKS)
    settings.CONTROLPLANE_POLICY_DIR = str(folder)
    engine.book.cache_clear()
    yield
    engine.book.cache_clear()


def test_an_operator_policy_can_forbid_rollbacks(guarded, operator_policy):
    svc, env = guarded
    trail = Trail()
    with time_machine.travel(MONDAY_TEN, tick=False), pytest.raises(PolicyDenied) as denied:
        roll_back(svc, env)
    assert denied.value.decision["deniedBy"] == [
        {"policy": "no-rollbacks-here", "reason": "rollbacks are made by a change request in this environment"}
    ]
    assert denied.value.decision["nextAllowedAt"] is None
    assert trail.actions() == [] and not Release.objects.filter(rollback_of__isnull=False).exists()
    denied.value.settle()  # the door writes the refusal once the transaction has ended
    assert trail.actions() == ["policy.deny"]
