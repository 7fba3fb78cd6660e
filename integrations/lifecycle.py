"""Creating and changing integrations and webhook endpoints: the rules every door (REST, GraphQL, the pages, the
admin, cpctl) goes through. Each change is audited; no audit event carries a secret or a webhook's URL beyond its
host (a Slack URL is itself a credential)."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from controlplane import sealed
from controlplane.errors import Conflict
from controlplane.identity.context import current_actor
from controlplane.signals import action_performed
from controlplane.timestamps import rfc3339
from integrations import addresses, signatures
from integrations.models import DeliveryState, Integration, WebhookDelivery, WebhookEndpoint, webhook_url_problem
from integrations.outbox import body

Kind = Integration.Kind
# The audit trail names fields as the API does (`serviceMap`), like every other event's metadata.
API_NAMES = {"service_map": "serviceMap"}


def _audit(instance, action: str, metadata: dict) -> None:
    action_performed.send(sender=type(instance), instance=instance, action=action, metadata=metadata)


# --- integrations (incidents in) ---


def _secret_problems(kind: str, secret: str | None, rotating: bool = False) -> dict[str, list[str]]:
    """What is wrong with the secret given for an integration of `kind`: PagerDuty's is PagerDuty's (it makes one when
    its subscription is added, and only it can sign with it: a rotation must bring it); every other kind's is made
    here."""
    if secret is None:
        if rotating and kind == Kind.PAGERDUTY:
            return {"secret": ["is required: give the new signing secret PagerDuty shows (only PagerDuty signs)."]}
        return {}
    if kind != Kind.PAGERDUTY:
        return {"secret": ["is made by the control plane for this kind; leave it out."]}
    if not isinstance(secret, str) or not 16 <= len(secret) <= 200:
        return {"secret": ["must be the signing secret PagerDuty shows: 16-200 characters."]}
    return {}


def _saved_with(instance, problems: dict[str, list[str]]) -> None:
    """Save `instance`, or raise every problem at once: the door's own (`problems`) and the model's."""
    try:
        instance.full_clean()
    except ValidationError as e:
        problems = e.update_error_dict(dict(problems))
    if problems:
        raise ValidationError(problems)
    instance.save()


def create_integration(
    kind: str, name: str, service_map: dict | None = None, secret: str | None = None, id: str = ""
) -> tuple[Integration, str]:
    """A new integration and its secret, shown this once (PagerDuty's may come later, by a rotation)."""
    problems = _secret_problems(kind, secret)
    secret = secret if secret is not None and not problems else signatures.new_secret()
    integration = Integration(id=id, kind=kind, name=name, service_map=service_map or {}, created_by=current_actor())
    integration.secret_sealed = sealed.seal(secret)
    with transaction.atomic():
        _saved_with(integration, problems)
        _audit(integration, "integration.create", {"kind": kind, "name": name, "serviceMap": integration.service_map})
    return integration, secret


def update_integration(integration: Integration, **changes) -> Integration:
    before = {field: getattr(integration, field) for field in changes}
    for field, value in changes.items():
        setattr(integration, field, value)
    with transaction.atomic():
        _saved_with(integration, {})
        changed = {
            API_NAMES.get(f, f): [before[f], getattr(integration, f)]
            for f in changes
            if before[f] != getattr(integration, f)
        }
        if changed:
            _audit(integration, "integration.update", {"changes": changed})
    return integration


def rotate_integration_secret(integration: Integration, secret: str | None = None) -> tuple[Integration, str]:
    """A new secret; the old one keeps working for 24 hours beside it."""
    if problems := _secret_problems(integration.kind, secret, rotating=True):
        raise ValidationError(problems)
    secret = secret if secret is not None else signatures.new_secret()
    now = timezone.now()
    with transaction.atomic():
        integration = Integration.objects.select_for_update().get(pk=integration.pk)
        integration.replace_secret(secret, now)
        integration.save()
        _audit(integration, "integration.rotate", {"previousValidUntil": integration.previous_valid_until})
    return integration, secret


# --- webhook endpoints (events out) ---


def _url_problems(url: str) -> dict[str, list[str]]:
    """A URL that resolves where webhooks may not go, refused when it is set (delivery checks again)."""
    if not isinstance(url, str) or webhook_url_problem(url):
        return {}  # the model's validation names what is wrong with it
    try:
        addresses.target(url)
    except addresses.AddressRefused as e:
        return {"url": [str(e)]}
    return {}


def create_webhook(
    url: str, events: list[str], format: str = "standard", description: str = "", id: str = ""
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its secret (`whsec_…`), shown this once."""
    problems = _url_problems(url)
    secret = signatures.new_secret()
    endpoint = WebhookEndpoint(
        id=id, url=url, events=events, format=format, description=description, created_by=current_actor()
    )
    endpoint.secret_sealed = sealed.seal(secret)
    with transaction.atomic():
        _saved_with(endpoint, problems)
        _audit(endpoint, "webhook.create", _described(endpoint))
    return endpoint, secret


def _described(endpoint: WebhookEndpoint) -> dict:
    """What the audit trail says of an endpoint: its URL's host only."""
    return {
        "host": endpoint.host,
        "events": endpoint.events,
        "format": endpoint.format,
        "description": endpoint.description,
        "enabled": endpoint.enabled,
    }


def update_webhook(endpoint: WebhookEndpoint, enabled: bool | None = None, **changes) -> WebhookEndpoint:
    """Change what an endpoint receives, where, or how; `enabled` turns it back on, or off as `disable` does."""
    problems = _url_problems(changes["url"]) if "url" in changes else {}
    before = _described(endpoint)
    for field, value in changes.items():
        setattr(endpoint, field, value)
    if enabled and not endpoint.enabled:
        endpoint.disabled_at, endpoint.disabled_reason = None, ""
    with transaction.atomic():
        _saved_with(endpoint, problems)
        after = _described(endpoint)
        if changed := {k: [before[k], after[k]] for k in after if before[k] != after[k]}:
            _audit(endpoint, "webhook.update", {"changes": changed})
        if enabled is False:
            disable(endpoint, f"disabled by {current_actor()}")
    return endpoint


def disable(endpoint: WebhookEndpoint, reason: str) -> WebhookEndpoint:
    """Stop sending to `endpoint` (a 410, or an admin): what is still waiting fails, saying why."""
    now = timezone.now()
    with transaction.atomic():
        if not WebhookEndpoint.objects.filter(pk=endpoint.pk, disabled_at__isnull=True).update(
            disabled_at=now, disabled_reason=reason[:300]
        ):
            return endpoint  # already off
        WebhookDelivery.objects.filter(endpoint=endpoint, state=DeliveryState.PENDING).update(
            state=DeliveryState.FAILED, last_error=f"not sent: {reason}"[:500], finished_at=now, next_attempt_at=None
        )
        endpoint.refresh_from_db()
        _audit(endpoint, "webhook.disable", {"host": endpoint.host, "reason": reason})
    return endpoint


def rotate_webhook_secret(endpoint: WebhookEndpoint) -> tuple[WebhookEndpoint, str]:
    """A new secret; for 24 hours every request is signed with both, so receivers can switch when they like."""
    secret = signatures.new_secret()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        endpoint.replace_secret(secret, timezone.now())
        endpoint.save()
        _audit(endpoint, "webhook.rotate", {"previousValidUntil": endpoint.previous_valid_until})
    return endpoint, secret


def redelivery_refusal(delivery: WebhookDelivery) -> str | None:
    """Why `delivery` cannot be sent again now, or None: what the pages ask before offering it."""
    if not delivery.endpoint.enabled:
        return f"webhook {delivery.endpoint_id} is disabled; enable it first."
    if delivery.state not in (DeliveryState.SUCCEEDED, DeliveryState.FAILED):
        return f"delivery {delivery.pk} is {delivery.state}: it is sent already, or about to be."
    return None


def redeliver(delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a finished delivery again, now, with its id and body as they were (a receiver that deduplicates on
    webhook-id and already has it ignores it). 409 while it is still waiting or in flight."""
    if refusal := redelivery_refusal(delivery):
        raise Conflict(refusal)
    now = timezone.now()
    with transaction.atomic():
        moved = WebhookDelivery.objects.filter(
            pk=delivery.pk, state__in=[DeliveryState.SUCCEEDED, DeliveryState.FAILED]
        ).update(state=DeliveryState.PENDING, next_attempt_at=now, finished_at=None)
        if not moved:  # moved on since it was read
            delivery.refresh_from_db()
            raise Conflict(redelivery_refusal(delivery) or f"delivery {delivery.pk} changed; try again.")
        delivery.refresh_from_db()
        _audit(delivery.endpoint, "webhook.redeliver", {"delivery": delivery.pk, "eventType": delivery.event_type})
    return delivery


PING = "webhook.ping"


def ping_refusal(endpoint: WebhookEndpoint) -> str | None:
    """Why `endpoint` cannot be pinged now, or None."""
    return None if endpoint.enabled else f"webhook {endpoint.pk} is disabled; enable it first."


def ping(endpoint: WebhookEndpoint) -> WebhookDelivery:
    """A test event for `endpoint` alone, sent like any other (and logged)."""
    if refusal := ping_refusal(endpoint):
        raise Conflict(refusal)
    now = timezone.now()
    data = {"subject": {"type": "WebhookEndpoint", "id": endpoint.pk}, "actor": current_actor(), "ts": rfc3339(now)}
    with transaction.atomic():
        delivery = WebhookDelivery(
            endpoint=endpoint,
            event_type=PING,
            body=body(endpoint.format, PING, data),
            next_attempt_at=now,
        )
        delivery.save()
    return delivery
