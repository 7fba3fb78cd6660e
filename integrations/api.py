"""Integrations over REST (docs/integrations.md), admins only: a webhook's URL and an integration's map are
configuration that may hold secrets (a Slack URL is one).

- `/api/integrations/` (incidents in): create (its `secret` in that answer only), list, read, `PATCH` name and
  serviceMap, `…/rotate-secret/`, `…/deliveries/` (what it received); `…/events/` is where the source posts,
  authenticated by the integration's signature or token, not a caller's identity.
- `/api/webhooks/` (events out): create (`whsec_…` secret once), list, read, `PATCH` url, events, format,
  description, enabled; `…/rotate-secret/`, `…/ping/`, `…/deliveries/`, `…/deliveries/{id}/` (with its tries),
  `…/deliveries/{id}/redeliver/`."""

import json

from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from controlplane.api.base import (
    Choice,
    DomainSerializer,
    DomainViewSet,
    EntitySerializer,
    StrictSerializer,
    String,
    Timestamp,
)
from integrations import inbound, lifecycle, signatures
from integrations.models import (
    KINDS,
    Integration,
    ReceivedEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookFormat,
)


class SecretShown(serializers.Serializer):
    secret = serializers.CharField(read_only=True, help_text="The secret: shown in this answer only.")


class IntegrationSerializer(EntitySerializer):
    kind = Choice(choices=KINDS)
    name = String(max_length=100)
    serviceMap = serializers.DictField(
        child=String(),
        source="service_map",
        required=False,
        help_text="The source's service id (PagerDuty) or `service` label (Alertmanager) → our service id.",
    )
    secret = String(
        write_only=True,
        required=False,
        help_text="PagerDuty only: the signing secret PagerDuty showed when you added the webhook subscription.",
    )
    url = serializers.SerializerMethodField(help_text="Where the source posts its events.")
    createdBy = String(source="created_by", read_only=True)
    createdAt = Timestamp(source="created_at", read_only=True)
    previousSecretValidUntil = Timestamp(
        source="previous_valid_until", read_only=True, allow_null=True, help_text="The rotated-out secret works until."
    )

    class Meta:
        model = Integration

    def get_url(self, integration) -> str:
        path = f"/api/integrations/{integration.pk}/events/"
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path

    def get_fields(self):
        fields = super().get_fields()
        if self.instance is not None:
            fields["kind"].read_only = True
            fields["secret"].read_only = True
        return fields

    def create(self, validated_data):
        integration, self.secret = lifecycle.create_integration(
            validated_data["kind"],
            validated_data["name"],
            validated_data.get("service_map"),
            validated_data.get("secret"),
            id=validated_data.get("id", ""),
        )
        return integration

    def update(self, instance, validated_data):
        return lifecycle.update_integration(instance, **validated_data)


class ShownOnce:
    """A create or a rotation answers with the resource and its new secret, which is never shown again."""

    def with_secret(self, instance, secret: str, status_code=status.HTTP_200_OK, **headers) -> Response:
        body = {**self.get_serializer(instance).data, "secret": secret}
        return Response(body, status=status_code, headers=headers)

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        instance = serializer.save()
        location = f"{request.path}{instance.pk}/"
        return self.with_secret(instance, serializer.secret, status.HTTP_201_CREATED, Location=location)


class RotateBody(StrictSerializer):
    secret = String(required=False, help_text="PagerDuty only, and required there: the new secret PagerDuty shows.")


