"""Drift (docs/adapters.md, "What actually runs"): whether what runs on a connected environment's platform is
what the control plane thinks runs there, its current release.

A check asks the live adapter of each service linked to the environment what runs now and keeps the answer
(`Observation`, one per service, environment and adapter). A service has drifted when its target runs another
image than its current release's (`repo:sha`), runs nothing though it has a current release, or runs something
though it has none; while a release of it is rolling out there, its image, or nothing yet, is expected too. A platform
that cannot be asked keeps the last verdict and says why. The worker checks every connected environment every
`CONTROLPLANE_DRIFT_INTERVAL`; the API, the pages and `cpctl drift` check on demand.
A service becoming drifted, or in sync again, is audited (`drift.detected`, `drift.resolved`), so the pages
cached under the audit trail's head show it at once.
"""

import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from controlplane import adapters, connections
from controlplane.adapters import PlatformError
from controlplane.errors import Conflict
from controlplane.signals import action_performed
from releases.engine import target
from releases.models import Observation, Release, ReleaseStatus
from services.models import Environment, Service

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Report:
    environment: Environment
    observations: list[Observation]

    @property
    def checked_at(self):
        return max((o.checked_at for o in self.observations), default=None)

    @property
    def drifted(self) -> list[Observation]:
        return [o for o in self.observations if o.drifted]

    @property
    def errors(self) -> list[Observation]:
        return [o for o in self.observations if o.error]


def live_adapter(environment: Environment):
    """The adapter `environment`'s connection makes live, or a Conflict saying why nothing can be compared."""
    if not environment.connection:
        raise Conflict(
            f"{environment.pk} names no connection: its adapters simulate, so nothing runs there to compare; "
            "name a connection (CONTROLPLANE_CONNECTIONS) to deploy and check for real."
        )
    connection = connections.get(environment.connection)
    if connection is None:
        raise Conflict(f"{environment.pk} names connection {environment.connection!r}, which is not configured.")
    return adapters.get(connection.adapter)


def report(environment: Environment) -> Report:
    """What the last check saw (no platform is asked)."""
    observations = list(Observation.objects.filter(environment=environment).select_related("service", "release"))
    return Report(environment, observations)


def check(environment: Environment) -> Report:
    """Ask the platform now, for every service of `environment` that deploys through its connection's adapter."""
    adapter = live_adapter(environment)
    services = Service.objects.filter(environments=environment, archived_at__isnull=True).order_by("id")
    services = [s for s in services if adapter.name in s.deployment_adapters]
    releases = Release.objects.filter(environment=environment, service__in=services)
    current = {r.service_id: r for r in releases.filter(is_current=True)}
    # A rollout under way may run its new image already: that is not drift.
    rolling = {r.service_id: r for r in releases.filter(status=ReleaseStatus.PROMOTING)}
    kept = {o.service_id: o for o in Observation.objects.filter(environment=environment, adapter=adapter.name)}
    seen = []
    for service in services:
        release = current.get(service.pk)
        where = target(adapter, service, environment, release)
        expected = where.image if release else ""
        observation = kept.get(service.pk) or Observation(service=service, environment=environment)
        observation.adapter = adapter.name
        was = observation.drifted if observation.pk else False
        observation.connection, observation.release, observation.expected = where.connection.name, release, expected
        observation.checked_at = timezone.now()
        try:
            observation.running = adapter.running(where) or ""
            observation.error = ""
            rollout = rolling.get(service.pk)
            # While a release rolls out, the platform may run the old image, the new one, or (a first deploy not
            # applied yet) nothing: none of those is drift.
            allowed = {expected, target(adapter, service, environment, rollout).image, ""} if rollout else {expected}
            observation.drifted = observation.running not in allowed
        except PlatformError as e:
            observation.error = str(e)  # the verdict stays what it was: unknown is not in sync
        _save(observation, was)
        seen.append(observation)
    # Services no longer linked, or no longer deploying there: nothing to compare any more.
    Observation.objects.filter(environment=environment).exclude(pk__in=[o.pk for o in seen]).delete()
    return Report(environment, seen)


@transaction.atomic
def _save(observation: Observation, was_drifted: bool) -> None:
    observation.save()
    if observation.drifted != was_drifted:
        action_performed.send(
            sender=Service,
            instance=observation.service,
            action="drift.detected" if observation.drifted else "drift.resolved",
            metadata={
                "envId": observation.environment_id,
                "adapter": observation.adapter,
                "connection": observation.connection,
                "currentReleaseId": observation.release_id,
                "expected": observation.expected or None,
                "running": observation.running or None,
            },
        )


def check_all() -> int:
    """Check every connected environment (the worker's round); one that fails is logged, the rest still checked."""
    checked = 0
    for environment in Environment.objects.filter(archived_at__isnull=True).exclude(connection="").order_by("id"):
        try:
            check(environment)
            checked += 1
        except Exception:
            logger.exception("drift check of %s failed", environment.pk)
    return checked


def drifted_pairs(environment_ids=None) -> set[tuple[str, str]]:
    """(service id, environment id) of every drifted target, for the pages' badges. One query."""
    rows = Observation.objects.filter(drifted=True)
    if environment_ids is not None:
        rows = rows.filter(environment_id__in=environment_ids)
    return set(rows.values_list("service_id", "environment_id"))


__all__ = ["Report", "check", "check_all", "drifted_pairs", "report"]
