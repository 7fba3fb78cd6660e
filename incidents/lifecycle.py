"""An incident's status moves: triggered → acknowledged → resolved, or triggered → resolved."""

from django.utils import timezone

from controlplane.lifecycle import move
from incidents.models import Incident

Status = Incident.Status


def acknowledge(incident: Incident) -> Incident:
    return move(incident, Status.ACKNOWLEDGED, action="incident.acknowledge", acknowledged_at=timezone.now())


def resolve(incident: Incident) -> Incident:
    return move(incident, Status.RESOLVED, action="incident.resolve", resolved_at=timezone.now())
