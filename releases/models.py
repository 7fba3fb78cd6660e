import re
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from controlplane.models import DomainModel, Entity, StatusMachine, one_of, require_aware, set_exactly_when, unknown
from controlplane.redaction import redact
from services.models import Environment, Service

SHA = re.compile(r"^[0-9a-f]{7,40}$")
# How far after a release's creation its commit may be dated: a committer's clock may run a little fast.
COMMITTED_AHEAD_AT_MOST = timedelta(minutes=5)


class LogLevel(models.TextChoices):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class RunState(models.TextChoices):
    AWAITING_APPROVAL = "AwaitingApproval"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    REJECTED = "Rejected"
    EXPIRED = "Expired"
    CANCELLED = "Cancelled"


# A run that has ended, one way or another: it has a finish time and changes no more.
FINISHED_STATES = (RunState.SUCCEEDED, RunState.FAILED, RunState.REJECTED, RunState.EXPIRED, RunState.CANCELLED)
# A run that holds its (service, environment): at most one at a time there.
ACTIVE_STATES = (RunState.AWAITING_APPROVAL, RunState.RUNNING)


class RunKind(models.TextChoices):
    DEPLOY = "Deploy"
    PROMOTE = "Promote"
    ROLLBACK = "Rollback"


class Decision(models.TextChoices):
    APPROVE = "approve"
    REJECT = "reject"


class ReleaseStatus(models.TextChoices):
    DRAFT = "Draft"
    PROMOTING = "Promoting"
    ACTIVE = "Active"
    FAILED = "Failed"


