"""Tamper evidence: audit_verify names the first bad sequence number, whatever was done behind the guards."""

import copy
import json
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from audit.models import AuditChainHead, AuditEvent
from controlplane import triggers
from controlplane.identity.context import acting_as
from services.models import Environment


@pytest.fixture
def five_events(db):
    with acting_as("test"):
        for n in range(5):
            Environment(name=f"env-{n}").save()
    assert list(AuditEvent.objects.values_list("seq", flat=True)) == [1, 2, 3, 4, 5]


@contextmanager
def behind_the_guards():
    """What an attacker with database access does: drop the triggers, write raw SQL. (Rolled back after.)"""
    triggers.uninstall(connection)
    with connection.cursor() as cursor:
        yield cursor
    triggers.install(connection)


def verify_fails_at(seq: int):
    with pytest.raises(CommandError, match=rf"audit trail broken at sequence {seq}:"):
        call_command("audit_verify")


def test_an_intact_trail_verifies(five_events, capsys):
    call_command("audit_verify")
    assert "audit trail intact: 5 events" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("statement", "params", "first_bad"),
    [
        ("UPDATE audit_auditevent SET actor = 'someone-else' WHERE seq = 3", [], 3),  # edited
        ("UPDATE audit_auditevent SET metadata = %s WHERE seq = 2", [json.dumps({"name": "forged"})], 2),
        ("DELETE FROM audit_auditevent WHERE seq = 4", [], 4),  # a gap
        ("DELETE FROM audit_auditevent WHERE seq = 5", [], 5),  # the last one: only the head knows
    ],
    ids=["edited", "edited-metadata", "deleted", "deleted-last"],
)
def test_tampering_is_caught_at_the_first_bad_event(five_events, statement, params, first_bad):
    with behind_the_guards() as sql:
        sql.execute(statement, params)
    verify_fails_at(first_bad)


def test_an_inserted_event_is_caught(five_events):
    last = AuditEvent.objects.get(seq=5)
    with behind_the_guards() as sql:
        sql.execute(
            "INSERT INTO audit_auditevent "
            "(seq, ts, actor, action, subject_type, subject_id, service_id, metadata, hash) "
            "VALUES (6, %s, 'mallory', 'service.create', 'Service', 'svc-x', '', '{}', %s)",
            [last.ts, "f" * 64],
        )
    verify_fails_at(6)


def test_an_inserted_event_with_a_correct_hash_is_caught_by_the_head(five_events):
    from audit import chain

    forged = AuditEvent(
        seq=6,
        ts=AuditEvent.objects.get(seq=5).ts,
        actor="mallory",
        action="service.create",
        subject_type="Service",
        subject_id="svc-x",
        metadata={},
    )
    forged.hash = chain.link(AuditEvent.objects.get(seq=5).hash, forged)
    with behind_the_guards() as sql:
        sql.execute(
            "INSERT INTO audit_auditevent "
            "(seq, ts, actor, action, subject_type, subject_id, service_id, metadata, hash) "
            "VALUES (6, %s, 'mallory', 'service.create', 'Service', 'svc-x', '', '{}', %s)",
            [forged.ts, forged.hash],
        )
    verify_fails_at(6)


def test_reordered_events_are_caught(five_events):
    with behind_the_guards() as sql:
        # Swap events 2 and 3 (through a free number, as the primary key is unique).
        sql.execute("UPDATE audit_auditevent SET seq = 1000 WHERE seq = 2")
        sql.execute("UPDATE audit_auditevent SET seq = 2 WHERE seq = 3")
        sql.execute("UPDATE audit_auditevent SET seq = 3 WHERE seq = 1000")
    verify_fails_at(2)


def test_audit_verify_exits_non_zero_from_the_command_line(five_events):
    with behind_the_guards() as sql:
        sql.execute("UPDATE audit_auditevent SET action = 'service.delete' WHERE seq = 1")
    with pytest.raises(CommandError) as caught:
        call_command("audit_verify")
    assert caught.value.returncode == 1


# --- restores keep the chain ---

DEMO = json.loads(Path("fixtures/demo.json").read_text())


def write(tmp_path, objects):
    path = tmp_path / "restore.json"
    path.write_text(json.dumps(objects))
    return str(path)


def test_a_restore_must_continue_the_trail(db, tmp_path):
    head = list(AuditChainHead.objects.values())  # made by a migration; a flush empties it, the next write rebuilds it
    objects = copy.deepcopy(DEMO)
    next(o for o in objects if o["model"] == "audit.auditevent")["pk"] = 7
    with pytest.raises(CommandError, match=r"audit.AuditEvent\(pk=7\): seq: must continue the trail, which ends at 0"):
        call_command("loaddata", write(tmp_path, objects), verbosity=0)
    assert not AuditEvent.objects.exists() and list(AuditChainHead.objects.values()) == head


def test_a_restored_event_whose_hash_does_not_verify_is_refused(db, tmp_path):
    objects = copy.deepcopy(DEMO)
    next(o for o in objects if o["model"] == "audit.auditevent")["fields"]["actor"] = "mallory"
    with pytest.raises(CommandError, match="hash: does not verify"):
        call_command("loaddata", write(tmp_path, objects), verbosity=0)


def test_a_restore_continues_the_chain_and_later_events_follow_it(db, tmp_path):
    call_command("loaddata", "fixtures/demo.json", verbosity=0)
    with acting_as("test"):
        Environment(name="after-restore").save()
    assert list(AuditEvent.objects.values_list("seq", flat=True)) == [1, 2, 3]
    call_command("audit_verify")
