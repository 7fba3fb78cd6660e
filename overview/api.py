"""The services index over REST: `GET /api/services/index/`, with the services list's filters and pages.
And what a deploy or a promotion will do, said before it happens (`overview.previews`): the CLI's
confirmation, worded as the dashboard's, `GET /api/releases/{id}/deploy-preview/` and `…/promote-preview/`.
And the DORA metrics (`overview.dora`, docs/metrics.md): `GET /api/metrics/dora/`, and `?drill=<metric>` for the
deployments behind a figure."""

from urllib.parse import urlencode

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import serializers
from rest_framework.generics import GenericAPIView, get_object_or_404
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.api.base import Choice, StrictQuery, StrictSerializer, String, stored_values
from controlplane.api.errors import api_exception
from controlplane.errors import Conflict
from controlplane.timestamps import parse_rfc3339
from incidents.models import Severity
from overview import dora, previews, services_index
from policies.api import DecisionSerializer
from releases.api import PromoteSerializer, ReleaseSerializer
from releases.models import Release, RunKind, RunState
from services.filtersets import ServiceFilterSet
from services.models import Service


class ServicesIndexView(StrictQuery, GenericAPIView):
    queryset = Service.objects.all()
    filterset_class = ServiceFilterSet
    ordering = ("name", "id")

    @extend_schema(operation_id="services_index", responses=services_index.ServiceIndexEntrySerializer(many=True))
    def get(self, request):
        """The services index: per environment the latest and current release, open incidents, audit tail."""

        def build():
            rows = stored_values(self, self.get_queryset(), services_index.SERVICE_FIELDS)
            return self.get_paginated_response(services_index.fragment(self.paginate_queryset(rows))).data

        body = services_index.cached(request.build_absolute_uri(), build)
        return HttpResponse(body, content_type="application/json")


class PreviewSerializer(serializers.Serializer):
    """What a deploy or a promotion will do (`overview.previews.Preview`); one the domain would refuse is a 409.
    One the policies refuse is a 200 whose `decision` says so (and `text` ends with the refusal's sentence)."""

    action = Choice(choices=["deploy", "promote"])
    releaseId = String(source="release.pk", help_text="The release deployed, or promoted from.")
    serviceId = String(source="release.service_id")
    version = String(source="release.version")
    sha = String(source="release.sha")
    envId = String(source="environment.pk", help_text="Where it goes.")
    replaces = String(allow_null=True, help_text="The release current there now; null when there is none.")
    openIncidents = serializers.DictField(
        source="open_incidents",
        child=serializers.IntegerField(),
        help_text="The service's open incidents by severity, lowest first; severities with none left out.",
    )
    highestSeverity = Choice(
        source="highest_severity", choices=Severity.choices, allow_null=True, help_text="Null when none is open."
    )
    policyRefs = serializers.ListField(source="policy_refs", child=String(), help_text="The environment's.")
    decision = DecisionSerializer(
        help_text="The policies' decision now, as the POST would meet it. A refusal here is no 409: break-glass "
        "may still override it (then the POST's `breakGlass`)."
    )
    text = String(help_text="All of it in one line, as the dashboard's confirmation says it.")

    def to_representation(self, preview):
        data = super().to_representation(preview)
        data["highestSeverity"] = data["highestSeverity"] or None  # the read model's "" when none is open
        return data


class _Preview(StrictQuery, APIView):
    """A read with the permission of the action it previews: whoever cannot deploy is told so before asking
    what a deploy would do (403 naming the role, as the POST answers). Its query is checked as every API
    view's (StrictQuery): a misspelt parameter would otherwise preview something other than what was meant."""

    http_method_names = ["get", "head"]
    previewed = ""  # "deploy" or "promote"
    blank = True  # an empty envId is refused as the POST's body refuses it, in the same words

    @property
    def where(self):
        return f"the {self.previewed} preview"

    @property
    def action_permissions(self):
        return dict.fromkeys(("GET", "HEAD"), f"release.{self.previewed}")

    def answer(self, preview: previews.Preview) -> Response:
        if preview.refusal:
            raise Conflict(preview.refusal)  # what the POST would answer: 409, and why
        return Response(PreviewSerializer(preview).data)


PREVIEW_RESPONSES = {
    200: PreviewSerializer,
    # The schema's hook documents a 409 for writes only; these reads answer one too.
    409: OpenApiResponse(
        {"$ref": "#/components/schemas/Error"}, description="The action would be refused now: `detail` says why."
    ),
}


class DeployPreviewView(_Preview):
    previewed = "deploy"

    @extend_schema(operation_id="releases_deploy_preview", responses=PREVIEW_RESPONSES)
    def get(self, request, id):
        """What `POST …/deploy/` would do now, or (409) why it would be refused. Writes nothing."""
        release = get_object_or_404(Release.objects.select_related("environment"), pk=id)
        return self.answer(previews.deploy_preview(release))


