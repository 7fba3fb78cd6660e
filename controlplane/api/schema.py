"""OpenAPI details drf-spectacular cannot infer."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from controlplane.identity.drf import PrincipalAuthentication


class PrincipalAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = PrincipalAuthentication
    name = "bearer"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "An OIDC access token, or a dev token in dev mode."}


ERROR = {
    "type": "object",
    "description": "`detail` says what went wrong; a 400 for bad fields names each field with its rules instead "
    "(so a body's own field named `detail`, which no resource has, comes back as a list like any other).",
    "properties": {"detail": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}},
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
}
# A policy's refusal (409, controlplane.api.errors.PolicyConflict): the sentence, and the decision.
POLICY_REFUSAL = {
    "type": "object",
    "description": "A policy refused the action: `detail` says why in a sentence, `decision` who and until when.",
    "properties": {
        "detail": {"type": "string"},
        "decision": {
            "type": "object",
            "properties": {
                "allowed": {"type": "boolean"},
                "deniedBy": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"policy": {"type": "string"}, "reason": {"type": "string"}},
                        "required": ["policy", "reason"],
                    },
                },
                "nextAllowedAt": {
                    "type": "string",
                    "nullable": True,
                    "description": "When it would next be allowed (RFC 3339, UTC); null when no time alone allows it.",
                },
            },
            "required": ["allowed", "deniedBy", "nextAllowedAt"],
        },
    },
    "required": ["detail", "decision"],
}
# The 409 of an action the policies gate (deploy, promote): a state conflict, or a policy's refusal.
GATED_CONFLICT = {"anyOf": [{"$ref": "#/components/schemas/Error"}, {"$ref": "#/components/schemas/PolicyRefusal"}]}
ANSWERS = {
    "400": "A field or parameter broke a rule (named, with the rule), or the body is malformed or too deep.",
    "401": "No valid credentials.",
    "403": "Your role does not allow this.",
    "404": "No such resource.",
    "409": "Well formed, but it conflicts with the current state (a status move that is not allowed).",
    "413": "The request body is too large.",
    "415": "The body is not JSON.",
}
WRITE_ONLY = {"409", "413", "415"}


def add_error_responses(result, generator, request, public):
    """Document the errors every operation can answer, so clients and contract tests know them."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"], schemas["PolicyRefusal"] = ERROR, POLICY_REFUSAL
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            for code, description in ANSWERS.items():
                if code in WRITE_ONLY and method == "get":
                    continue
                operation["responses"].setdefault(
                    code,
                    {
                        "description": description,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    },
                )
    return result
