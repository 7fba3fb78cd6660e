"""The pages of `audit` (docs/pages.md): the audit stream, newest first, with the list's filters.

A thin door: the rows are AuditEventFilterSet's; new events arrive in the browser from live.js, on the audit
stream the page names (its filters, matched by the server), and audit.js adds them with the links this module
says. Without JavaScript it is a plain paged list."""

import json
from urllib.parse import quote, urlencode

from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_safe

from audit.filtersets import PARAMS, AuditEventFilterSet, what_is_new
from audit.models import AuditEvent, trail_head
from controlplane.identity.views import sign_in_first
from controlplane.keyset import Keyset
from controlplane.timestamps import rfc3339

PAGE_SIZE = 50
# Newest first; "Older" is the next page's signed cursor (an odd one reads as the first page).
NEWEST_FIRST = Keyset(AuditEvent, ("-seq",), "page:audit")
# Where an event's subject (by its type), its service and its run have their pages: URL templates of the
# event's fields as the stream names them, filled in here for the rows the page renders and by audit.js (from
# data-pages) for the events that arrive live.
PAGES = {
    "subject": {
        "Service": "/services/{subjectId}/",
        "Release": "/releases/{subjectId}/",
        "Environment": "/environments/{subjectId}/",
        "Incident": "/incidents/?serviceId={serviceId}#{subjectId}",
    },
    "service": "/services/{serviceId}/",
    "run": "/runs/{runId}/",
}


def fill(template: str, fields: dict) -> str:
    # Each value quoted as the script's encodeURIComponent quotes it, so both make the same link.
    return template.format(**{name: quote(value or "", safe="!'()*") for name, value in fields.items()})


def run_of(event: AuditEvent) -> str:
    """The workflow run a deploy.create or release.promote started (its page is /runs/<id>/)."""
    run_id = event.metadata.get("runId") if isinstance(event.metadata, dict) else None
    return run_id if isinstance(run_id, str) else ""


def links(event: AuditEvent) -> dict:
    """The hrefs of an event's subject, service and run, each "" when it has no page."""
    fields = {"subjectId": event.subject_id, "serviceId": event.service_id, "runId": run_of(event)}
    subject = PAGES["subject"].get(event.subject_type)
    return {
        "subject": fill(subject, fields) if subject else "",
        "service": fill(PAGES["service"], fields) if event.service_id else "",
        "run": fill(PAGES["run"], fields) if fields["runId"] else "",
    }


def live(applied: dict, after: int) -> dict | None:
    """What the first page's script is handed, as data attributes, for the events still to come: the audit
    stream with the page's exact filters (the server matches them), resuming after `after`, the trail's head
    when the page read it (the script connects a moment later: what was recorded in between arrives too), the
    window [start, end) its since and until leave for a new event's time ("" where unbounded), and the pages'
    URL templates. None when no new event can match (the page's until has passed): the page is not live."""
    new = what_is_new(applied, timezone.now())
    if new is None:
        return None
    return {
        "stream": f"{reverse('audit-stream')}?{urlencode({**new.stream_query, 'after': after})}",
        "start": rfc3339(new.start) or "",
        "end": rfc3339(new.end) or "",
        "pages": json.dumps(PAGES),
    }


@require_safe
def audit_list(request):
    if request.principal is None:
        return sign_in_first(request)
    params = request.GET.copy()
    before = params.pop("before", [""])[-1]
    filterset = AuditEventFilterSet(params, queryset=AuditEvent.objects.all())
    rows, paged, older, head = [], False, "", 0
    if filterset.is_valid():
        # Read before the rows: an event recorded in between is listed and streamed (audit.js shows it once).
        head = trail_head()
        page, paged = NEWEST_FIRST.page_from(filterset.qs, PAGE_SIZE, before)
        rows = page.rows
        older = page.next_cursor() or ""
    query = params.urlencode()
    if older:
        params["before"] = older
        older = f"?{params.urlencode()}"
    context = {
        "principal": request.principal,
        "form": filterset.form,
        "values": {name: request.GET.get(name, "") for name in PARAMS},
        "live": live(filterset.form.cleaned_data, head) if filterset.is_valid() and not paged else None,
        "events": [(event, links(event), run_of(event)) for event in rows],
        "older": older,
        "paged": paged,
        "query": query,
    }
    return render(request, "audit/list.html", context)
