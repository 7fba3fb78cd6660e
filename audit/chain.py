"""The hash chain: each event's hash is SHA-256 over the previous event's hash and its own canonical JSON,
so editing, deleting, inserting or reordering an event breaks every hash after it."""

import hashlib
import json
from datetime import UTC

GENESIS = "0" * 64


def timestamp(ts) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(event) -> str:
    return json.dumps(
        {
            "seq": event.seq,
            "ts": timestamp(event.ts),
            "actor": event.actor,
            "action": event.action,
            "subjectType": event.subject_type,
            "subjectId": event.subject_id,
            "serviceId": getattr(event, "service_id", ""),  # absent from events older than the column
            "metadata": event.metadata,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )


def link(previous_hash: str, event) -> str:
    return hashlib.sha256((previous_hash + canonical(event)).encode()).hexdigest()
