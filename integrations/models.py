"""Integrations, both ways (docs/integrations.md).

In: an `Integration` is a URL (`/api/integrations/{id}/events/`) and a secret that PagerDuty, Alertmanager or
any Standard Webhooks sender posts incidents to; every request it accepts (or turns down once it is known to come
from there) is a `ReceivedEvent`, its delivery log.

Out: a `WebhookEndpoint` subscribes a URL to audit actions (`release.*`); every audit event that matches writes a
`WebhookDelivery` in the event's own transaction (the outbox, `integrations.outbox`), which the worker sends
(`integrations.delivery`), each try a `WebhookAttempt`."""

import re
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from controlplane import sealed
from controlplane.models import Entity, new_id, one_of, require_aware
from incidents.models import IncidentSource
from services.models import Service

# How long a rotated-out secret keeps working beside the new one: time to update the other side.
ROTATION_OVERLAP = timedelta(hours=24)


class Signed(models.Model):
    """A secret, sealed at rest, and the one it replaced while that still works (ROTATION_OVERLAP)."""

    secret_sealed = models.TextField(editable=False)
    previous_secret_sealed = models.TextField(blank=True, editable=False)
    previous_valid_until = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        abstract = True

    def secrets(self, now: datetime | None = None) -> list[str]:
        """The secrets that sign or verify now: the current one first."""
        now = now or timezone.now()
        current = [sealed.unseal(self.secret_sealed)]
        if self.previous_valid_until is not None and self.previous_valid_until > now:
            current.append(sealed.unseal(self.previous_secret_sealed))
        return [s for s in current if s]

    def replace_secret(self, secret: str, now: datetime) -> None:
        self.previous_secret_sealed = self.secret_sealed
        self.previous_valid_until = now + ROTATION_OVERLAP
        self.secret_sealed = sealed.seal(secret)


# An integration's kind is the source its incidents name (incidents.IncidentSource), any but typed in.
KINDS = [(source.value, source.label) for source in IncidentSource if source != IncidentSource.MANUAL]


class Integration(Signed, Entity):
    ID_PREFIX = "int-"
    REFUSES_SECRETS = True  # its name and map are typed by an admin
    IMMUTABLE_FIELDS = ("kind", "created_by", "created_at")

    Kind = IncidentSource

    kind = models.CharField(max_length=12, choices=KINDS)
    name = models.CharField(max_length=100)
    service_map = models.JSONField(
        default=dict,
        blank=True,
        help_text="The source's service id (PagerDuty) or `service` label value (Alertmanager) → our service id.",
    )
    created_by = models.CharField(max_length=255, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=[k for k, _ in KINDS]),
                name="%(app_label)s_%(class)s_kind_valid",
                violation_error_message=f"kind must be one of {', '.join(k for k, _ in KINDS)}.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.name})"

    def clean(self):
        super().clean()
        errors: dict[str, list[str]] = {}
        if not self.name.strip():
            errors["name"] = ["must not be blank."]
        mapping = self.service_map
        if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
            errors["service_map"] = ["must be an object of source service → service id strings."]
        else:
            known = set(Service.objects.filter(pk__in=mapping.values()).values_list("pk", flat=True))
            if missing := sorted({v for v in mapping.values() if v not in known}):
                errors["service_map"] = [f"unknown service {', '.join(map(repr, missing))}."]
        if errors:
            raise ValidationError(errors)

    def service_for(self, source_key: str | None) -> str | None:
        """Our service for the source's key: mapped, else a service whose id is the key itself."""
        if not source_key:
            return None
        if source_key in self.service_map:
            return self.service_map[source_key]
        return source_key if Service.objects.filter(pk=source_key).exists() else None


class Outcome(models.TextChoices):
    CREATED = "created"  # an incident was created
    UPDATED = "updated"  # an incident moved
    UNCHANGED = "unchanged"  # understood; nothing to change (a repeat, a stale or a late event)
    IGNORED = "ignored"  # an event we do not follow (a ping, an unmapped service)
    DUPLICATE = "duplicate"  # an event id already received
    REJECTED = "rejected"  # from the source, but malformed or naming what does not exist: a 4xx


