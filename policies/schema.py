""""Why not, and until when?" over GraphQL: `Environment.policy`, the door onto `policies.explain` that REST's
`GET /api/environments/{id}/policy/` is too (docs/policies.md)."""

import graphene
from django.core.exceptions import ValidationError

from controlplane.graphql.limits import weigh
from controlplane.graphql.types import DateTime, PolicyVerdict, arguments_of, extend, invalid_arguments
from policies.api import PolicyQuery, decision_json
from policies.explain import explain
from policies.gate import ACTIONS
from services.schema import EnvironmentType

PolicyAction = graphene.Enum("PolicyAction", [(action, action) for action in ACTIONS])


class PolicyWindow(graphene.ObjectType):
    """One of the environment's change windows (`policy:change-window:<name>`) at the instant asked about."""

    name = graphene.String(required=True)
    ref = graphene.String(required=True, description="The environment's ref naming it.")
    timezone = graphene.String(required=True, description="IANA time zone name.")
    summary = graphene.String(required=True, description="Its days, hours and zone in words, as a refusal names them.")
    open = graphene.Boolean(required=True)
    next_change_at = DateTime(source="nextChangeAt", description="When it next opens or closes; null: never.")


class EnvironmentPolicy(PolicyVerdict, graphene.ObjectType):
    """The decision on an action into the environment at an instant, and each window's state then: what REST's
    `GET /api/environments/{id}/policy/` answers."""

    action = PolicyAction(required=True)
    at = DateTime(required=True, description="The instant decided at.")
    windows = graphene.List(
        graphene.NonNull(PolicyWindow), required=True, description="Its change windows, in its refs' order."
    )
    evaluated = graphene.List(
        graphene.NonNull(graphene.String), required=True, description="The gates and operator policies asked."
    )


class EnvironmentPolicies:
    policy = graphene.Field(
        graphene.NonNull(EnvironmentPolicy),
        service_id=graphene.ID(description="The service; without one, no gate about a service refuses."),
        action=PolicyAction(default_value="deploy"),
        at=DateTime(description="Any past or future instant; now when omitted."),
        description="Whether the action would be allowed here at `at`, why not, and until when.",
    )

    @staticmethod
    def resolve_policy(environment, info, service_id=None, action="deploy", at=None):
        # REST's query parameters for the same question: the same rules and words (an `at` without an offset).
        asked = arguments_of(PolicyQuery, {"serviceId": service_id, "action": action, "at": at})
        try:
            decision = explain(environment, asked.get("serviceId", ""), asked["action"], asked.get("at"))
        except ValidationError as exc:
            invalid_arguments(exc.message_dict)
        return decision_json(decision)


extend(EnvironmentType, EnvironmentPolicies)
# A decision per environment (six queries, and Cedar asked for each gate and each window's boundaries), not a
# value read: `environments(first: 500) { edges { node { policy { allowed } } } }` passes the cost limit no more.
POLICY_WEIGHT = 50
weigh("Environment", "policy", POLICY_WEIGHT)
