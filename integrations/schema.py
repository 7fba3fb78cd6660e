"""Integrations over GraphQL, admins only as over REST (integrations/api.py): integrations (incidents in) and what
each received, webhook endpoints (events out) with their deliveries and each delivery's tries. The mutations go
through REST's serializers and `integrations.lifecycle`; a secret is in a create's or a rotation's payload only.

A caller below admin asking for any of these fields gets null there and an error `FORBIDDEN` with REST's 403
sentence ("integration.read needs the admin role; …"); the rest of the document is answered."""

import json

import graphene
from graphql import GraphQLError

from controlplane.graphql.types import (
    AFTER,
    FIRST,
    JSON,
    Create,
    DateTime,
    DomainMutation,
    Keyset,
    Update,
    batched,
    checked,
    choice,
    connection,
    found,
    given,
    lookup,
    paginate,
)
from controlplane.identity.context import current_principal
from controlplane.identity.roles import can, refusal
from integrations import lifecycle
from integrations.api import DeliverySerializer, IntegrationSerializer, RotateBody, WebhookSerializer
from integrations.models import (
    KINDS,
    DeliveryState,
    Integration,
    Outcome,
    ReceivedEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookFormat,
)

IntegrationKindEnum = graphene.Enum(
    "IntegrationKind", [(kind, kind) for kind, _ in KINDS], description="The source that posts to an integration."
)
OutcomeEnum = graphene.Enum(
    "ReceivedEventOutcome",
    [(value, value) for value in Outcome.values],
    description="What became of a request an integration received: created or updated an incident, changed nothing "
    "(unchanged, ignored, duplicate), or was refused with a 4xx (rejected).",
)
WebhookFormatEnum = graphene.Enum(
    "WebhookFormat",
    [(value, value) for value in WebhookFormat.values],
    description="standard: Standard Webhooks' signed JSON; slack: a Slack-compatible message, signed the same way.",
)
DeliveryStateEnum = graphene.Enum(
    "WebhookDeliveryState",
    [(value, value) for value in DeliveryState.values],
    description="pending (until its next try) → sending → succeeded, or failed (given up, or the endpoint disabled).",
)


def admitted(action: str) -> None:
    """Refuse a caller whose role may not `action`, with REST's 403 sentence: the field is null, the error
    `FORBIDDEN`."""
    principal = current_principal()
    if not can(principal, action):
        raise GraphQLError(refusal(principal, action), extensions={"code": "FORBIDDEN"})


def _by_pk(model, attname: str):
    """A loader of the `model` each object names in `attname`, one query for all of them."""

    def load(objects) -> dict:
        found = model.objects.in_bulk({getattr(o, attname) for o in objects})
        return {o.pk: found.get(getattr(o, attname)) for o in objects}

    return load


# --- incidents in ---


class IntegrationType(graphene.ObjectType):
    class Meta:
        name = "Integration"

    id = graphene.ID(required=True)
    kind = choice(IntegrationKindEnum, "kind", required=True)
    name = graphene.String(required=True)
    service_map = JSON(
        required=True,
        description="The source's service id (PagerDuty) or `service` label (Alertmanager) → our service id.",
    )
    url = graphene.String(required=True, description="Where the source posts its events.")
    created_by = graphene.String(required=True)
    created_at = DateTime(required=True)
    previous_secret_valid_until = DateTime(
        source="previous_valid_until", description="The rotated-out secret works until."
    )

    @staticmethod
    def resolve_url(integration, info):
        return info.context.build_absolute_uri(f"/api/integrations/{integration.pk}/events/")


class ReceivedEventType(graphene.ObjectType):
    """A request an integration took as its source's, whatever became of it (integrations.models.ReceivedEvent)."""

    class Meta:
        name = "ReceivedEvent"

    id = graphene.ID(required=True)
    integration_id = graphene.ID(required=True)
    integration = graphene.Field(IntegrationType, required=True)
    received_at = DateTime(required=True)
    event_id = graphene.String(required=True, description="The source's id for the event; empty when it has none.")
    event_type = graphene.String(required=True)
    external_id = graphene.String(required=True, description="The source's incident (or alert) id.")
    occurred_at = DateTime(description="When the source says it happened.")
    status_code = graphene.Int(required=True, description="What the source was answered.")
    outcome = choice(OutcomeEnum, "outcome", required=True)
    reason = graphene.String(required=True)
    results = JSON(required=True, description="Per incident: [{externalId, outcome, incidentId, reason}].")

    @staticmethod
    def resolve_integration(event, info):
        return batched(event, "integration", _by_pk(Integration, "integration_id"))


