"""Archiving: services and environments are retired, never deleted, so their ids stay taken."""

from django.db import transaction
from django.utils import timezone

from controlplane.errors import Conflict
from services.models import Environment, Service


@transaction.atomic
def archive(entity: Service | Environment) -> None:
    entity.refresh_from_db()
    if entity.is_archived:
        raise Conflict(f"{entity} is already archived.")
    if entity.releases.filter(status="Promoting").exists():
        raise Conflict(f"{entity} has a release promoting; wait for it to finish before archiving.")
    entity.archived_at = timezone.now()
    entity.save()


@transaction.atomic
def restore(entity: Service | Environment) -> None:
    entity.refresh_from_db()
    if not entity.is_archived:
        raise Conflict(f"{entity} is not archived.")
    entity.archived_at = None
    entity.save()