class IntegrationViewSet(ShownOnce, mixins.CreateModelMixin, mixins.UpdateModelMixin, DomainViewSet):
    queryset = Integration.objects.all()
    serializer_class = IntegrationSerializer
    ordering = ("name", "id")
    http_method_names = ["get", "post", "patch", "head", "options"]
    permission_action = "integration.read"
    action_permissions = {
        "create": "integration.create",
        "partial_update": "integration.update",
        "rotate_secret": "integration.rotate",
    }
    action_bodies = {"rotate_secret": RotateBody}

    @extend_schema(request=IntegrationSerializer, responses={201: IntegrationSerializer})
    def create(self, request, *args, **kwargs):
        """Create an integration: the answer's `url` is where the source posts, its `secret` shown once."""
        return super().create(request, *args, **kwargs)

    @extend_schema(request=RotateBody, responses={200: IntegrationSerializer})
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        """A new secret, in this answer only; the old one keeps working for 24 hours."""
        integration, secret = lifecycle.rotate_integration_secret(self.get_object(), self.body.get("secret"))
        return self.with_secret(integration, secret)


class ReceivedEventSerializer(DomainSerializer):
    id = String(read_only=True)
    receivedAt = Timestamp(source="received_at", read_only=True)
    eventId = String(source="event_id", read_only=True)
    eventType = String(source="event_type", read_only=True)
    externalId = String(source="external_id", read_only=True)
    occurredAt = Timestamp(source="occurred_at", read_only=True, allow_null=True)
    statusCode = serializers.IntegerField(source="status_code", read_only=True)
    outcome = Choice(choices=ReceivedEvent.Outcome.choices, read_only=True)
    reason = String(read_only=True)
    results = serializers.ListField(child=serializers.DictField(), read_only=True)

    class Meta:
        model = ReceivedEvent


class ReceivedEventViewSet(DomainViewSet):
    """An integration's delivery log: every request it took as its source's, newest first."""

    serializer_class = ReceivedEventSerializer
    queryset = ReceivedEvent.objects.all()
    ordering = ("-received_at", "-id")
    permission_action = "integration.read"

    def get_queryset(self):
        integration = get_object_or_404(Integration, pk=self.kwargs["id"])
        return ReceivedEvent.objects.filter(integration=integration)


class WebhookSerializer(EntitySerializer):
    url = String(max_length=2000, help_text="An absolute http(s) URL; it must resolve to a public address.")
    events = serializers.ListField(
        child=String(), help_text="Audit actions to send: `release.activate`, `release.*`, `*.create`, `*`."
    )
    format = Choice(choices=WebhookFormat.choices, required=False)
    description = String(max_length=200, required=False, allow_blank=True)
    enabled = serializers.BooleanField(required=False, help_text="false: nothing is sent (a 410 sets it too).")
    disabledReason = String(source="disabled_reason", read_only=True)
    createdBy = String(source="created_by", read_only=True)
    createdAt = Timestamp(source="created_at", read_only=True)
    previousSecretValidUntil = Timestamp(
        source="previous_valid_until", read_only=True, allow_null=True, help_text="Signed with both secrets until."
    )

    class Meta:
        model = WebhookEndpoint

    def create(self, validated_data):
        validated_data.pop("enabled", None)
        endpoint, self.secret = lifecycle.create_webhook(**validated_data)
        return endpoint

    def update(self, instance, validated_data):
        return lifecycle.update_webhook(instance, **validated_data)


class WebhookViewSet(ShownOnce, mixins.CreateModelMixin, mixins.UpdateModelMixin, DomainViewSet):
    queryset = WebhookEndpoint.objects.all()
    serializer_class = WebhookSerializer
    ordering = ("created_at", "id")
    http_method_names = ["get", "post", "patch", "head", "options"]
    permission_action = "webhook.read"
    action_permissions = {
        "create": "webhook.create",
        "partial_update": "webhook.update",
        "rotate_secret": "webhook.rotate",
        "ping": "webhook.ping",
    }

    @extend_schema(request=WebhookSerializer, responses={201: WebhookSerializer})
    def create(self, request, *args, **kwargs):
        """Subscribe a URL to audit actions: the answer carries its `whsec_…` secret, shown once."""
        return super().create(request, *args, **kwargs)

    @extend_schema(request=None, responses={200: WebhookSerializer})
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        """A new secret, in this answer only; for 24 hours every request is signed with both."""
        endpoint, secret = lifecycle.rotate_webhook_secret(self.get_object())
        return self.with_secret(endpoint, secret)

    @extend_schema(request=None, responses={202: OpenApiResponse(description="The ping's delivery.")})
    @action(detail=True, methods=["post"])
    def ping(self, request, pk=None):
        """Send a `webhook.ping` event now (it is logged with the other deliveries)."""
        delivery = lifecycle.ping(self.get_object())
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class AttemptSerializer(DomainSerializer):
    number = serializers.IntegerField(read_only=True)
    startedAt = Timestamp(source="started_at", read_only=True)
    durationMs = serializers.IntegerField(source="duration_ms", read_only=True)
    statusCode = serializers.IntegerField(source="status_code", read_only=True, allow_null=True)
    error = String(read_only=True)
    response = String(read_only=True, help_text="The answer's first characters, redacted.")

    class Meta:
        model = WebhookAttempt


