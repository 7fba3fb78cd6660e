"""The adapter interface (docs/adapters.md): how a release reaches a runtime target.

An adapter declares its name and native defaults, validates a service and environment, plans a
release into ordered steps, and executes one step at a time, returning what it did (logged as the
step's `meta`). Without a connection every adapter simulates its platform's real steps, without network
or credentials: it renders the real artifacts (a Kubernetes Deployment, an ECS task definition, ...). Where
the environment names a connection for it (controlplane/connections.py), a live adapter (`live = True`:
Kubernetes, Amazon ECS) does the same steps for real and can say what runs there now (`running`).
"""

import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from django.conf import settings

if TYPE_CHECKING:
    from controlplane.connections import Connection


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
    region: str  # effective: the connection's, the environment's, or the adapter's default
    cluster: str
    actor: str = ""  # who started the run (labels on the platform say so)
    connection: "Connection | None" = None  # None: simulated

    @property
    def image(self) -> str:
        return f"{self.repo}:{self.sha}"

    @property
    def app(self) -> str:
        """The name on the platform (Deployment, ECS service, container): the connection's for the service, else
        the service id without `svc-`."""
        if self.connection is not None:
            return self.connection.platform_name(self.service_id)
        return self.service_id.removeprefix("svc-")

    @property
    def mode(self) -> str:
        return "simulated" if self.connection is None else "live"


class Progress:
    """What a step is given besides its target: a way to log what it sees (live on the run's streams), to know
    the run was ended elsewhere (the recovery failed it) so that a long wait stops, and `state`, which one
    adapter's steps of one run share (the task definition the register step made, for the next)."""

    def __init__(self):
        self.state: dict = {}

    def log(self, message: str, **meta) -> None:
        pass

    def cancelled(self) -> bool:
        return False

    # The clock a wait reads and sleeps by: a test gives its own, so a deadline is tested without waiting for it.
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class PlatformError(StepFailed):
    """The platform could not be asked (unreachable, refused): the reason, in the platform's words."""


@contextmanager
def answered(what: str, explain: Callable[[Exception], str | None]):
    """While doing `what` on a platform, what its client raises becomes StepFailed in the platform's words
    (`explain(error)`; None: not the platform's answer, raised as it is)."""
    try:
        yield
    except StepFailed:
        raise
    except Exception as error:
        reason = explain(error)
        if reason is None:
            raise
        raise StepFailed(f"{what}: {reason}") from None


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
    live: ClassVar[bool] = False  # True: a connection makes it deploy for real

    def effective_placement(self, region: str, cluster: str) -> tuple[str, str]:
        """The region and cluster a deploy uses: the environment's own, else this adapter's defaults."""
        return region or self.default_region, cluster or self.default_cluster

    def connected_placement(self, connection: "Connection", region: str, cluster: str) -> tuple[str, str]:
        """Where a live deploy goes: what the connection says, else as `effective_placement`."""
        return self.effective_placement(connection.region or region, connection.cluster or cluster)

    def validate(self, target: Target) -> list[str]:
        """Why this target cannot be deployed here (empty: it can)."""
        return []

    def plan(self, target: Target) -> list[Step]:
        raise NotImplementedError

    def perform(self, step: Step, target: Target) -> dict:
        """Simulate one step; return what was done (it is logged). Raise StepFailed when it does not work."""
        return step.detail

    def perform_live(self, step: Step, target: Target, progress: Progress) -> dict:
        """Do one step on the platform (`target.connection`); return what was done. Raise StepFailed, with the
        platform's reason, when it does not work. Live adapters only."""
        raise NotImplementedError

    def running(self, target: Target) -> str | None:
        """The image that runs on the platform for `target` now, or None when nothing does. Raise PlatformError
        when the platform cannot be asked. Live adapters only."""
        raise NotImplementedError

    def execute(self, step: Step, target: Target, progress: Progress | None = None) -> dict:
        if target.connection is not None:
            return self.perform_live(step, target, progress or Progress())
        if f"{self.name}:{step.name}" in failing_steps() or step.name in failing_steps():
            raise StepFailed(f"{self.name}: {step.name} failed (injected by CONTROLPLANE_FAIL_STEPS)")
        time.sleep(settings.CONTROLPLANE_WORKFLOWS["stepDelaySeconds"])
        return self.perform(step, target)

    def __repr__(self) -> str:
        return f"<Adapter {self.name}>"


def failing_steps() -> set[str]:
    """Steps made to fail on purpose, for demos and tests: `<adapter>:<step>` or `<step>`."""
    return set(settings.CONTROLPLANE_WORKFLOWS["failSteps"])
