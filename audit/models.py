import re

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from controlplane.errors import AppendOnly
from controlplane.models import DomainModel, DomainQuerySet, require_aware

ACTION = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


class AuditEventQuerySet(DomainQuerySet):
    def update(self, **kwargs):
        raise AppendOnly("audit events are append-only: they are never updated.")


class AuditEvent(DomainModel):
    """Who did what to which subject, and when. Written once, ordered by `seq`."""

    APPEND_ONLY = True

    seq = models.BigIntegerField(primary_key=True, editable=False)
    ts = models.DateTimeField(default=timezone.now, editable=False)
    actor = models.CharField(max_length=255)
    action = models.CharField(
        max_length=100, help_text="<noun>.<verb>, lower case: deploy.create, release.promote, ..."
    )
    subject_type = models.CharField(max_length=50)
    subject_id = models.CharField(max_length=100)
    metadata = models.JSONField(default=dict, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["seq"]
        constraints = [
            models.CheckConstraint(condition=Q(seq__gt=0), name="%(app_label)s_%(class)s_seq_positive"),
        ]
        indexes = [
            models.Index(fields=["subject_type", "subject_id", "seq"], name="audit_subject_idx"),
            models.Index(fields=["actor", "seq"], name="audit_actor_idx"),
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
        if self._state.adding and self.seq is not None and self.ts is not None and not errors:
            last = AuditEvent.objects.filter(seq__lt=self.seq).order_by("-seq").values_list("ts", flat=True).first()
            if last and self.ts < last:
                errors["ts"] = [f"must not be earlier than the event before it ({last:%Y-%m-%dT%H:%M:%S.%fZ})."]
        if errors:
            raise ValidationError(errors)

    def save(self, *args, **kwargs):
        if self._state.adding and self.seq is None:
            last = AuditEvent.objects.order_by("-seq").values_list("seq", "ts").first()
            self.seq = (last[0] if last else 0) + 1
            if last and self.ts < last[1]:
                self.ts = last[1]  # the clock stepped back; the trail's order still holds
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return f"#{self.seq} {self.actor} {self.action} {self.subject_type}:{self.subject_id}"
