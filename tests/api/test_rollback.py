"""Rollback over REST (issue 23): `POST /api/services/{id}/rollback/ {"envId", "reason", "toReleaseId"?,
"breakGlass"?}` makes a new release restoring an earlier one (`rollbackOf`, `restores`) with a Rollback run (202)."""

from datetime import UTC, datetime

import pytest
import time_machine

from audit.models import AuditEvent
from releases import lifecycle, runs
from releases.models import Release, WorkflowRun
from tests.conftest import loaded_once

# The demo as shipped: env-prod is gated by the weekday window (Mon-Fri 09:00-17:00 Europe/Berlin), promotion order
# and the incident gate; the shipped policies let rollbacks through all three.
demo = loaded_once("demo", as_shipped=True)

SUNDAY = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
REASON = "2.0 breaks the checkout page"


def activated(version: str, sha: str, env: str = "env-prod") -> Release:
    """A release of svc-demo rolled out in `env` (its history written straight, as the worker would end it)."""
    release = Release(service_id="svc-demo", environment_id=env, sha=sha, version=version)
    release.save()
    lifecycle.begin_rollout(release)
    run = WorkflowRun(kind="Deploy", release=release, actor="dev-deployer")
    run.save()
    lifecycle.end_rollout(run, succeeded=True)
    release.refresh_from_db()
    return release


@pytest.fixture
def history(db):
    """Two releases in env-prod: 1.0 superseded by 2.0, which is current."""
    return activated("1.0", "1111111"), activated("2.0", "2222222")


def rollback(client, body, service="svc-demo"):
    return client.post(f"/api/services/{service}/rollback/", body)


def test_a_rollback_restores_the_release_the_current_one_superseded(deployer, viewer, history):
    first, second = history
    response = rollback(deployer, {"envId": "env-prod", "reason": REASON})
    assert response.status_code == 202, response.content
    run = response.json()
    assert (run["kind"], run["state"], run["actor"]) == ("Rollback", "Running", "dev-deployer")
    assert response["Location"] == f"/api/workflow-runs/{run['id']}/"
    new = viewer.get(f"/api/releases/{run['releaseId']}/").json()
    assert (new["sha"], new["version"], new["envId"], new["status"]) == ("1111111", "1.0", "env-prod", "Promoting")
    assert (new["rollbackOf"], new["restores"]) == (second.pk, first.pk)
    [event] = AuditEvent.objects.filter(action="release.rollback")
    assert (event.subject_id, event.actor) == (new["id"], "dev-deployer")
    assert {k: event.metadata[k] for k in ("reason", "rollbackOf", "restores", "runId")} == {
        "reason": REASON,
        "rollbackOf": second.pk,
        "restores": first.pk,
        "runId": run["id"],
    }
    # Followed like any run: once it succeeds, the restored release runs there, and the one it replaced is superseded.
    assert runs.finish(WorkflowRun.objects.get(pk=run["id"]), succeeded=True)
    new = viewer.get(f"/api/releases/{run['releaseId']}/").json()
    assert new["status"] == "Active" and new["isCurrent"] is True
    assert viewer.get(f"/api/releases/{second.pk}/").json()["supersededBy"] == new["id"]
    listed = viewer.get("/api/workflow-runs/?kind=Rollback").json()["results"]
    assert [r["id"] for r in listed] == [run["id"]]


def test_a_rollback_to_a_named_earlier_release(deployer, history):
    first, _ = history
    third = activated("3.0", "3333333")
    response = rollback(deployer, {"envId": "env-prod", "reason": REASON, "toReleaseId": first.pk})
    assert response.status_code == 202, response.content
    new = Release.objects.get(pk=response.json()["releaseId"])
    assert (new.rollback_of_id, new.restores_id, new.sha, new.version) == (third.pk, first.pk, "1111111", "1.0")


def test_nothing_to_roll_back_to_is_a_409(deployer, db):
    only = activated("1.0", "1111111")
    response = rollback(deployer, {"envId": "env-prod", "reason": REASON})
    assert response.status_code == 409
    assert response.json() == {
        "detail": f"{only.pk} superseded no release of svc-demo in env-prod: there is nothing to roll back to."
    }


def test_no_current_release_there_is_a_409(deployer, db):
    response = rollback(deployer, {"envId": "env-prod", "reason": REASON})
    assert response.status_code == 409
    assert response.json() == {"detail": "svc-demo has no current release in env-prod: there is nothing to roll back."}


