"""cpctl and approvals against a live server and worker: a deploy into an environment that needs them says so
and waits (or returns at once with --no-follow), `cpctl approvals` lists what waits, and `approve`, `reject`
and `cancel` decide, each followed deploy ending as the audit trail records it.

env-staging gets `policy:approval:1` (or 2): TOKENS["deployer"] asks, TOKENS["admin"] approves."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from releases import approvals as domain
from releases.models import Release, WorkflowRun
from services.models import Environment
from tests.cli.test_rollouts import confirmed_by, create


def needs_approvals(n: int, env: str = "env-staging") -> None:
    Environment.objects.filter(pk=env).update(policy_refs=[f"policy:approval:{n}"])


def waiting_run(release_id: str) -> WorkflowRun:
    return WorkflowRun.objects.get(release_id=release_id)


@pytest.fixture
def staging_needs_one(committed_demo):
    needs_approvals(1)


@pytest.mark.usefixtures("staging_needs_one")
def test_a_followed_deploy_waits_for_its_approval_then_ends_active(plane, cpctl, cpctl_here, started):
    release_id = create(cpctl, plane)

    following = started("deploy", release_id, "--yes", url=plane)

    run = waiting_run(release_id)
    assert following.first == f"{run.id} awaits 1 approval (cpctl approve {run.id}); waiting for it to start.\n"
    assert run.state == "AwaitingApproval" and Release.objects.get(pk=release_id).status == "Draft"
    approved = cpctl_here("approve", run.id, "--comment", "looks right", url=plane, role="admin")
    assert approved.code == 0, approved.err
    assert f"Approved. {run.id} has its approvals (1/1) and is Running" in approved.out

    deployed = following.finish()

    assert deployed.code == 0, deployed.err
    assert Release.objects.get(pk=release_id).status == "Active"
    assert f"{release_id} is Active in env-staging, confirmed by audit event #" in deployed.out
    confirmed_by(deployed.out, release_id, "release.activate")
    assert "Approved by dev-admin (1/1)." in deployed.out
    assert run.logs.order_by("-pk").first().message in deployed.err  # the log went by once it started


@pytest.mark.usefixtures("staging_needs_one")
def test_no_follow_returns_at_once_and_approvals_lists_the_run(plane, cpctl, cpctl_here):
    release_id = create(cpctl, plane)

    asked = cpctl("deploy", release_id, "--yes", "--no-follow", url=plane)

    assert asked.code == 0, asked.err
    run = waiting_run(release_id)
    assert asked.out.splitlines()[0] == f"{run.id} awaits 1 approval (cpctl approve {run.id})"
    assert run.state == "AwaitingApproval"
    as_json = cpctl("deploy", release_id, "--yes", "--no-follow", "-o", "json", url=plane)
    assert as_json.code == 5 and run.id in as_json.err  # one waiting run per service and environment

    listed = cpctl("approvals", url=plane, role="admin")  # piped: one plain line per run

    assert listed.code == 0, listed.err
    header, row = listed.out.splitlines()
    assert header.split() == [
        "RUN",
        "SERVICE",
        "ENVIRONMENT",
        "RELEASE",
        "KIND",
        "MODE",
        "ASKED",
        "BY",
        "APPROVALS",
        "SINCE",
    ]
    since = run.started_at.strftime("%Y-%m-%d %H:%M:%S")
    shown = [
        run.id,
        "svc-demo",
        "env-staging",
        release_id,
        "2024.10.02",
        "(4f2a9c1)",
        "Deploy",
        "simulated",
        "dev-deployer",
    ]
    assert row.split() == [*shown, "0/1", *f"{since}Z".split()]
    assert "\x1b[" not in listed.out and listed.out == "\n".join(line.rstrip() for line in listed.out.split("\n"))
    found = cpctl_here("approvals", "-o", "json", url=plane, role="viewer").json()
    assert [(r["id"], r["state"], r["approvalsRequired"], r["approvals"]) for r in found] == [
        (run.id, "AwaitingApproval", 1, [])
    ]
    assert cpctl_here("approvals", "--env", "env-prod", url=plane).err == "No run awaits approval.\n"


@pytest.mark.usefixtures("committed_demo")
def test_approvals_count_distinct_principals_never_the_runs_own_actor(plane, cpctl, cpctl_here, started):
    needs_approvals(2)
    release_id = create(cpctl, plane)
    following = started("deploy", release_id, "--yes", url=plane)
    run = waiting_run(release_id)
    assert following.first.startswith(f"{run.id} awaits 2 approvals (cpctl approve {run.id})")

    own = cpctl_here("approve", run.id, url=plane, role="deployer")
    assert own.code == 3 and domain.SELF_APPROVAL in own.err
    viewer = cpctl_here("approve", run.id, url=plane, role="viewer")
    assert viewer.code == 3 and "deployer" in viewer.err
    first = cpctl_here("approve", run.id, url=plane, role="admin")
    assert first.code == 0, first.err
    assert first.out == f"Approved. {run.id} awaits 1 more approval (cpctl approve {run.id})\n"
    again = cpctl_here("approve", run.id, url=plane, role="admin")
    assert again.code == 5 and "each principal counts once" in again.err
    listed = cpctl_here("approvals", url=plane)
    assert "1/2" in listed.out.splitlines()[1].split()

    cancelled = cpctl_here("cancel", run.id, url=plane, role="deployer")  # the run's own actor may

    assert cancelled.code == 0, cancelled.err
    assert cancelled.out == f"Cancelled. {run.id} is Cancelled: nothing rolls out, and {release_id} stays Draft.\n"
    deployed = following.finish()
    assert deployed.code == 1, deployed.err
    event = AuditEvent.objects.get(action="run.cancel", subject_id=run.id)
    assert deployed.out.splitlines()[0] == (
        f"✗ {run.id} was cancelled by dev-deployer; nothing was rolled out and {release_id} stays Draft. "
        f"Confirmed by audit event #{event.seq}."
    )
    assert Release.objects.get(pk=release_id).status == "Draft"
    late = cpctl_here("approve", run.id, url=plane, role="admin")
    assert late.code == 5 and "not awaiting approval" in late.err


@pytest.mark.usefixtures("staging_needs_one")
def test_a_rejection_ends_the_followed_deploy_with_exit_1_and_its_comment(plane, cpctl, cpctl_here, started):
    release_id = create(cpctl, plane)
    following = started("deploy", release_id, "--yes", "-o", "json", url=plane)
    run = waiting_run(release_id)

    missing = cpctl_here("reject", run.id, url=plane, role="admin")
    assert missing.code == 2 and "--comment" in missing.err  # required before anything is sent
    own = cpctl_here("reject", run.id, "--comment", "changed my mind", url=plane, role="deployer")
    assert own.code == 3 and domain.SELF_APPROVAL in own.err
    rejected = cpctl_here("reject", run.id, "--comment", "not during the launch", url=plane, role="admin")

    assert rejected.code == 0, rejected.err
    assert rejected.out.startswith(f"Rejected. {run.id} is Rejected")
    deployed = following.finish()
    assert deployed.code == 1, deployed.err
    result = deployed.json()  # -o json: the run, its release, the audit event that ended it
    assert result["run"]["state"] == "Rejected" and result["release"]["status"] == "Draft"
    assert result["run"]["approvals"][0] | {"at": None} == {
        "actor": "dev-admin",
        "decision": "reject",
        "comment": "not during the launch",
        "at": None,
    }
    event = AuditEvent.objects.get(seq=result["auditEvent"]["seq"])
    assert (event.action, event.subject_id) == ("run.reject", run.id)
    assert Release.objects.get(pk=release_id).status == "Draft"
    redeploy = cpctl("deploy", release_id, "--yes", "--no-follow", url=plane)  # it may be deployed again
    assert redeploy.code == 0 and "awaits 1 approval" in redeploy.out


@pytest.mark.usefixtures("staging_needs_one")
def test_an_expired_wait_ends_the_followed_deploy_with_exit_1(plane, cpctl, started):
    release_id = create(cpctl, plane)
    following = started("deploy", release_id, "--yes", url=plane)
    run = waiting_run(release_id)

    domain.sweep(now=timezone.now() + domain.ttl() + timedelta(seconds=1))  # the worker's round, a day later

    deployed = following.finish()
    assert deployed.code == 1, deployed.err
    assert f"✗ {run.id} was expired with 0 of 1 approvals given within its time to live" in deployed.out
    confirmed = AuditEvent.objects.get(action="run.expire", subject_id=run.id)
    assert f"Confirmed by audit event #{confirmed.seq}." in deployed.out
    assert Release.objects.get(pk=release_id).status == "Draft"


@pytest.mark.usefixtures("committed_demo")
def test_a_promotion_into_an_environment_that_needs_approval_waits_too(plane, cpctl, cpctl_here, started):
    needs_approvals(1, "env-prod")

    following = started("promote", "rel-123", "--to", "env-prod", "--yes", url=plane)

    run = WorkflowRun.objects.get(kind="Promote", source_release_id="rel-123")
    assert following.first.startswith(f"{run.id} awaits 1 approval (cpctl approve {run.id})")
    assert cpctl_here("approve", run.id, url=plane, role="admin").code == 0
    promoted = following.finish()
    assert promoted.code == 0, promoted.err
    confirmed_by(promoted.out, run.release_id, "release.activate")
    assert Release.objects.get(pk=run.release_id).is_current
