import re

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from audit import chain
from controlplane.models import DomainModel, require_aware
from controlplane.redaction import redact

ACTION = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


class AuditChainHead(models.Model):
    """The last event of the trail (one row). Locking it serialises writers, so the chain stays linear
    and the sequence gapless under concurrency, on SQLite and PostgreSQL alike."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=chain.GENESIS)
    ts = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(id=1), name="%(app_label)s_%(class)s_single_row")]

    @classmethod
    def locked(cls) -> tuple[int, str, object]:
        """(seq, hash, ts) of the trail's last event, locked until the transaction ends (SQLite's
        IMMEDIATE transactions hold the write lock already). Values only: this runs on every change."""
        head = cls.objects.select_for_update().filter(pk=1).values_list("seq", "hash", "ts")
        for row in head:
            return row
        # Lost (or never made): rebuilt from the trail itself.
        last = AuditEvent.objects.order_by("-seq").values_list("seq", "hash", "ts").first() or (0, chain.GENESIS, None)
        cls.objects.create(pk=1, seq=last[0], hash=last[1], ts=last[2])
        return last

    @classmethod
    def advance(cls, event: "AuditEvent") -> None:
        cls.objects.filter(pk=1).update(seq=event.seq, hash=event.hash, ts=event.ts)

    def __str__(self) -> str:
        return f"audit chain head at {self.seq}"


class AuditEvent(DomainModel):
    """Who did what to which subject, and when. Written once, ordered by `seq`, chained by `hash`."""

    APPEND_ONLY = True

    seq = models.BigIntegerField(primary_key=True, editable=False)
    ts = models.DateTimeField(default=timezone.now, editable=False)
    actor = models.CharField(max_length=255)
    action = models.CharField(max_length=100, help_text="<noun>.<verb>, lower case: deploy.create, ...")
    subject_type = models.CharField(max_length=50)
    subject_id = models.CharField(max_length=100)
    # The service the subject belongs to (a release's, an incident's, or the service itself), so
    # "what happened to this service" is one index seek. Empty for subjects outside any service.
    service_id = models.CharField(max_length=63, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    hash = models.CharField(
        max_length=64, blank=True, editable=False, help_text="SHA-256 over the previous hash and this event."
    )

    class Meta:
        ordering = ["seq"]
        constraints = [
            models.CheckConstraint(condition=Q(seq__gt=0), name="%(app_label)s_%(class)s_seq_positive"),
        ]
        indexes = [
            models.Index(fields=["subject_type", "subject_id", "seq"], name="audit_subject_idx"),
            models.Index(fields=["actor", "seq"], name="audit_actor_idx"),
            models.Index(fields=["service_id", "seq"], name="audit_service_idx"),
            models.Index(fields=["ts"], name="audit_ts_idx"),
        ]

    def clean(self):
        super().clean()
        errors: dict[str, list[str]] = {}
        self.ts = require_aware(self.ts, "ts", errors)
        if self.action and not ACTION.match(self.action):
            errors["action"] = ["must be <noun>.<verb> in lower case, like 'deploy.create'."]
        if not isinstance(self.metadata, dict):
            errors["metadata"] = ["must be a JSON object."]
        if self.restoring and not errors:
            self._clean_restored(errors)
        if errors:
            raise ValidationError(errors)

    def _clean_restored(self, errors):
        """A restored event must continue the trail exactly where it ends, with a hash that verifies."""
        last_seq, last_hash, last_ts = AuditChainHead.locked()
        if self.seq != last_seq + 1:
            errors["seq"] = [f"must continue the trail, which ends at {last_seq} (expected {last_seq + 1})."]
        elif last_ts and self.ts < last_ts:
            errors["ts"] = [f"must not be earlier than the event before it ({chain.timestamp(last_ts)})."]
        else:
            expected = chain.link(last_hash, self)
            if self.hash and self.hash != expected:
                errors["hash"] = ["does not verify: the event was altered or does not follow the trail's last event."]
            self.hash = expected

    def save(self, *args, **kwargs):
        if not self._state.adding:
            super().save(*args, **kwargs)  # refused: append-only
            return
        # Validate what the caller chose; seq, ts and hash are the trail's to assign, under the head's lock.
        self.full_clean(exclude={"seq", "ts", "hash"}, validate_unique=False, validate_constraints=False)
        append([self])

    def __str__(self) -> str:
        return f"#{self.seq} {self.actor} {self.action} {self.subject_type}:{self.subject_id}"


def trail_head() -> int:
    """The sequence number of the trail's last event (0 while it is empty): where a reader who has read the
    whole trail goes on from (a stream's start, the audit page's live rows)."""
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def append(events: list[AuditEvent], batch_size: int = 5000) -> None:
    """Continue the trail with `events` (unsaved, in order): under the head's lock, each gets the next
    sequence number, a time never earlier than the one before, and its link in the hash chain. The one
    way events are written: one at a time by the writer, in bulk by `manage.py seed`."""
    if not events:
        return
    with transaction.atomic(savepoint=False):
        last_seq, last_hash, last_ts = AuditChainHead.locked()
        now = timezone.now()
        ts = max(now, last_ts) if last_ts else now
        for n, event in enumerate(events, start=1):
            event.metadata = redact(event.metadata) if isinstance(event.metadata, dict) else event.metadata
            event.seq = last_seq + n
            event.ts = ts
            event.hash = last_hash = chain.link(last_hash, event)
        if len(events) == 1:
            models.Model.save(events[0], force_insert=True)
        else:
            AuditEvent.objects.bulk_create(events, batch_size=batch_size)
        AuditChainHead.advance(events[-1])
    for event in events:
        event._state.adding = False
