"""Incidents over GraphQL: the type, queries, mutations (create, update, acknowledge, resolve, through
the same serializer and lifecycle as REST), and a service's incidents."""

import graphene

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
    choice,
    connection,
    enum_of,
    extend,
    filtered,
    key_of,
    paginate,
    paginate_each,
)
from incidents import lifecycle
from incidents.api import IncidentSerializer
from incidents.filtersets import IncidentFilterSet
from incidents.models import Incident, IncidentSource, IncidentStatus, Severity
from services.models import Service
from services.schema import ServiceType

SeverityEnum = enum_of(Severity, "low < medium < high < critical.")
IncidentStatusEnum = enum_of(IncidentStatus, "triggered → acknowledged → resolved, or triggered → resolved.")
IncidentSourceEnum = enum_of(
    IncidentSource, "Where an incident came from: manual (typed in), or its integration's kind."
)


class IncidentType(graphene.ObjectType):
    class Meta:
        name = "Incident"

    id = graphene.ID(required=True)
    service_id = graphene.ID(required=True)
    service = graphene.Field(ServiceType, required=True)
    title = graphene.String(required=True)
    severity = choice(SeverityEnum, "severity", required=True)
    status = choice(IncidentStatusEnum, "status", required=True)
    link = graphene.String(required=True, description="The incident in its source system.")
    started_at = DateTime(required=True)
    acknowledged_at = DateTime()
    resolved_at = DateTime()
    source = choice(IncidentSourceEnum, "source", required=True)
    external_id = graphene.String(description="The source's id for it; null when typed in.")
    integration_id = graphene.ID(description="The integration that reported it; null when typed in.")
    release_id = graphene.ID(
        description="The release it is blamed on (a failed deployment in the DORA figures); null: none."
    )

    @staticmethod
    def resolve_external_id(incident, info):
        return incident.external_id or None

    @staticmethod
    def resolve_service(incident, info):
        def load(incidents):
            found = Service.objects.in_bulk({i.service_id for i in incidents})
            return {i.pk: found[i.service_id] for i in incidents}

        return batched(incident, "service", load)


IncidentConnection = connection(IncidentType)
INCIDENTS = Keyset(Incident, ("-started_at", "-id"), "incidents")
SERVICE_INCIDENTS = Keyset(Incident, ("-started_at", "-id"), "Service.incidents")
FILTERS = {
    "severity": SeverityEnum(),
    "status": IncidentStatusEnum(),
    "open": graphene.Boolean(description="true: not resolved; false: resolved."),
}


class ServiceIncidents:
    incidents = graphene.Field(
        graphene.NonNull(IncidentConnection), first=FIRST, after=AFTER, **FILTERS, description="Newest first."
    )

    @staticmethod
    def resolve_incidents(service, info, first=None, after=None, **filters):
        queryset = filtered(IncidentFilterSet, Incident.objects.all(), filters)
        return batched(
            service,
            key_of("incidents", {"first": first, "after": after, **filters}),
            lambda services: paginate_each(queryset, SERVICE_INCIDENTS, "service_id", services, first, after),
        )


extend(ServiceType, ServiceIncidents)


class Query(graphene.ObjectType):
    incident = by_id(IncidentType, Incident)
    incidents = graphene.Field(
        graphene.NonNull(IncidentConnection),
        first=FIRST,
        after=AFTER,
        service_id=graphene.ID(),
        **FILTERS,
        description="Newest first.",
    )

    @staticmethod
    def resolve_incidents(root, info, first=None, after=None, **filters):
        return paginate(filtered(IncidentFilterSet, Incident.objects.all(), filters), INCIDENTS, first, after)


class IncidentCreateInput(graphene.InputObjectType):
    id = graphene.ID(description="Generated when omitted.")
    service_id = graphene.ID(required=True)
    title = graphene.String()
    severity = SeverityEnum(required=True)
    link = graphene.String(required=True, description="An absolute http(s) URL.")
    started_at = DateTime(description="Defaults to now.")
    release_id = graphene.ID(
        description="One of the service's releases, or null for none; left out: the service's production release "
        "current at startedAt."
    )


class IncidentUpdateInput(graphene.InputObjectType):
    title = graphene.String()
    severity = SeverityEnum()
    link = graphene.String()
    release_id = graphene.ID(description="One of the service's releases, or null for none.")


class IncidentCreate(Create):
    permission, serializer_class, input_type = "incident.create", IncidentSerializer, IncidentCreateInput
    incident = graphene.Field(IncidentType)


class IncidentUpdate(Update):
    permission, serializer_class, input_type = "incident.update", IncidentSerializer, IncidentUpdateInput
    incident = graphene.Field(IncidentType)


class IncidentAcknowledge(Move):
    permission, serializer_class, move = "incident.acknowledge", IncidentSerializer, lifecycle.acknowledge
    incident = graphene.Field(IncidentType)


class IncidentResolve(Move):
    permission, serializer_class, move = "incident.resolve", IncidentSerializer, lifecycle.resolve
    incident = graphene.Field(IncidentType)


class Mutation(graphene.ObjectType):
    incident_create = IncidentCreate.Field(required=True)
    incident_update = IncidentUpdate.Field(required=True)
    incident_acknowledge = IncidentAcknowledge.Field(required=True)
    incident_resolve = IncidentResolve.Field(required=True)