IntegrationConnection = connection(IntegrationType)
ReceivedEventConnection = connection(ReceivedEventType)
INTEGRATIONS = Keyset(Integration, ("name", "id"), "integrations")
RECEIVED = Keyset(ReceivedEvent, ("-received_at", "-id"), "integrationDeliveries")


# --- events out ---


class WebhookType(graphene.ObjectType):
    class Meta:
        name = "Webhook"

    id = graphene.ID(required=True)
    url = graphene.String(required=True, description="Where events are POSTed (it may carry the receiver's token).")
    events = graphene.List(
        graphene.NonNull(graphene.String),
        required=True,
        description="Audit actions to send: `release.activate`, `release.*`, `*.create`, `*`.",
    )
    format = choice(WebhookFormatEnum, "format", required=True)
    description = graphene.String(required=True)
    enabled = graphene.Boolean(required=True, description="false: nothing is sent (a 410 sets it too).")
    disabled_reason = graphene.String(required=True)
    created_by = graphene.String(required=True)
    created_at = DateTime(required=True)
    previous_secret_valid_until = DateTime(source="previous_valid_until", description="Signed with both secrets until.")


class WebhookAttemptType(graphene.ObjectType):
    """One try of a delivery: what was answered (or why nothing was), and how long it took."""

    class Meta:
        name = "WebhookAttempt"

    number = graphene.Int(required=True)
    started_at = DateTime(required=True)
    duration_ms = graphene.Int(required=True)
    status_code = graphene.Int(description="null: no answer (see `error`).")
    error = graphene.String(required=True)
    response = graphene.String(required=True, description="The answer's first characters, redacted.")


class WebhookDeliveryType(graphene.ObjectType):
    """One event for one endpoint (integrations.models.WebhookDelivery)."""

    class Meta:
        name = "WebhookDelivery"

    id = graphene.ID(required=True, description="Also its `webhook-id` header, the same on every try.")
    webhook_id = graphene.ID(required=True, source="endpoint_id")
    webhook = graphene.Field(WebhookType, required=True)
    event_type = graphene.String(required=True)
    event_seq = graphene.Int(description="The audit event's seq; null for a ping.")
    state = choice(DeliveryStateEnum, "state", required=True)
    attempts = graphene.Int(required=True)
    created_at = DateTime(required=True)
    next_attempt_at = DateTime()
    last_status = graphene.Int()
    last_error = graphene.String(required=True)
    finished_at = DateTime()
    body = JSON(required=True, description="What is sent, byte for byte as JSON.")
    tries = graphene.List(graphene.NonNull(WebhookAttemptType), required=True, description="Its tries, in order.")

    @staticmethod
    def resolve_webhook(delivery, info):
        return batched(delivery, "webhook", _by_pk(WebhookEndpoint, "endpoint_id"))

    @staticmethod
    def resolve_body(delivery, info):
        return json.loads(delivery.body)

    @staticmethod
    def resolve_tries(delivery, info):
        def load(deliveries) -> dict:
            tries: dict = {d.pk: [] for d in deliveries}
            for attempt in WebhookAttempt.objects.filter(delivery_id__in=list(tries)).order_by("delivery", "number"):
                tries[attempt.delivery_id].append(attempt)
            return tries

        return batched(delivery, "tries", load, [])


WebhookConnection = connection(WebhookType)
WebhookDeliveryConnection = connection(WebhookDeliveryType)
WEBHOOKS = Keyset(WebhookEndpoint, ("created_at", "id"), "webhooks")
DELIVERIES = Keyset(WebhookDelivery, ("-created_at", "-id"), "webhookDeliveries")


