from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from controlplane import adapters
from controlplane.api.base import BlankAsNullField, Choice, DomainViewSet, EntitySerializer, String, Timestamp
from controlplane.models import ID_PATTERN
from services import lifecycle
from services.filtersets import ChangeWindowFilterSet, EnvironmentFilterSet, FreezeFilterSet, ServiceFilterSet
from services.models import MAX_ORDER, ORDER_RULE, ChangeWindow, Environment, Freeze, Service


class Order(serializers.IntegerField):
    """A JSON whole number or null: "1", 1.5 and true are refused, never turned into 1. The range is the
    environment's own rule, in the same words."""

    default_error_messages = {"not_a_number": ORDER_RULE}

    def __init__(self, **kwargs):
        super().__init__(required=False, allow_null=True, **kwargs)

    def to_internal_value(self, data):
        if type(data) is not int:
            self.fail("not_a_number")
        return data


class EnvironmentSerializer(EntitySerializer):
    name = String()
    region = BlankAsNullField(help_text="null: the adapter's default region. Required for production.")
    cluster = BlankAsNullField(help_text="null: the adapter's default cluster. Required for production.")
    policyRefs = serializers.ListField(child=String(), source="policy_refs", required=False)
    connection = BlankAsNullField(
        help_text="A connection named in CONTROLPLANE_CONNECTIONS: its adapter deploys here for real. "
        "null: every adapter simulates.",
    )
    order = Order(
        help_text=f"0-{MAX_ORDER}: its place in promotion order where policy:requires refs leave a choice, lower "
        'first. null: after the ordered environments, by name (docs/domain.md, "Promotion order").'
    )
    mode = Choice(choices=["live", "simulated"], read_only=True, help_text='"live" when a connection is named.')
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
                    "additionalProperties": False,
                },
            ]
        },
    }
)
class EnvironmentRefsField(serializers.Field):
    """Written as environment ids (or `{"id": ...}` objects); read as `[{"id", "name"}]`.

    Each environment once. An object holds `id` and nothing else, except a `name` equal to the
    environment's own name (what a read returns, so a read can be sent back); the name is read-only."""

    ENTRY = 'must be an environment id or {"id": "<environment id>"}.'

    def to_representation(self, manager):
        return [{"id": env.id, "name": env.name} for env in manager.all()]

    def to_internal_value(self, data):
        if not isinstance(data, list):
            raise serializers.ValidationError("must be a list of environment ids.")
        problems: list[str] = []
        ids: list[str] = []
        names: dict[int, object] = {}  # entry position: the name it states
        for position, item in enumerate(data):
            if isinstance(item, dict):
                extra = [key for key in item if key not in ("id", "name")]
                if extra:
                    keys = ", ".join(map(repr, extra))
                    problems.append(f"{position}: {keys} is not a key of an environment reference; {self.ENTRY}")
                if "name" in item:
                    names[position] = item["name"]
                item = item.get("id")
            if not isinstance(item, str) or not item:
                problems.append(f"{position}: {self.ENTRY}")
            elif not ID_PATTERN.fullmatch(item):  # unknown without a query (PostgreSQL refuses a NUL byte in one)
                problems.append(f"{position}: unknown environment {item!r}.")
            elif item in ids:
                problems.append(f"{position}: lists environment {item!r} more than once.")
            ids.append(item)
        if names and not problems:
            actual = dict(Environment.objects.filter(pk__in=[ids[p] for p in names]).values_list("pk", "name"))
            for position, name in names.items():
                if ids[position] in actual and name != actual[ids[position]]:
                    problems.append(
                        f"{position}: name {name!r} is not the name of {ids[position]} ({actual[ids[position]]!r}); "
                        "an environment's name is changed on the environment."
                    )
        if problems:
            raise serializers.ValidationError(problems)
        return ids


class ServiceSerializer(EntitySerializer):
    m2m_fields = ("environments",)

    name = String()
    repo = String(help_text="host/owner/name; https:// and .git forms are normalised.")
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


class Weekday(serializers.IntegerField):
    """A JSON number that is a whole number: "1", 1.0 and true are refused, never turned into 1. Which
    numbers are weekdays is the window's own rule."""

    default_error_messages = {"not_a_number": "must be a whole number."}

    def to_internal_value(self, data):
        if type(data) is not int:
            self.fail("not_a_number")
        return data


class ChangeWindowSerializer(EntitySerializer):
    name = String(help_text="Lower-case letters, digits and dashes; unique. `policy:change-window:<name>` names it.")
    timezone = String(help_text="An IANA time zone name, like Europe/Berlin.")
    days = serializers.ListField(child=Weekday(), help_text="ISO weekdays it opens on, 1 (Monday) to 7 (Sunday).")
    start = String(help_text='"HH:MM", local time.')
    end = String(help_text='"HH:MM" or "24:00", local time; before start: the window crosses midnight.')
    createdAt = Timestamp(source="created_at", read_only=True)

    class Meta:
        model = ChangeWindow


class FreezeSerializer(EntitySerializer):
    title = String()
    startsAt = Timestamp(source="starts_at")
    endsAt = Timestamp(source="ends_at", help_text="After startsAt. The freeze holds from startsAt until endsAt.")
    envIds = serializers.ListField(child=String(), source="env_ids", help_text="The environments it freezes.")
    reason = String(required=False, allow_blank=True)
    createdAt = Timestamp(source="created_at", read_only=True)

    class Meta:
        model = Freeze


class EntityViewSet(mixins.CreateModelMixin, mixins.UpdateModelMixin, DomainViewSet):
    """Create and update; never deleted (no DELETE: 405, as for releases and incidents)."""


class ChangeWindowViewSet(EntityViewSet):
    queryset = ChangeWindow.objects.all()
    serializer_class = ChangeWindowSerializer
    filterset_class = ChangeWindowFilterSet
    ordering = ("name",)
    action_permissions = {
        "create": "changewindow.create",
        "update": "changewindow.update",
        "partial_update": "changewindow.update",
    }


class FreezeViewSet(EntityViewSet):
    queryset = Freeze.objects.all()
    serializer_class = FreezeSerializer
    filterset_class = FreezeFilterSet
    ordering = ("-starts_at", "-id")
    action_permissions = {
        "create": "freeze.create",
        "update": "freeze.update",
        "partial_update": "freeze.update",
    }