class ReceivedEvent(models.Model):
    """One request an integration accepted as coming from its source, whatever became of it: the delivery log.
    (A request whose signature or token fails is not stored: anyone could write there.)"""

    Outcome = Outcome

    id = models.CharField(primary_key=True, max_length=63, editable=False)
    integration = models.ForeignKey(Integration, on_delete=models.PROTECT, related_name="received")
    received_at = models.DateTimeField(default=timezone.now)
    event_id = models.CharField(max_length=200, blank=True, help_text="The source's id for the event, if any.")
    event_type = models.CharField(max_length=100, blank=True)
    external_id = models.CharField(max_length=200, blank=True)  # the source's incident (or alert) id
    occurred_at = models.DateTimeField(null=True, blank=True)  # when the source says it happened
    status_code = models.PositiveSmallIntegerField()
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    reason = models.CharField(max_length=500, blank=True)
    # Per incident (an Alertmanager request carries several alerts): [{externalId, outcome, incidentId, reason}].
    results = models.JSONField(default=list, blank=True)
    duplicate = models.BooleanField(default=False)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            one_of("outcome", Outcome),
            # Deduplication on the source's event id: the first one taken counts, repeats are logged as duplicates.
            models.UniqueConstraint(
                fields=["integration", "event_id"],
                condition=~Q(event_id="") & Q(duplicate=False) & ~Q(outcome="rejected"),
                name="%(app_label)s_%(class)s_event_once",
            ),
        ]
        indexes = [
            models.Index(fields=["integration", "-received_at", "-id"], name="received_log_idx"),
            models.Index(fields=["integration", "external_id", "occurred_at"], name="received_order_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.event_type or 'event'}: {self.outcome}"

    def save(self, *args, **kwargs):
        if not self.id:
            self.id = new_id("evt-")
        super().save(*args, **kwargs)


class WebhookFormat(models.TextChoices):
    STANDARD = "standard"  # Standard Webhooks: signed JSON
    SLACK = "slack"  # a Slack-compatible message ({text, attachments}), signed the same way


# Patterns name audit actions: `release.activate`, `release.*`, `*.create`, `*`.
EVENT_PATTERN = re.compile(r"^(\*|[a-z][a-z0-9_-]*)(\.(\*|[a-z][a-z0-9_-]*))?$")
# The nouns of the audit trail's actions (docs/domain.md); a pattern naming another matches nothing, so it is refused.
EVENT_NOUNS = (
    "approval",
    "changewindow",
    "deploy",
    "drift",
    "environment",
    "fixture",
    "freeze",
    "incident",
    "integration",
    "policy",
    "release",
    "run",
    "service",
    "token",
    "webhook",
)


def matches(pattern: str, action: str) -> bool:
    noun, _, verb = action.partition(".")
    want_noun, _, want_verb = pattern.partition(".")
    return want_noun in ("*", noun) and (not want_verb or want_verb in ("*", verb))


def webhook_url_problem(url: str) -> str | None:
    """What is wrong with `url` as a webhook target's address, before any name is resolved."""
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        return "must be an absolute http(s) URL."
    if "@" in url.split("/", 3)[2]:
        return "must not carry a user name or password (sign with the endpoint's secret instead)."
    return None


class WebhookEndpoint(Signed, Entity):
    ID_PREFIX = "whk-"
    REFUSES_SECRETS = True
    IMMUTABLE_FIELDS = ("created_by", "created_at")

    Format = WebhookFormat

    url = models.CharField(max_length=2000, help_text="Where events are POSTed. Shown to admins only.")
    events = models.JSONField(help_text="Audit actions to send: `release.activate`, `release.*`, `*`.")
    format = models.CharField(max_length=8, choices=WebhookFormat.choices, default=WebhookFormat.STANDARD)
    description = models.CharField(max_length=200, blank=True)
    created_by = models.CharField(max_length=255, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    disabled_at = models.DateTimeField(null=True, blank=True, editable=False)
    disabled_reason = models.CharField(max_length=300, blank=True, editable=False)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [one_of("format", WebhookFormat)]
        indexes = [models.Index(fields=["disabled_at"], name="webhook_enabled_idx")]

    def __str__(self) -> str:
        return f"{self.id} ({self.host})"

    @property
    def enabled(self) -> bool:
        return self.disabled_at is None

    @property
    def host(self) -> str:
        """The URL's host: what logs, errors and the audit trail name (the rest may be a secret, as Slack's is)."""
        return self.url.split("/", 3)[2] if self.url.count("/") >= 2 else self.url

    def clean(self):
        super().clean()
        errors: dict[str, list[str]] = {}
        for field in ("created_at", "disabled_at", "previous_valid_until"):
            setattr(self, field, require_aware(getattr(self, field), field, errors))
        if problem := webhook_url_problem(self.url):
            errors["url"] = [problem]
        events = self.events
        if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
            errors["events"] = ['must be a non-empty list of audit actions or patterns, like ["release.*"].']
        else:
            for pattern in events:
                if not EVENT_PATTERN.match(pattern):
                    errors.setdefault("events", []).append(
                        f"{pattern!r} is not an action or pattern: write noun.verb, noun.*, *.verb or *."
                    )
                elif pattern.partition(".")[0] not in ("*", *EVENT_NOUNS):
                    errors.setdefault("events", []).append(
                        f"{pattern!r} names no audit action; the nouns are {', '.join(EVENT_NOUNS)}."
                    )
            if len(set(events)) != len(events):
                errors.setdefault("events", []).append("must not repeat a pattern.")
        if errors:
            raise ValidationError(errors)

    def _secret_fields(self):
        # A receiver's URL may carry its own token (`?token=`, Slack's path): it is kept, and shown to admins only.
        return (field for field in super()._secret_fields() if field.name != "url")

    def wants(self, action: str) -> bool:
        return any(matches(pattern, action) for pattern in self.events)


class DeliveryState(models.TextChoices):
    PENDING = "pending"  # waiting for its next try (next_attempt_at)
    SENDING = "sending"  # a worker holds it until lease_until
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # given up: a permanent answer, the schedule spent, or the endpoint disabled


class WebhookDelivery(models.Model):
    """One event for one endpoint. Its id is the `webhook-id` header, the same on every try, so receivers
    deduplicate; its body is fixed when the event commits, so every try sends the same bytes."""

    State = DeliveryState

    id = models.CharField(primary_key=True, max_length=63, editable=False)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.PROTECT, related_name="deliveries")
    event_seq = models.BigIntegerField(null=True, blank=True, help_text="The audit event's seq; none for a ping.")
    event_type = models.CharField(max_length=100)
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    state = models.CharField(max_length=10, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        ordering = ["-created_at", "-id"]
        constraints = [one_of("state", DeliveryState)]
        indexes = [
            models.Index(fields=["endpoint", "-created_at", "-id"], name="webhook_delivery_log_idx"),
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(state__in=["pending", "sending"]),
                name="webhook_delivery_due_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.event_type}: {self.state}"

    def save(self, *args, **kwargs):
        if not self.id:
            self.id = new_id("msg-")
        super().save(*args, **kwargs)


class WebhookAttempt(models.Model):
    """One try of a delivery: what was answered (or why nothing was), and how long it took."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.PROTECT, related_name="tries")
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    response = models.CharField(max_length=500, blank=True, help_text="The answer's first characters, redacted.")

    def __str__(self) -> str:
        return f"{self.delivery_id} try {self.number}: {self.status_code or self.error}"

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="%(app_label)s_%(class)s_once"),
        ]
