"""Services and environments over GraphQL: their types, queries and mutations, doors onto the same
serializers and lifecycle as REST (services/api.py). Apps above add their fields to these types."""

import graphene

from controlplane import adapters
from controlplane.graphql.plain import Plain
from controlplane.graphql.types import (
    AFTER,
    FIRST,
    Create,
    DateTime,
    Keyset,
    Move,
    Update,
    batched,
    by_id,
    connection,
    filtered,
    key_of,
    paginate,
    paginate_each,
)
from services import lifecycle
from services.api import ChangeWindowSerializer, EnvironmentSerializer, FreezeSerializer, ServiceSerializer
from services.filtersets import ChangeWindowFilterSet, EnvironmentFilterSet, FreezeFilterSet, ServiceFilterSet
from services.models import MAX_ORDER, ChangeWindow, Environment, Freeze, Service
from services.promotion import PROMOTION_ORDER

ORDER = (
    f"0-{MAX_ORDER}: its place in promotion order where policy:requires refs leave a choice, lower first; null: "
    "after the ordered environments, by name."
)


class Adapters(Plain):
    deployments = graphene.List(graphene.NonNull(graphene.String), required=True)


class Placement(graphene.ObjectType):
    """Where a deploy through one adapter lands in an environment: its region and cluster, else the
    adapter's defaults."""

    adapter = graphene.String(required=True)
    region = graphene.String(required=True)
    cluster = graphene.String(required=True)
    default = graphene.Boolean(required=True, description="Whether either value is the adapter's default.")


ModeEnum = graphene.Enum(
    "Mode",
    [("live", "live"), ("simulated", "simulated")],
    description="live: a connection (CONTROLPLANE_CONNECTIONS) deploys for real; simulated: no platform is touched.",
)


class Archivable:
    archived = graphene.Boolean(required=True)
    archived_at = DateTime()
    created_at = DateTime(required=True)

    @staticmethod
    def resolve_archived(entity, info):
        return entity.archived_at is not None


class EnvironmentType(Archivable, graphene.ObjectType):
    class Meta:
        name = "Environment"

    id = graphene.ID(required=True)
    name = graphene.String(required=True)
    region = graphene.String(description="As set; null when each adapter's default region applies (placements).")
    cluster = graphene.String(description="As set; null when each adapter's default cluster applies (placements).")
    placements = graphene.List(
        graphene.NonNull(Placement), required=True, description="The effective region and cluster per adapter."
    )
    policy_refs = graphene.List(graphene.NonNull(graphene.String), required=True)
    order = graphene.Int(description=ORDER)
    connection = graphene.String(
        description="The connection (CONTROLPLANE_CONNECTIONS) whose adapter deploys here for real; null: simulated."
    )
    mode = graphene.Field(ModeEnum, required=True, description='"live" when a connection is named.')
    services = graphene.Field(
        graphene.NonNull(lambda: ServiceConnection),
        first=FIRST,
        after=AFTER,
        archived=graphene.String(description="false (the default): in use; true: only archived; all: both."),
        description="The services linked to it, by name: as many as there are services, so a connection.",
    )

    @staticmethod
    def resolve_region(environment, info):
        return environment.region or None

    @staticmethod
    def resolve_cluster(environment, info):
        return environment.cluster or None

    @staticmethod
    def resolve_connection(environment, info):
        return environment.connection or None

    @staticmethod
    def resolve_placements(environment, info):
        placements = []
        for name in adapters.names():
            region, cluster = adapters.get(name).effective_placement(environment.region, environment.cluster)
            default = not (environment.region and environment.cluster)
            placements.append({"adapter": name, "region": region, "cluster": cluster, "default": default})
        return placements

    @staticmethod
    def resolve_services(environment, info, first=None, after=None, archived=None):
        queryset = filtered(ServiceFilterSet, Service.objects.all(), {"archived": archived})
        return batched(
            environment,
            key_of("services", {"first": first, "after": after, "archived": archived}),
            lambda environments: paginate_each(queryset, LINKED, "environments__id", environments, first, after),
        )


