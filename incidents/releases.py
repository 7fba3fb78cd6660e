"""Which release an incident is blamed on (`Incident.release`): by default, when it is created, the service's
production release that was current when the incident started; whoever creates or edits it may name another
release of the service, or none. A release an incident is linked to counts as a failed deployment in the DORA
figures (overview.dora, docs/metrics.md).

Releases stand beside incidents in the layers (docs/architecture.md), so this module reaches the Release model
through the incident's relation to it rather than by importing it."""

from datetime import datetime

from django.db.models import Q

from incidents.models import Incident
from services.models import Environment


def _releases():
    return Incident._meta.get_field("release").related_model.objects


def current_in_production(service_id: str, at: datetime | None) -> str | None:
    """The id of the release of `service_id` that ran in a production environment at `at`: activated at or before
    it and not superseded by then. Where the service runs in several production environments, the one activated
    last (the latest change is the likeliest cause). None when nothing ran in production then. One query: what
    ran at `at` in each of the service's environments, at most one release each."""
    if not service_id or at is None:
        return None
    running = _releases().filter(
        Q(superseded_at__isnull=True) | Q(superseded_at__gt=at), service_id=service_id, activated_at__lte=at
    )
    for release_id, environment_name in running.order_by("-activated_at", "-id").values_list("pk", "environment__name"):
        if Environment(name=environment_name).is_production:  # the rule on the name, asked of the model
            return release_id
    return None


def problem(release_id: str, service_id: str) -> str | None:
    """Why `release_id` cannot be an incident of `service_id`'s release, or None (an unknown id is the field's own
    error)."""
    owner = _releases().filter(pk=release_id).values_list("service_id", flat=True).first()
    if owner is not None and owner != service_id:
        return f"release {release_id} is of service {owner!r}, not of the incident's service {service_id!r}."
    return None
