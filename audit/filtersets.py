import django_filters as filters

from audit.models import AuditEvent
from controlplane.api.filters import FilterSet, TimeFilter


class AuditEventFilterSet(FilterSet):
    actor = filters.CharFilter()
    action = filters.CharFilter()
    subjectType = filters.CharFilter(field_name="subject_type")
    subjectId = filters.CharFilter(field_name="subject_id")
    serviceId = filters.CharFilter(field_name="service_id")
    since = TimeFilter(field_name="ts", lookup_expr="gte", label="Events at or after (RFC 3339)")
    until = TimeFilter(field_name="ts", lookup_expr="lt", label="Events before (RFC 3339)")

    class Meta:
        model = AuditEvent
        fields = ["actor", "action", "subjectType", "subjectId", "serviceId", "since", "until"]
