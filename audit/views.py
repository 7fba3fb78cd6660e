"""The pages of `audit` (docs/pages.md): the audit stream, newest first, with the list's filters.

A thin door: the rows are AuditEventFilterSet's; new events arrive in the browser from live.js's stream and
audit.js adds those the page's filters admit. Without JavaScript it is a plain paged list."""

import json
from urllib.parse import urlencode

from django.shortcuts import render
from django.views.decorators.http import require_safe

from audit.filtersets import AuditEventFilterSet
from audit.models import AuditEvent
from controlplane.identity.views import sign_in_first

PAGE_SIZE = 50
FILTERS = ("actor", "action", "subjectType", "subjectId", "serviceId", "since", "until")
# Where an event's subject has its page (audit.js keeps the same table for events that arrive live).
SUBJECT_PAGES = {"Service": "/services/{}/", "Release": "/releases/{}/", "Environment": "/environments/{}/"}


def subject_page(event: AuditEvent) -> str:
    if event.subject_type == "Incident":
        query = urlencode({"serviceId": event.service_id}) if event.service_id else ""
        return f"/incidents/?{query}#{event.subject_id}"
    page = SUBJECT_PAGES.get(event.subject_type)
    return page.format(event.subject_id) if page else ""


def run_of(event: AuditEvent) -> str:
    """The workflow run a deploy.create or release.promote started (its page is /runs/<id>/)."""
    run_id = event.metadata.get("runId") if isinstance(event.metadata, dict) else None
    return run_id if isinstance(run_id, str) else ""


def _before(value: str) -> int | None:
    """The "Older" key: a sequence number in ASCII digits (str.isdigit admits "²", which int() refuses), else
    None (the first page)."""
    return int(value) if value.isascii() and value.isdigit() else None


@require_safe
def audit_list(request):
    if request.principal is None:
        return sign_in_first(request)
    params = request.GET.copy()
    before = _before(params.pop("before", [""])[-1])
    filterset = AuditEventFilterSet(params, queryset=AuditEvent.objects.order_by("-seq"))
    rows, more = [], False
    if filterset.is_valid():
        queryset = filterset.qs
        if before is not None:
            queryset = queryset.filter(seq__lt=before)
        rows = list(queryset[: PAGE_SIZE + 1])
        more, rows = len(rows) > PAGE_SIZE, rows[:PAGE_SIZE]
    query = params.urlencode()
    older = ""
    if more:
        params["before"] = str(rows[-1].seq)
        older = f"?{params.urlencode()}"
    applied = filterset.form.cleaned_data if filterset.is_valid() else {}
    context = {
        "principal": request.principal,
        "form": filterset.form,
        "values": {name: request.GET.get(name, "") for name in FILTERS},
        # What audit.js matches incoming events against: only the filters that applied, as the list read them.
        "live_filters": json.dumps(
            {
                name: (value.isoformat() if hasattr(value, "isoformat") else value)
                for name, value in applied.items()
                if value not in (None, "")
            }
        ),
        "events": [(event, subject_page(event), run_of(event)) for event in rows],
        "older": older,
        "paged": before is not None,
        "valid": filterset.is_valid(),
        "query": query,
    }
    return render(request, "audit/list.html", context)
