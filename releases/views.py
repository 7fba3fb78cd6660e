"""The pages of `releases` (docs/pages.md): a release with its workflow timeline, a run's log, the create form.
Thin doors: reads by the models' own relations, the create through the REST serializer (so its messages are
the domain's). Deploy and promote, whose confirmations cross apps, are in `overview/actions.py`."""

from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_safe

from controlplane.api.base import saved_from_form
from controlplane.identity.roles import can, refusal
from controlplane.identity.views import refused, sign_in_first
from releases import approval_views, timeline
from releases.api import ReleaseSerializer
from releases.models import Release, RunState, WorkflowRun
from services import promotion


def release_or_404(release_id: str) -> Release:
    """The release with its service and environment (every release page shows them), or a 404."""
    release = Release.objects.select_related("service", "environment").filter(pk=release_id).first()
    if release is None:
        raise Http404(f"No release {release_id}.")
    return release


def _summary_context(request, release: Release) -> dict:
    principal = request.principal
    context = {"release": release, "principal": principal, "request": request}
    context["can_deploy"] = can(principal, "release.deploy")
    context["can_promote"] = can(principal, "release.promote")
    if release.promotable:
        # The next environment first (the one that requires this one, else the one after it in promotion
        # order); none when nothing comes after it, so the form preselects no earlier one.
        environments = list(release.service.environments.all())  # in promotion order, the model's ordering
        following, offered = promotion.promotion_targets(release.environment, environments)
        context["promote_to"] = [(env.pk, env.name) for env in offered]
        context["promote_next"] = following.pk if following else None
    return context


def _timeline_context(request, release: Release) -> dict:
    runs = timeline.runs(release, with_logs=True)
    return {"release": release, "runs": list(runs), "request": request, "Running": RunState.RUNNING}


@require_safe
def release_detail(request, release_id):
    if request.principal is None:
        return sign_in_first(request)
    release = release_or_404(release_id)
    context = _summary_context(request, release) | _timeline_context(request, release)
    return render(request, "releases/release.html", context)


@require_safe
def release_summary(request, release_id):
    """The release's summary card alone: live.js fetches it again when an audit event names the release. Signed
    out (a session that expired under an open page), a 401: the sign-in page is no card to put in its place."""
    if request.principal is None:
        return HttpResponse(status=401)
    return render(request, "releases/_summary.html", _summary_context(request, release_or_404(release_id)))


@require_safe
def release_timeline(request, release_id):
    """The workflow timeline alone, fetched again like the summary (a run started or ended); a 401 signed out."""
    if request.principal is None:
        return HttpResponse(status=401)
    return render(request, "releases/_timeline.html", _timeline_context(request, release_or_404(release_id)))


def _run_context(request, run_id) -> dict:
    run = WorkflowRun.objects.select_related("release").prefetch_related(timeline.LOGS).filter(pk=run_id).first()
    if run is None:
        raise Http404(f"No workflow run {run_id}.")
    context = {"run": run, "principal": request.principal, "Running": RunState.RUNNING}
    if run.approvals_required:  # a run that asked for approvals: its panel (one query more, for those runs only)
        context["approval"] = approval_views.panel_context(request.principal, run)
    return context


@require_safe
def run_detail(request, run_id):
    """`/runs/<id>/`: the run, its approvals when it asked for some, its log. `?fragment=live`: the part live.js
    fetches again when an event names the run or its release (a decision, the start, the end)."""
    live = request.GET.get("fragment") == "live"
    if request.principal is None:
        return HttpResponse("Sign in again.", status=401) if live else sign_in_first(request)
    context = _run_context(request, run_id)
    return render(request, "releases/_run_live.html" if live else "releases/run.html", context)


FORM_FIELDS = ("serviceId", "envId", "sha", "version")


@require_http_methods(["GET", "HEAD", "POST"])
def release_new(request):
    """The create-release form, through the REST serializer: its messages, by field, are the domain's."""
    if request.principal is None:
        return sign_in_first(request)
    allowed = can(request.principal, "release.create")
    values = {name: request.GET.get(name, "") for name in FORM_FIELDS}
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        if not allowed:
            return refused(request, "release.create")
        values = {name: request.POST.get(name, "").strip() for name in FORM_FIELDS}
        release, errors = saved_from_form(ReleaseSerializer(data=values))
        if release is not None:
            return redirect("releases:release", release_id=release.pk)
        status = 400
    context = {"principal": request.principal, "values": values, "errors": errors, "allowed": allowed}
    context["refusal"] = None if allowed else refusal(request.principal, "release.create")
    return render(request, "releases/new.html", context, status=status)
