"""Deploy and promote from the dashboard, each behind a confirmation that says what will happen
(`overview.previews`, which crosses releases, incidents and the read model: hence here, not in `releases`).

GET: the confirmation (`overview.previews`, which asks `releases.workflows`). POST (CSRF; the deployer role,
checked here whatever the page showed): the workflow function, then to the release page (the new release's,
for a promotion), which follows the run live. The domain's refusals (409 conflicts, 400 messages) are shown
on the confirmation page, never a 500. Each request goes one way into the domain and back.
"""

from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_http_methods

from controlplane import converters  # noqa: F401 - registers <id:…>
from controlplane.errors import Conflict, describe, race_conflict
from controlplane.identity.roles import can, refusal
from controlplane.identity.views import refused, sign_in_first
from overview import previews
from releases import workflows
from releases.views import release_or_404


def _attempt(request, action: str, start, release, environment_id=""):
    """The door into the domain and back: the workflow function, then to the release page (the new release's,
    for a promotion); or its refusal (the domain's message and status) on the confirmation page."""
    try:
        run = start()
    except ValidationError as error:
        problem, status = describe(error), 400
    except Conflict as error:
        problem, status = str(error), 409
    except IntegrityError as error:
        race = race_conflict(error)
        if race is None:
            raise
        problem, status = str(race), 409
    else:
        return redirect("releases:release", release_id=run.release_id)
    return _page(request, None, action, problem, status, environment_id, release)


def _page(request, preview, action, error=None, status=200, environment_id="", release=None):
    if error is None and preview is not None and preview.refusal:
        # The domain would refuse it as things stand: say so, and offer no button (as a POST would be a 409).
        error, status = preview.refusal, 409
    context = {
        "principal": request.principal,
        "preview": preview,
        "release": preview.release if preview else release,
        "action": action,
        "allowed": can(request.principal, f"release.{action}"),
        "refusal": refusal(request.principal, f"release.{action}"),
        "error": error,
        "environment_id": environment_id,
    }
    return render(request, "releases/confirm.html", context, status=status)


@require_http_methods(["GET", "HEAD", "POST"])
def deploy(request, release_id):
    if request.principal is None:
        return sign_in_first(request)
    if request.method == "POST" and not can(request.principal, "release.deploy"):
        return refused(request, "release.deploy")
    release = release_or_404(release_id)
    if request.method == "POST":
        return _attempt(request, "deploy", lambda: workflows.deploy(release), release)
    return _page(request, previews.deploy_preview(release), "deploy")


@require_http_methods(["GET", "HEAD", "POST"])
def promote(request, release_id):
    if request.principal is None:
        return sign_in_first(request)
    if request.method == "POST" and not can(request.principal, "release.promote"):
        return refused(request, "release.promote")
    release = release_or_404(release_id)
    environment_id = (request.POST if request.method == "POST" else request.GET).get("envId", "").strip()
    if request.method == "POST":
        return _attempt(request, "promote", lambda: workflows.promote(release, environment_id), release, environment_id)
    try:  # the confirmation says what the POST would answer, a 400 included
        preview = previews.promote_preview(release, environment_id)
    except ValidationError as error:
        return _page(request, None, "promote", describe(error), 400, environment_id, release)
    return _page(request, preview, "promote", environment_id=environment_id)


urlpatterns = [
    path("releases/<id:release_id>/deploy/", deploy, name="deploy"),
    path("releases/<id:release_id>/promote/", promote, name="promote"),
]
