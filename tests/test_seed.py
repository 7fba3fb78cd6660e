"""`manage.py seed` writes in bulk; what it writes must still hold every invariant."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditEvent
from incidents.models import Incident
from overview.models import DeploymentState
from releases.models import Release, RunLogEntry, WorkflowRun
from services.models import Environment, Service
from tests.api.conftest import Api


@pytest.fixture
def seeded(db):
    call_command("seed", services=6, environments=3, releases=8, verbosity=0)


def test_seeded_rows_pass_the_models_own_validation(seeded):
    for model in (Environment, Service, Release, WorkflowRun, RunLogEntry, Incident):
        for obj in model.objects.all():
            obj._restoring = True  # validated as history, as a restore of it would be
            obj.full_clean()
    assert Release.objects.count() == 6 * 3 * 8


def test_at_most_one_current_candidate_and_no_rollout_in_flight(seeded):
    assert not Release.objects.filter(status="Promoting").exists()
    for release in Release.objects.filter(status="Active"):
        assert release.activated_at and release.activated_at >= release.created_at


def test_the_seeded_trail_verifies_and_records_the_seed(seeded, capsys):
    call_command("audit_verify")
    assert "audit trail intact" in capsys.readouterr().out
    last = AuditEvent.objects.order_by("-seq").first()
    assert (last.action, last.actor) == ("seed.load", "system:seed")
    assert last.metadata["objects"]["releases.release"] == 144


def test_the_index_reads_the_seeded_data(seeded):
    page = Api("viewer").get("/api/services/index/?pageSize=3").json()
    assert len(page["results"]) == 3 and page["next"]
    envs = page["results"][0]["environments"]
    assert [e["name"] for e in envs] == ["dev", "prod", "staging"]
    assert all(e["latestRelease"] for e in envs)


def test_seeding_twice_is_refused(seeded):
    with pytest.raises(CommandError, match="already seeded"):
        call_command("seed", services=1, verbosity=0)


def test_the_seeded_read_models_match_history(seeded):
    out = StringIO()
    call_command("check_read_models", stdout=out)
    assert out.getvalue().strip() == "The read models match history."
    # Something to match: one row per linked (service, environment), each with its current release there.
    assert DeploymentState.objects.count() == 6 * 3
    current = set(Release.objects.filter(is_current=True).values_list("pk", flat=True))
    assert current and set(DeploymentState.objects.exclude(current=None).values_list("current", flat=True)) == current
