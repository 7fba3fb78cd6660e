"""The deployment-state read model: what runs where, what burns, and where each service's trail ends.

Derived from the domain's tables and kept by their changes, in each change's own transaction
(`overview.deployment_state`); `manage.py rebuild_read_models` recomputes it, `check_read_models`
compares it with a recomputation. Rows are not history: they are rewritten freely.
"""

from django.db import models

from audit.models import AuditEvent
from incidents.models import SEVERITIES, Severity
from releases.models import Release
from services.models import Environment, Service


def _release(help_text: str) -> models.ForeignKey:
    # Releases are never deleted; the pointer needs no cascade.
    return models.ForeignKey(
        Release, on_delete=models.DO_NOTHING, null=True, blank=True, related_name="+", help_text=help_text
    )


class DeploymentState(models.Model):
    """One linked (service, environment): its current release, its latest, the one promoting now, and when
    each became so."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="deployments")
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="deployments")
    current = _release("The Active release activated last: what runs there.")
    current_since = models.DateTimeField(null=True, blank=True, help_text="The current release's activation.")
    latest = _release("The release created last, in any status.")
    latest_since = models.DateTimeField(null=True, blank=True, help_text="The latest release's creation.")
    # What the services index shows of the two, copied here so that a page reads no release row: 300 lookups
    # by key into the releases table were most of an uncached page's query.
    current_version = models.CharField(max_length=64, blank=True, default="")
    current_sha = models.CharField(max_length=40, blank=True, default="")
    latest_version = models.CharField(max_length=64, blank=True, default="")
    latest_sha = models.CharField(max_length=40, blank=True, default="")
    latest_status = models.CharField(max_length=16, blank=True, default="")
    promoting = _release("The release rolling out now, if any.")
    promoting_since = models.DateTimeField(null=True, blank=True, help_text="When its rollout's run started.")

    RECOMPUTED_ON_RESTORE = True  # loaddata skips rows of it in a dump (controlplane loaddata)

    class Meta:
        verbose_name = "deployment state"
        constraints = [
            models.UniqueConstraint(fields=["service", "environment"], name="%(app_label)s_%(class)s_one_per_link")
        ]

    def __str__(self) -> str:
        return f"{self.service_id} in {self.environment_id}"


class ServiceState(models.Model):
    """One service: its open incidents by severity and the highest, and its latest audit event."""

    service = models.OneToOneField(Service, on_delete=models.CASCADE, primary_key=True, related_name="state")
    open_low = models.PositiveIntegerField(default=0)
    open_medium = models.PositiveIntegerField(default=0)
    open_high = models.PositiveIntegerField(default=0)
    open_critical = models.PositiveIntegerField(default=0)
    highest_open_severity = models.CharField(max_length=8, choices=Severity.choices, blank=True, default="")
    # Audit events are append-only: the pointer needs no cascade.
    audit_tail = models.ForeignKey(
        AuditEvent, on_delete=models.DO_NOTHING, null=True, blank=True, related_name="+", db_column="audit_tail_seq"
    )

    RECOMPUTED_ON_RESTORE = True

    class Meta:
        verbose_name = "service state"

    def __str__(self) -> str:
        return self.service_id

    @property
    def open_total(self) -> int:
        return sum(getattr(self, f"open_{severity}") for severity in SEVERITIES)
