from rest_framework import serializers

from audit.filtersets import AuditEventFilterSet
from audit.models import AuditEvent
from controlplane.api.base import DomainViewSet, Timestamp


class AuditEventSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    ts = Timestamp()
    actor = serializers.CharField()
    action = serializers.CharField()
    subjectType = serializers.CharField(source="subject_type")
    subjectId = serializers.CharField(source="subject_id")
    serviceId = serializers.CharField(source="service_id", help_text="The service the subject belongs to, or empty.")
    metadata = serializers.DictField()
    hash = serializers.CharField(help_text="SHA-256 over the previous event's hash and this event.")


class AuditEventViewSet(DomainViewSet):
    """The audit trail, oldest first, paged by sequence number: follow `next` to read on."""

    queryset = AuditEvent.objects.all()
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilterSet
    ordering = ("seq",)
    lookup_value_regex = "[0-9]+"
