"""The pages of `incidents` (docs/pages.md): the list with its filters, create, acknowledge and resolve.

A thin door: the list reads through IncidentFilterSet, a create goes through the REST serializer (so its
messages are the domain's), acknowledge and resolve through incidents.lifecycle, each after a confirmation."""

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_safe

from controlplane.api.base import saved_from_form
from controlplane.errors import Conflict
from controlplane.identity.roles import can
from controlplane.identity.views import refused, sign_in_first
from controlplane.keyset import Keyset
from incidents import lifecycle
from incidents.api import IncidentSerializer
from incidents.filtersets import IncidentFilterSet
from incidents.models import Incident, IncidentStatus, Severity

PAGE_SIZE = 50
CREATE_FIELDS = ("serviceId", "severity", "title", "link", "startedAt")
# The moves the pages offer: (domain function, target status, permission, verb). Which an incident allows
# is its own say (`allowed_moves`), which a principal may make the permission table's.
MOVES = {
    "acknowledge": (lifecycle.acknowledge, IncidentStatus.ACKNOWLEDGED, "incident.acknowledge", "Acknowledge"),
    "resolve": (lifecycle.resolve, IncidentStatus.RESOLVED, "incident.resolve", "Resolve"),
}


def _offered(principal, incident: Incident) -> list[tuple[str, str]]:
    """(URL name, verb) of each move the incident allows now and the principal may make, in MOVES' order."""
    return [
        (f"incidents:{move}", verb)
        for move, (_, target, action, verb) in MOVES.items()
        if target in incident.allowed_moves and can(principal, action)
    ]


# Newest first; "Older" is the next page's signed cursor (an odd one reads as the first page).
NEWEST_FIRST = Keyset(Incident, ("-started_at", "-id"), "page:incidents")


def _page(request) -> dict:
    """One page of the filtered list, newest first: `before` is the cursor of the page's last row."""
    params = request.GET.copy()
    before = params.pop("before", [""])[-1]
    filterset = IncidentFilterSet(params, queryset=Incident.objects.all())
    rows, paged, older = [], False, ""
    if filterset.is_valid():
        page, paged = NEWEST_FIRST.page_from(filterset.qs, PAGE_SIZE, before)
        rows, older = page.rows, page.next_cursor() or ""
    query = params.urlencode()
    if older:
        params["before"] = older
        older = f"?{params.urlencode()}"
    return {
        "filterset": filterset,
        "form": filterset.form,
        "incidents": rows,
        "older": older,
        "paged": paged,
        "query": query,
        "fragment": reverse("incidents:fragment") + (f"?{request.GET.urlencode()}" if request.GET else ""),
        "severities": Severity.values,
        "statuses": IncidentStatus.values,
    }


def _context(request, **extra) -> dict:
    principal = request.principal
    page = _page(request)
    for incident in page["incidents"]:
        incident.offered_moves = _offered(principal, incident)
    return {
        "principal": principal,
        "can_create": can(principal, "incident.create"),
        "can_move": any(can(principal, action) for _, _, action, _ in MOVES.values()),
        **page,
        **extra,
    }


@require_safe
def incident_list(request):
    if request.principal is None:
        return sign_in_first(request)
    return render(request, "incidents/list.html", _context(request))


@require_safe
def incident_fragment(request):
    """The list's table alone, which live.js fetches again when an incident event arrives."""
    if request.principal is None:
        return HttpResponse(status=401)
    return render(request, "incidents/_table.html", _context(request))


@require_http_methods(["GET", "POST"])
def incident_create(request):
    principal = request.principal
    if principal is None:
        return sign_in_first(request)
    if not can(principal, "incident.create"):
        return refused(request, "incident.create")
    values = {"serviceId": "", "severity": "high", "title": "", "link": "", "startedAt": ""}
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        values = {name: request.POST.get(name, "").strip() for name in CREATE_FIELDS}
        data = {name: value for name, value in values.items() if value or name == "serviceId"}
        incident, errors = saved_from_form(IncidentSerializer(data=data))
        if incident is not None:
            messages.success(request, f"{incident.pk} ({incident.severity}, {incident.service_id}) is triggered.")
            return redirect(f"{reverse('incidents:list')}#{incident.pk}")
    context = {
        "principal": principal,
        "values": values,
        "errors": errors,
        "other_errors": [m for name, msgs in errors.items() if name not in CREATE_FIELDS for m in msgs],
        "severities": Severity.values,
    }
    # 200 with the messages, as Django's forms do (a 400 reads as a failed load in the browser's console).
    return render(request, "incidents/create.html", context)


@require_http_methods(["GET", "POST"])
def incident_move(request, pk: str, move: str):
    """GET: the confirmation, saying what will happen. POST: the move, through incidents.lifecycle."""
    principal = request.principal
    if principal is None:
        return sign_in_first(request)
    do, target, action, verb = MOVES[move]
    if not can(principal, action):
        return refused(request, action)
    incident = get_object_or_404(Incident, pk=pk)
    problem, status = "", 200
    if request.method == "POST":
        try:
            do(incident)
        except Conflict as conflict:
            problem, status = str(conflict), 409
            incident.refresh_from_db()
        else:
            messages.success(request, f"{incident.pk} moved to {incident.status}.")
            return redirect(f"{reverse('incidents:list')}#{incident.pk}")
    elif refusal := incident.move_refusal(target):
        problem, status = refusal, 409
    context = {
        "principal": principal,
        "incident": incident,
        "target": target,
        "verb": verb,
        "problem": problem,
    }
    return render(request, "incidents/confirm.html", context, status=status)
