"""The services index over REST: `GET /api/services/index/`, with the services list's filters and pages.
And what a deploy or a promotion will do, said before it happens (`overview.previews`): the CLI's
confirmation, worded as the dashboard's, `GET /api/releases/{id}/deploy-preview/` and `…/promote-preview/`."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.generics import GenericAPIView, get_object_or_404
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.api.base import Choice, StrictQuery, String, stored_values
from controlplane.api.errors import api_exception
from controlplane.errors import Conflict
from incidents.models import Severity
from overview import previews, services_index
from policies.api import DecisionSerializer
from releases.api import PromoteSerializer, ReleaseSerializer
from releases.models import Release
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
