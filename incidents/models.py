import re
from datetime import datetime, timedelta
from urllib.parse import quote

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.deconstruct import deconstructible

from controlplane.models import Entity, StatusMachine, one_of, require_aware, set_exactly_when, unknown
from services.models import Service

# How far ahead of the server's clock an incident may start: the source system's clock may run a little fast.
STARTS_AHEAD_AT_MOST = timedelta(minutes=5)


@deconstructible
class SourceLink(URLValidator):
    """An absolute http(s) URL, as URLs are written: URLValidator takes any character but a space after the host,
    and `"`, `<` or a lone `%` are not URL characters until percent-encoded (RFC 3986). Non-ASCII letters are
    let be (internationalised links)."""

    message = "must be an absolute http(s) URL to the source system."
    NOT_IN_URLS = re.compile(r'[\x00-\x20\x7f"<>\\^`{|}]|%(?![0-9A-Fa-f]{2})')

    def __init__(self):
        super().__init__(schemes=["http", "https"])

    def __call__(self, value):
        super().__call__(value)
        unencoded = self.NOT_IN_URLS.search(value)
        if unencoded:
            character = unencoded.group()
            shown = f"'{character}'" if character.isprintable() else f"U+{ord(character):04X}"
            raise ValidationError(
                f"{self.message[:-1]}; write {shown} percent-encoded, as {quote(character, safe='')}.", code="invalid"
            )


source_link = SourceLink()


class IncidentStatus(models.TextChoices):
    TRIGGERED = "triggered"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Severity(models.TextChoices):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class IncidentSource(models.TextChoices):
    """Where an incident came from: typed in, or an integration of that kind (integrations.Integration)."""

    MANUAL = "manual", "typed in"
    PAGERDUTY = "pagerduty", "PagerDuty"
    ALERTMANAGER = "alertmanager", "Prometheus Alertmanager"
    GENERIC = "generic", "Standard Webhooks sender"


SEVERITIES = list(Severity.values)  # lowest to highest

# What "open" means for an incident, once: not resolved yet. The `open` filter of the lists (REST, GraphQL,
# the incidents page), the partial index, and the read model's counts (`overview.deployment_state` compiles it
# into its SQL; the services index, a service's page and the confirmations read them) all use it.
OPEN = ~Q(status=IncidentStatus.RESOLVED)


class Incident(StatusMachine, Entity):
    ID_PREFIX = "inc-"
    REFUSES_SECRETS = True  # typed by users: a secret in a field is refused, not stored

    Severity = Severity

    Status = IncidentStatus
    Source = IncidentSource

    TRANSITIONS = {
        Status.TRIGGERED: (Status.ACKNOWLEDGED, Status.RESOLVED),
        Status.ACKNOWLEDGED: (Status.RESOLVED,),
        Status.RESOLVED: (),
    }
    MOVED_BY = "acknowledging and resolving"
    MOVED_FIELDS = ("acknowledged_at", "resolved_at")
    SEVERITY_RANK = {s: rank for rank, s in enumerate(Severity)}
    IMMUTABLE_FIELDS = ("service", "started_at", "source", "external_id", "integration")

    service = models.ForeignKey(
        Service, on_delete=models.PROTECT, related_name="incidents", error_messages=unknown("service")
    )
    title = models.CharField(max_length=200, blank=True)
    severity = models.CharField(max_length=8, choices=Severity.choices)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.TRIGGERED, editable=False)
    started_at = models.DateTimeField(default=timezone.now)
    acknowledged_at = models.DateTimeField(null=True, blank=True, editable=False)
    resolved_at = models.DateTimeField(null=True, blank=True, editable=False)
    link = models.CharField(max_length=500, validators=[source_link], help_text="The incident in its source system.")
    # Set by the integration that created it (integrations.inbound), never typed.
    source = models.CharField(
        max_length=12, choices=IncidentSource.choices, default=IncidentSource.MANUAL, editable=False
    )
    external_id = models.CharField(max_length=200, blank=True, editable=False, help_text="The source's id for it.")
    integration = models.ForeignKey(
        "integrations.Integration", null=True, blank=True, on_delete=models.PROTECT, editable=False, related_name="+"
    )
    # Named by its label, as `integration` is: releases stand beside incidents in the layers, not below them.
    release = models.ForeignKey(
        "releases.Release",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="incidents",
        error_messages=unknown("release"),
        help_text="The release it is blamed on: by default, at creation, the service's production release current at "
        "its start (incidents.releases); editable. A linked release is a failed deployment (docs/metrics.md).",
    )

    # Whether whoever creates it chose its release (null included); if not, it defaults (incidents.releases).
    release_given = False

    class Meta:
        ordering = ["-started_at", "id"]
        constraints = [
            one_of("severity", Severity),
            one_of("status", IncidentStatus),
            one_of("source", IncidentSource),
            # One open incident per thing the source reports (a PagerDuty incident, an Alertmanager alert).
            models.UniqueConstraint(
                fields=["integration", "external_id"],
                condition=~Q(external_id="") & OPEN,
                name="%(app_label)s_%(class)s_open_once_per_source",
                violation_error_message="The source already has an open incident with this external id.",
            ),
            set_exactly_when(
                "resolved_at",
                Q(status="resolved"),
                "resolved_iff_resolved_at",
                "A resolved incident has a resolution time; an open one has none.",
            ),
            models.CheckConstraint(
                condition=~Q(status="acknowledged") | Q(acknowledged_at__isnull=False),
                name="%(app_label)s_%(class)s_acknowledged_has_time",
                violation_error_message="An acknowledged incident has an acknowledgement time.",
            ),
        ]
        indexes = [
            # Open incidents per service (the services index counts them by severity).
            models.Index(fields=["service", "severity"], condition=OPEN, name="incident_open_idx"),
            models.Index(fields=["service", "-started_at"], name="incident_service_idx"),
            models.Index(fields=["-started_at", "-id"], name="incident_order_idx"),  # the incident list's order
        ]

    def _starts_ahead(self) -> bool:
        started = self.started_at
        if not isinstance(started, datetime) or timezone.is_naive(started):
            return False  # refused for that already
        return started > timezone.now() + STARTS_AHEAD_AT_MOST

    def clean(self):
        super().clean()
        errors: dict[str, list[str]] = {}
        self.started_at = require_aware(self.started_at, "started_at", errors)
        if self._state.adding and self._starts_ahead():
            ahead = int(STARTS_AHEAD_AT_MOST.total_seconds() // 60)
            errors.setdefault("started_at", []).append(f"may be at most {ahead} minutes ahead of the server's clock.")
        service = Service.objects.filter(pk=self.service_id).first()
        if self._state.adding and service and service.is_archived and not self.restoring:
            errors["service"] = [f"service {service.pk!r} is archived."]
        if service:
            self._clean_release(errors)
        if errors:
            raise ValidationError(errors)

    def _clean_release(self, errors):
        from incidents import releases  # the default and the rule about which release (it imports this module)

        defaulted = self._state.adding and not self.restoring and not self.release_given and self.release_id is None
        if defaulted and "started_at" not in errors:
            self.release_id = releases.current_in_production(self.service_id, self.started_at)
        elif self.release_id is not None and self.release_id != self.stored("release_id"):
            problem = releases.problem(self.release_id, self.service_id)
            if problem:
                errors["release"] = [problem]
