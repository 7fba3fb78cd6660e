from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.generics import GenericAPIView, get_object_or_404
from rest_framework.response import Response

from controlplane.api.base import (
    BlankAsNullField,
    Choice,
    DomainViewSet,
    EntitySerializer,
    StrictQuery,
    StrictSerializer,
    String,
    Timestamp,
    named_by_body,
)
from controlplane.api.schema import GATED_CONFLICT
from releases import approvals, drift, rollback, timeline, workflows
from releases.filtersets import ReleaseFilterSet, WorkflowRunFilterSet
from releases.models import Decision, Release, ReleaseStatus, RunKind, RunLogEntry, RunState, WorkflowRun
from services.models import Environment, Service


class ReleaseSerializer(EntitySerializer):
    serviceId = String(source="service_id")
    sha = String(help_text="7-40 lower-case hex characters; immutable.")
    version = String(help_text="Changeable while the release is Draft.")
    envId = String(source="environment_id")
    status = Choice(choices=ReleaseStatus.choices, read_only=True)
    createdAt = Timestamp(source="created_at", read_only=True)
    committedAt = Timestamp(
        source="committed_at",
        required=False,
        allow_null=True,
        help_text="When its commit was made (RFC 3339), e.g. `git log -1 --format=%cI`: where its lead time for "
        "changes starts (docs/metrics.md). Optional, set on create (not after the release's creation); immutable. "
        "A promotion or a rollback copies it.",
    )
    activatedAt = Timestamp(source="activated_at", read_only=True, allow_null=True)
    isCurrent = serializers.BooleanField(
        source="is_current",
        read_only=True,
        help_text="Runs in its environment now: the Active release of its service there activated last.",
    )
    supersededBy = String(
        source="superseded_by_id",
        read_only=True,
        allow_null=True,
        help_text="The release activated next in the same service and environment, which replaced this one.",
    )
    supersededAt = Timestamp(source="superseded_at", read_only=True, allow_null=True)
    rollbackOf = String(
        source="rollback_of_id",
        read_only=True,
        allow_null=True,
        help_text="A rollback: the release it replaces (current when the rollback was asked for); null otherwise.",
    )
    restores = String(
        source="restores_id",
        read_only=True,
        allow_null=True,
        help_text="A rollback: the earlier release whose sha and version it brings back; null otherwise.",
    )

    read_only_reasons = {
        "status": "is read-only: it changes only by deploy and promote.",
        **dict.fromkeys(
            ("isCurrent", "supersededBy", "supersededAt"),
            "is read-only: it changes only when a release of the service activates in the environment.",
        ),
        **dict.fromkeys(("rollbackOf", "restores"), "is read-only: a rollback sets it (POST …/rollback/)."),
    }

    class Meta:
        model = Release


class RunLogEntrySerializer(serializers.Serializer):
    ts = Timestamp()
    level = Choice(choices=RunLogEntry.Level.choices)
    message = String()
    meta = serializers.DictField()


class RunApprovalSerializer(serializers.Serializer):
    actor = String(help_text="Who decided: never the run's own actor.")
    decision = Choice(choices=Decision.choices)
    comment = String(help_text="Empty when none was given (a rejection always has one).")
    at = Timestamp()


class WorkflowRunSerializer(serializers.Serializer):
    id = String()
    kind = Choice(choices=RunKind.choices)
    releaseId = String(source="release_id")
    sourceReleaseId = String(source="source_release_id", required=False, help_text="Promote runs only.")
    actor = String()
    mode = Choice(
        choices=["live", "simulated"],
        help_text="live: the environment's connection deployed for real (the log says which adapter); simulated: "
        "no platform was touched.",
    )
    state = Choice(choices=RunState.choices)
    startedAt = Timestamp(source="started_at")
    finishedAt = Timestamp(source="finished_at", required=False, help_text="Absent while running or waiting.")
    approvalsRequired = serializers.IntegerField(
        source="approvals_required",
        help_text="Distinct approvals it needs before it starts (the environment's policy:approval:<n>); 0: none.",
    )
    approvals = RunApprovalSerializer(many=True, help_text="Each principal's decision, oldest first.")
    waitingReason = String(
        source="waiting_reason",
        allow_null=True,
        help_text="Approved, but a policy keeps it from starting yet: why (the worker starts it once it may). "
        "Null otherwise.",
    )
    logs = RunLogEntrySerializer(many=True)

    def to_representation(self, run):
        data = super().to_representation(run)
        # The RFC: an unfinished run omits finishedAt; a Deploy run has no source release.
        for key in ("finishedAt", "sourceReleaseId"):
            if data[key] is None:
                del data[key]
        data["waitingReason"] = data["waitingReason"] or None
        return data


