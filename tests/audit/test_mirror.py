"""The JSON Lines mirror: one line per event after commit, in order; failures never fail the change."""

import json
import logging

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditEvent
from audit.writer import record
from controlplane.identity.context import acting_as
from incidents.models import Incident
from services.models import Environment
from tests.api.conftest import Api
from tests.conftest import sign_in


def lines(path):
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def make_environments(n, mirrored):
    with mirrored(execute=True), acting_as("test"):
        for _ in range(n):
            Environment(name=f"mirror-{Environment.objects.count()}").save()


def test_each_committed_event_becomes_one_line(db, audit_log, django_capture_on_commit_callbacks):
    make_environments(3, django_capture_on_commit_callbacks)
    written = lines(audit_log)
    assert [w["seq"] for w in written] == [1, 2, 3]
    event = AuditEvent.objects.get(seq=2)
    assert written[1] == {
        "seq": 2,
        "ts": written[1]["ts"],
        "actor": "system:test",
        "action": "environment.create",
        "subjectType": "Environment",
        "subjectId": event.subject_id,
        "serviceId": "",
        "metadata": event.metadata,
        "hash": event.hash,
    }
    assert written[1]["ts"].endswith("Z")


def test_a_line_feed_inside_a_value_never_splits_a_line(db, audit_log, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        record("note.add", "Note", "n-1", {"text": "first line\nsecond line\r\nthird"})
    raw = audit_log.read_bytes()
    assert raw.count(b"\n") == 1
    assert lines(audit_log)[0]["metadata"]["text"] == "first line\nsecond line\r\nthird"


def test_an_unwritable_log_never_fails_the_change(
    db, settings, tmp_path, caplog, client, django_capture_on_commit_callbacks
):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    settings.AUDIT_LOG = str(blocker / "control-plane.log")
    sign_in(client, "admin")
    caplog.set_level(logging.ERROR, logger="audit.mirror")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/admin/services/environment/add/", {"name": "qa", "policy_refs": ""})
    assert response.status_code == 302 and Environment.objects.filter(name="qa").exists()
    assert "audit log mirror not written" in caplog.text and "audit_export" in caplog.text
    settings.AUDIT_LOG = str(tmp_path / "fixed.log")
    call_command("audit_export")
    assert [w["action"] for w in lines(tmp_path / "fixed.log")] == ["environment.create"]


def test_the_file_catches_up_after_a_missed_write(db, audit_log, settings, django_capture_on_commit_callbacks):
    make_environments(2, django_capture_on_commit_callbacks)
    settings.AUDIT_LOG = str(audit_log.parent / "missing-dir" / "x" / "..")  # a path that cannot be a file
    make_environments(1, django_capture_on_commit_callbacks)  # this commit's mirror write fails
    settings.AUDIT_LOG = str(audit_log)
    with django_capture_on_commit_callbacks(execute=True), acting_as("test"):
        Environment(name="later").save()
    assert [w["seq"] for w in lines(audit_log)] == [1, 2, 3, 4]


def test_a_partial_last_line_is_cut_before_appending(db, audit_log, django_capture_on_commit_callbacks):
    make_environments(1, django_capture_on_commit_callbacks)
    with open(audit_log, "ab") as f:
        f.write(b'{"seq": 2, "ts": "2026-')  # a crash mid-write
    with django_capture_on_commit_callbacks(execute=True), acting_as("test"):
        Environment(name="next").save()
    assert [w["seq"] for w in lines(audit_log)] == [1, 2]


def test_audit_export_rebuilds_or_appends_since(db, audit_log, capsys):
    with acting_as("test"):
        for i in range(4):
            Environment(name=f"exported-{i}").save()
    call_command("audit_export")
    assert [w["seq"] for w in lines(audit_log)] == [1, 2, 3, 4]
    audit_log.write_bytes(b"".join(line + b"\n" for line in audit_log.read_bytes().splitlines()[:2]))
    call_command("audit_export", since=2)
    assert [w["seq"] for w in lines(audit_log)] == [1, 2, 3, 4]
    assert "appended after 2: 2 events" in capsys.readouterr().out


def test_an_empty_setting_turns_the_mirror_off(db, settings, audit_log, django_capture_on_commit_callbacks):
    settings.AUDIT_LOG = ""
    make_environments(1, django_capture_on_commit_callbacks)
    assert not audit_log.exists()
    with pytest.raises(CommandError, match="the JSON Lines mirror is off"):
        call_command("audit_export")


# --- nothing after the commit turns a committed change into an error answer ---

INCIDENT = {"serviceId": "svc-demo", "severity": "high", "link": "https://pd.example.com/i/2", "title": "Slow"}


@pytest.fixture
def committed(transactional_db, audit_log):
    """The demo data, committed and mirrored: each request below commits for real, and its mirror runs."""
    call_command("loaddata", "fixtures/demo.json", verbosity=0)
    assert lines(audit_log)
    return audit_log


def test_a_foreign_last_line_leaves_the_change_committed_and_answered(committed, caplog):
    with open(committed, "ab") as f:
        f.write(b'{"notseq": 1}\n')
    before = committed.read_bytes()
    caplog.set_level(logging.ERROR, logger="audit.mirror")
    response = Api("deployer").post("/api/incidents/", INCIDENT)
    assert response.status_code == 201, response.content  # one incident, answered: a retry makes no duplicate
    assert Incident.objects.filter(title="Slow").count() == 1
    # The file is left as it is (it may be evidence), and the log says what is wrong and how to fix it.
    assert committed.read_bytes() == before
    assert "audit log mirror not written" in caplog.text and "not an audit event" in caplog.text
    assert "manage.py audit_export" in caplog.text
    call_command("audit_export")
    assert [w["seq"] for w in lines(committed)] == list(AuditEvent.objects.values_list("seq", flat=True))
    assert Api("deployer").post("/api/incidents/", {**INCIDENT, "title": "Slower"}).status_code == 201
    assert lines(committed)[-1]["seq"] == AuditEvent.objects.order_by("-seq").first().seq


@pytest.mark.parametrize("last_line", [b"[1, 2]\n", b'"seq"\n', b'{"seq": "7", "hash": "x"}\n', b"not json at all\n"])
def test_any_unparseable_last_line_is_logged_not_raised(committed, caplog, last_line):
    with open(committed, "ab") as f:
        f.write(last_line)
    response = Api("deployer").post("/api/incidents/", INCIDENT)
    assert response.status_code == 201, response.content
    assert "audit log mirror not written" in caplog.text and "audit_export" in caplog.text


def test_a_file_from_another_trail_is_not_appended_to(committed, caplog):
    """Its last line looks like an event, but not one of this database's trail: appending would mix trails."""
    written = lines(committed)
    written[-1]["hash"] = "f" * 64  # the same seq, another trail
    committed.write_text("".join(json.dumps(w) + "\n" for w in written))
    before = committed.read_bytes()
    assert Api("deployer").post("/api/incidents/", INCIDENT).status_code == 201
    assert committed.read_bytes() == before
    assert "not event" in caplog.text and "does not chain to it" in caplog.text


def test_a_file_already_holding_the_committed_event_stays_as_it_is(db, audit_log, caplog):
    """Another process caught the file up before this one got the lock: nothing to do, nothing to say."""
    from audit import mirror

    with acting_as("test"):
        for name in ("caught-1", "caught-2", "caught-3"):
            Environment(name=name).save()
    call_command("audit_export")
    before = audit_log.read_bytes()
    caplog.set_level(logging.ERROR, logger="audit.mirror")
    for seq in (2, 3):
        assert mirror.catch_up(committed=AuditEvent.objects.get(seq=seq)) == 0
        mirror.mirror_quietly(AuditEvent.objects.get(seq=seq))
    assert audit_log.read_bytes() == before and not caplog.records


def test_after_a_flush_or_an_older_backup_the_file_of_the_old_trail_is_not_written_to(
    transactional_db, audit_log, caplog
):
    """The database numbers its events again from where the backup ended (here, from 1): the file already
    has those numbers, from the old trail. It is left as it is, and each write says so."""
    with acting_as("test"):
        for name in ("old-1", "old-2", "old-3"):
            Environment(name=name).save()
    assert [w["seq"] for w in lines(audit_log)] == [1, 2, 3]
    call_command("flush", interactive=False, verbosity=0)
    before = audit_log.read_bytes()
    caplog.set_level(logging.ERROR, logger="audit.mirror")
    with acting_as("test"):
        Environment(name="new-1").save()  # event 1 again: the database has no event 3
        assert "but this database's trail has no event 3" in caplog.text
        Environment(name="new-2").save()
        Environment(name="new-3").save()  # event 3 again, another one
        assert "its last line (seq 3) is not event 3 of this database's trail (the hashes differ)" in caplog.text
        Environment(name="new-4").save()
        assert "does not chain to it" in caplog.text
    assert audit_log.read_bytes() == before
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 4 and all("not this trail's mirror" in m and "audit_export" in m for m in messages)
    call_command("audit_export")
    assert [(w["seq"], w["hash"]) for w in lines(audit_log)] == list(
        AuditEvent.objects.order_by("seq").values_list("seq", "hash")
    )


def test_an_unexpected_mirror_failure_is_logged_and_the_client_gets_its_answer(committed, caplog, monkeypatch):
    from audit import mirror

    def broken(**kwargs):
        raise KeyError("something nobody foresaw")

    monkeypatch.setattr(mirror, "catch_up", broken)
    assert Api("deployer").post("/api/incidents/", INCIDENT).status_code == 201
    assert "audit log mirror not written (unexpected error)" in caplog.text

    def worse(committed=None):
        raise RuntimeError("the mirror itself is broken")

    monkeypatch.setattr(mirror, "mirror_quietly", worse)  # even then: on_commit(robust=True) logs it
    assert Api("deployer").post("/api/incidents/", {**INCIDENT, "title": "Again"}).status_code == 201
    assert "the mirror itself is broken" in caplog.text
    assert Incident.objects.filter(title__in=["Slow", "Again"]).count() == 2
