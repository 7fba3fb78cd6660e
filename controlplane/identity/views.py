from django.conf import settings
from django.contrib.auth import authenticate, login, logout
from django.core.exceptions import SuspiciousOperation
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_http_methods, require_POST
from drf_spectacular.utils import extend_schema
from mozilla_django_oidc import views as oidc_views
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from controlplane.api.base import StrictQuery
from controlplane.identity import devtokens, oidc
from controlplane.identity.context import current_principal
from controlplane.identity.errors import IdentityRefused
from controlplane.identity.roles import Role, can, needed, refusal
from controlplane.identity.sessions import remember


class MeSerializer(serializers.Serializer):
    actor = serializers.CharField()
    role = serializers.ChoiceField(choices=[str(role) for role in Role])
    authMethod = serializers.ChoiceField(choices=["devToken", "oidc", "apiToken"])
    tokenId = serializers.CharField(required=False, help_text="An API token's id (apiToken only).")
    owner = serializers.CharField(required=False, help_text="Who created the API token (apiToken only).")


class MeView(StrictQuery, APIView):
    """Who the caller is, as the request context records it: `{"actor", "role", "authMethod"}`, and for an API
    token `tokenId` and `owner`."""

    @extend_schema(responses=MeSerializer)
    def get(self, request):
        return Response(current_principal().described())


def _next_url(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    safe = url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure())
    return target if safe and target.startswith("/") else settings.LOGIN_REDIRECT_URL


def login_page(request, error: str = "", status: int = 200):
    principal = request.principal
    next_url = _next_url(request)
    if not error and principal and next_url.startswith("/admin/") and not can(principal, "admin.access"):
        role = needed("admin.access")
        error, status = f"Signed in as {principal.actor} ({principal.role}): the admin needs the {role} role.", 403
    if not error and request.GET.get("failed") == "oidc":
        error, status = "The sign-in with OIDC did not complete; try again.", 401
    context = {
        "principal": principal,
        "next": next_url,
        "error": error,
        "dev_mode": devtokens.dev_mode(),
        "oidc_configured": oidc.configured(),
    }
    return render(request, "identity/login.html", context, status=status)


@require_http_methods(["GET", "POST"])
def sign_in(request):
    if request.method == "GET":
        return login_page(request)
    if not devtokens.dev_mode():
        return login_page(request, "Dev tokens are accepted only in dev mode; sign in with OIDC.", 403)
    token = request.POST.get("token", "").strip()
    user = authenticate(request, dev_token=token) if token else None
    if user is None:
        return login_page(request, "That dev token is not valid.", 401)
    login(request, user, backend="controlplane.identity.devtokens.DevTokenBackend")
    remember(request, user.principal, token_digest=devtokens.digest(token))
    return redirect(_next_url(request))


@require_POST
def sign_out(request):
    logout(request)
    return redirect(f"{reverse('login')}?signed_out=1")


def _oidc_not_configured(request):
    return render(request, "identity/oidc_not_configured.html", {"missing": oidc.missing_settings()}, status=501)


def oidc_authenticate(request):
    if not oidc.configured():
        return _oidc_not_configured(request)
    return oidc_views.OIDCAuthenticationRequestView.as_view()(request)


class CallbackView(oidc_views.OIDCAuthenticationCallbackView):
    """mozilla-django-oidc's callback, with refusals shown on the sign-in page instead of a bare redirect."""

    def get(self, request):
        if not oidc.configured():
            return _oidc_not_configured(request)
        try:
            return super().get(request)
        except SuspiciousOperation:
            # Unknown state (forged, replayed or from another browser), or an ID token that fails verification.
            return login_page(request, "The sign-in response could not be verified; start again.", 400)

    def login_success(self):
        response = super().login_success()
        remember(self.request, self.user.principal)
        return response

    def login_failure(self):
        refusal = getattr(self.request, "oidc_refusal", None) or IdentityRefused("The sign-in did not complete.")
        return login_page(self.request, str(refusal), refusal.status)


oidc_callback = CallbackView.as_view()


def sign_in_first(request):
    """A page asked for while signed out: to the sign-in page, and back to it after."""
    return redirect(f"{reverse('login')}?{urlencode({'next': request.get_full_path()})}")


def refused(request, action: str):
    """A page's write the caller's role does not allow: 403, saying which role it needs."""
    context = {"principal": request.principal, "reason": refusal(request.principal, action)}
    return render(request, "refused.html", context, status=403)
