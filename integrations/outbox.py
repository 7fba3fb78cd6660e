"""The outbox: every audit event an endpoint subscribes to becomes a delivery row in the event's own transaction
(the audit writer calls `enqueue`). A change that rolls back takes its deliveries with it; one that commits has
them, and the worker sends them (integrations.delivery) whenever it can, however long that takes.

The body is written here, once: every try sends the same bytes under the same `webhook-id`."""

from collections.abc import Callable

import orjson
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from controlplane.redaction import redact
from controlplane.timestamps import rfc3339
from integrations.models import WebhookDelivery, WebhookEndpoint, WebhookFormat
from integrations.slack import slack_message


def enqueue(action: str, event: Callable[[], dict], subject: Callable[[], dict]) -> list[WebhookDelivery]:
    """Write a delivery to every enabled endpoint that wants `action`. `event` gives the audit event as the API
    shows it and `subject` what it is about ({type, id, …its fields}); both are asked only when someone listens."""
    enabled = WebhookEndpoint.objects.filter(disabled_at__isnull=True).only("id", "events", "format")
    endpoints = [endpoint for endpoint in enabled if endpoint.wants(action)]
    if not endpoints:
        return []
    data = redact({**event(), "subject": subject()})
    bodies = {}
    deliveries = []
    for endpoint in endpoints:
        if endpoint.format not in bodies:
            bodies[endpoint.format] = body(endpoint.format, action, data)
        deliveries.append(
            WebhookDelivery(
                endpoint=endpoint,
                event_seq=data.get("seq"),
                event_type=action,
                body=bodies[endpoint.format],
                next_attempt_at=timezone.now(),
            )
        )
    for delivery in deliveries:
        delivery.save()  # one by one: each gets its id (bulk_create would skip save())
    return deliveries


def body(format: str, action: str, data: dict) -> str:
    if format == WebhookFormat.SLACK:
        return _json(slack_message(action, data))
    return _json({"type": action, "timestamp": data.get("ts") or rfc3339(timezone.now()), "data": data})


def _json(value) -> str:
    """JSON as the API writes it: a UTC time with `Z` (orjson's own is `+00:00`), and any value orjson does not
    know (a Decimal, a duration) as Django's encoder writes it, rather than an error that would undo the change."""
    return orjson.dumps(value, option=orjson.OPT_UTC_Z, default=_ENCODER.default).decode()


_ENCODER = DjangoJSONEncoder()