class Query(graphene.ObjectType):
    integrations = graphene.Field(
        IntegrationConnection, first=FIRST, after=AFTER, description="By name. Admins only (integration.read)."
    )
    integration = graphene.Field(
        IntegrationType, id=graphene.ID(required=True), description="Admins only (integration.read)."
    )
    integration_deliveries = graphene.Field(
        ReceivedEventConnection,
        integration_id=graphene.ID(required=True),
        first=FIRST,
        after=AFTER,
        description="What the integration received, newest first (REST's …/deliveries/); null for an unknown "
        "integration. Admins only (integration.read).",
    )
    webhooks = graphene.Field(
        WebhookConnection, first=FIRST, after=AFTER, description="Oldest first. Admins only (webhook.read)."
    )
    webhook = graphene.Field(WebhookType, id=graphene.ID(required=True), description="Admins only (webhook.read).")
    webhook_deliveries = graphene.Field(
        WebhookDeliveryConnection,
        webhook_id=graphene.ID(required=True),
        first=FIRST,
        after=AFTER,
        description="The endpoint's deliveries, newest first; null for an unknown webhook. Admins only (webhook.read).",
    )
    webhook_delivery = graphene.Field(
        WebhookDeliveryType, id=graphene.ID(required=True), description="With its tries. Admins only (webhook.read)."
    )

    @staticmethod
    def resolve_integrations(root, info, first=None, after=None):
        admitted("integration.read")
        return paginate(Integration.objects.all(), INTEGRATIONS, first, after)

    @staticmethod
    def resolve_integration(root, info, id):
        admitted("integration.read")
        return lookup(Integration, id).first()

    @staticmethod
    def resolve_integration_deliveries(root, info, integration_id, first=None, after=None):
        admitted("integration.read")
        if not lookup(Integration, integration_id).exists():
            return None
        return paginate(ReceivedEvent.objects.filter(integration_id=integration_id), RECEIVED, first, after)

    @staticmethod
    def resolve_webhooks(root, info, first=None, after=None):
        admitted("webhook.read")
        return paginate(WebhookEndpoint.objects.all(), WEBHOOKS, first, after)

    @staticmethod
    def resolve_webhook(root, info, id):
        admitted("webhook.read")
        return lookup(WebhookEndpoint, id).first()

    @staticmethod
    def resolve_webhook_deliveries(root, info, webhook_id, first=None, after=None):
        admitted("webhook.read")
        if not lookup(WebhookEndpoint, webhook_id).exists():
            return None
        return paginate(WebhookDelivery.objects.filter(endpoint_id=webhook_id), DELIVERIES, first, after)

    @staticmethod
    def resolve_webhook_delivery(root, info, id):
        admitted("webhook.read")
        return lookup(WebhookDelivery, id).first()


# --- mutations ---

SECRET_ONCE = "The secret: in this payload only, stored nowhere in the clear."


def _integration_data(input) -> dict:
    """`input` as REST's body, its service map as it was sent (`given` would camel-case the map's keys)."""
    data = given(input)
    if "service_map" in input:
        data["serviceMap"] = input["service_map"]
    return data


class IntegrationCreateInput(graphene.InputObjectType):
    id = graphene.ID(description="Generated when omitted.")
    kind = IntegrationKindEnum(required=True)
    name = graphene.String(required=True)
    service_map = JSON(description="The source's service id or `service` label → our service id.")
    secret = graphene.String(
        description="PagerDuty only: the signing secret PagerDuty showed when you added the webhook subscription; "
        "the control plane makes the others'."
    )


class IntegrationUpdateInput(graphene.InputObjectType):
    name = graphene.String()
    service_map = JSON(description="The whole new map.")


class IntegrationCreate(Create):
    """Create an integration: its `url` is where the source posts; `secret` is in this payload only."""

    permission, serializer_class, input_type = "integration.create", IntegrationSerializer, IntegrationCreateInput
    integration = graphene.Field(IntegrationType)
    secret = graphene.String(description=SECRET_ONCE)

    @classmethod
    def perform(cls, input):
        serializer = IntegrationSerializer(data=_integration_data(input))
        serializer.is_valid(raise_exception=True)
        integration = serializer.save()
        return {"integration": integration, "secret": serializer.secret}


class IntegrationUpdate(Update):
    permission, serializer_class, input_type = "integration.update", IntegrationSerializer, IntegrationUpdateInput
    integration = graphene.Field(IntegrationType)

    @classmethod
    def perform(cls, id, input):
        integration = found(Integration, id)
        serializer = IntegrationSerializer(integration, data=_integration_data(input), partial=True)
        serializer.is_valid(raise_exception=True)
        return {"integration": serializer.save()}


