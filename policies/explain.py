""" "Why not, and until when?": the gate's decision for an action that has not been asked for, at any instant.

One function for every door (REST `…/environments/{id}/policy/`, GraphQL `Environment.policy`, the pages and
`cpctl policy explain`): it picks what the action would be decided on, then asks the gate with `explain=True`
(docs/policies.md, "Why not, and until when?").
"""

from datetime import datetime

from django.core.exceptions import ValidationError
from django.utils import timezone

from controlplane.models import ID_PATTERN
from policies.gate import ACTIONS, Decision, decide, situation
from releases.models import Release
from services import policy_refs
from services.models import Environment, Service


def promotion_source(environment: Environment, service_id: str) -> Release | None:
    """The release a promotion into `environment` is explained for: the service's current Active release in
    the environment its first `policy:requires` ref names, when it has one; else the service's most recently
    activated current release in any other environment. None when there is none (nothing to promote)."""
    if not service_id:
        return None
    current = Release.objects.filter(service_id=service_id, status=Release.Status.ACTIVE, is_current=True)
    refs = policy_refs.parse_all(environment.policy_refs)
    required = next((ref.environment for ref in refs if ref.kind == "requires"), None)
    if required is not None:
        current = current.filter(environment_id=required)
    else:
        current = current.exclude(environment_id=environment.pk)
    return current.order_by("-activated_at", "-id").first()


def explain(
    environment: Environment, service_id: str = "", action: str = "deploy", at: datetime | None = None
) -> Decision:
    """The decision on `action` ("deploy", "promote", "rollback") of `service_id` into `environment` at `at`
    (now by default; any past or future instant), by the current principal, with each window's state.

    `service_id` may be empty (gates about a service, the incident gate, then have nothing to refuse). A deploy
    is explained for a release created in the environment; a promotion for `promotion_source`. ValidationError
    keyed `action` or `serviceId` (the parameters' names on every door) for an unknown one."""
    errors = {}
    if action not in ACTIONS:
        errors["action"] = [f"must be one of {', '.join(ACTIONS)}."]
    # Not an id at all: unknown without a query (PostgreSQL refuses a NUL byte in one).
    if service_id and not (ID_PATTERN.fullmatch(service_id) and Service.objects.filter(pk=service_id).exists()):
        errors["serviceId"] = [f"unknown service {service_id!r}."]
    if errors:
        raise ValidationError(errors)
    at = at or timezone.now()
    source = promotion_source(environment, service_id) if action == "promote" else None
    facts = situation(action, environment, service_id, source=source, at=at)
    return decide(facts, at=at, explain=True)