class DeliverySerializer(DomainSerializer):
    id = String(read_only=True, help_text="Also its `webhook-id` header, the same on every try.")
    eventType = String(source="event_type", read_only=True)
    eventSeq = serializers.IntegerField(source="event_seq", read_only=True, allow_null=True)
    state = Choice(choices=WebhookDelivery.State.choices, read_only=True)
    attempts = serializers.IntegerField(read_only=True)
    createdAt = Timestamp(source="created_at", read_only=True)
    nextAttemptAt = Timestamp(source="next_attempt_at", read_only=True, allow_null=True)
    lastStatus = serializers.IntegerField(source="last_status", read_only=True, allow_null=True)
    lastError = String(source="last_error", read_only=True)
    finishedAt = Timestamp(source="finished_at", read_only=True, allow_null=True)

    class Meta:
        model = WebhookDelivery


class DeliveryDetailSerializer(DeliverySerializer):
    body = serializers.JSONField(read_only=True, help_text="What is sent, byte for byte as JSON.")
    tries = AttemptSerializer(many=True, read_only=True)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["body"] = json.loads(instance.body)  # the JSON object that is sent, not a string of it
        return data


class DeliveryViewSet(DomainViewSet):
    """A webhook's delivery log, newest first; a delivery with its tries; redelivering one."""

    serializer_class = DeliverySerializer
    queryset = WebhookDelivery.objects.all()
    ordering = ("-created_at", "-id")
    permission_action = "webhook.read"
    action_permissions = {"redeliver": "webhook.redeliver"}
    lookup_url_kwarg = "deliveryId"  # under /api/webhooks/{id}/deliveries/: `id` is the webhook's

    def get_queryset(self):
        endpoint = get_object_or_404(WebhookEndpoint, pk=self.kwargs["id"])
        deliveries = WebhookDelivery.objects.filter(endpoint=endpoint).select_related("endpoint")
        return deliveries.prefetch_related("tries") if self.detail else deliveries

    def get_serializer_class(self):
        return DeliveryDetailSerializer if self.detail else DeliverySerializer

    @extend_schema(request=None, responses={202: DeliveryDetailSerializer})
    @action(detail=True, methods=["post"])
    def redeliver(self, request, id=None, deliveryId=None):
        """Send a finished delivery again, now, with its id and body unchanged (409 while it waits)."""
        delivery = lifecycle.redeliver(self.get_object())
        return Response(DeliveryDetailSerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


@csrf_exempt  # a machine's request, authenticated by the integration's own signature or token
@require_POST
def receive_event(request, id: str):
    """Where PagerDuty, Alertmanager or a generic sender posts (integrations.inbound)."""
    integration = Integration.objects.filter(pk=id).first()
    if integration is None:
        return JsonResponse({"detail": f"unknown integration {id!r}."}, status=404)
    try:
        code, answer = inbound.receive(integration, request.headers, request.body)
    except signatures.SignatureRefused as refused:
        inbound.logger.warning("integration %s: request refused: %s", integration.pk, refused)
        return JsonResponse({"detail": str(refused)}, status=401)
    return JsonResponse(answer, status=code)