@pytest.mark.parametrize("target", ["current", "draft", "failed", "other-env", "unknown"])
def test_a_to_release_that_is_not_an_earlier_active_one_there_is_a_409(deployer, history, target):
    draft = Release(service_id="svc-demo", environment_id="env-prod", sha="4444444", version="4.0")
    draft.save()
    failed = None
    if target == "failed":  # rolled out and failed: never Active
        failed = Release(service_id="svc-demo", environment_id="env-prod", sha="5555555", version="5.0")
        failed.save()
        lifecycle.begin_rollout(failed)
        run = WorkflowRun(kind="Deploy", release=failed, actor="dev-deployer")
        run.save()
        lifecycle.end_rollout(run, succeeded=False)
    to = {
        "current": Release.objects.get(service_id="svc-demo", environment_id="env-prod", is_current=True).pk,
        "draft": draft.pk,
        "failed": failed.pk if failed else "",
        "other-env": "rel-123",  # Active and current in env-staging
        "unknown": "rel-nope",
    }[target]
    before = Release.objects.count()
    response = rollback(deployer, {"envId": "env-prod", "reason": REASON, "toReleaseId": to})
    assert response.status_code == 409, response.content
    assert "is not an earlier Active release of svc-demo in env-prod" in response.json()["detail"]
    assert Release.objects.count() == before and not AuditEvent.objects.filter(action="release.rollback").exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"envId": "env-prod"}, "reason"),
        ({"envId": "env-prod", "reason": ""}, "reason"),
        ({"envId": "env-prod", "reason": "too short"}, "reason"),
        ({"envId": "env-prod", "reason": "   too short    "}, "reason"),
        ({"envId": "env-prod", "reason": "x" * 501}, "reason"),
        ({"envId": "env-prod", "reason": 12345678901}, "reason"),
        ({"reason": REASON}, "envId"),
        ({"envId": "env-nope", "reason": REASON}, "envId"),
        ({"envId": "", "reason": REASON}, "envId"),
        ({"envId": "env-prod", "reason": REASON, "toReleaseId": 1}, "toReleaseId"),
        ({"envId": "env-prod", "reason": REASON, "toReleaseId": "rel-\x00"}, "toReleaseId"),
        ({"envId": "env-prod", "reason": REASON, "breakGlass": {"reason": "short"}}, "breakGlass"),
        ({"envId": "env-prod", "reason": REASON, "force": True}, "force"),
    ],
)
def test_a_bad_body_is_a_400_naming_the_field(admin, history, body, field):
    before = Release.objects.count()
    response = rollback(admin, body)  # an admin, who may break glass: what is refused is the value
    assert response.status_code == 400, response.content
    assert list(response.json()) == [field], response.json()
    assert Release.objects.count() == before


def test_who_may_roll_back(api, history):
    response = rollback(api("viewer"), {"envId": "env-prod", "reason": REASON})
    assert response.status_code == 403
    assert response.json() == {"detail": "rollback needs the deployer role; dev-viewer has viewer."}
    assert rollback(api(None), {"envId": "env-prod", "reason": REASON}).status_code == 401
    assert rollback(api("deployer"), {"envId": "env-prod", "reason": REASON}, service="svc-nope").status_code == 404
    assert api("deployer").get("/api/services/svc-demo/rollback/").status_code == 405


def test_a_rollback_while_a_rollout_runs_there_is_a_409(deployer, history):
    assert rollback(deployer, {"envId": "env-prod", "reason": REASON}).status_code == 202
    again = rollback(deployer, {"envId": "env-prod", "reason": REASON})
    assert again.status_code == 409 and "already promoting" in again.json()["detail"]


def test_a_rollback_goes_through_a_closed_change_window_where_a_deploy_is_refused(deployer, history):
    first, _ = history
    with time_machine.travel(SUNDAY, tick=False):
        draft = deployer.post(
            "/api/releases/", {"serviceId": "svc-demo", "envId": "env-prod", "sha": "6666666", "version": "6.0"}
        ).json()
        refused = deployer.post(f"/api/releases/{draft['id']}/deploy/")
        assert refused.status_code == 409
        assert "policy:change-window:weekday" in [d["policy"] for d in refused.json()["decision"]["deniedBy"]]
        response = rollback(deployer, {"envId": "env-prod", "reason": REASON})
    assert response.status_code == 202, response.content
    assert Release.objects.get(pk=response.json()["releaseId"]).restores_id == first.pk
