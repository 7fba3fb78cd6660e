"""Server-Sent Events: a run's log as it is written, and the audit trail as it grows.

Each stream is a long-lived response that polls the database; it holds one server thread, so serve
with threads (runserver does; in production gunicorn `--worker-class gthread --threads N`) and other
requests are never stalled behind a stream. Clients resume after a reconnect with `Last-Event-ID`.
"""

import json
import time

from django.db import close_old_connections
from django.http import JsonResponse, StreamingHttpResponse
from django.views.decorators.http import require_safe

from audit.mirror import line as audit_line
from audit.models import AuditEvent
from controlplane.api.params import resume_point, resume_point_refusal
from controlplane.identity.roles import can
from controlplane.timestamps import rfc3339
from releases.models import RunLogEntry, RunState, WorkflowRun

POLL_SECONDS = 0.25
KEEPALIVE_SECONDS = 15
MAX_STREAM_SECONDS = 600  # then the client reconnects with Last-Event-ID and carries on


def _refused(request):
    if request.principal is None:
        response = JsonResponse({"detail": "Authentication credentials were not provided."}, status=401)
        response["WWW-Authenticate"] = 'Bearer realm="controlplane"'
        return response
    if not can(request.principal, "read"):
        return JsonResponse({"detail": "read needs the viewer role."}, status=403)
    return None


def _resume_from(request, default: int = 0) -> int:
    return resume_point(request, default)  # checked first: a malformed one is refused by resume_point_refusal


def _event(kind: str, data, event_id=None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _stream(generate):
    response = StreamingHttpResponse(generate(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # proxies must not hold events back
    return response


def _polling(fetch, until_done=lambda: False):
    """Yield what `fetch(after)` returns, as it appears, with keep-alives, until done or too long."""

    def generate(after):
        started = quiet_since = time.monotonic()
        try:
            while time.monotonic() - started < MAX_STREAM_SECONDS:
                done = until_done()  # read before fetching, so nothing written before the end is missed
                batch = fetch(after)
                for event_id, kind, data in batch:
                    after = event_id
                    yield _event(kind, data, event_id)
                if batch:
                    quiet_since = time.monotonic()
                if done and not batch:
                    return
                if time.monotonic() - quiet_since > KEEPALIVE_SECONDS:
                    yield b": keep-alive\n\n"
                    quiet_since = time.monotonic()
                time.sleep(POLL_SECONDS)
        finally:
            close_old_connections()

    return generate


@require_safe
def run_log(request, run_id):
    refused = _refused(request) or resume_point_refusal(request)
    if refused:
        return refused
    run = WorkflowRun.objects.filter(pk=run_id).first()
    if run is None:
        return JsonResponse({"detail": "No such workflow run."}, status=404)

    def fetch(after):
        entries = RunLogEntry.objects.filter(run_id=run_id, pk__gt=after).order_by("pk")[:500]
        return [
            (e.pk, "log", {"ts": rfc3339(e.ts), "level": e.level, "message": e.message, "meta": e.meta})
            for e in entries
        ]

    def finished():
        return WorkflowRun.objects.filter(pk=run_id).exclude(state=RunState.RUNNING).exists()

    poll = _polling(fetch, finished)

    def generate():
        yield from poll(_resume_from(request))
        state = WorkflowRun.objects.filter(pk=run_id).values_list("state", flat=True).first()
        if state != RunState.RUNNING:
            yield _event("end", {"state": state})

    return _stream(generate)


@require_safe
def audit_events(request):
    refused = _refused(request) or resume_point_refusal(request)
    if refused:
        return refused
    latest = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0

    def fetch(after):
        return [
            (e.seq, "audit", json.loads(audit_line(e)))
            for e in AuditEvent.objects.filter(seq__gt=after).order_by("seq")[:500]
        ]

    # A new subscriber starts at the tail; a reconnecting one resumes where it left off.
    poll = _polling(fetch)
    return _stream(lambda: poll(_resume_from(request, default=latest)))
