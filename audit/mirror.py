"""The JSON Lines mirror of the trail (CONTROLPLANE_AUDIT_LOG), one event per line, in sequence order.

After each commit its events are appended, under an exclusive lock on the file. When the file does
not end right before them (an earlier write failed, or another process is behind), it is caught up
from the database instead: so it heals itself, and writers in several processes cannot duplicate or
reorder lines. The database is the source of truth; `manage.py audit_export` rebuilds the file from it.

Nothing here may fail the change that was committed: every failure is logged (never with secrets: the
events are redacted before they are stored, and so are log lines) and the file catches up later. A file
that does not end with an event of this trail (a line someone appended, a file left from another
database, or from this one before it was restored from an older backup or flushed) is never written to or
rebuilt on its own, since it may be evidence: the log says how to fix it.
"""

import fcntl
import json
import logging
import os
from pathlib import Path

from django.conf import settings

from audit import chain
from audit.models import AuditEvent

log = logging.getLogger(__name__)


def log_path() -> Path | None:
    return Path(settings.AUDIT_LOG) if settings.AUDIT_LOG else None


def line(event: AuditEvent) -> bytes:
    record = {
        "seq": event.seq,
        "ts": chain.timestamp(event.ts),
        "actor": event.actor,
        "action": event.action,
        "subjectType": event.subject_type,
        "subjectId": event.subject_id,
        "serviceId": event.service_id,
        "metadata": event.metadata,
        "hash": event.hash,
    }
    # json.dumps escapes line feeds inside values, so one event is always exactly one line.
    return (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


class ForeignFile(Exception):
    """The file does not end with an event of this trail, so appending to it would be wrong."""


BLOCK = 64 * 1024


def _rfind_newline(f, end: int) -> int:
    """Where the last line feed before `end` is, or -1."""
    while end > 0:
        start = max(end - BLOCK, 0)
        f.seek(start)
        cut = f.read(end - start).rfind(b"\n")
        if cut >= 0:
            return start + cut
        end = start
    return -1


def _last_line(f) -> bytes:
    """The last complete line, however long, without its line feed; b"" for an empty file. A partial
    last line (a crash mid-write) is cut off first, and blank lines at the end are passed over."""
    size = f.seek(0, os.SEEK_END)
    end = _rfind_newline(f, size)
    if end + 1 < size:
        f.truncate(end + 1)
    while end >= 0:
        start = _rfind_newline(f, end) + 1
        f.seek(start)
        text = f.read(end - start)
        if text.strip():
            return text.rstrip(b"\r")
        end = start - 1
    return b""


def _last_event(f) -> tuple[int, str]:
    """(seq, hash) of the event the file ends with: (0, genesis) for an empty file."""
    text = _last_line(f)
    if not text:
        return 0, chain.GENESIS
    try:
        record = json.loads(text)
    except ValueError:
        record = None
    seq = record.get("seq") if isinstance(record, dict) else None
    event_hash = record.get("hash") if isinstance(record, dict) else None
    if type(seq) is not int or seq < 1 or not isinstance(event_hash, str):
        raise ForeignFile(f"its last line ({len(text)} bytes) is not an audit event with a sequence number and a hash")
    return seq, event_hash


def _write(f, events, after: tuple[int, str] | None = None) -> int:
    """Append `events`; when `after` (the file's last seq and hash) is known, the first one must follow it."""
    written = 0
    for event in events:
        if written == 0 and after is not None and chain.link(after[1], event) != event.hash:
            raise ForeignFile(
                f"its last line (seq {after[0]}) is not event {after[0]} of this database's trail "
                f"(event {event.seq} does not chain to it): the file belongs to another trail or was edited"
            )
        f.write(line(event))
        written += 1
    f.flush()  # no fsync: the database is the source of truth, and the file catches up from it
    return written


def _check_ours(after: tuple[int, str]) -> None:
    """A file already holding the seq just committed was caught up by another writer, or it is not this
    trail's mirror (the database was restored from an older backup, or flushed, and numbers its events
    again): its last line must then be this database's event with the same seq."""
    seq, file_hash = after
    stored = AuditEvent.objects.filter(seq=seq).values_list("hash", flat=True).first()
    if stored is None:
        raise ForeignFile(
            f"its last line is event {seq}, but this database's trail has no event {seq}: the database was "
            "restored from an older backup or flushed, or the file belongs to another trail"
        )
    if stored != file_hash:
        raise ForeignFile(
            f"its last line (seq {seq}) is not event {seq} of this database's trail (the hashes differ): the "
            "database was restored from an older backup or flushed, or the file belongs to another trail"
        )


def catch_up(since: int | None = None, committed: AuditEvent | None = None) -> int:
    """Append the events the file does not have yet (or those after `since`); return how many.

    `committed` is an event just committed: when the file ends right before it, it is written as is,
    without asking the database again."""
    path = log_path()
    if path is None:
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        after = _last_event(f) if since is None else None
        last = after[0] if after else since
        if committed is not None and committed.seq <= last:
            if after is not None:
                _check_ours(after)
            return 0  # already caught up by someone else
        if committed is not None and committed.seq == last + 1:
            return _write(f, [committed], after)
        return _write(f, AuditEvent.objects.filter(seq__gt=last).order_by("seq").iterator(chunk_size=2000), after)


def mirror_quietly(committed: AuditEvent | None = None) -> None:
    """After a commit: mirror it, but never fail the request that made the change; log why instead."""
    try:
        catch_up(committed=committed)
    except ForeignFile as e:
        log.error(
            "audit log mirror not written: %s is not this trail's mirror: %s. Nothing is appended to it until it "
            "is fixed; the database has every event. Keep a copy of the file if it matters, then rebuild it from "
            "the database with `python manage.py audit_export`.",
            log_path(),
            e,
        )
    except (OSError, ValueError) as e:
        log.error("audit log mirror not written (%s); the database has the events: run manage.py audit_export", e)
    except Exception:
        log.exception(
            "audit log mirror not written (unexpected error); the database has the events: run manage.py audit_export"
        )


def rebuild() -> int:
    """Write the whole trail to a new file and swap it in."""
    path = log_path()
    if path is None:
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".rebuilding")
    with open(partial, "wb") as f:
        written = _write(f, AuditEvent.objects.order_by("seq").iterator(chunk_size=2000))
    os.replace(partial, path)
    return written