RUNS = WorkflowRun.objects.prefetch_related(timeline.LOGS, timeline.APPROVALS)


class BreakGlassSerializer(StrictSerializer):
    reason = String(help_text="Why the policies are overridden: 10-500 characters, kept in the audit trail.")


BREAK_GLASS_HELP = (
    "Override the policies (windows, freezes, incident gates, promotion order; never roles), for the roles in "
    "CONTROLPLANE_BREAK_GLASS_ROLES. Audited as policy.override."
)


class DeploySerializer(StrictSerializer):
    breakGlass = BreakGlassSerializer(required=False, help_text=BREAK_GLASS_HELP)


class PromoteSerializer(StrictSerializer):
    envId = String(help_text="The environment to promote to.")
    breakGlass = BreakGlassSerializer(required=False, help_text=BREAK_GLASS_HELP)


class RollbackSerializer(StrictSerializer):
    envId = String(help_text="The environment to roll back in.")
    reason = String(help_text="Why: 10-500 characters, kept in the audit trail (release.rollback).")
    toReleaseId = String(
        required=False,
        help_text="The earlier Active release of the service there to restore; by default the one the current "
        "release superseded.",
    )
    breakGlass = BreakGlassSerializer(required=False, help_text=BREAK_GLASS_HELP)


class ApproveSerializer(StrictSerializer):
    comment = String(required=False, allow_blank=True, max_length=approvals.COMMENT_LIMIT)


class RejectSerializer(StrictSerializer):
    comment = String(max_length=approvals.COMMENT_LIMIT, help_text="Why it is rejected: required.")


GATED = {
    202: WorkflowRunSerializer,
    409: OpenApiResponse(GATED_CONFLICT, description="Refused: the release's state, or a policy (with its decision)."),
}


def accepted(run: WorkflowRun) -> Response:
    """202: the run has started (or awaits approval); follow it at Location (and its log at …/logs/stream)."""
    body = WorkflowRunSerializer(run).data
    return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": f"/api/workflow-runs/{run.id}/"})


class ReleaseViewSet(mixins.CreateModelMixin, mixins.UpdateModelMixin, DomainViewSet):
    queryset = Release.objects.all()
    serializer_class = ReleaseSerializer
    filterset_class = ReleaseFilterSet
    ordering = ("-created_at", "-id")
    action_permissions = {
        "create": "release.create",
        "update": "release.update",
        "partial_update": "release.update",
        "deploy": "release.deploy",
        "promote": "release.promote",
    }
    action_bodies = {"deploy": DeploySerializer, "promote": PromoteSerializer}

    @extend_schema(request=DeploySerializer, responses=GATED)
    @action(detail=True, methods=["post"])
    def deploy(self, request, pk=None):
        """Roll a Draft release out to its environment: Draft → Promoting, with a Deploy run (202), once the
        policies allow it (409 with the decision otherwise). The body may be empty."""
        return accepted(workflows.deploy(self.get_object(), break_glass=self.body.get("breakGlass")))

    @extend_schema(request=PromoteSerializer, responses=GATED)
    @action(detail=True, methods=["post"])
    def promote(self, request, pk=None):
        """Take an Active release to another environment: a new release there, with a Promote run (202), once
        the policies allow it (409 with the decision otherwise)."""
        release = self.get_object()
        return accepted(workflows.promote(release, self.body["envId"], break_glass=self.body.get("breakGlass")))

    @extend_schema(responses=WorkflowRunSerializer(many=True))
    @action(detail=True)
    def timeline(self, request, pk=None):
        """The release's workflow runs, its own and the promotions made from it, in time order."""
        found = timeline.runs(self.get_object(), with_logs=True).prefetch_related(timeline.APPROVALS)
        return Response(WorkflowRunSerializer(found, many=True).data)


DECIDED = {
    200: WorkflowRunSerializer,
    403: OpenApiResponse(
        {"$ref": "#/components/schemas/Error"},
        description="Your role does not allow this, or the rule does not: no self-approval (admins included); "
        "only the run's actor or an admin cancels it.",
    ),
    409: OpenApiResponse(
        {"$ref": "#/components/schemas/Error"},
        description="The run is not awaiting approval (any more), or you have decided on it already.",
    ),
}