class ServiceType(Archivable, graphene.ObjectType):
    class Meta:
        name = "Service"

    id = graphene.ID(required=True)
    name = graphene.String(required=True)
    repo = graphene.String(required=True, description="host/owner/name.")
    adapters = graphene.Field(Adapters, required=True)
    environments = graphene.List(
        graphene.NonNull(EnvironmentType), required=True, description="In promotion order (docs/domain.md)."
    )

    @staticmethod
    def resolve_adapters(service, info):
        return {"deployments": service.deployment_adapters}

    @staticmethod
    def resolve_environments(service, info):
        return batched(service, "environments", _environments_of, default=[])


def _environments_of(services) -> dict:
    links = Service.environments.through.objects.filter(service_id__in=[s.pk for s in services])
    result: dict[str, list] = {}
    for link in links.select_related("environment").order_by(*(f"environment__{f}" for f in PROMOTION_ORDER)):
        result.setdefault(link.service_id, []).append(link.environment)
    return result


class ChangeWindowType(graphene.ObjectType):
    """When deploys and promotions may reach the environments whose refs name it
    (`policy:change-window:<name>`): on its days, from `start` to `end` in its time zone."""

    class Meta:
        name = "ChangeWindow"

    id = graphene.ID(required=True)
    name = graphene.String(required=True, description="Unique; refs name it.")
    timezone = graphene.String(required=True, description="An IANA time zone name, like Europe/Berlin.")
    days = graphene.List(graphene.NonNull(graphene.Int), required=True, description="ISO weekdays, 1 (Monday) to 7.")
    start = graphene.String(required=True, description='"HH:MM", local time.')
    end = graphene.String(required=True, description='"HH:MM" or "24:00", local time; before start: crosses midnight.')
    summary = graphene.String(required=True, description="Its days, hours and zone in words, as a refusal names them.")
    created_at = DateTime(required=True)


class FreezeType(graphene.ObjectType):
    """While it runs (startsAt ≤ now < endsAt), nothing but rollbacks reaches the environments it names."""

    class Meta:
        name = "Freeze"

    id = graphene.ID(required=True)
    title = graphene.String(required=True)
    starts_at = DateTime(required=True)
    ends_at = DateTime(required=True)
    env_ids = graphene.List(graphene.NonNull(graphene.ID), required=True)
    environments = graphene.List(
        graphene.NonNull(EnvironmentType),
        required=True,
        description="The environments it freezes, in envIds' order.",
    )
    reason = graphene.String(required=True)
    created_at = DateTime(required=True)

    @staticmethod
    def resolve_environments(freeze, info):
        return batched(freeze, "environments", _frozen, default=[])


def _frozen(freezes) -> dict:
    environments = Environment.objects.in_bulk({env_id for f in freezes for env_id in f.env_ids})
    return {f.pk: [environments[e] for e in f.env_ids if e in environments] for f in freezes}


ServiceConnection = connection(ServiceType)
EnvironmentConnection = connection(EnvironmentType)
ChangeWindowConnection = connection(ChangeWindowType)
FreezeConnection = connection(FreezeType)
SERVICES = Keyset(Service, ("name", "id"), "Query.services")
ENVIRONMENTS = Keyset(Environment, ("name",), "Query.environments")
CHANGE_WINDOWS = Keyset(ChangeWindow, ("name",), "Query.changeWindows")
FREEZES = Keyset(Freeze, ("-starts_at", "-id"), "Query.freezes")
LINKED = Keyset(Service, ("name", "id"), "Environment.services")
ARCHIVED = graphene.String(description="false (the default): in use; true: only archived; all: both.")


