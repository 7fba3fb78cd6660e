"""`cpctl rollback` against a live server and worker: what it says before acting, the new release that restores
an earlier one, followed to the audit event that confirms it, and its refusals' exit codes.

The demo's rel-123 (2024.10.01, 9f3b7de) is current in env-staging and replaced nothing; each test that rolls
back first deploys 2024.10.02 (4f2a9c1) over it."""

import pytest

from audit.models import AuditEvent
from releases.models import Release
from tests.cli.conftest import plain
from tests.cli.test_rollouts import confirmed_by, create

REASON = "2024.10.02 breaks the checkout"


@pytest.fixture
def replaced(plane, cpctl) -> str:
    """2024.10.02 deployed over rel-123 in env-staging: its id."""
    release_id = create(cpctl, plane)
    assert cpctl("deploy", release_id, "--yes", url=plane).code == 0
    return release_id


def test_rollback_restores_the_release_the_current_one_replaced(plane, cpctl, replaced):
    rolled = cpctl("rollback", "svc-demo", "--env", "env-staging", "--reason", REASON, "--yes", url=plane)

    assert rolled.code == 0, rolled.err
    restoring = Release.objects.get(restores_id="rel-123")
    assert (restoring.sha, restoring.version, restoring.rollback_of_id) == ("9f3b7de", "2024.10.01", replaced)
    assert restoring.status == "Active" and restoring.is_current
    assert f"{restoring.id} (restoring rel-123) is Active in env-staging, confirmed by audit event #" in rolled.out
    confirmed_by(rolled.out, restoring.id, "release.activate")
    record = AuditEvent.objects.get(action="release.rollback", subject_id=restoring.id)
    assert f"Rollback recorded as audit event #{record.seq}: {replaced} rolled back to rel-123 ({REASON})." in (
        rolled.out
    )
    assert f"started: Rollback of {restoring.id} to env-staging" in rolled.err  # the run was followed


def test_rollback_to_a_named_release_with_json(plane, cpctl, replaced):
    newer = create(cpctl, plane, version="2024.10.03")
    assert cpctl("deploy", newer, "--yes", url=plane).code == 0

    rolled = cpctl(
        "rollback",
        "svc-demo",
        "--env",
        "env-staging",
        "--reason",
        REASON,
        "--to",
        "rel-123",
        "--yes",
        "-o",
        "json",
        url=plane,
    )

    assert rolled.code == 0, rolled.err
    result = rolled.json()
    assert set(result) == {"run", "release", "auditEvent", "rollbackEvent"}
    assert result["run"]["kind"] == "Rollback" and result["run"]["state"] == "Succeeded"
    assert (result["release"]["version"], result["release"]["status"]) == ("2024.10.01", "Active")
    rolled_back = result["rollbackEvent"]["metadata"]
    assert (rolled_back["reason"], rolled_back["rollbackOf"], rolled_back["restores"]) == (REASON, newer, "rel-123")
    assert rolled_back["runId"] == result["run"]["id"]
    assert AuditEvent.objects.get(seq=result["auditEvent"]["seq"]).action == "release.activate"


def test_without_a_terminal_or_yes_it_says_what_would_happen_and_changes_nothing(plane, cpctl, replaced):
    events = AuditEvent.objects.count()

    refused = cpctl("rollback", "svc-demo", "--env", "env-staging", "--reason", REASON, url=plane)

    assert refused.code == 2
    assert "svc-demo in env-staging goes from 2024.10.02 (4f2a9c1) back to 2024.10.01 (9f3b7de)" in refused.err
    assert f"a new release restoring rel-123 replaces {replaced}" in refused.err
    assert "no terminal to confirm on, so nothing was changed; pass --yes to roll back anyway." in refused.err
    assert not Release.objects.filter(restores__isnull=False).exists()
    assert AuditEvent.objects.count() == events


def test_no_on_a_terminal_keeps_it_unchanged(plane, cpctl, terminal, replaced):
    code, shown = terminal("rollback", "svc-demo", "--env", "env-staging", "--reason", REASON, url=plane, answer="n")

    assert code == 2, shown
    assert "Roll back svc-demo in env-staging to rel-123? [y/N]" in plain(shown)
    assert "not confirmed: nothing was changed." in plain(shown)
    assert not Release.objects.filter(restores__isnull=False).exists()


def test_refusals_and_their_exit_codes(server, cpctl):
    # Nothing to roll back to: rel-123 replaced nothing. Asked (cpctl's reading) or with --yes (the server's).
    asked = cpctl("rollback", "svc-demo", "--env", "env-staging", "--reason", REASON, url=server)
    assert asked.code == 5 and "nothing to roll back to" in asked.err
    forced = cpctl("rollback", "svc-demo", "--env", "env-staging", "--reason", REASON, "--yes", url=server)
    assert forced.code == 5 and "nothing to roll back to" in forced.err
    first = cpctl("rollback", "svc-demo", "--env", "env-prod", "--reason", REASON, "--yes", url=server)
    assert first.code == 5 and "no current release in env-prod" in first.err

    short = cpctl("rollback", "svc-demo", "--env", "env-staging", "--reason", "oops", "--yes", url=server)
    assert short.code == 2 and "reason: is required, 10-500 characters" in short.err
    unexplained = cpctl("rollback", "svc-demo", "--env", "env-staging", "--yes", url=server)
    assert unexplained.code == 2 and "--reason" in unexplained.err
    viewer = cpctl(
        "rollback", "svc-demo", "--env", "env-staging", "--reason", REASON, "--yes", url=server, role="viewer"
    )
    assert viewer.code == 3 and "needs the deployer role" in viewer.err
    missing = cpctl("rollback", "svc-nope", "--env", "env-staging", "--reason", REASON, url=server)
    assert missing.code == 4
    assert not Release.objects.filter(restores__isnull=False).exists()
