from drf_spectacular.utils import extend_schema
from rest_framework import mixins
from rest_framework.decorators import action
from rest_framework.response import Response

from controlplane.api.base import BlankAsNullField, Choice, DomainViewSet, EntitySerializer, String, Timestamp
from incidents import lifecycle
from incidents.filtersets import IncidentFilterSet
from incidents.models import Incident, IncidentSource, IncidentStatus, Severity


class IncidentSerializer(EntitySerializer):
    serviceId = String(source="service_id")
    title = String(required=False, allow_blank=True)
    severity = Choice(choices=Severity.choices)
    startedAt = Timestamp(source="started_at", required=False, help_text="Defaults to now.")
    status = Choice(choices=IncidentStatus.choices, read_only=True)
    link = String(help_text="The incident in its source system: an absolute http(s) URL.")
    acknowledgedAt = Timestamp(source="acknowledged_at", read_only=True, allow_null=True)
    resolvedAt = Timestamp(source="resolved_at", read_only=True, allow_null=True)
    source = Choice(choices=IncidentSource.choices, read_only=True, help_text="manual, or the integration's kind.")
    externalId = BlankAsNullField(source="external_id", read_only=True, help_text="The source's id for it.")
    integrationId = String(source="integration_id", read_only=True, allow_null=True)
    releaseId = String(
        source="release_id",
        required=False,
        allow_null=True,
        help_text="The release it is blamed on, one of the service's (null: none). Left out on create, the "
        "service's production release current at startedAt; a release linked to an incident is a failed "
        "deployment in the DORA figures (docs/metrics.md).",
    )

    read_only_reasons = {
        "status": "is read-only: use …/acknowledge/ and …/resolve/.",
        "source": "is set by the integration that reports an incident.",
        "externalId": "is set by the integration that reports an incident.",
        "integrationId": "is set by the integration that reports an incident.",
    }

    class Meta:
        model = Incident

    def create(self, validated_data):
        incident = Incident(**validated_data)
        incident.release_given = "release_id" in validated_data  # null given: none, not the default
        incident.save()
        return incident


class IncidentViewSet(mixins.CreateModelMixin, mixins.UpdateModelMixin, DomainViewSet):
    queryset = Incident.objects.all()
    serializer_class = IncidentSerializer
    filterset_class = IncidentFilterSet
    ordering = ("-started_at", "-id")
    action_permissions = {
        "create": "incident.create",
        "update": "incident.update",
        "partial_update": "incident.update",
        "acknowledge": "incident.acknowledge",
        "resolve": "incident.resolve",
    }

    def _move(self, move):
        incident = move(self.get_object())
        return Response(self.get_serializer(incident).data)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        return self._move(lifecycle.acknowledge)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        return self._move(lifecycle.resolve)