class Query(graphene.ObjectType):
    service = by_id(ServiceType, Service)
    services = graphene.Field(
        graphene.NonNull(ServiceConnection),
        first=FIRST,
        after=AFTER,
        name=graphene.String(description="Part of the name, any case."),
        q=graphene.String(description="Part of the id, name or repo."),
        adapter=graphene.String(description=f"One of: {', '.join(adapters.names())}."),
        env_id=graphene.ID(description="Only services linked to this environment."),
        archived=ARCHIVED,
    )
    environment = by_id(EnvironmentType, Environment)
    environments = graphene.Field(
        graphene.NonNull(EnvironmentConnection),
        first=FIRST,
        after=AFTER,
        name=graphene.String(),
        region=graphene.String(),
        cluster=graphene.String(),
        archived=ARCHIVED,
    )
    change_window = by_id(ChangeWindowType, ChangeWindow)
    change_windows = graphene.Field(
        graphene.NonNull(ChangeWindowConnection),
        first=FIRST,
        after=AFTER,
        name=graphene.String(description="Part of the name, any case."),
        description="By name.",
    )
    freeze = by_id(FreezeType, Freeze)
    freezes = graphene.Field(
        graphene.NonNull(FreezeConnection),
        first=FIRST,
        after=AFTER,
        env_id=graphene.ID(description="Only freezes of this environment."),
        description="The latest start first.",
    )

    @staticmethod
    def resolve_services(root, info, first=None, after=None, **filters):
        return paginate(filtered(ServiceFilterSet, Service.objects.all(), filters), SERVICES, first, after)

    @staticmethod
    def resolve_environments(root, info, first=None, after=None, **filters):
        return paginate(filtered(EnvironmentFilterSet, Environment.objects.all(), filters), ENVIRONMENTS, first, after)

    @staticmethod
    def resolve_change_windows(root, info, first=None, after=None, **filters):
        windows = filtered(ChangeWindowFilterSet, ChangeWindow.objects.all(), filters)
        return paginate(windows, CHANGE_WINDOWS, first, after)

    @staticmethod
    def resolve_freezes(root, info, first=None, after=None, **filters):
        return paginate(filtered(FreezeFilterSet, Freeze.objects.all(), filters), FREEZES, first, after)


# --- mutations ---


class AdaptersInput(graphene.InputObjectType):
    deployments = graphene.List(graphene.NonNull(graphene.String), required=True)


class ServiceCreateInput(graphene.InputObjectType):
    id = graphene.ID(description="Generated when omitted.")
    name = graphene.String(required=True)
    repo = graphene.String(required=True, description="host/owner/name; https:// and .git forms are normalised.")
    adapters = graphene.InputField(AdaptersInput, required=True)
    environments = graphene.List(graphene.NonNull(graphene.ID), description="Environment ids.")


class ServiceUpdateInput(graphene.InputObjectType):
    name = graphene.String()
    repo = graphene.String()
    adapters = graphene.InputField(AdaptersInput)
    environments = graphene.List(graphene.NonNull(graphene.ID), description="Environment ids: the whole new set.")


CONNECTION = "A connection named in CONTROLPLANE_CONNECTIONS: its adapter deploys here for real; null: simulated."


class EnvironmentCreateInput(graphene.InputObjectType):
    id = graphene.ID(description="Generated when omitted.")
    name = graphene.String(required=True)
    region = graphene.String(description="Required for production; null: the adapter's default.")
    cluster = graphene.String(description="Required for production; null: the adapter's default.")
    policy_refs = graphene.List(graphene.NonNull(graphene.String))
    order = graphene.Int(description=ORDER)
    connection = graphene.String(description=CONNECTION)


class EnvironmentUpdateInput(graphene.InputObjectType):
    name = graphene.String()
    region = graphene.String()
    cluster = graphene.String()
    policy_refs = graphene.List(graphene.NonNull(graphene.String))
    order = graphene.Int(description=ORDER)
    connection = graphene.String(description=CONNECTION)


class ChangeWindowCreateInput(graphene.InputObjectType):
    id = graphene.ID(description="Generated when omitted.")
    name = graphene.String(required=True, description="Lower-case letters, digits and dashes; unique.")
    timezone = graphene.String(required=True, description="An IANA time zone name, like Europe/Berlin.")
    days = graphene.List(graphene.NonNull(graphene.Int), required=True, description="ISO weekdays, 1 (Monday) to 7.")
    start = graphene.String(required=True, description='"HH:MM", local time.')
    end = graphene.String(required=True, description='"HH:MM" or "24:00", local time; before start: crosses midnight.')


