"""Deploy and promote from the dashboard, each behind a confirmation that says what will happen
(`overview.previews`, which crosses releases, incidents and the read model: hence here, not in `releases`).

GET: the confirmation (`overview.previews`, which asks `releases.workflows` and the policy gate). POST (CSRF;
the deployer role, checked here whatever the page showed): the workflow function, then to the release page (the
new release's, for a promotion), which follows the run live. The domain's refusals (409 conflicts, policy
refusals with their decision, 400 messages, 403 for break-glass by a role not allowed it) are shown on the
page, never a 500. Each request goes one way into the domain and back.

Rollback (`/services/<id>/rollback/?envId=`): a confirmation naming the release current there and the one it
restores, a reason, optionally an earlier Active release to restore; then `releases.rollback.rollback`.

Break-glass (`…/deploy/break-glass/`, `…/promote/break-glass/?envId=`): a confirmation of its own, offered when
the policies refuse, break-glass overrides every denial and the principal's role may use it
(`policies.gate.break_glass_refusal`); it asks for the reason and posts the action with `break_glass={"reason": …}`.
"""

from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_http_methods

from controlplane import converters  # noqa: F401 - registers <id:…>
from controlplane.errors import Conflict, describe, race_conflict
from controlplane.governance import Forbidden, PolicyDenied
from controlplane.identity.roles import can, refusal
from controlplane.identity.views import refused, sign_in_first
from controlplane.models import ID_PATTERN
from overview import previews
from policies import gate
from releases import rollback, workflows
from releases.models import Release
from releases.views import release_or_404
from services.models import Environment, Service


def _run(start):
    """The workflow function: (its run, None), or (None, (problem, status)) for the domain's refusal."""
    try:
        return start(), None
    except ValidationError as error:
        return None, (error, 400)
    except Forbidden as error:
        return None, (str(error), 403)
    except PolicyDenied as error:
        error.settle()  # its audit event, if the gate still owes it
        return None, (str(error), 409)
    except Conflict as error:
        return None, (str(error), 409)
    except IntegrityError as error:
        race = race_conflict(error)
        if race is None:
            raise
        return None, (str(race), 409)


def _attempt(request, action: str, start, release, environment_id=""):
    """The door into the domain and back: the workflow function, then to the release page (the new release's,
    for a promotion); or its refusal (the domain's message and status) on the confirmation page."""
    run, problem = _run(start)
    if run is not None:
        return redirect("releases:release", release_id=run.release_id)
    error, status = problem
    return _page(request, None, action, describe(error) if status == 400 else error, status, environment_id, release)


def _page(request, preview, action, error=None, status=200, environment_id="", release=None):
    if error is None and preview is not None and preview.refusal:
        # The domain would refuse it as things stand: say so, and offer no button (as a POST would be a 409).
        error, status = preview.refusal, 409
    elif error is None and preview is not None and not preview.decision.allowed:
        status = 409  # the policies refuse it: the decision instead of a button, as a POST would be a 409
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


def _preview(action: str, release, environment_id: str) -> previews.Preview:
    """The action's preview (for a promotion, the ValidationError the POST would raise for its `envId`)."""
    if action == "deploy":
        return previews.deploy_preview(release)
    return previews.promote_preview(release, environment_id)


def _starter(action: str, release, environment_id: str, break_glass: dict | None = None):
    if action == "deploy":
        return lambda: workflows.deploy(release, break_glass=break_glass)
    return lambda: workflows.promote(release, environment_id, break_glass=break_glass)


@require_http_methods(["GET", "HEAD", "POST"])
def confirmation(request, release_id, action):
    """`…/deploy/` and `…/promote/?envId=`: GET the confirmation, POST the action."""
    if request.principal is None:
        return sign_in_first(request)
    if request.method == "POST" and not can(request.principal, f"release.{action}"):
        return refused(request, f"release.{action}")
    release = release_or_404(release_id)
    environment_id = _environment_id(request) if action == "promote" else ""
    if request.method == "POST":
        return _attempt(request, action, _starter(action, release, environment_id), release, environment_id)
    try:  # the confirmation says what the POST would answer, a 400 included
        preview = _preview(action, release, environment_id)
    except ValidationError as error:
        return _page(request, None, action, describe(error), 400, environment_id, release)
    return _page(request, preview, action, environment_id=environment_id)


def _environment_id(request) -> str:
    return (request.POST if request.method == "POST" else request.GET).get("envId", "").strip()


@require_http_methods(["GET", "HEAD", "POST"])
def break_glass(request, release_id, action):
    """`…/deploy/break-glass/`, `…/promote/break-glass/?envId=`: what the policies refuse, the reason asked for,
    then the action with break-glass. The domain decides (its 400, 403 and 409 are shown on this page)."""
    if request.principal is None:
        return sign_in_first(request)
    if not can(request.principal, f"release.{action}"):
        return refused(request, f"release.{action}")
    release = release_or_404(release_id)
    environment_id = _environment_id(request) if action == "promote" else ""
    reason = request.POST.get("reason", "") if request.method == "POST" else ""
    if request.method == "POST":
        run, problem = _run(_starter(action, release, environment_id, {"reason": reason}))
        if run is not None:
            return redirect("releases:release", release_id=run.release_id)
        error, status = problem
    else:
        error, status = None, 200
    try:
        preview = _preview(action, release, environment_id)
    except ValidationError as invalid:
        preview, error, status = None, error or invalid, 400
    if error is None and preview.refusal:
        error, status = preview.refusal, 409
    elif error is None and preview.decision.allowed:
        error, status = None, 200  # nothing to override: the page says so and links to the ordinary confirmation
    elif error is None and not preview.decision.overridable:
        error, status = "break-glass overrides windows, freezes, incident gates and promotion order only.", 409
    elif error is None and (refused_to := gate.break_glass_refusal(request.principal)):
        error, status = refused_to, 403
    field_errors = []
    if isinstance(error, ValidationError):
        field_errors = error.message_dict.get("breakGlass", []) if hasattr(error, "error_dict") else []
        error = None if field_errors else describe(error)
    context = {
        "principal": request.principal,
        "preview": preview,
        "release": release,
        "action": action,
        "environment_id": environment_id,
        "error": error,
        "reason": reason,
        "reason_errors": field_errors,
        "reason_length": gate.BREAK_GLASS_REASON,
        "offered": error is None and preview is not None and preview.may_break_glass,
    }
    return render(request, "releases/break_glass.html", context, status=status)