class Release(StatusMachine, Entity):
    ID_PREFIX = "rel-"
    REFUSES_SECRETS = True  # typed by users: a secret in a field is refused, not stored

    Status = ReleaseStatus

    TRANSITIONS = {
        Status.DRAFT: (Status.PROMOTING,),
        Status.PROMOTING: (Status.ACTIVE, Status.FAILED),
        Status.ACTIVE: (),
        Status.FAILED: (),
    }
    MOVED_BY = "deploy and promote"
    # Which release runs in its environment follows from activations (`lifecycle.activate`), never an edit.
    SUCCESSION_FIELDS = ("is_current", "superseded_by", "superseded_at")
    MOVED_FIELDS = ("activated_at", *SUCCESSION_FIELDS)
    DERIVED_FIELDS = SUCCESSION_FIELDS
    IMMUTABLE_FIELDS = ("service", "environment", "sha", "created_at", "committed_at")

    service = models.ForeignKey(
        Service, on_delete=models.PROTECT, related_name="releases", error_messages=unknown("service")
    )
    environment = models.ForeignKey(
        Environment, on_delete=models.PROTECT, related_name="releases", error_messages=unknown("environment")
    )
    sha = models.CharField(max_length=40, help_text="7-40 lower-case hex characters; immutable.")
    version = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    committed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When its commit was made (optional; set on create, immutable): where its lead time for changes "
        "starts (docs/metrics.md).",
    )
    activated_at = models.DateTimeField(null=True, blank=True, editable=False)
    is_current = models.BooleanField(
        default=False,
        editable=False,
        help_text="Runs in its environment now: the Active release of its service there activated last.",
    )
    rollback_of = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
        help_text="A rollback: the release it replaces (current when the rollback was asked for).",
    )
    restores = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
        help_text="A rollback: the earlier release whose sha and version it brings back.",
    )
    superseded_by = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
        help_text="The release of the same service activated next in the same environment.",
    )
    superseded_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When the release that superseded it was activated."
    )

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [
            one_of("status", ReleaseStatus),
            set_exactly_when(
                "activated_at",
                Q(status="Active"),
                "activated_iff_active",
                "An Active release has an activation time; no other release has one.",
            ),
            models.UniqueConstraint(
                fields=["service", "environment"],
                condition=Q(status="Promoting"),
                name="%(app_label)s_%(class)s_one_promoting",
                violation_error_message="Another release of this service is already promoting to this environment.",
            ),
            models.UniqueConstraint(
                fields=["service", "environment"],
                condition=Q(is_current=True),
                name="%(app_label)s_%(class)s_one_current",
                violation_error_message="Another release of this service is current in this environment.",
            ),
            models.CheckConstraint(
                condition=Q(status="Active") | Q(is_current=False, superseded_by__isnull=True),
                name="%(app_label)s_%(class)s_succession_active_only",
                violation_error_message="Only an Active release is current or superseded.",
            ),
            models.CheckConstraint(
                condition=Q(superseded_by__isnull=True, superseded_at__isnull=True)
                | Q(superseded_by__isnull=False, superseded_at__isnull=False, is_current=False),
                name="%(app_label)s_%(class)s_superseded_whole",
                violation_error_message="A superseded release names what superseded it and when, and is not current.",
            ),
        ]
        indexes = [
            # Latest release per (service, environment), and the current (latest activated) one.
            models.Index(fields=["service", "environment", "-created_at", "-id"], name="release_latest_idx"),
            models.Index(
                fields=["service", "environment", "status", "-activated_at", "-id"], name="release_current_idx"
            ),
            # The release list's order, whole and per service: a page reads its rows, not every release sorted.
            models.Index(fields=["-created_at", "-id"], name="release_order_idx"),
            models.Index(fields=["service", "-created_at", "-id"], name="release_service_order_idx"),
            # A change's first release (the lead time's start, overview.dora): a service's releases of one sha.
            models.Index(fields=["service", "sha", "created_at"], name="release_sha_idx"),
        ]

    @property
    def deployable(self) -> bool:
        """A deploy is its rollout's start (→ Promoting), so only a release that can move there (a Draft)."""
        return self.Status.PROMOTING in self.allowed_moves

    def promotion_refusal(self) -> str | None:
        """A promotion copies an Active release into another environment: why this one cannot be, or None."""
        if self.status != self.Status.ACTIVE:
            return f"release {self.pk} is {self.status}: only an Active release can be promoted."
        return None

    @property
    def promotable(self) -> bool:
        return self.promotion_refusal() is None

    def clean(self):
        super().clean()
        errors: dict[str, list[str]] = {}
        if self.sha and not SHA.match(self.sha):
            errors["sha"] = ["must be 7-40 lower-case hexadecimal characters."]
        if self.version and not self.version.strip():
            errors["version"] = ["must not be blank."]
        self.activated_at = require_aware(self.activated_at, "activated_at", errors)
        self.committed_at = require_aware(self.committed_at, "committed_at", errors)
        if self._state.adding and self.committed_at and not errors.get("committed_at"):
            created = self.created_at or timezone.now()
            if self.committed_at > created + COMMITTED_AHEAD_AT_MOST:
                ahead = int(COMMITTED_AHEAD_AT_MOST.total_seconds() // 60)
                errors["committed_at"] = [
                    f"must not be after the release's creation (a commit is made before it is released; "
                    f"{ahead} minutes are allowed for a committer's clock running fast)."
                ]
        if self._state.adding:
            self._clean_new(errors)
        else:
            self._clean_change(errors)
        if errors:
            raise ValidationError(errors)

    def _clean_new(self, errors):
        service = Service.objects.filter(pk=self.service_id).first()
        environment = Environment.objects.filter(pk=self.environment_id).first()
        # A restore brings history as it was: a release may predate its service's archiving.
        if service and service.is_archived and not self.restoring:
            errors["service"] = [f"service {service.pk!r} is archived."]
        if environment and environment.is_archived and not self.restoring:
            errors["environment"] = [f"environment {environment.pk!r} is archived."]
        if service and environment and not service.environments.filter(pk=environment.pk).exists():
            linked = ", ".join(service.environments.values_list("pk", flat=True)) or "none"
            errors.setdefault("environment", []).append(
                f"environment {environment.pk!r} is not linked to service {service.pk!r} (linked: {linked})."
            )

    def _clean_change(self, errors):
        before = self.stored("status")
        if self.version != self.stored("version") and before != self.Status.DRAFT:
            errors["version"] = [f"can change only while the release is Draft (it is {before})."]


class WorkflowRun(StatusMachine, Entity):
    """A deploy or promotion of one release, executed by the worker. Created Running with its task on the
    queue; a worker claims it (compare-and-swap), stamps a heartbeat while it runs it, and ends it with its
    release (`releases.runs`)."""

    ID_PREFIX = "run-"

    Kind = RunKind

    State = RunState

    STATUS_FIELD = "state"
    TRANSITIONS = {
        State.AWAITING_APPROVAL: (State.RUNNING, State.REJECTED, State.EXPIRED, State.CANCELLED),
        State.RUNNING: (State.SUCCEEDED, State.FAILED),
        State.SUCCEEDED: (),
        State.FAILED: (),
        State.REJECTED: (),
        State.EXPIRED: (),
        State.CANCELLED: (),
    }
    INITIAL_STATES = (State.AWAITING_APPROVAL, State.RUNNING)
    MOVED_BY = "the workflow engine and approvals, with its release"
    IMMUTABLE_FIELDS = ("kind", "release", "source_release", "actor", "started_at")
    # Kept by the engine with compare-and-swaps, never by editing the run; only the task is named on create.
    MOVED_FIELDS = ("finished_at", "task_id", "claimed_at", "claimed_by", "heartbeat_at", "waiting_reason")
    SET_ON_CREATE = ("task_id",)

    kind = models.CharField(max_length=16, choices=Kind.choices)
    release = models.ForeignKey(
        Release, on_delete=models.PROTECT, related_name="runs", error_messages=unknown("release")
    )
    source_release = models.ForeignKey(
        Release,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="promotion_runs",
        help_text="For a Promote run: the Active release it was promoted from.",
    )
    actor = models.CharField(max_length=255, help_text="The authenticated principal that started the run.")
    mode = models.CharField(
        max_length=9,
        choices=[("live", "live"), ("simulated", "simulated")],
        default="simulated",
        editable=False,
        help_text="live: its environment named a connection when it started (an adapter deployed for real; the log "
        "says which); simulated: every adapter simulated.",
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.RUNNING, editable=False)
    approvals_required = models.PositiveSmallIntegerField(
        default=0, help_text="Distinct approvals it needs before it starts (policy:approval:<n>); 0: none."
    )
    waiting_reason = models.TextField(
        blank=True, editable=False, help_text="Approved, but a policy keeps it from starting yet: why."
    )
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True, editable=False)
    task_id = models.CharField(
        max_length=64, blank=True, editable=False, help_text="The queue's task that executes the run."
    )
    claimed_at = models.DateTimeField(null=True, blank=True, editable=False)
    claimed_by = models.CharField(
        max_length=255, blank=True, editable=False, help_text="The worker executing the run: host:pid."
    )
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="Last sign of life from the worker executing the run."
    )

    class Meta:
        ordering = ["-started_at", "id"]
        constraints = [
            one_of("kind", RunKind),
            one_of("state", RunState),
            models.CheckConstraint(
                condition=Q(finished_at__isnull=True) | Q(finished_at__gte=F("started_at")),
                name="%(app_label)s_%(class)s_finished_after_started",
                violation_error_message="finishedAt must not be before startedAt.",
            ),
            set_exactly_when(
                "finished_at",
                Q(state__in=FINISHED_STATES),
                "finished_iff_done",
                "A running or waiting run has no finish time; a finished run has one.",
            ),
            models.CheckConstraint(
                condition=Q(kind="Promote", source_release__isnull=False)
                | Q(kind__in=["Deploy", "Rollback"], source_release__isnull=True),
                name="%(app_label)s_%(class)s_source_iff_promote",
                violation_error_message="A Promote run names its source release; a Deploy run does not.",
            ),
            models.CheckConstraint(
                condition=Q(claimed_at__isnull=True, claimed_by="", heartbeat_at__isnull=True)
                | (Q(claimed_at__isnull=False, heartbeat_at__isnull=False) & ~Q(claimed_by="")),
                name="%(app_label)s_%(class)s_claim_whole",
                violation_error_message="A claimed run names its worker and has a heartbeat; an unclaimed one neither.",
            ),
        ]
        indexes = [
            models.Index(fields=["release", "started_at"], name="run_release_idx"),
            models.Index(fields=["source_release", "started_at"], name="run_source_idx"),
            models.Index(fields=["state", "started_at"], name="run_state_idx"),
            models.Index(fields=["-started_at", "-id"], name="run_order_idx"),  # the run list's order
            models.Index(fields=["finished_at"], name="run_finished_idx"),  # DORA's window (overview.dora)
        ]

    def clean(self):
        super().clean()
        errors: dict[str, list[str]] = {}
        self.started_at = require_aware(self.started_at, "started_at", errors)
        self.finished_at = require_aware(self.finished_at, "finished_at", errors)
        self.claimed_at = require_aware(self.claimed_at, "claimed_at", errors)
        self.heartbeat_at = require_aware(self.heartbeat_at, "heartbeat_at", errors)
        if not self.actor.strip():
            errors["actor"] = ["must name the authenticated principal."]
        ended = self.stored("state") in FINISHED_STATES
        if self.restoring and ended and self.finished_at != self.stored("finished_at"):
            # a restore may not rewrite how it ended
            errors["finished_at"] = [f"run {self.pk} has finished ({self.stored('state')}); it cannot change."]
        if self._state.adding and not self.restoring and self.release_id:
            self._clean_start(errors)
        if self._state.adding and self.kind == self.Kind.PROMOTE and self.source_release_id and self.release_id:
            self._clean_promotion_source(errors)
        if errors:
            raise ValidationError(errors)

    def _clean_start(self, errors):
        """A run is created Running together with its release's move to Promoting (`releases.workflows`), and
        is that rollout's only run: otherwise it could never end with its release. (A restore brings history
        as it was.)"""
        status = Release.objects.filter(pk=self.release_id).values_list("status", flat=True).first()
        if status is None:
            return  # an unknown release: the field's own error says so
        if self.state == self.State.AWAITING_APPROVAL:
            # Waiting for approvals: its release stays Draft, and nothing else waits or runs for it.
            if status != Release.Status.DRAFT:
                errors.setdefault("release", []).append(
                    f"release {self.release_id} is {status}: a run awaits approval only for a Draft release."
                )
            other = WorkflowRun.objects.filter(release_id=self.release_id, state__in=ACTIVE_STATES).first()
            if other:
                errors.setdefault("release", []).append(
                    f"release {self.release_id} already has run {other.pk} ({other.state})."
                )
            return
        if status != Release.Status.PROMOTING:
            errors.setdefault("release", []).append(
                f"release {self.release_id} is {status}: a run starts only with its release's rollout "
                f"(deploy or promote), while the release is {Release.Status.PROMOTING}."
            )
            return
        running = WorkflowRun.objects.filter(release_id=self.release_id, state=self.State.RUNNING)
        other = running.values_list("pk", flat=True).first()
        if other:
            errors.setdefault("release", []).append(
                f"release {self.release_id} is already being rolled out by run {other}; a rollout has one run."
            )

    def _clean_promotion_source(self, errors):
        source = Release.objects.filter(pk=self.source_release_id).first()
        target = Release.objects.filter(pk=self.release_id).first()
        if not source or not target:
            return
        if (source.service_id, source.sha) != (target.service_id, target.sha):
            errors["source_release"] = ["must be a release of the same service and sha as the promoted one."]
        elif source.environment_id == target.environment_id:
            errors["source_release"] = ["must be in another environment than the promoted release."]


