"""`cpctl deploy` and `cpctl promote` against a live server and worker: confirmation, following, the audit event
that confirms the outcome, and the exit codes a script relies on."""

import re

from audit.models import AuditEvent
from overview import previews
from releases.models import Release, WorkflowRun
from tests.cli.conftest import new_release, plain


def create(cpctl, url, env="env-staging", version="2024.10.02") -> str:
    made = cpctl(*new_release(version, env=env), url=url)
    assert made.code == 0, made.err
    return made.out.strip()  # the bare id, for R=$(cpctl release create …)


def confirmed_by(output: str, release_id: str, action: str) -> AuditEvent:
    """The audit event the output names ("confirmed by audit event #N"): it exists and records this outcome."""
    seq = int(re.search(r"[Cc]onfirmed by audit event #(\d+)", output)[1])
    event = AuditEvent.objects.get(seq=seq)
    assert (event.action, event.subject_id) == (action, release_id)
    return event


def test_deploy_then_promote_with_yes_end_active(plane, cpctl):
    release_id = create(cpctl, plane)

    deployed = cpctl("deploy", release_id, "--yes", url=plane)

    assert deployed.code == 0, deployed.err
    assert Release.objects.get(pk=release_id).status == "Active"
    assert f"{release_id} is Active in env-staging" in deployed.out
    confirmed_by(deployed.out, release_id, "release.activate")
    # The log was followed: the run's entries went by on stderr, ending in its success.
    run = WorkflowRun.objects.get(release_id=release_id)
    assert f"{run.id} started: Deploy of {release_id} to env-staging" in deployed.err
    assert run.logs.order_by("-pk").first().message in deployed.err

    promoted = cpctl("promote", release_id, "--to", "env-prod", "--yes", url=plane)

    assert promoted.code == 0, promoted.err
    target = Release.objects.get(environment_id="env-prod", sha="4f2a9c1", version="2024.10.02")
    assert target.status == "Active" and target.is_current
    assert f"{target.id} is Active in env-prod" in promoted.out
    confirmed_by(promoted.out, target.id, "release.activate")


def test_a_failing_step_exits_1_naming_the_step(committed_demo, web, worker, cpctl):
    worker(CONTROLPLANE_FAIL_STEPS="fly:deploy-machines")
    url = web()
    release_id = create(cpctl, url)

    deployed = cpctl("deploy", release_id, "--yes", url=url)

    assert deployed.code == 1, deployed.err
    assert Release.objects.get(pk=release_id).status == "Failed"
    assert "failed at step fly: deploy-machines" in deployed.out
    assert "fly: deploy-machines failed (injected by CONTROLPLANE_FAIL_STEPS)" in deployed.out
    confirmed_by(deployed.out, release_id, "release.fail")


def test_without_a_terminal_or_yes_it_refuses_and_changes_nothing(server, cpctl):
    release_id = create(cpctl, server)
    events = AuditEvent.objects.count()

    refused = cpctl("deploy", release_id, url=server)

    assert refused.code == 2
    assert "no terminal to confirm on, so nothing was changed; pass --yes" in refused.err
    # It still said what would have happened.
    # It still said what would have happened: the server's own sentence (the preview's text), as sent.
    assert previews.deploy_preview(Release.objects.get(pk=release_id)).text in refused.err
    assert f"{release_id} (2024.10.02, 4f2a9c1) replaces rel-123 in env-staging" in refused.err
    assert Release.objects.get(pk=release_id).status == "Draft"
    assert not WorkflowRun.objects.filter(release_id=release_id).exists()
    assert AuditEvent.objects.count() == events

    promotion = cpctl("promote", "rel-123", "--to", "env-prod", url=server)
    assert promotion.code == 2
    assert "becomes the first release of svc-demo in env-prod" in promotion.err
    assert "policy refs: policy:change-window:weekday" in promotion.err
    assert not Release.objects.filter(environment_id="env-prod").exists()
    assert AuditEvent.objects.count() == events