class IntegrationRotateSecret(DomainMutation):
    """A new secret, in this payload only; the old one keeps working for 24 hours."""

    permission, serializer_class, body_class = "integration.rotate", IntegrationSerializer, RotateBody
    integration = graphene.Field(IntegrationType)
    secret = graphene.String(description=SECRET_ONCE)

    class Arguments:
        id = graphene.ID(required=True)
        secret = graphene.String(description="PagerDuty only: the new secret PagerDuty shows.")

    @classmethod
    def perform(cls, id, secret=None):
        body = checked(RotateBody, {} if secret is None else {"secret": secret})
        integration, secret = lifecycle.rotate_integration_secret(found(Integration, id), body.get("secret"))
        return {"integration": integration, "secret": secret}


class WebhookCreateInput(graphene.InputObjectType):
    id = graphene.ID(description="Generated when omitted.")
    url = graphene.String(required=True, description="An absolute http(s) URL; it must resolve to a public address.")
    events = graphene.List(
        graphene.NonNull(graphene.String),
        required=True,
        description="Audit actions to send: `release.activate`, `release.*`, `*.create`, `*`.",
    )
    format = WebhookFormatEnum(description="standard when omitted.")
    description = graphene.String()


class WebhookUpdateInput(graphene.InputObjectType):
    url = graphene.String()
    events = graphene.List(graphene.NonNull(graphene.String))
    format = WebhookFormatEnum()
    description = graphene.String()
    enabled = graphene.Boolean(description="false: nothing is sent; true: sending again.")


class WebhookCreate(Create):
    """Subscribe a URL to audit actions; `secret` (`whsec_…`) is in this payload only."""

    permission, serializer_class, input_type = "webhook.create", WebhookSerializer, WebhookCreateInput
    webhook = graphene.Field(WebhookType)
    secret = graphene.String(description=SECRET_ONCE)

    @classmethod
    def perform(cls, input):
        serializer = WebhookSerializer(data=given(input))
        serializer.is_valid(raise_exception=True)
        endpoint = serializer.save()
        return {"webhook": endpoint, "secret": serializer.secret}


class WebhookUpdate(Update):
    """Change what an endpoint receives, where, or how; `enabled` turns it off or back on."""

    permission, serializer_class, input_type = "webhook.update", WebhookSerializer, WebhookUpdateInput
    webhook = graphene.Field(WebhookType)

    @classmethod
    def entity(cls):
        return "webhook"


class WebhookRotateSecret(DomainMutation):
    """A new secret, in this payload only; for 24 hours every request is signed with both."""

    permission, serializer_class = "webhook.rotate", WebhookSerializer
    webhook = graphene.Field(WebhookType)
    secret = graphene.String(description=SECRET_ONCE)

    class Arguments:
        id = graphene.ID(required=True)

    @classmethod
    def perform(cls, id):
        endpoint, secret = lifecycle.rotate_webhook_secret(found(WebhookEndpoint, id))
        return {"webhook": endpoint, "secret": secret}


class WebhookPing(DomainMutation):
    """Send a `webhook.ping` event now; it is logged with the endpoint's other deliveries."""

    permission, serializer_class = "webhook.ping", WebhookSerializer
    delivery = graphene.Field(WebhookDeliveryType)

    class Arguments:
        id = graphene.ID(required=True, description="The webhook's id.")

    @classmethod
    def perform(cls, id):
        return {"delivery": lifecycle.ping(found(WebhookEndpoint, id))}


class WebhookRedeliver(DomainMutation):
    """Send a finished delivery again, now, with its id and body unchanged (CONFLICT while it waits)."""

    permission, serializer_class = "webhook.redeliver", DeliverySerializer
    delivery = graphene.Field(WebhookDeliveryType)

    class Arguments:
        delivery_id = graphene.ID(required=True, description="The delivery's id (`msg-…`).")

    @classmethod
    def perform(cls, delivery_id):
        return {"delivery": lifecycle.redeliver(found(WebhookDelivery, delivery_id))}


class Mutation(graphene.ObjectType):
    integration_create = IntegrationCreate.Field(required=True)
    integration_update = IntegrationUpdate.Field(required=True)
    integration_rotate_secret = IntegrationRotateSecret.Field(required=True)
    webhook_create = WebhookCreate.Field(required=True)
    webhook_update = WebhookUpdate.Field(required=True)
    webhook_rotate_secret = WebhookRotateSecret.Field(required=True)
    webhook_ping = WebhookPing.Field(required=True)
    webhook_redeliver = WebhookRedeliver.Field(required=True)