class RunLogEntry(DomainModel):
    """One structured line of a workflow run's log: `{ts, level, message, meta}`."""

    APPEND_ONLY = True

    Level = LogLevel

    run = models.ForeignKey(WorkflowRun, on_delete=models.PROTECT, related_name="logs")
    ts = models.DateTimeField(default=timezone.now)
    level = models.CharField(max_length=8, choices=Level.choices, default=Level.INFO)
    message = models.TextField()
    meta = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["ts", "id"]
        verbose_name = "run log entry"
        verbose_name_plural = "run log entries"
        constraints = [
            one_of("level", LogLevel),
        ]
        indexes = [models.Index(fields=["run", "ts", "id"], name="runlog_run_idx")]

    def clean(self):
        super().clean()
        errors: dict[str, list[str]] = {}
        self.ts = require_aware(self.ts, "ts", errors)
        if not isinstance(self.meta, dict):
            errors["meta"] = ["must be a JSON object."]
        elif not self.restoring:
            self.meta, self.message = redact(self.meta), redact(self.message)
        if not self.message.strip():
            errors["message"] = ["must not be blank."]
        if not self.restoring:
            state = WorkflowRun.objects.filter(pk=self.run_id).values_list("state", flat=True).first()
            if state in FINISHED_STATES:
                errors["run"] = [f"run {self.run_id} has finished ({state}); its log is closed."]
        if errors:
            raise ValidationError(errors)

    def __str__(self) -> str:
        return f"{self.ts:%Y-%m-%dT%H:%M:%SZ} {self.level} {self.message[:60]}"


