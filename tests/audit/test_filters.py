"""The audit filters are defined once (audit.filtersets.FILTERS): the change feed's match in memory admits
exactly the events the list's FilterSet selects in SQL."""

import pytest

from audit.filtersets import AuditEventFilterSet, matches
from audit.models import AuditEvent
from audit.writer import record
from overview.feed import audit_item

pytestmark = pytest.mark.django_db

QUERIES = [
    {},
    {"actor": "system:test"},
    {"action": "service.update", "serviceId": "svc-a"},
    {"subjectType": "Environment"},
    {"subjectId": "svc-b", "action": "service.update"},
    {"serviceId": "svc-A"},  # exact: case counts, in SQL as in memory
]


@pytest.mark.parametrize("query", QUERIES)
def test_the_feeds_match_admits_what_the_lists_filter_selects(query):
    for subject, service in (("svc-a", "svc-a"), ("svc-b", "svc-b"), ("env-x", "")):
        kind = "Environment" if subject.startswith("env") else "Service"
        record(f"{kind.lower()}.update", kind, subject, {}, service_id=service)
    middle = AuditEvent.objects.order_by("seq")[1].ts.isoformat()
    for bounds in ({}, {"since": middle}, {"until": middle}):
        filterset = AuditEventFilterSet({**query, **bounds}, queryset=AuditEvent.objects.all())
        assert filterset.is_valid()
        selected = set(filterset.qs.values_list("seq", flat=True))
        admit = matches(filterset.form.cleaned_data)
        admitted = {event.seq for event in AuditEvent.objects.all() if admit(audit_item(event).fields)}
        assert admitted == selected
    assert AuditEvent.objects.count() >= 3
