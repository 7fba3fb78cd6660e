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
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR
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
