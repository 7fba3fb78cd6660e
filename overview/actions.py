"""Deploy and promote from the dashboard, each behind a confirmation that says what will happen
(`overview.previews`, which crosses releases, incidents and the read model: hence here, not in `releases`).

GET: the confirmation. POST (CSRF; the deployer role, checked here whatever the page showed): the workflow
function, then to the release page (the new release's, for a promotion), which follows the run live. The
domain's refusals (409 conflicts, 400 messages) are shown on the confirmation page, never a 500.
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


def _attempt(start) -> tuple[object, str | None, int]:
    """(run, None, 302) when the workflow started, else (None, the domain's message, its status)."""
    try:
        return start(), None, 302
    except ValidationError as error:
        return None, describe(error), 400
    except Conflict as error:
        return None, str(error), 409
    except IntegrityError as error:
        race = race_conflict(error)
        if race is None:
            raise
        return None, str(race), 409


def _page(request, preview, action, error=None, status=200, environment_id=""):
    if error is None and preview is not None and preview.refusal:
        # The domain would refuse it as things stand: say so, and offer no button (as a POST would be a 409).
        error, status = preview.refusal, 409
    context = {
        "principal": request.principal,
        "preview": preview,
        "release": preview.release if preview else None,
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
    if request.method != "POST":
        return _page(request, previews.deploy_preview(release), "deploy")
    run, error, status = _attempt(lambda: workflows.deploy(release))
    if run is not None:
        return redirect("releases:release", release_id=release.pk)
    return _page(request, previews.deploy_preview(release_or_404(release_id)), "deploy", error, status)


@require_http_methods(["GET", "HEAD", "POST"])
def promote(request, release_id):
    if request.principal is None:
        return sign_in_first(request)
    if request.method == "POST" and not can(request.principal, "release.promote"):
        return refused(request, "release.promote")
    release = release_or_404(release_id)
    data = request.POST if request.method == "POST" else request.GET
    environment_id = data.get("envId", "").strip()
    try:
        environment = workflows.promotion_target(environment_id)
        if request.method != "POST":  # the confirmation says what the POST would answer, a 400 included
            preview = previews.promote_preview(release, environment, checked=True)
            return _page(request, preview, "promote", environment_id=environment_id)
    except ValidationError as error:
        return _page(request, None, "promote", describe(error), 400, environment_id)
    run, error, status = _attempt(lambda: workflows.promote(release, environment))
    if run is not None:
        return redirect("releases:release", release_id=run.release_id)
    preview = previews.promote_preview(release_or_404(release_id), environment)
    return _page(request, preview, "promote", error, status, environment_id)


urlpatterns = [
    path("releases/<id:release_id>/deploy/", deploy, name="deploy"),
    path("releases/<id:release_id>/promote/", promote, name="promote"),
]
