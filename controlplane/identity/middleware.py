import re
import uuid

from django.http import JsonResponse
from django.utils.functional import SimpleLazyObject

from controlplane.identity import apitokens, devtokens, oidc
from controlplane.identity.context import ANONYMOUS, Principal, acting_as
from controlplane.identity.errors import IdentityRefused
from controlplane.identity.sessions import principal_from_session
from controlplane.identity.users import user_for

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
JWT_SHAPE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
# Credentials in a URL end up in access logs, browser history and Referer headers.
URL_CREDENTIALS = ("access_token", "token", "dev_token", "bearer")
# Paths that never look at credentials, valid, invalid or misplaced: the health check (controlplane/urls.py)
# answers probes and load balancers whatever they send.
CREDENTIAL_FREE_PATHS = frozenset({"/healthz"})
# Where integrations' sources post: authenticated by the integration's own signature or token (Alertmanager sends
# it as a bearer token), checked by integrations.inbound, not by identity.
SOURCE_PATH = re.compile(r"^/api/integrations/[^/]+/events/$")


def principal_from_bearer(token: str) -> Principal:
    if apitokens.is_one(token):
        return apitokens.principal_for(token)
    principal = devtokens.principal_for(token)
    if principal is not None:
        return principal
    if oidc.configured() and JWT_SHAPE.match(token):
        return oidc.principal_from_access_token(token)
    raise IdentityRefused("the bearer token is not valid.")


def identify(request) -> Principal | None:
    """The caller: a bearer token if one is sent, else a signed-in session, else nobody."""
    if any(name in request.GET for name in URL_CREDENTIALS):
        raise IdentityRefused("send credentials in the Authorization header (Bearer), never in the URL.")
    header = request.headers.get("Authorization")
    if header is None:
        return principal_from_session(request)
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise IdentityRefused("use 'Authorization: Bearer <token>'.")
    principal = principal_from_bearer(token.strip())
    # A bearer token is not sent by a browser on its own, so cross-site request forgery cannot use it.
    request._dont_enforce_csrf_checks = True
    request.user = SimpleLazyObject(lambda: user_for(principal))
    return principal


class IdentityMiddleware:
    """Puts the caller and a request id into the request context, and returns X-Request-ID.

    Client headers never set the actor or the role; a well-formed X-Request-ID is passed through
    so a request can be followed across systems.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        try:
            credential_free = request.path_info in CREDENTIAL_FREE_PATHS or SOURCE_PATH.match(request.path_info)
            request.principal = None if credential_free else identify(request)
        except IdentityRefused as refusal:
            response = refused(refusal)
        else:
            with acting_as(request.principal or ANONYMOUS, request_id):
                response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


def refused(refusal: IdentityRefused) -> JsonResponse:
    response = JsonResponse({"detail": str(refusal)}, status=refusal.status)
    if refusal.status == 401:
        response["WWW-Authenticate"] = (
            f'Bearer realm="controlplane", error="invalid_token", error_description="{refusal}"'
        )
    return response
