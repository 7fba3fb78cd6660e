"""Services and environments over GraphQL: their types, queries and mutations, doors onto the same
serializers and lifecycle as REST (services/api.py). Apps above add their fields to these types."""

import graphene

from controlplane import adapters
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
from services.api import EnvironmentSerializer, ServiceSerializer
from services.filtersets import EnvironmentFilterSet, ServiceFilterSet
from services.models import Environment, Service


class Adapters(graphene.ObjectType):
    deployments = graphene.List(graphene.NonNull(graphene.String), required=True)


class Placement(graphene.ObjectType):
    """Where a deploy through one adapter lands in an environment: its region and cluster, else the
    adapter's defaults."""

    adapter = graphene.String(required=True)
    region = graphene.String(required=True)
    cluster = graphene.String(required=True)
    default = graphene.Boolean(required=True, description="Whether either value is the adapter's default.")


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
    environments = graphene.List(graphene.NonNull(EnvironmentType), required=True, description="By name.")

    @staticmethod
    def resolve_adapters(service, info):
        return {"deployments": service.deployment_adapters}

    @staticmethod
    def resolve_environments(service, info):
        return batched(service, "environments", _environments_of, default=[])


def _environments_of(services) -> dict:
    links = Service.environments.through.objects.filter(service_id__in=[s.pk for s in services])
    result: dict[str, list] = {}
    for link in links.select_related("environment").order_by("environment__name"):
        result.setdefault(link.service_id, []).append(link.environment)
    return result


ServiceConnection = connection(ServiceType)
EnvironmentConnection = connection(EnvironmentType)
SERVICES = Keyset(Service, ("name", "id"), "Query.services")
ENVIRONMENTS = Keyset(Environment, ("name",), "Query.environments")
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

    @staticmethod
    def resolve_services(root, info, first=None, after=None, **filters):
        return paginate(filtered(ServiceFilterSet, Service.objects.all(), filters), SERVICES, first, after)

    @staticmethod
    def resolve_environments(root, info, first=None, after=None, **filters):
        return paginate(filtered(EnvironmentFilterSet, Environment.objects.all(), filters), ENVIRONMENTS, first, after)


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


class EnvironmentCreateInput(graphene.InputObjectType):
    id = graphene.ID(description="Generated when omitted.")
    name = graphene.String(required=True)
    region = graphene.String(description="Required for production; null: the adapter's default.")
    cluster = graphene.String(description="Required for production; null: the adapter's default.")
    policy_refs = graphene.List(graphene.NonNull(graphene.String))


class EnvironmentUpdateInput(graphene.InputObjectType):
    name = graphene.String()
    region = graphene.String()
    cluster = graphene.String()
    policy_refs = graphene.List(graphene.NonNull(graphene.String))


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


class Mutation(graphene.ObjectType):
    service_create = ServiceCreate.Field(required=True)
    service_update = ServiceUpdate.Field(required=True)
    service_archive = ServiceArchive.Field(required=True)
    service_restore = ServiceRestore.Field(required=True)
    environment_create = EnvironmentCreate.Field(required=True)
    environment_update = EnvironmentUpdate.Field(required=True)
    environment_archive = EnvironmentArchive.Field(required=True)
    environment_restore = EnvironmentRestore.Field(required=True)