class RunApproval(DomainModel):
    """One principal's decision on a run awaiting approval: approve or reject, once per principal."""

    APPEND_ONLY = True

    Decision = Decision

    run = models.ForeignKey(WorkflowRun, on_delete=models.PROTECT, related_name="approvals")
    actor = models.CharField(max_length=255)
    decision = models.CharField(max_length=8, choices=Decision.choices)
    comment = models.TextField(blank=True, max_length=2000)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            one_of("decision", Decision),
            models.UniqueConstraint(fields=["run", "actor"], name="%(app_label)s_%(class)s_once_per_principal"),
        ]

    def clean(self):
        super().clean()
        errors: dict[str, list[str]] = {}
        self.at = require_aware(self.at, "at", errors)
        if not self.actor.strip():
            errors["actor"] = ["must name the authenticated principal."]
        if len(self.comment) > 2000:
            errors["comment"] = ["must be at most 2000 characters."]
        if errors:
            raise ValidationError(errors)


class Observation(models.Model):
    """What the last drift check saw run for a service in a connected environment through one live adapter
    (releases/drift.py): the image its current release would run (`expected`), and the one that runs (`running`;
    empty: nothing does). Not history: each check replaces it; a change of `drifted` is audited."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="observations")
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="observations")
    adapter = models.CharField(max_length=16)
    connection = models.CharField(max_length=63)
    release = models.ForeignKey(Release, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    expected = models.CharField(max_length=500, blank=True, help_text="repo:sha of the current release; empty: none.")
    running = models.CharField(max_length=500, blank=True, help_text="The image running there; empty: nothing runs.")
    drifted = models.BooleanField(default=False)
    error = models.TextField(blank=True, help_text="Why the platform could not be asked (then drifted is kept).")
    checked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["environment_id", "service_id", "adapter"]
        constraints = [
            models.UniqueConstraint(
                fields=["service", "environment", "adapter"], name="%(app_label)s_%(class)s_one_per_target"
            )
        ]
        indexes = [models.Index(fields=["environment", "drifted"], name="observation_drifted_idx")]

    def __str__(self) -> str:
        verdict = "drifted" if self.drifted else "in sync"
        return f"{self.service_id} in {self.environment_id} ({self.adapter}): {verdict}"
