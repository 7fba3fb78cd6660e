"""OpenAPI details drf-spectacular cannot infer."""

from django.conf import settings
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
# A retry's key used for another request (422, idempotency.keys): which part differs.
IDEMPOTENCY_MISMATCH = {
    "type": "object",
    "properties": {"detail": {"type": "string"}, "mismatch": {"type": "string", "enum": ["method", "path", "body"]}},
    "required": ["detail", "mismatch"],
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
    "422": "The Idempotency-Key was used for another request (method, path or body): `mismatch` says which.",
}
WRITE_ONLY = {"409", "413", "415", "422"}


def add_error_responses(result, generator, request, public):
    """Document the errors every operation can answer, so clients and contract tests know them, and the
    Idempotency-Key every write takes."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"], schemas["PolicyRefusal"] = ERROR, POLICY_REFUSAL
    schemas["IdempotencyMismatch"] = IDEMPOTENCY_MISMATCH
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            for code, description in ANSWERS.items():
                if code in WRITE_ONLY and method == "get":
                    continue
                if code == "422" and method not in IDEMPOTENT:
                    continue
                shape = "IdempotencyMismatch" if code == "422" else "Error"
                operation["responses"].setdefault(
                    code,
                    {
                        "description": description,
                        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{shape}"}}},
                    },
                )
            if method in IDEMPOTENT:
                operation.setdefault("parameters", []).append(idempotency_key())
    return result


IDEMPOTENT = {"post", "patch"}  # the writes that take an Idempotency-Key (idempotency.keys)


def idempotency_key() -> dict:
    hours = settings.CONTROLPLANE_IDEMPOTENCY_TTL_SECONDS / 3600
    return {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": (
            "Makes the write safe to retry: the first request with a key runs, and its answer (unless a 5xx) is kept "
            f"for {hours:g} h (CONTROLPLANE_IDEMPOTENCY_TTL); a retry with the same key, method, path and body gets "
            "that answer again, byte for byte, with `Idempotent-Replayed: true`, and nothing runs twice. A key is "
            "the caller's own. 409 while the first is still being processed; 422 when the key was used for "
            'another request. The draft\'s quoted string ("…") or 1-255 visible ASCII characters.'
        ),
        "schema": {"type": "string", "minLength": 1, "maxLength": 257},
    }
