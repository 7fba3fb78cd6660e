"""The pages of `audit` (docs/pages.md): the audit stream, newest first, with the list's filters.

A thin door: the rows are AuditEventFilterSet's; new events arrive in the browser from live.js's stream and
audit.js adds those the page's filters admit. Without JavaScript it is a plain paged list."""

import json
from urllib.parse import urlencode

from django.shortcuts import render
from django.views.decorators.http import require_safe

from audit.filtersets import PARAMS, AuditEventFilterSet
from audit.models import AuditEvent
from controlplane.identity.views import sign_in_first
from controlplane.keyset import Keyset

PAGE_SIZE = 50
# Newest first; "Older" is the next page's signed cursor (an odd one reads as the first page).
NEWEST_FIRST = Keyset(AuditEvent, ("-seq",), "page:audit")
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


@require_safe
def audit_list(request):
    if request.principal is None:
        return sign_in_first(request)
    params = request.GET.copy()
    before = params.pop("before", [""])[-1]
    filterset = AuditEventFilterSet(params, queryset=AuditEvent.objects.all())
    rows, paged, older = [], False, ""
    if filterset.is_valid():
        page, paged = NEWEST_FIRST.page_from(filterset.qs, PAGE_SIZE, before)
        rows = page.rows
        older = page.next_cursor() or ""
    query = params.urlencode()
    if older:
        params["before"] = older
        older = f"?{params.urlencode()}"
    applied = filterset.form.cleaned_data if filterset.is_valid() else {}
    context = {
        "principal": request.principal,
        "form": filterset.form,
        "values": {name: request.GET.get(name, "") for name in PARAMS},
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
        "paged": paged,
        "valid": filterset.is_valid(),
        "query": query,
    }
    return render(request, "audit/list.html", context)
