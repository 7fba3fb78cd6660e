"""The pages of `tokens` (docs/pages.md): `/tokens/` lists your API tokens and issues one (its secret shown on
the answer to the form, once, with a copy button), `/tokens/<id>/revoke/` confirms a revocation."""

from datetime import timedelta

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from controlplane.api.base import saved_from_form
from controlplane.identity.roles import Role
from controlplane.identity.views import sign_in_first
from controlplane.timestamps import rfc3339
from services.models import Environment
from tokens import lifecycle
from tokens.api import TokenSerializer

FIELDS = ("name", "role", "envIds", "expiresAt")
DEFAULT_LIFETIME = timedelta(days=90)


@never_cache  # the answer to a creation carries the secret: no cache keeps it
@require_http_methods(["GET", "POST"])
def token_list(request):
    principal = request.principal
    if principal is None:
        return sign_in_first(request)
    values = _blank_form(principal)
    errors: dict[str, list[str]] = {}
    issued = None
    if request.method == "POST":
        values = {name: request.POST.get(name, "").strip() for name in ("name", "role", "expiresAt")}
        values["envIds"] = request.POST.getlist("envIds")
        data = {**values, "envIds": values["envIds"] or None}
        serializer = TokenSerializer(data=data)
        token, errors = saved_from_form(serializer)
        if token is not None:
            issued = {"token": token, "secret": serializer.secret}
            values = _blank_form(principal)  # a second click issues nothing unasked
    context = {
        "principal": principal,
        "tokens": lifecycle.visible(principal).order_by("-created_at", "-id"),
        "issued": issued,
        "values": values,
        "errors": errors,
        "other_errors": [m for name, msgs in errors.items() if name not in FIELDS for m in msgs],
        "roles": lifecycle.issuable_roles(principal),
        "environments": Environment.objects.filter(archived_at__isnull=True),  # in promotion order
        "issue_refusal": lifecycle.issue_refusal(principal),
        "sees_all": lifecycle.sees_all(principal),
    }
    return render(request, "tokens/list.html", context)


def _blank_form(principal) -> dict:
    return {
        "name": "",
        "role": str(min(principal.role, Role.DEPLOYER)) if principal.role else "viewer",
        "envIds": [],
        "expiresAt": rfc3339((timezone.now() + DEFAULT_LIFETIME).replace(microsecond=0)),
    }


@require_http_methods(["GET", "POST"])
def token_revoke(request, pk: str):
    """GET: the confirmation. POST: the revocation (tokens.lifecycle)."""
    principal = request.principal
    if principal is None:
        return sign_in_first(request)
    token = get_object_or_404(lifecycle.visible(principal), pk=pk)
    if request.method == "POST":
        lifecycle.revoke(token)
        messages.success(request, f"{token.pk} ({token.name}) is revoked: its next request is refused.")
        return redirect(reverse("tokens:list"))
    return render(request, "tokens/revoke.html", {"principal": principal, "token": token})
