"""The audit trail over GraphQL: its events, oldest first by sequence number, and a service's events."""

import graphene
from graphene.utils.str_converters import to_snake_case

from audit.filtersets import FILTERS, AuditEventFilterSet
from audit.models import AuditEvent
from controlplane.graphql.types import (
    AFTER,
    FIRST,
    JSON,
    DateTime,
    Keyset,
    batched,
    connection,
    extend,
    filtered,
    key_of,
    paginate,
    paginate_each,
)
from services.schema import ServiceType


class AuditEventType(graphene.ObjectType):
    class Meta:
        name = "AuditEvent"

    seq = graphene.Int(required=True, description="The event's place in the trail, from 1.")
    ts = DateTime(required=True)
    actor = graphene.String(required=True)
    action = graphene.String(required=True, description="<noun>.<verb>: service.create, release.activate, …")
    subject_type = graphene.String(required=True)
    subject_id = graphene.ID(required=True)
    service_id = graphene.ID(description="The service the subject belongs to; null when none.")
    metadata = JSON(required=True, description="Redacted as stored.")
    hash = graphene.String(required=True, description="SHA-256 over the previous event's hash and this event.")

    @staticmethod
    def resolve_service_id(event, info):
        return event.service_id or None


AuditEventConnection = connection(AuditEventType)
# Oldest first, as REST reads the trail; a service's events newest first (its recent history).
TRAIL = Keyset(AuditEvent, ("seq",), "auditEvents")
RECENT = Keyset(AuditEvent, ("-seq",), "Service.auditEvents")


class ServiceAuditEvents:
    audit_events = graphene.Field(
        graphene.NonNull(AuditEventConnection), first=FIRST, after=AFTER, description="Newest first."
    )

    @staticmethod
    def resolve_audit_events(service, info, first=None, after=None):
        return batched(
            service,
            key_of("audit_events", {"first": first, "after": after}),
            lambda services: paginate_each(AuditEvent.objects.all(), RECENT, "service_id", services, first, after),
        )


extend(ServiceType, ServiceAuditEvents)


_ARGUMENT_TYPES = {"text": graphene.String, "id": graphene.ID, "time": DateTime}


class Query(graphene.ObjectType):
    audit_events = graphene.Field(
        graphene.NonNull(AuditEventConnection),
        first=FIRST,
        after=AFTER,
        # The audit list's filters (audit.filtersets.FILTERS), as REST names them in snake case.
        **{to_snake_case(f.param): _ARGUMENT_TYPES[f.kind](description=f.description or None) for f in FILTERS},
        description="Oldest first, by sequence number.",
    )

    @staticmethod
    def resolve_audit_events(root, info, first=None, after=None, **filters):
        return paginate(filtered(AuditEventFilterSet, AuditEvent.objects.all(), filters), TRAIL, first, after)
