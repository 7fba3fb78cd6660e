""" "Why not, and until when?" over REST: `GET /api/environments/{id}/policy/?serviceId=…&action=…&at=…`, the
gate's decision on an action not asked for (`policies.explain`), with each window's state."""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.api.base import Choice, StrictQuery, StrictSerializer, String
from controlplane.timestamps import parse_rfc3339, rfc3339
from policies.explain import explain
from policies.gate import ACTIONS, Decision
from services.models import Environment


class PolicyQuery(StrictSerializer):
    serviceId = String(required=False, help_text="The service the action is for (the incident gate asks about it).")
    action = Choice(choices=ACTIONS, required=False, default="deploy", help_text="Default: deploy.")
    at = String(required=False, help_text="The instant decided at, RFC 3339 with an offset; default: now.")

    def validate_at(self, value):
        try:
            return parse_rfc3339(value)
        except ValueError as exc:
            # A query string reads an unencoded "+" as a space ("…T09:00:00+02:00" comes as "…T09:00:00 02:00").
            hint = " In a query string, write + as %2B." if " " in value else ""
            raise serializers.ValidationError(f"{exc}{hint}") from None


class DenialSerializer(serializers.Serializer):
    policy = String(help_text="The ref (policy:change-window:weekday), the freeze (freeze:frz-…) or a Cedar policy.")
    reason = String()


class WindowStateSerializer(serializers.Serializer):
    name = String()
    ref = String()
    timezone = String()
    summary = String(help_text='Like "Mon-Fri 09:00-17:00 Europe/Berlin" (with en dashes).')
    open = serializers.BooleanField(help_text="Open at `at`.")
    nextChangeAt = String(allow_null=True, help_text="When it next opens or closes (RFC 3339, UTC); null: never.")


class DecisionSerializer(serializers.Serializer):
    """The policies' decision (`policies.gate.Decision.as_json`): the `decision` of a 409 refusal, and of a
    preview, said ahead."""

    allowed = serializers.BooleanField()
    deniedBy = DenialSerializer(many=True)
    nextAllowedAt = String(
        allow_null=True, help_text="When the action would next be allowed (RFC 3339, UTC); null: no time alone."
    )

    def to_representation(self, decision):
        return decision.as_json()


class PolicyDecisionSerializer(DecisionSerializer):
    """The decision as a refusal's 409 carries it, with what it was decided on."""

    windows = WindowStateSerializer(many=True, help_text="The environment's change windows, in its refs' order.")
    evaluated = serializers.ListField(child=String(), help_text="The gates and operator policies asked.")
    action = Choice(choices=ACTIONS)
    at = String(help_text="The instant decided at (RFC 3339, UTC).")

    def to_representation(self, decision):
        return decision_json(decision)


def decision_json(decision: Decision) -> dict:
    """What the policy endpoint answers (PolicyDecisionSerializer's shape)."""
    return {
        **decision.as_json(),
        "windows": [w.as_json() for w in decision.windows],
        "evaluated": decision.evaluated,
        "action": decision.action,
        "at": rfc3339(decision.at),
    }


class EnvironmentPolicyView(StrictQuery, APIView):
    """A read for every role: anyone may ask why an environment is closed, and until when."""

    http_method_names = ["get", "head"]
    takes = tuple(PolicyQuery().fields)
    where = "the policy endpoint"

    @extend_schema(operation_id="environments_policy", parameters=[PolicyQuery], responses=PolicyDecisionSerializer)
    def get(self, request, id):
        """Whether `action` of `serviceId` into this environment would be allowed at `at` (any past or future
        instant; default now), who denies it and until when, and each change window's state. Writes nothing."""
        query = PolicyQuery(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        environment = get_object_or_404(Environment, pk=id)
        params = query.validated_data
        try:
            decision = explain(environment, params.get("serviceId", ""), params["action"], params.get("at"))
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.message_dict) from None  # keyed by the parameters' names
        return Response(decision_json(decision))
