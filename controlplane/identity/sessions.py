"""A signed-in browser session remembers who signed in; each request checks it still holds."""

from django.contrib.auth import logout
from django.middleware.csrf import CsrfViewMiddleware

from controlplane.identity import devtokens
from controlplane.identity.context import Principal
from controlplane.identity.roles import Role

SESSION_KEY = "controlplane.principal"


def remember(request, principal: Principal, token_digest: str = "") -> None:
    if principal.auth_method == "devToken":
        # The role is looked up again on every request, so revoking or changing a token takes effect at once.
        request.session[SESSION_KEY] = {"method": "devToken", "digest": token_digest}
    else:
        request.session[SESSION_KEY] = {
            "method": principal.auth_method,
            "actor": principal.actor,
            "role": str(principal.role),
        }


def principal_from_session(request) -> Principal | None:
    data = request.session.get(SESSION_KEY) if hasattr(request, "session") else None
    if not data or not request.user.is_authenticated:
        return None
    if data.get("method") == "devToken":
        token = devtokens.find_by_digest(data.get("digest", "")) if devtokens.dev_mode() else None
        if token is None:
            logout(request)  # revoked, or dev mode switched off: the session ends
            return None
        return token.principal(via_session=True)
    role = Role.parse(data.get("role"))
    if role is None:
        logout(request)
        return None
    return Principal(actor=data["actor"], role=role, auth_method=data["method"], via_session=True)


def csrf_refusal(request) -> str | None:
    """Why a signed-in browser's unsafe request fails Django's CSRF check, or None when it passes. For views
    that answer in their own format (REST, GraphQL) instead of Django's HTML page."""
    check = _CsrfCheck(lambda req: None)
    check.process_request(request)
    return check.process_view(request, None, (), {})


class _CsrfCheck(CsrfViewMiddleware):
    def _reject(self, request, reason):
        return reason  # the reason, not Django's 403 page
