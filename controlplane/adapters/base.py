"""The adapter interface (RFC 0002, designed here): how a release reaches a runtime target.

An adapter declares its name and native defaults, validates a service and environment, plans a
release into ordered steps, and executes one step at a time, returning what it did (logged as the
step's `meta`). The five built-in adapters simulate their platform's real steps, without network or
credentials: they render the real artifacts (a Kubernetes Deployment, an ECS task definition, ...).
"""

import time
from dataclasses import dataclass, field
from typing import ClassVar

from django.conf import settings


class StepFailed(Exception):
    """A step did not complete; the run fails and the message goes in its log."""


@dataclass(frozen=True)
class Target:
    """Where a release is going: everything an adapter needs, resolved once."""

    service_id: str
    service_name: str
    repo: str
    release_id: str
    sha: str
    version: str
    environment: str
    region: str  # effective: the environment's, or the adapter's default
    cluster: str

    @property
    def image(self) -> str:
        return f"{self.repo}:{self.sha}"

    @property
    def app(self) -> str:
        return self.service_id.removeprefix("svc-")


@dataclass(frozen=True)
class Step:
    name: str
    description: str
    detail: dict = field(default_factory=dict)


class Adapter:
    name: ClassVar[str]
    title: ClassVar[str]
    default_region: ClassVar[str]
    default_cluster: ClassVar[str]

    def effective_placement(self, region: str, cluster: str) -> tuple[str, str]:
        """The region and cluster a deploy uses: the environment's own, else this adapter's defaults."""
        return region or self.default_region, cluster or self.default_cluster

    def validate(self, target: Target) -> list[str]:
        """Why this target cannot be deployed here (empty: it can)."""
        return []

    def plan(self, target: Target) -> list[Step]:
        raise NotImplementedError

    def perform(self, step: Step, target: Target) -> dict:
        """Do one step; return what was done (it is logged). Raise StepFailed when it does not work."""
        return step.detail

    def execute(self, step: Step, target: Target) -> dict:
        if f"{self.name}:{step.name}" in failing_steps() or step.name in failing_steps():
            raise StepFailed(f"{self.name}: {step.name} failed (injected by CONTROLPLANE_FAIL_STEPS)")
        time.sleep(settings.CONTROLPLANE_WORKFLOWS["stepDelaySeconds"])
        return self.perform(step, target)

    def __repr__(self) -> str:
        return f"<Adapter {self.name}>"


def failing_steps() -> set[str]:
    """Steps made to fail on purpose, for demos and tests: `<adapter>:<step>` or `<step>`."""
    return set(settings.CONTROLPLANE_WORKFLOWS["failSteps"])
