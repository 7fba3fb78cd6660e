import datetime as dt

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError
from django.utils import timezone

from audit.models import AuditChainHead, AuditEvent
from controlplane.errors import AppendOnly
from tests.conftest import refused


def event(**fields):
    fields = {"actor": "alice", "action": "service.create", "subject_type": "Service", "subject_id": "svc-a", **fields}
    return AuditEvent(**fields)


def test_sequence_numbers_count_up_from_one_whatever_the_caller_says(db):
    events = [event(seq=99), event(), event()]
    for e in events:
        e.save()
    assert [e.seq for e in events] == [1, 2, 3]
    assert AuditChainHead.objects.get().seq == 3


@pytest.mark.parametrize("action", ["create", "Service.Create", "service.", "service create"])
def test_action_is_noun_dot_verb(db, action):
    head = list(AuditChainHead.objects.values())  # made by a migration; a flush empties it, the next write rebuilds it
    refused(event(action=action).save, "action", "<noun>.<verb>")
    assert not AuditEvent.objects.exists() and list(AuditChainHead.objects.values()) == head


def test_metadata_is_an_object(db):
    refused(event(metadata=[1]).save, "metadata", "JSON object")


def test_events_are_never_updated_or_deleted_through_the_orm(db):
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


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_auditevent SET actor = 'mallory'",
        "DELETE FROM audit_auditevent",
        "DELETE FROM audit_auditevent WHERE seq = 1",
    ],
)
def test_the_database_itself_refuses_updates_and_deletes(db, statement):
    event().save()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)
    assert AuditEvent.objects.get(seq=1).actor == "alice"


def test_the_server_sets_the_time_and_it_never_decreases(db):
    first = event(ts=dt.datetime(2001, 1, 1, tzinfo=dt.UTC))
    first.save()
    assert timezone.now() - first.ts < dt.timedelta(seconds=5)  # the caller's time was ignored
    future = timezone.now() + dt.timedelta(hours=1)
    AuditChainHead.objects.filter(pk=1).update(ts=future)  # as if the clock then stepped back an hour
    later = event()
    later.save()
    assert later.ts == future
