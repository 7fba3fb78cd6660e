from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from controlplane.api.base import Choice, DomainViewSet, EntitySerializer, StrictSerializer, String, Timestamp
from controlplane.api.schema import GATED_CONFLICT
from releases import timeline, workflows
from releases.filtersets import ReleaseFilterSet, WorkflowRunFilterSet
from releases.models import Release, ReleaseStatus, RunKind, RunLogEntry, RunState, WorkflowRun


class ReleaseSerializer(EntitySerializer):
    serviceId = String(source="service_id")
    sha = String(help_text="7-40 lower-case hex characters; immutable.")
    version = String(help_text="Changeable while the release is Draft.")
    envId = String(source="environment_id")
    status = Choice(choices=ReleaseStatus.choices, read_only=True)
    createdAt = Timestamp(source="created_at", read_only=True)
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

    read_only_reasons = {
        "status": "is read-only: it changes only by deploy and promote.",
        **dict.fromkeys(
            ("isCurrent", "supersededBy", "supersededAt"),
            "is read-only: it changes only when a release of the service activates in the environment.",
        ),
    }

    class Meta:
        model = Release


class RunLogEntrySerializer(serializers.Serializer):
    ts = Timestamp()
    level = Choice(choices=RunLogEntry.Level.choices)
    message = String()
    meta = serializers.DictField()


class WorkflowRunSerializer(serializers.Serializer):
    id = String()
    kind = Choice(choices=RunKind.choices)
    releaseId = String(source="release_id")
    sourceReleaseId = String(source="source_release_id", required=False, help_text="Promote runs only.")
    actor = String()
    state = Choice(choices=RunState.choices)
    startedAt = Timestamp(source="started_at")
    finishedAt = Timestamp(source="finished_at", required=False, help_text="Absent while running.")
    logs = RunLogEntrySerializer(many=True)

    def to_representation(self, run):
        data = super().to_representation(run)
        # The RFC: an unfinished run omits finishedAt; a Deploy run has no source release.
        for key in ("finishedAt", "sourceReleaseId"):
            if data[key] is None:
                del data[key]
        return data


RUNS = WorkflowRun.objects.prefetch_related(timeline.LOGS)


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


GATED = {
    202: WorkflowRunSerializer,
    409: OpenApiResponse(GATED_CONFLICT, description="Refused: the release's state, or a policy (with its decision)."),
}


def accepted(run: WorkflowRun) -> Response:
    """202: the run has started; follow it at Location (and its log at …/logs/stream)."""
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
        return Response(WorkflowRunSerializer(timeline.runs(self.get_object(), with_logs=True), many=True).data)


class WorkflowRunViewSet(DomainViewSet):
    queryset = RUNS
    serializer_class = WorkflowRunSerializer
    filterset_class = WorkflowRunFilterSet
    ordering = ("-started_at", "-id")