# --- rollback ---

ROLLBACK_CHOICES = 20  # the earlier Active releases offered to restore, newest first


def _rollback_environment(service: Service, environment_id: str) -> Environment | None:
    known = ID_PATTERN.fullmatch(environment_id)  # PostgreSQL refuses a NUL byte in a query
    return Environment.objects.filter(pk=environment_id).first() if known else None


def _rollback_sentence(service: Service, environment: Environment, current: Release, restored: Release) -> str:
    """ "svc-demo in env-prod goes from 2024.10.03 (b7e4d21) back to 2024.10.02 (9f3b7de)"."""
    return (
        f"{service.pk} in {environment.pk} goes from {current.version} ({current.sha[:7]}) "
        f"back to {restored.version} ({restored.sha[:7]})"
    )


@require_http_methods(["GET", "HEAD", "POST"])
def rollback_confirmation(request, service_id):
    """`/services/<id>/rollback/?envId=[&toReleaseId=]`: GET the confirmation naming both releases (and the
    earlier Active releases to choose from), POST `releases.rollback.rollback` with the reason, then to the new
    release's page, which follows the run. The domain's refusals (409 nothing to roll back or not a release to
    restore, 400 the reason, a policy's refusal) are shown on this page."""
    if request.principal is None:
        return sign_in_first(request)
    if request.method == "POST" and not can(request.principal, "rollback"):
        return refused(request, "rollback")
    service = Service.objects.filter(pk=service_id).first()
    if service is None:
        raise Http404(f"No service {service_id}.")
    data = request.POST if request.method == "POST" else request.GET
    environment_id = data.get("envId", "").strip()
    to = data.get("toReleaseId", "").strip()
    reason = request.POST.get("reason", "") if request.method == "POST" else ""
    context = {
        "principal": request.principal,
        "service": service,
        "environment_id": environment_id,
        "to": to,
        "reason": reason,
        "reason_errors": [],
        "reason_length": rollback.REASON,
        "allowed": can(request.principal, "rollback"),
        "refusal": refusal(request.principal, "rollback"),
        "error": None,
    }
    environment = _rollback_environment(service, environment_id)
    if environment is None:
        unknown = f"unknown environment {environment_id!r}." if environment_id else "is required."
        context["error"] = f"envId: {unknown}"
        return render(request, "overview/rollback.html", context, status=400)
    if to and not ID_PATTERN.fullmatch(to):
        context["error"] = f"toReleaseId: {to!r} is not a release id."
        return render(request, "overview/rollback.html", context, status=400)
    context["environment"] = environment
    status = 200
    if request.method == "POST":
        run, problem = _run(lambda: rollback.rollback(service, environment, reason, to or None))
        if run is not None:
            return redirect("releases:release", release_id=run.release_id)
        error, status = problem
        if isinstance(error, ValidationError):
            fields = error.message_dict if hasattr(error, "error_dict") else {}
            context["reason_errors"] = fields.get("reason", [])
            error = None if context["reason_errors"] else describe(error)
        context["error"] = error
    try:  # the confirmation says what the POST would answer as things stand
        current, restored = rollback.targets(service, environment, to or None)
    except Conflict as nothing:
        current = restored = None
        if context["error"] is None:
            context["error"], status = str(nothing), 409
    if context["error"] is None and (busy := workflows.busy(service.pk, environment.pk)):
        context["error"], status = busy, 409
    context["current"], context["restored"] = current, restored
    if current is not None:
        context["sentence"] = _rollback_sentence(service, environment, current, restored)
        context["choices"] = list(
            Release.objects.filter(service=service, environment=environment, status=Release.Status.ACTIVE)
            .exclude(pk=current.pk)
            .order_by("-activated_at", "-id")[:ROLLBACK_CHOICES]
        )
        context["default"] = next((r.pk for r in context["choices"] if r.superseded_by_id == current.pk), None)
    context["offered"] = context["allowed"] and current is not None and status in (200, 400)
    return render(request, "overview/rollback.html", context, status=status)


urlpatterns = [
    path("services/<id:service_id>/rollback/", rollback_confirmation, name="rollback"),
    path("releases/<id:release_id>/deploy/", confirmation, {"action": "deploy"}, name="deploy"),
    path("releases/<id:release_id>/promote/", confirmation, {"action": "promote"}, name="promote"),
    path("releases/<id:release_id>/deploy/break-glass/", break_glass, {"action": "deploy"}, name="deploy-break-glass"),
    path(
        "releases/<id:release_id>/promote/break-glass/", break_glass, {"action": "promote"}, name="promote-break-glass"
    ),
]