class PromotePreviewView(_Preview):
    previewed = "promote"
    takes = ("envId",)

    @extend_schema(
        operation_id="releases_promote_preview",
        parameters=[OpenApiParameter("envId", str, required=True, description="The environment to promote to.")],
        responses=PREVIEW_RESPONSES,
    )
    def get(self, request, id):
        """What `POST …/promote/` with this `envId` would do now, or why it would be refused: the same 400s
        and 409 in the same order (its body, the release, the environment, the release's status, the new
        release's rules). Writes nothing."""
        query = PromoteSerializer(data=request.query_params.dict())  # the POST's own body rules: envId required
        query.is_valid(raise_exception=True)
        release = get_object_or_404(Release, pk=id)
        try:
            preview = previews.promote_preview(release, query.validated_data["envId"])
        except DjangoValidationError as error:
            # Named in the release resource's fields (envId), as the POST names them.
            raise api_exception(error, ReleaseSerializer) from None
        return self.answer(preview)


# --- DORA metrics ---


def _time(value: str):
    try:
        return parse_rfc3339(value)
    except ValueError as exc:
        # A query string reads an unencoded "+" as a space ("…T09:00:00+02:00" comes as "…T09:00:00 02:00").
        hint = " In a query string, write + as %2B." if " " in value else ""
        raise serializers.ValidationError(f"{exc}{hint}") from None


class DoraQuery(StrictSerializer):
    """The DORA metrics' query: REST's parameters, GraphQL's arguments and the page's form, checked alike."""

    serviceId = String(required=False, help_text="One service; default: every service.")
    envId = String(required=False, help_text="One environment (production or not); default: every production one.")
    since = String(required=False, help_text="The window's start, RFC 3339 (inclusive); default: 30 days before until.")
    until = String(required=False, help_text="The window's end, RFC 3339 (exclusive); default: now.")
    drill = Choice(
        choices=dora.METRICS, required=False, help_text="The deployments behind this figure, rather than the figures."
    )

    def validate_since(self, value):
        return _time(value)

    def validate_until(self, value):
        return _time(value)


def measured(asked: dict) -> dora.Figures:
    """The figures of the window a checked DoraQuery asks for; an unknown service or environment, or an empty
    window, is a 400 naming the parameter."""
    try:
        window = dora.window(asked.get("serviceId"), asked.get("envId"), asked.get("since"), asked.get("until"))
    except DjangoValidationError as error:
        raise serializers.ValidationError(error.message_dict) from None
    return dora.measure(window)


def drill_link(figures: dora.Figures, metric: str, path: str = "/api/metrics/dora/") -> str:
    """Where the deployments behind `metric` are: the same window, fixed (since and until as answered)."""
    return f"{path}?{urlencode({**figures.window.query(), 'drill': metric})}"


def figures_json(figures: dora.Figures) -> dict:
    """The figures as REST answers them: each with the link to its deployments."""
    data = figures.as_json()
    for metric in dora.METRICS:
        data[metric] = {**data[metric], "drill": drill_link(figures, metric)}
    return data


def drill_json(figures: dora.Figures, metric: str) -> dict:
    found = figures.drill(metric)
    window = {k: v for k, v in figures.as_json().items() if k in ("serviceId", "envId", "envIds", "since", "until")}
    return {"metric": metric, **window, "count": len(found), "deployments": [d.as_json() for d in found]}


class DeploymentFrequencySerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Deployments: runs that made a release Active in the window.")
    perDay = serializers.FloatField(help_text="count over the window's days (4 decimals).")
    drill = String(help_text="The deployments behind it.")


class LeadTimeSourcesSerializer(serializers.Serializer):
    committedAt = serializers.IntegerField(help_text="Measured from the change's committedAt.")
    releaseCreatedAt = serializers.IntegerField(help_text="No committedAt: from the change's first release.")


class LeadTimeSerializer(serializers.Serializer):
    median = serializers.IntegerField(allow_null=True, help_text="Seconds; null: no change was deployed.")
    p90 = serializers.IntegerField(allow_null=True, help_text="Seconds, by nearest rank.")
    count = serializers.IntegerField(help_text="Deployments of changes (deploys and promotions; not rollbacks).")
    measuredFrom = LeadTimeSourcesSerializer(help_text="Where each lead time started.")
    drill = String()


class ChangeFailureRateSerializer(serializers.Serializer):
    failed = serializers.IntegerField(help_text="Failed deployments: run failed, rolled back, or an incident linked.")
    total = serializers.IntegerField(help_text="Deployments and failed attempts (failed runs).")
    rate = serializers.FloatField(allow_null=True, help_text="failed / total (4 decimals); null when total is 0.")
    drill = String(help_text="The failed deployments.")


