"""A release's status moves. They are the only way it changes; the workflow engine calls them."""

from django.utils import timezone

from controlplane.lifecycle import move
from releases.models import Release

Status = Release.Status


def begin_rollout(release: Release, action: str = "deploy.create", details: dict | None = None) -> Release:
    """Draft → Promoting: a deploy (or, as `release.promote`, a promotion) has started.
    One at a time per (service, environment)."""
    busy = f"another release of {release.service_id} is already promoting to {release.environment_id}."
    return move(release, Status.PROMOTING, action=action, details=details, on_integrity_error=busy)


def activate(release: Release, details: dict | None = None) -> Release:
    """Promoting → Active: the rollout succeeded; the release becomes its environment's current one."""
    return move(release, Status.ACTIVE, action="release.activate", details=details, activated_at=timezone.now())


def fail(release: Release, details: dict | None = None) -> Release:
    """Promoting → Failed: the rollout did not complete."""
    return move(release, Status.FAILED, action="release.fail", details=details)