class ChangeWindowUpdateInput(graphene.InputObjectType):
    name = graphene.String(description="Not while an environment's refs name it.")
    timezone = graphene.String()
    days = graphene.List(graphene.NonNull(graphene.Int))
    start = graphene.String()
    end = graphene.String()


class FreezeCreateInput(graphene.InputObjectType):
    id = graphene.ID(description="Generated when omitted.")
    title = graphene.String(required=True)
    starts_at = DateTime(required=True)
    ends_at = DateTime(required=True, description="After startsAt.")
    env_ids = graphene.List(graphene.NonNull(graphene.ID), required=True, description="The environments it freezes.")
    reason = graphene.String()


class FreezeUpdateInput(graphene.InputObjectType):
    title = graphene.String()
    starts_at = DateTime()
    ends_at = DateTime()
    env_ids = graphene.List(graphene.NonNull(graphene.ID), description="The whole new set.")
    reason = graphene.String()


class ServiceCreate(Create):
    permission, serializer_class, input_type = "service.create", ServiceSerializer, ServiceCreateInput
    service = graphene.Field(ServiceType)


class ServiceUpdate(Update):
    permission, serializer_class, input_type = "service.update", ServiceSerializer, ServiceUpdateInput
    service = graphene.Field(ServiceType)


class ServiceArchive(Move):
    permission, serializer_class, move = "service.archive", ServiceSerializer, lifecycle.archive
    service = graphene.Field(ServiceType)


class ServiceRestore(Move):
    permission, serializer_class, move = "service.archive", ServiceSerializer, lifecycle.restore
    service = graphene.Field(ServiceType)


class EnvironmentCreate(Create):
    permission, serializer_class, input_type = "environment.create", EnvironmentSerializer, EnvironmentCreateInput
    environment = graphene.Field(EnvironmentType)


class EnvironmentUpdate(Update):
    permission, serializer_class, input_type = "environment.update", EnvironmentSerializer, EnvironmentUpdateInput
    environment = graphene.Field(EnvironmentType)


class EnvironmentArchive(Move):
    permission, serializer_class, move = "environment.archive", EnvironmentSerializer, lifecycle.archive
    environment = graphene.Field(EnvironmentType)


class EnvironmentRestore(Move):
    permission, serializer_class, move = "environment.archive", EnvironmentSerializer, lifecycle.restore
    environment = graphene.Field(EnvironmentType)


class ChangeWindowCreate(Create):
    permission, serializer_class, input_type = "changewindow.create", ChangeWindowSerializer, ChangeWindowCreateInput
    change_window = graphene.Field(ChangeWindowType)


class ChangeWindowUpdate(Update):
    permission, serializer_class, input_type = "changewindow.update", ChangeWindowSerializer, ChangeWindowUpdateInput
    change_window = graphene.Field(ChangeWindowType)


class FreezeCreate(Create):
    permission, serializer_class, input_type = "freeze.create", FreezeSerializer, FreezeCreateInput
    freeze = graphene.Field(FreezeType)


class FreezeUpdate(Update):
    permission, serializer_class, input_type = "freeze.update", FreezeSerializer, FreezeUpdateInput
    freeze = graphene.Field(FreezeType)


class Mutation(graphene.ObjectType):
    service_create = ServiceCreate.Field(required=True)
    service_update = ServiceUpdate.Field(required=True)
    service_archive = ServiceArchive.Field(required=True)
    service_restore = ServiceRestore.Field(required=True)
    environment_create = EnvironmentCreate.Field(required=True)
    environment_update = EnvironmentUpdate.Field(required=True)
    environment_archive = EnvironmentArchive.Field(required=True)
    environment_restore = EnvironmentRestore.Field(required=True)
    change_window_create = ChangeWindowCreate.Field(required=True)
    change_window_update = ChangeWindowUpdate.Field(required=True)
    freeze_create = FreezeCreate.Field(required=True)
    freeze_update = FreezeUpdate.Field(required=True)
