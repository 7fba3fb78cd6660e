"""Principals and helpers for the approvals and rollback tests: people acting through the domain functions
(`acting_as`), as the doors do once they have checked the role table."""

import pytest
from django_tasks_db.models import DBTaskResult

from audit.models import AuditEvent
from controlplane.identity.context import Principal, acting_as
from controlplane.identity.roles import Role
from releases import runs, workflows
from releases.models import Release, WorkflowRun
from services.models import ChangeWindow


def person(actor: str, role: Role = Role.DEPLOYER) -> Principal:
    return Principal(actor=actor, role=role, auth_method="devToken")


ALICE, BOB, CAROL = person("alice"), person("bob"), person("carol")
ROOT = person("root", Role.ADMIN)


def fresh(obj):
    return type(obj).objects.get(pk=obj.pk)


def deploy(release: Release, by: Principal = ALICE) -> WorkflowRun:
    with acting_as(by):
        return workflows.deploy(release)


def rolled_out(release: Release) -> Release:
    """`release` deployed (by alice) and its run ended as the worker would: Active and current."""
    run = deploy(release)
    assert runs.finish(run, succeeded=True)
    return fresh(release)


def tasks() -> int:
    """How many run executions are queued or done (django-tasks' database backend)."""
    return DBTaskResult.objects.count()


class Trail:
    """The audit events written since it was made."""

    def __init__(self):
        self.seq = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0

    def events(self) -> list[AuditEvent]:
        return list(AuditEvent.objects.filter(seq__gt=self.seq).order_by("seq"))

    def actions(self) -> list[str]:
        return [event.action for event in self.events()]

    def mark(self) -> "Trail":
        return Trail()


@pytest.fixture
def trail(db) -> Trail:
    return Trail()


@pytest.fixture
def office(db) -> ChangeWindow:
    """A change window open Monday to Friday, 09:00 to 17:00 UTC."""
    window = ChangeWindow(name="office", timezone="UTC", days=[1, 2, 3, 4, 5], start="09:00", end="17:00")
    window.save()
    return window
