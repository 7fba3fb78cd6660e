from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from controlplane import adapters
from controlplane.api.base import BlankAsNullField, DomainViewSet, EntitySerializer, Timestamp
from services import lifecycle
from services.filtersets import EnvironmentFilterSet, ServiceFilterSet
from services.models import Environment, Service


class EnvironmentSerializer(EntitySerializer):
    name = serializers.CharField()
    region = BlankAsNullField(help_text="null: the adapter's default region. Required for production.")
    cluster = BlankAsNullField(help_text="null: the adapter's default cluster. Required for production.")
    policyRefs = serializers.ListField(child=serializers.CharField(), source="policy_refs", required=False)
    archivedAt = Timestamp(source="archived_at", read_only=True, allow_null=True)
    createdAt = Timestamp(source="created_at", read_only=True)

    class Meta:
        model = Environment


@extend_schema_field(
    {
        "type": "object",
        "properties": {"deployments": {"type": "array", "items": {"type": "string", "enum": adapters.names()}}},
        "required": ["deployments"],
    }
)
class AdaptersField(serializers.Field):
    """`{"deployments": [...]}`, as the RFC shapes it."""

    def to_representation(self, value):
        return {"deployments": list(value)}

    def to_internal_value(self, data):
        if not isinstance(data, dict) or set(data) != {"deployments"}:
            raise serializers.ValidationError('must be an object {"deployments": [adapter names]}.')
        return data["deployments"]


@extend_schema_field(
    {
        "type": "array",
        "items": {
            "oneOf": [
                {"type": "string"},
                {
                    "type": "object",
                    "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
                    "required": ["id"],
                },
            ]
        },
    }
)
class EnvironmentRefsField(serializers.Field):
    """Written as environment ids (or `{"id": ...}` objects); read as `[{"id", "name"}]`."""

    def to_representation(self, manager):
        return [{"id": env.id, "name": env.name} for env in manager.all()]

    def to_internal_value(self, data):
        if not isinstance(data, list):
            raise serializers.ValidationError("must be a list of environment ids.")
        ids = [item.get("id") if isinstance(item, dict) else item for item in data]
        if not all(isinstance(i, str) and i for i in ids):
            raise serializers.ValidationError('each entry must be an environment id or {"id": "<environment id>"}.')
        return ids


class ServiceSerializer(EntitySerializer):
    m2m_fields = ("environments",)

    name = serializers.CharField()
    repo = serializers.CharField(help_text="host/owner/name; https:// and .git forms are normalised.")
    adapters = AdaptersField(source="deployment_adapters")
    environments = EnvironmentRefsField(required=False)
    archivedAt = Timestamp(source="archived_at", read_only=True, allow_null=True)
    createdAt = Timestamp(source="created_at", read_only=True)

    class Meta:
        model = Service


class ArchivingViewSet(mixins.CreateModelMixin, mixins.UpdateModelMixin, mixins.DestroyModelMixin, DomainViewSet):
    """Create, update, and DELETE to archive (the id stays taken); POST …/restore/ brings it back."""

    def perform_destroy(self, instance):
        lifecycle.archive(instance)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def restore(self, request, pk=None):
        entity = self.get_object()
        lifecycle.restore(entity)
        return Response(self.get_serializer(entity).data)


class EnvironmentViewSet(ArchivingViewSet):
    queryset = Environment.objects.all()
    serializer_class = EnvironmentSerializer
    filterset_class = EnvironmentFilterSet
    ordering = ("name",)
    action_permissions = {
        "create": "environment.create",
        "update": "environment.update",
        "partial_update": "environment.update",
        "destroy": "environment.archive",
        "restore": "environment.archive",
    }


class ServiceViewSet(ArchivingViewSet):
    queryset = Service.objects.prefetch_related("environments")
    serializer_class = ServiceSerializer
    filterset_class = ServiceFilterSet
    ordering = ("name", "id")
    action_permissions = {
        "create": "service.create",
        "update": "service.update",
        "partial_update": "service.update",
        "destroy": "service.archive",
        "restore": "service.archive",
    }
