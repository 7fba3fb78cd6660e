"""`/graphql/`: graphene-django's view with the API's identity, strict JSON, limits, and GraphiQL served
from our own static files (docs/graphql.md)."""

import functools
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
from graphene_django.settings import graphene_settings
from graphene_django.views import GraphQLView as GrapheneView
from graphene_django.views import HttpError
from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    GraphQLError,
    OperationType,
    execute,
    get_operation_ast,
    parse,
    specified_rules,
    validate,
)
from rest_framework.exceptions import ParseError, ValidationError

from controlplane.api.parsers import loads
from controlplane.graphql.limits import refusals
from controlplane.graphql.plain import PlainExecutionContext
from controlplane.identity.roles import can, refusal
from controlplane.identity.sessions import csrf_refusal

log = logging.getLogger(__name__)

CONTENT_TYPES = ("application/json", "application/graphql")
INTERNAL = "internal error; it has been logged with this request's id."


# A parsed document takes 60-120 times its text in memory: only documents up to this size (every real
# client's; GraphiQL's introspection is 1.5 kB) are kept, so that the cache of 256 stays near 100 MB at worst
# rather than 3 GB of documents at the size limit.
KEPT_DOCUMENT_CHARS = 4_000


def _document(query: str) -> DocumentNode:
    return _kept_document(query) if len(query) <= KEPT_DOCUMENT_CHARS else parse(query)


@functools.lru_cache(maxsize=256)
def _kept_document(query: str) -> DocumentNode:
    return parse(query)


def _checked(schema, query: str, document: DocumentNode) -> tuple[GraphQLError, ...]:
    """GraphQL's own validation of a document (parsed from `query`) against the schema (the limits, which
    read the variables, are checked on each request)."""
    if len(query) <= KEPT_DOCUMENT_CHARS:
        return _kept_checks(schema, query)
    return _validate(schema, document)


@functools.lru_cache(maxsize=256)
def _kept_checks(schema, query: str) -> tuple[GraphQLError, ...]:
    return _validate(schema, _kept_document(query))


def _validate(schema, document: DocumentNode) -> tuple[GraphQLError, ...]:
    return tuple(validate(schema, document, specified_rules, max_errors=graphene_settings.MAX_VALIDATION_ERRORS))


def _refused(status: int, message: str, code: str, **headers) -> JsonResponse:
    response = JsonResponse({"errors": [{"message": message, "extensions": {"code": code}}]}, status=status)
    for name, value in headers.items():
        response[name] = value
    return response


class Refused(HttpError):
    """A request refused before it runs. graphene-django's dispatch answers an HttpError with a body of its
    own, from `format_error`, which would quote the response's whole JSON as the message: the message and
    code are kept here for it."""

    def __init__(self, status: int, message: str, code: str = "BAD_REQUEST", **headers):
        super().__init__(_refused(status, message, code, **headers), message)
        self.code = code


def _strict(text: str, name: str | None = None):
    """JSON text read as REST reads a body (`controlplane.api.parsers.loads`), refused with its message; `name`
    says what the text is when it is not the body (`variables: …`)."""
    try:
        return loads(text)
    except ParseError as exc:
        problem = str(exc.detail)
    except ValidationError as exc:
        problem = "; ".join(f"{key}: {' '.join(map(str, value))}" for key, value in exc.detail.items())
    raise Refused(400, f"{name}: {problem}" if name else problem)