class RecoveryTimeSerializer(serializers.Serializer):
    median = serializers.IntegerField(
        allow_null=True, help_text="Seconds from a failed deployment to the next good one of its service there."
    )
    count = serializers.IntegerField(help_text="Failed deployments of the window that have recovered.")
    unrecovered = serializers.IntegerField(help_text="Failed deployments not recovered yet (not in the median).")
    drill = String(help_text="The recovered failed deployments.")


class ReworkRateSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Rollbacks, and deployments made while a failure was unrecovered.")
    total = serializers.IntegerField(help_text="Deployments.")
    rate = serializers.FloatField(allow_null=True, help_text="count / total (4 decimals); null when total is 0.")
    drill = String(help_text="The rework deployments.")


LEVEL = Choice(choices=dora.LEVELS, allow_null=True)


class LevelsSerializer(serializers.Serializer):
    deploymentFrequency = LEVEL
    leadTimeForChanges = LEVEL
    changeFailureRate = LEVEL
    failedDeploymentRecoveryTime = LEVEL


class TierSerializer(serializers.Serializer):
    level = Choice(
        choices=dora.LEVELS, allow_null=True, help_text="The lowest of byMetric's; null: nothing deployed or attempted."
    )
    report = String(help_text=f"The report whose performance clusters these are: {dora.REPORT}.")
    byMetric = LevelsSerializer()


class DoraMetricsSerializer(serializers.Serializer):
    serviceId = String(allow_null=True)
    envId = String(allow_null=True, help_text="As asked; null: the production environments (envIds).")
    envIds = serializers.ListField(child=String(), help_text="The environments counted.")
    since = String(help_text="RFC 3339, UTC; inclusive.")
    until = String(help_text="RFC 3339, UTC; exclusive.")
    days = serializers.FloatField()
    deploymentFrequency = DeploymentFrequencySerializer()
    leadTimeForChanges = LeadTimeSerializer()
    changeFailureRate = ChangeFailureRateSerializer()
    failedDeploymentRecoveryTime = RecoveryTimeSerializer()
    reworkRate = ReworkRateSerializer()
    tier = TierSerializer()


class DoraDeploymentSerializer(serializers.Serializer):
    runId = String()
    kind = Choice(choices=RunKind.choices)
    state = Choice(choices=[RunState.SUCCEEDED, RunState.FAILED], help_text="Failed: an attempt that failed.")
    releaseId = String()
    serviceId = String()
    envId = String()
    sha = String()
    version = String()
    startedAt = String()
    finishedAt = String(help_text="When it became Active (or failed): where it falls in the window.")
    leadTimeSeconds = serializers.IntegerField(allow_null=True)
    leadTimeFrom = Choice(choices=["committedAt", "releaseCreatedAt"], allow_null=True)
    failed = serializers.BooleanField()
    failedBecause = serializers.ListField(child=Choice(choices=["runFailed", "rolledBack", "incident"]))
    rolledBackBy = String(allow_null=True, help_text="The rollback release that named it.")
    incidentIds = serializers.ListField(child=String(), help_text="Incidents linked to its release.")
    recoveredByRunId = String(allow_null=True, help_text="The next good deployment of its service there.")
    recoveredAt = String(allow_null=True)
    recoverySeconds = serializers.IntegerField(allow_null=True)
    rework = serializers.BooleanField()


class DoraDrillSerializer(serializers.Serializer):
    metric = Choice(choices=dora.METRICS)
    serviceId = String(allow_null=True)
    envId = String(allow_null=True)
    envIds = serializers.ListField(child=String())
    since = String()
    until = String()
    count = serializers.IntegerField(help_text="How many: the figure's own count.")
    deployments = DoraDeploymentSerializer(many=True, help_text="Newest first; not paged.")


class DoraMetricsView(StrictQuery, APIView):
    """A read for every role."""

    http_method_names = ["get", "head"]
    takes = tuple(DoraQuery().fields)
    where = "the DORA metrics"

    @extend_schema(
        operation_id="metrics_dora",
        parameters=[DoraQuery],
        responses={200: PolymorphicProxySerializer("DoraAnswer", [DoraMetricsSerializer, DoraDrillSerializer], None)},
    )
    def get(self, request):
        """The DORA metrics of a window (docs/metrics.md): by default every service's deployments into the production
        environments over the last 30 days. With `drill`, the deployments behind that figure instead, as many as
        it counts."""
        query = DoraQuery(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        figures = measured(query.validated_data)
        metric = query.validated_data.get("drill")
        return Response(drill_json(figures, metric) if metric else figures_json(figures))
