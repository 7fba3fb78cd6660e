"""The audit trail's filters, defined once: each a query parameter, the event's field it reads and how it
matches. The REST list's FilterSet, GraphQL's `auditEvents` arguments, the audit page's form and the audit
stream (its catch-up in SQL, the change feed's match in memory) are all made from `FILTERS`, and so is what the
audit page hands its script for events still to come (`what_is_new`)."""

import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import django_filters as filters

from audit.models import AuditEvent
from controlplane.api.filters import FilterSet, TimeFilter


@dataclass(frozen=True)
class AuditFilter:
    param: str  # the query parameter (GraphQL's argument, in snake case there)
    field: str  # the event's field
    kind: str  # "text", "id" or "time"
    lookup: str = "exact"  # as SQL reads it; `matches` reads the same in memory
    description: str = ""


FILTERS = (
    AuditFilter("actor", "actor", "text"),
    AuditFilter("action", "action", "text", description="<noun>.<verb>: service.create, release.activate, …"),
    AuditFilter("subjectType", "subject_type", "text"),
    AuditFilter("subjectId", "subject_id", "id"),
    AuditFilter("serviceId", "service_id", "id"),
    AuditFilter("since", "ts", "time", "gte", "Events at or after (RFC 3339)."),
    AuditFilter("until", "ts", "time", "lt", "Events before (RFC 3339)."),
)
PARAMS = tuple(f.param for f in FILTERS)
# The ones a stream of what is new takes: a time range filters a list, not what has not happened yet.
STREAM_PARAMS = tuple(f.param for f in FILTERS if f.kind != "time")
FIELDS = tuple(dict.fromkeys(f.field for f in FILTERS))  # what `matches` reads of an event
_IN_MEMORY = {"exact": operator.eq, "gte": operator.ge, "lt": operator.lt}


def _filter(definition: AuditFilter):
    label = definition.description or None
    if definition.kind == "time":
        return TimeFilter(field_name=definition.field, lookup_expr=definition.lookup, label=label)
    return filters.CharFilter(field_name=definition.field, lookup_expr=definition.lookup, label=label)


AuditEventFilterSet = type(
    "AuditEventFilterSet",
    (FilterSet,),
    {
        **{f.param: _filter(f) for f in FILTERS},
        "Meta": type("Meta", (), {"model": AuditEvent, "fields": list(PARAMS)}),
        "__doc__": "The audit list's filters (FILTERS), in SQL.",
        "__module__": __name__,
    },
)


def matches(applied: dict) -> Callable[[dict], bool]:
    """The filters `applied` (a valid AuditEventFilterSet's cleaned data), matched in memory against an
    event's FIELDS: what the FilterSet's query selects, for events the change feed hands out."""
    tests = [
        (f.field, _IN_MEMORY[f.lookup], applied[f.param])
        for f in FILTERS
        if applied.get(f.param) not in (None, "")  # django-filter skips an empty value too
    ]
    return lambda fields: all(test(fields[field], value) for field, test, value in tests)


@dataclass(frozen=True)
class WhatIsNew:
    """How the filters a list applied read for events still to come (the audit page's live rows): the audit
    stream's query (its STREAM_PARAMS, matched server-side) and, from the time filters, the window a new event's
    time must still fall in, [start, end), each end None when nothing bounds it."""

    stream_query: dict
    start: datetime | None
    end: datetime | None


def what_is_new(applied: dict, now: datetime) -> WhatIsNew | None:
    """The filters `applied` (a valid AuditEventFilterSet's cleaned data) for events after `now`; None when no
    such event can match (a time range that ended by `now`, or an empty one). A `since` already past bounds
    nothing new; one still ahead, and any `until`, bound the window as the list reads them (gte, lt)."""
    given = {f.param: applied[f.param] for f in FILTERS if applied.get(f.param) not in (None, "")}
    start = end = None
    for f in FILTERS:
        value = given.get(f.param)
        if f.kind != "time" or value is None:
            continue
        if f.lookup == "gte" and value > now:
            start = value
        elif f.lookup == "lt":
            end = value
    if end is not None and end <= (start or now):  # start, when set, is ahead of now
        return None
    return WhatIsNew({p: given[p] for p in STREAM_PARAMS if p in given}, start, end)
