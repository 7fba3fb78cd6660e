"""`/graphql/`: graphene-django's view with the API's identity, strict JSON, limits, and GraphiQL served
from our own static files (docs/graphql.md)."""

import logging

import orjson
from csp.constants import SELF
from csp.decorators import csp_update
from django.conf import settings
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.utils.decorators import method_decorator
from django.utils.http import urlencode
from django.views.decorators.csrf import csrf_exempt
from graphene_django.views import GraphQLView as GrapheneView
from graphene_django.views import HttpError
from graphql import GraphQLError
from rest_framework.exceptions import ParseError, ValidationError

from controlplane.api.parsers import loads
from controlplane.graphql.limits import limits
from controlplane.identity.roles import can, refusal
from controlplane.identity.sessions import csrf_refusal

log = logging.getLogger(__name__)

CONTENT_TYPES = ("application/json", "application/graphql")
INTERNAL = "internal error; it has been logged with this request's id."


def _refused(status: int, message: str, code: str, **headers) -> JsonResponse:
    response = JsonResponse({"errors": [{"message": message, "extensions": {"code": code}}]}, status=status)
    for name, value in headers.items():
        response[name] = value
    return response


def _bad_request(status: int, message: str, code: str = "BAD_REQUEST") -> HttpError:
    return HttpError(_refused(status, message, code))


# GraphiQL's stylesheet (vendored in controlplane/static/graphiql/) carries its fonts as data: URLs.
@method_decorator(csp_update({"font-src": [SELF, "data:"]}), name="render_graphiql")
@method_decorator(csrf_exempt, name="dispatch")  # checked below for signed-in browsers, answered as GraphQL
class GraphQLView(GrapheneView):
    graphiql = True

    def dispatch(self, request, *args, **kwargs):
        principal = request.principal
        if principal is None:
            if request.method == "GET" and self.request_wants_html(request):
                return HttpResponseRedirect(f"{settings.LOGIN_URL}?{urlencode({'next': request.get_full_path()})}")
            return _refused(
                401,
                "sign in: send 'Authorization: Bearer <token>' (a dev token or an OIDC access token).",
                "UNAUTHENTICATED",
                **{"WWW-Authenticate": 'Bearer realm="controlplane"'},
            )
        if not can(principal, "read"):
            return _refused(403, refusal(principal, "read"), "FORBIDDEN")
        if principal.via_session and request.method == "POST" and (reason := csrf_refusal(request)):
            return _refused(403, f"CSRF failed: {reason}", "FORBIDDEN")
        return super().dispatch(request, *args, **kwargs)

    def parse_body(self, request):
        if request.method != "POST":
            return {}
        content_type = self.get_content_type(request)
        if content_type not in CONTENT_TYPES:
            raise _bad_request(415, f"send the operation as {' or '.join(CONTENT_TYPES)}.", "UNSUPPORTED_MEDIA_TYPE")
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError:
            raise _bad_request(400, "the body is not UTF-8.") from None
        if content_type == "application/graphql":
            return {"query": text}
        try:
            data = loads(text)
        except ParseError as exc:
            raise _bad_request(400, str(exc.detail)) from None
        except ValidationError as exc:
            problems = "; ".join(f"{key}: {' '.join(map(str, value))}" for key, value in exc.detail.items())
            raise _bad_request(400, problems) from None
        if not isinstance(data, dict):
            raise _bad_request(400, "send one operation, a JSON object {query, variables, operationName}: no batches.")
        return data

    def execute_graphql_request(self, request, data, query, variables, operation_name, show_graphiql=False):
        limit = settings.GRAPHQL_MAX_DOCUMENT_BYTES
        if query and len(query.encode()) > limit:
            raise _bad_request(
                413, f"the document is larger than {limit} bytes (CONTROLPLANE_GRAPHQL_MAX_DOCUMENT_BYTES).", "LIMIT"
            )
        if variables is not None and not isinstance(variables, dict):
            raise _bad_request(400, "variables must be a JSON object.")
        self.validation_rules = (limits(variables),)
        return super().execute_graphql_request(request, data, query, variables, operation_name, show_graphiql)

    def render_graphiql(self, request, **data):
        return render(request, "graphql/graphiql.html")

    def json_encode(self, request, d, pretty=False):
        if pretty or request.GET.get("pretty"):
            return orjson.dumps(d, option=orjson.OPT_INDENT_2)
        return orjson.dumps(d)

    @staticmethod
    def format_error(error):
        original = getattr(error, "original_error", None)
        if isinstance(error, GraphQLError) and original is not None and not isinstance(original, GraphQLError):
            # A bug, not the caller's mistake: logged whole, answered without its details.
            log.error(
                "GraphQL field %s failed", error.path, exc_info=(type(original), original, original.__traceback__)
            )
            return {**error.formatted, "message": INTERNAL, "extensions": {"code": "INTERNAL"}}
        return GrapheneView.format_error(error)