class WorkflowRunViewSet(DomainViewSet):
    queryset = RUNS
    serializer_class = WorkflowRunSerializer
    filterset_class = WorkflowRunFilterSet
    ordering = ("-started_at", "-id")
    action_permissions = {"approve": "run.approve", "reject": "run.reject", "cancel": "run.cancel"}
    action_bodies = {"approve": ApproveSerializer, "reject": RejectSerializer}

    def decided(self, run: WorkflowRun) -> Response:
        return Response(WorkflowRunSerializer(self.get_queryset().get(pk=run.pk)).data)

    @extend_schema(request=ApproveSerializer, responses=DECIDED)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        """Approve a run awaiting approval (the body may be empty). Each principal counts once, never the run's
        actor; the n-th distinct approval starts it (Running, its release Promoting), or, while a policy keeps it
        from starting, leaves it approved and waiting (`waitingReason`) for the worker to start."""
        return self.decided(approvals.approve(self.get_object(), comment=self.body.get("comment", "")))

    @extend_schema(request=RejectSerializer, responses=DECIDED)
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        """Reject a run awaiting approval, saying why: it ends Rejected, and its release stays Draft."""
        return self.decided(approvals.reject(self.get_object(), self.body["comment"]))

    @extend_schema(request=None, responses=DECIDED)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel a run awaiting approval: its actor or an admin. It ends Cancelled; its release stays Draft."""
        return self.decided(approvals.cancel(self.get_object()))


class ServiceRollbackView(StrictQuery, GenericAPIView):
    """`POST /api/services/{id}/rollback/`: under services in the URL, here in the code (services sits below
    releases in the layers, so its viewset cannot import this)."""

    queryset = Service.objects.all()
    serializer_class = ReleaseSerializer  # a model rule on the new release is named as releases name it (envId)
    action_permissions = {"POST": "rollback"}
    http_method_names = ["post", "options"]

    def handle_exception(self, exc):
        return super().handle_exception(named_by_body(exc, RollbackSerializer))

    @extend_schema(operation_id="services_rollback_create", request=RollbackSerializer, responses=GATED)
    def post(self, request, id):
        """Put an earlier release of the service back in an environment: a new release (`rollbackOf` the current
        one, `restores` the earlier one: by default the one the current one superseded) with a Rollback run
        (202), once the policies allow it (the shipped ones let rollbacks through windows, freezes and incident
        gates). 409 when there is nothing to roll back to, or `toReleaseId` is not an earlier Active release of
        the service there."""
        body = RollbackSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        service = get_object_or_404(Service, pk=id)
        data = body.validated_data
        run = rollback.rollback(
            service, data["envId"], data["reason"], data.get("toReleaseId"), break_glass=data.get("breakGlass")
        )
        return accepted(run)


class ObservationSerializer(serializers.Serializer):
    serviceId = String(source="service_id")
    adapter = String()
    currentReleaseId = String(source="release_id", allow_null=True, help_text="null: no current release there.")
    expected = BlankAsNullField(help_text="The current release's image (repo:sha); null: no current release.")
    running = BlankAsNullField(help_text="The image that runs on the platform; null: nothing runs.")
    drifted = serializers.BooleanField()
    error = BlankAsNullField(help_text="Why the platform could not be asked (drifted is then the last verdict).")
    checkedAt = Timestamp(source="checked_at")


class DriftSerializer(serializers.Serializer):
    envId = String(source="environment.pk")
    connection = BlankAsNullField(source="environment.connection")
    mode = Choice(choices=["live", "simulated"], source="environment.mode")
    checkedAt = Timestamp(source="checked_at", allow_null=True, help_text="The last check; null: never checked.")
    drifted = ObservationSerializer(many=True, help_text="Services whose target runs other than the current release.")
    services = ObservationSerializer(many=True, source="observations", help_text="Every service checked.")


class EnvironmentDriftView(StrictQuery, GenericAPIView):
    """`/api/environments/{id}/drift/`: under environments in the URL, here in the code (services sits below
    releases in the layers). GET: what the last check saw; POST: ask the platform now (releases/drift.py)."""

    queryset = Environment.objects.all()
    serializer_class = DriftSerializer
    action_permissions = {"POST": "drift.check"}
    http_method_names = ["get", "post", "options"]

    @extend_schema(operation_id="environments_drift_retrieve", responses=DriftSerializer)
    def get(self, request, id):
        """What the last drift check saw: the services whose platform runs other than their current release
        (`drifted`), and every service checked. Asks no platform."""
        return Response(DriftSerializer(drift.report(get_object_or_404(Environment, pk=id))).data)

    @extend_schema(operation_id="environments_drift_check", request=None, responses=DriftSerializer)
    def post(self, request, id):
        """Ask the platform now what runs for each service of the environment (deployer). 409 where the
        environment names no connection: its adapters simulate, so nothing runs there to compare."""
        return Response(DriftSerializer(drift.check(get_object_or_404(Environment, pk=id))).data)
