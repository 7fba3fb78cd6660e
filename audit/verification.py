from dataclasses import dataclass

from audit import chain
from audit.models import AuditChainHead, AuditEvent


@dataclass
class Verdict:
    events: int
    last_hash: str
    broken_at: int | None = None
    reason: str = ""


def verify() -> Verdict:
    """Walk the trail in sequence order, recomputing every hash; name the first event that is wrong."""
    previous_hash, previous_ts, expected = chain.GENESIS, None, 1
    for event in AuditEvent.objects.order_by("seq").iterator(chunk_size=2000):
        if event.seq != expected:
            return Verdict(
                expected - 1, previous_hash, expected, "it is missing (deleted, or the trail was renumbered)"
            )
        if chain.link(previous_hash, event) != event.hash:
            reason = "its hash does not verify: it was edited, inserted or moved, or the event before it was"
            return Verdict(expected - 1, previous_hash, event.seq, reason)
        if previous_ts and event.ts < previous_ts:
            return Verdict(expected - 1, previous_hash, event.seq, "its time is earlier than the event before it")
        previous_hash, previous_ts, expected = event.hash, event.ts, expected + 1
    last = expected - 1
    head = AuditChainHead.objects.filter(pk=1).first()
    if head is not None and head.seq > last:
        return Verdict(
            last, previous_hash, last + 1, f"it is missing: the trail ends at {last}, the head records {head.seq}"
        )
    if head is not None and (head.seq, head.hash) != (last, previous_hash):
        return Verdict(
            last, previous_hash, head.seq + 1, "it is not where the chain head says the trail ends (inserted?)"
        )
    return Verdict(last, previous_hash)
