"""The JSON Lines mirror of the trail (CONTROLPLANE_AUDIT_LOG), one event per line, in sequence order.

After each commit its events are appended, under an exclusive lock on the file. When the file does
not end right before them (an earlier write failed, or another process is behind), it is caught up
from the database instead: so it heals itself, and writers in several processes cannot duplicate or
reorder lines. The database is the source of truth; `manage.py audit_export` rebuilds the file from it.
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


def _last_seq(f) -> int:
    """The last complete line's seq; a partial last line (a crash mid-write) is cut off."""
    size = f.seek(0, os.SEEK_END)
    if size == 0:
        return 0
    block = min(size, 64 * 1024)
    f.seek(size - block)
    tail = f.read(block)
    complete = tail[: tail.rfind(b"\n") + 1]
    if len(complete) < len(tail):
        f.truncate(size - block + len(complete))
    lines = complete.splitlines()
    return json.loads(lines[-1])["seq"] if lines else 0


def _write(f, events) -> int:
    written = 0
    for event in events:
        f.write(line(event))
        written += 1
    f.flush()  # no fsync: the database is the source of truth, and the file catches up from it
    return written


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
        last = _last_seq(f) if since is None else since
        if committed is not None and committed.seq <= last:
            return 0  # already caught up by someone else
        if committed is not None and committed.seq == last + 1:
            return _write(f, [committed])
        return _write(f, AuditEvent.objects.filter(seq__gt=last).order_by("seq").iterator(chunk_size=2000))


def mirror_quietly(committed: AuditEvent | None = None) -> None:
    """After a commit: mirror it, but never fail the request that made the change."""
    try:
        catch_up(committed=committed)
    except (OSError, ValueError) as e:
        log.error("audit log mirror not written (%s); the database has the events: run manage.py audit_export", e)


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