def test_the_confirmation_on_a_terminal_says_what_changes_and_no_keeps_it_unchanged(server, cpctl, terminal):
    release_id = create(cpctl, server)
    events = AuditEvent.objects.count()

    code, coloured = terminal("deploy", release_id, url=server, answer="n")
    shown = plain(coloured)

    assert code == 2, shown
    assert "replaces rel-123 in env-staging" in shown  # what it replaces
    assert "svc-demo has 1 open incident (highest: high)" in shown  # the demo's open incident
    assert "policy refs: none" in shown  # staging has no policy refs
    assert "Deploy " + release_id + " to env-staging? [y/N]" in shown
    assert "not confirmed: nothing was changed." in shown
    assert Release.objects.get(pk=release_id).status == "Draft"
    assert AuditEvent.objects.count() == events


def test_yes_on_a_terminal_rolls_out_with_a_spinner_and_step_progress(committed_demo, web, worker, cpctl, terminal):
    worker(CONTROLPLANE_STEP_DELAY_SECONDS="0.1")
    url = web()
    release_id = create(cpctl, url)

    code, coloured = terminal("deploy", release_id, url=url, answer="y")
    shown = plain(coloured)

    assert code == 0, shown
    assert Release.objects.get(pk=release_id).status == "Active"
    steps = re.findall(rf"Deploy of {release_id} to env-staging · (\d)/6 steps done", shown)
    assert {"0", "5"} <= set(steps), shown  # the spinner counted the run's steps through
    assert "\x1b[32m" in coloured  # a terminal gets colour: the outcome's green tick
    confirmed_by(shown, release_id, "release.activate")


def test_a_viewer_deploy_exits_3_and_changes_nothing(server, cpctl):
    release_id = create(cpctl, server)

    refused = cpctl("deploy", release_id, "--yes", url=server, role="viewer")

    assert refused.code == 3
    assert "release.deploy needs the deployer role; dev-viewer has viewer." in refused.err
    assert Release.objects.get(pk=release_id).status == "Draft"


def test_refusals_are_conflicts_and_unknown_releases_not_found(server, cpctl):
    again = cpctl("deploy", "rel-123", "--yes", url=server)  # Active already
    assert again.code == 5
    assert again.err == "error: release rel-123 is Active: it cannot move to Promoting; it is final.\n"

    same = cpctl("promote", "rel-123", "--to", "env-staging", "--yes", url=server)
    assert same.code == 5 and "already in env-staging" in same.err

    missing = cpctl("deploy", "rel-nope", "--yes", url=server)
    assert missing.code == 4 and "error:" in missing.err

    unknown_env = cpctl("promote", "rel-123", "--to", "env-nope", "--yes", url=server)
    assert unknown_env.code == 2 and "env-nope" in unknown_env.err


def test_no_follow_returns_after_the_202_with_the_run(plane, cpctl):
    release_id = create(cpctl, plane)

    started = cpctl("deploy", release_id, "--yes", "--no-follow", "-o", "json", url=plane)

    assert started.code == 0, started.err
    run = started.json()
    assert (run["kind"], run["releaseId"], run["state"]) == ("Deploy", release_id, "Running")
    followed = cpctl("runs", "logs", run["id"], "--follow", url=plane)
    assert followed.code == 0 and f"{run['id']} Succeeded" in followed.err
    assert "started" in followed.out


def test_deploy_json_is_the_run_the_release_and_the_audit_event(plane, cpctl):
    release_id = create(cpctl, plane)

    deployed = cpctl("deploy", release_id, "--yes", "-o", "json", url=plane)

    assert deployed.code == 0, deployed.err
    result = deployed.json()
    assert set(result) == {"run", "release", "auditEvent"}
    assert result["run"]["state"] == "Succeeded" and result["run"]["releaseId"] == release_id
    assert result["release"]["status"] == "Active" and result["release"]["isCurrent"] is True
    assert result["auditEvent"]["action"] == "release.activate"
    assert AuditEvent.objects.get(seq=result["auditEvent"]["seq"]).subject_id == release_id
