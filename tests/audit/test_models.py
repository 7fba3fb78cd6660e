import datetime as dt

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from controlplane.errors import AppendOnly
from tests.conftest import refused


def event(**fields):
    fields = {"actor": "alice", "action": "service.create", "subject_type": "Service", "subject_id": "svc-a", **fields}
    return AuditEvent(**fields)


def test_sequence_numbers_count_up_from_one(db):
    events = [event() for _ in range(3)]
    for e in events:
        e.save()
    assert [e.seq for e in events] == [1, 2, 3]


@pytest.mark.parametrize("action", ["create", "Service.Create", "service.", "service create"])
def test_action_is_noun_dot_verb(db, action):
    refused(event(action=action).save, "action", "<noun>.<verb>")


def test_metadata_is_an_object(db):
    refused(event(metadata=[1]).save, "metadata", "JSON object")


def test_events_are_never_updated_or_deleted(db):
    e = event()
    e.save()
    e.actor = "mallory"
    for attempt in (
        e.save,
        e.delete,
        lambda: AuditEvent.objects.filter(seq=e.seq).update(actor="mallory"),
        lambda: AuditEvent.objects.all().delete(),
    ):
        with pytest.raises(AppendOnly):
            attempt()
    assert AuditEvent.objects.get(seq=e.seq).actor == "alice"


def test_time_never_decreases_along_the_sequence(db):
    first = event()
    first.save()
    clock_stepped_back = event(ts=first.ts - dt.timedelta(seconds=5))
    clock_stepped_back.save()
    assert clock_stepped_back.ts == first.ts
    restored_out_of_order = event(seq=10, ts=first.ts - dt.timedelta(days=1))
    refused(restored_out_of_order.save, "ts", "must not be earlier than the event before it")


def test_times_are_utc(db):
    e = event(ts=timezone.now().astimezone(dt.timezone(dt.timedelta(hours=-5))))
    e.save()
    assert e.ts.utcoffset() == dt.timedelta(0)