# GraphiQL's stylesheet (vendored in controlplane/static/graphiql/) carries its fonts as data: URLs.
@method_decorator(csp_update({"font-src": [SELF, "data:"]}), name="render_graphiql")
@method_decorator(csrf_exempt, name="dispatch")  # checked below for signed-in browsers, answered as GraphQL
class GraphQLView(GrapheneView):
    graphiql = True
    response_cache = None  # cached_body(key, render) -> bytes, for operations asking only for cached_fields
    cached_fields: frozenset[str] = frozenset()
    execution_context_class = PlainExecutionContext  # plain answers (the services index) in one pass

    def __init__(self, response_cache=None, cached_fields=(), **kwargs):
        super().__init__(**kwargs)
        self.response_cache, self.cached_fields = response_cache, frozenset(cached_fields)

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
        if principal.via_session:  # a browser's GraphiQL posts back with the CSRF cookie graphene-django sets
            return super().dispatch(request, *args, **kwargs)
        # A bearer token needs no CSRF cookie: graphene-django's dispatch without its ensure_csrf_cookie, which
        # would make a new secret (64 reads of os.urandom) for every such request and send it as a cookie.
        return GrapheneView.dispatch.__wrapped__(self, request, *args, **kwargs)

    def parse_body(self, request):
        if request.method != "POST":
            return {}
        content_type = self.get_content_type(request)
        if content_type not in CONTENT_TYPES:
            raise Refused(415, f"send the operation as {' or '.join(CONTENT_TYPES)}.", "UNSUPPORTED_MEDIA_TYPE")
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError:
            raise Refused(400, "the body is not UTF-8.") from None
        if content_type == "application/graphql":
            return {"query": text}
        data = _strict(text)
        if not isinstance(data, dict):
            raise Refused(400, "send one operation, a JSON object {query, variables, operationName}: no batches.")
        for name in ("query", "operationName"):
            if data.get(name) is not None and not isinstance(data[name], str):
                raise Refused(400, f"{name} must be a string.")
        return data

    @staticmethod
    def get_graphql_params(request, data):
        """graphene-django's, but `variables` sent as JSON text (in the query string, or as a string in a body)
        are read by the same strict reader as a body: graphene-django's plain `json.loads` lets duplicate
        keys, lone surrogates and any nesting through."""
        query = request.GET.get("query") or data.get("query")
        variables = request.GET.get("variables") or data.get("variables")
        if variables and isinstance(variables, str):
            variables = _strict(variables, "variables")
        operation_name = request.GET.get("operationName") or data.get("operationName")
        if operation_name == "null":
            operation_name = None
        return query, variables, operation_name, request.GET.get("id") or data.get("id")

    def get_response(self, request, data, show_graphiql=False):
        """graphene-django's, but an operation that asks only for `cached_fields` is answered from
        `response_cache` when it can be: the same document and variables give the same answer until the
        audit trail's head moves (the services index, like REST's)."""
        query, variables, operation_name, _ = self.get_graphql_params(request, data)
        key = None if show_graphiql else self._cache_key(query, variables, operation_name)
        if key is not None and request.GET.get("pretty"):  # the same answer, rendered otherwise (json_encode)
            key += ":pretty"
        if key is None:
            return super().get_response(request, data, show_graphiql)
        status = 200

        def render():
            nonlocal status
            self._errors = True
            body, status = super(GraphQLView, self).get_response(request, data, show_graphiql)
            return body, status == 200 and not self._errors

        return self.response_cache(key, render), status

    def _cache_key(self, query, variables, operation_name) -> str | None:
        if self.response_cache is None or not query or not isinstance(variables, dict | None):
            return None
        if len(query) > KEPT_DOCUMENT_CHARS:  # else parsed here, before the size limit, and again to run
            return None
        try:
            operation = get_operation_ast(_document(query), operation_name)
        except GraphQLError:
            return None
        if operation is None or operation.operation != OperationType.QUERY:
            return None
        roots = operation.selection_set.selections
        if not all(isinstance(s, FieldNode) and s.name.value in self.cached_fields for s in roots):
            return None
        try:
            key = orjson.dumps([query, variables, operation_name], option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:  # an integer beyond 64 bits: not kept, and GraphQL refuses it as an Int
            return None
        return "graphql:" + key.decode()

    def execute_graphql_request(self, request, data, query, variables, operation_name, show_graphiql=False):
        """graphene-django's, with the limits, and documents parsed and checked against the schema once
        per text (a client sends the same few documents again and again)."""
        if not query:
            if show_graphiql:
                return None
            raise Refused(400, "Must provide query string.")
        limit = settings.GRAPHQL_MAX_DOCUMENT_BYTES
        if len(query.encode()) > limit:
            raise Refused(
                413, f"the document is larger than {limit} bytes (CONTROLPLANE_GRAPHQL_MAX_DOCUMENT_BYTES).", "LIMIT"
            )
        if variables is not None and not isinstance(variables, dict):
            raise Refused(400, "variables must be a JSON object.")
        schema = self.schema.graphql_schema
        try:
            document = _document(query)
        except GraphQLError as error:
            return ExecutionResult(errors=[error])
        operation = get_operation_ast(document, operation_name)
        if request.method == "GET" and operation is not None and operation.operation != OperationType.QUERY:
            if show_graphiql:
                return None
            message = f"Can only perform a {operation.operation.value} operation from a POST request."
            raise Refused(405, message, "METHOD_NOT_ALLOWED", Allow="POST")
        errors = [*_checked(schema, query, document), *refusals(schema, document, variables, operation)]
        if errors:
            return ExecutionResult(errors=errors)
        try:
            result = execute(
                schema,
                document,
                root_value=self.get_root_value(request),
                context_value=self.get_context(request),
                variable_values=variables,
                operation_name=operation_name,
                middleware=self.get_middleware(request),
                execution_context_class=self.execution_context_class,
            )
        except Exception as error:  # as graphene-django: an error of the request, not of a field
            return ExecutionResult(errors=[error])
        self._errors = bool(result.errors)
        return result

    def render_graphiql(self, request, **data):
        return render(request, "graphql/graphiql.html")

    def json_encode(self, request, d, pretty=False):
        if pretty or request.GET.get("pretty"):
            # Written once to be read back whole: an answer's spliced parts (plain.Rendered) are indented too.
            return orjson.dumps(orjson.loads(orjson.dumps(d)), option=orjson.OPT_INDENT_2)
        return orjson.dumps(d)

    @staticmethod
    def format_error(error):
        if isinstance(error, Refused):
            return {"message": error.message, "extensions": {"code": error.code}}
        original = getattr(error, "original_error", None)
        if isinstance(error, GraphQLError) and original is not None and not isinstance(original, GraphQLError):
            # A bug, not the caller's mistake: logged whole, answered without its details.
            log.error(
                "GraphQL field %s failed", error.path, exc_info=(type(original), original, original.__traceback__)
            )
            return {**error.formatted, "message": INTERNAL, "extensions": {"code": "INTERNAL"}}
        return GrapheneView.format_error(error)
