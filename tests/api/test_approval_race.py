"""Two approvers racing for the last approval start the run once: real threads, each on its own connection, on
PostgreSQL (SQLite serialises its writers; tests/api/test_approvals.py covers the two starts one after the other)."""

import threading

import pytest
from django.db import connection
from django_tasks_db.models import DBTaskResult

from controlplane.identity.context import Principal, acting_as
from controlplane.identity.roles import Role
from releases import approvals, workflows
from releases.models import Release, RunApproval, WorkflowRun
from services.models import Environment

pytestmark = pytest.mark.skipif(connection.vendor == "sqlite", reason="a race needs concurrent writers (PostgreSQL)")


def principal(actor: str, role: Role = Role.DEPLOYER) -> Principal:
    return Principal(actor=actor, role=role, auth_method="devToken")


@pytest.mark.parametrize("attempt", range(3))
def test_two_approvers_racing_for_the_last_approval_start_one_run(committed_demo, attempt):
    Environment.objects.filter(pk="env-prod").update(policy_refs=["policy:change-window:weekday", "policy:approval:2"])
    release = Release(service_id="svc-demo", environment_id="env-prod", sha="abcdef1", version=f"3.{attempt}")
    release.save()
    with acting_as(principal("dev-deployer")):
        run = workflows.deploy(release)
    assert run.state == "AwaitingApproval"
    tasks = DBTaskResult.objects.count()
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def approve(actor: str) -> None:
        try:
            with acting_as(principal(actor)):
                barrier.wait(timeout=10)
                outcomes[actor] = approvals.approve(WorkflowRun.objects.get(pk=run.pk)).state
        except Exception as exc:  # reported below
            outcomes[actor] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(actor,)) for actor in ("dev-admin", "dev-deployer-2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    # Both decisions count (neither was late: the run waited for two); one of them started it.
    assert all(isinstance(state, str) for state in outcomes.values()), outcomes
    assert RunApproval.objects.filter(run=run).count() == 2
    assert WorkflowRun.objects.get(pk=run.pk).state == "Running"
    assert Release.objects.get(pk=release.pk).status == "Promoting"
    assert DBTaskResult.objects.count() == tasks + 1
