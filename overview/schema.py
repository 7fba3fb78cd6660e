"""The services index over GraphQL: the same rows as REST's /api/services/index/, read from the
deployment-state read model in three queries a page (overview/services_index.py). The types are Plain: each
field reads the entry's key of its name, as REST renders it, so an answer is the entries projected onto the
document's selection (controlplane/graphql/plain.py) rather than resolved field by field."""

import graphene
import orjson

from controlplane import adapters
from controlplane.api.base import filtered_rows
from controlplane.db import json_sql
from controlplane.graphql.plain import Plain, Rendered
from controlplane.graphql.types import AFTER, FIRST, DateTime, Keyset, connection, paginate, valid_filterset
from incidents.schema import SeverityEnum
from overview import services_index
from releases.schema import ReleaseStatusEnum
from services.filtersets import ServiceFilterSet
from services.models import Service
from services.schema import Adapters


class IndexRelease(Plain):
    id = graphene.ID(required=True)
    version = graphene.String(required=True)
    sha = graphene.String(required=True)
    status = graphene.Field(ReleaseStatusEnum, required=True)
    created_at = DateTime(source="createdAt", description="The latest release: when it was created.")
    activated_at = DateTime(source="activatedAt", description="The current release: when it was activated.")


class IndexEnvironment(Plain):
    id = graphene.ID(required=True)
    name = graphene.String(required=True)
    latest_release = graphene.Field(
        IndexRelease, source="latestRelease", description="The newest release, whatever its status."
    )
    current_release = graphene.Field(
        IndexRelease, source="currentRelease", description="What runs there: the Active one activated last."
    )


class OpenIncidents(Plain):
    low = graphene.Int(required=True)
    medium = graphene.Int(required=True)
    high = graphene.Int(required=True)
    critical = graphene.Int(required=True)


class IndexIncidents(Plain):
    open = graphene.Field(OpenIncidents, required=True, description="Open incidents, per severity.")
    highest_open_severity = graphene.Field(SeverityEnum, source="highestOpenSeverity")


class AuditTail(Plain):
    seq = graphene.Int(required=True)
    ts = DateTime(required=True)
    action = graphene.String(required=True)


class ServicesIndexEntry(Plain):
    """A service's row of the services index."""

    id = graphene.ID(required=True)
    name = graphene.String(required=True)
    repo = graphene.String(required=True)
    adapters = graphene.Field(Adapters, required=True)
    environments = graphene.List(graphene.NonNull(IndexEnvironment), required=True, description="By name.")
    incidents = graphene.Field(IndexIncidents, required=True)
    audit_tail = graphene.Field(AuditTail, source="auditTail", description="The service's latest audit event.")


ServicesIndexEntryConnection = connection(ServicesIndexEntry)
INDEX = Keyset(Service, ("name", "id"), "servicesIndex")


class Query(graphene.ObjectType):
    services_index = graphene.Field(
        graphene.NonNull(ServicesIndexEntryConnection),
        first=FIRST,
        after=AFTER,
        q=graphene.String(description="Part of the id, name or repo."),
        adapter=graphene.String(description=f"One of: {', '.join(adapters.names())}."),
        env_id=graphene.ID(description="Only services linked to this environment."),
        archived=graphene.String(description="false (the default): in use; true: only archived; all: both."),
        description="Per service and environment the latest and current release, open incidents, the audit tail.",
    )

    @staticmethod
    def resolve_services_index(root, info, first=None, after=None, **filters):
        # The rows REST's index reads, by the same statement.
        filterset = valid_filterset(ServiceFilterSet, Service.objects.all(), filters)
        rows = filtered_rows(filterset, services_index.SERVICE_FIELDS)
        return paginate(rows, INDEX, first, after, build=_entries)


def _entries(page) -> list:
    """The page's entries as the database writes them: spliced into the answer as they are when the document
    asks for exactly what REST's index shows (controlplane.graphql.plain.Rendered), else projected."""
    texts, checked = services_index.written(page, check=True)
    if not checked:  # a value its type refuses: graphql-core's own errors, by the values
        return orjson.loads(json_sql.array(texts))
    return [Rendered(text, services_index.ENTRY_KEYS) for text in texts]
