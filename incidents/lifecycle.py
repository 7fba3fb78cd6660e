"""An incident's status moves: triggered → acknowledged → resolved, or triggered → resolved."""

from django.utils import timezone

from controlplane.lifecycle import move
from incidents.models import Incident

Status = Incident.Status


def acknowledge(incident: Incident) -> Incident:
    return move(incident, Status.ACKNOWLEDGED, acknowledged_at=timezone.now())


def resolve(incident: Incident) -> Incident:
    return move(incident, Status.RESOLVED, resolved_at=timezone.now())
