"""Server-Sent Events: a run's log as it is written, and the audit trail as it grows.

Streams are async views: an open stream waits on a queue that the process's change feed (`overview/feed.py`)
fills, so it holds no thread, no database connection and no query of its own while it waits. On connect it
sends its headers, a `retry:` hint, the id it starts after and a comment at once; from then on the client
misses nothing: it gets what it asked to resume after (`Last-Event-ID` or `?after=`) from the database, then
what the feed hands out.
Each principal may hold `CONTROLPLANE_STREAMS_PER_PRINCIPAL` streams per process (429 beyond), all together
`CONTROLPLANE_STREAMS_MAX` (503 beyond).
"""

import asyncio
import os

from asgiref.sync import SyncToAsync, sync_to_async
from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.http import require_safe

from audit import filtersets as audit_filters
from audit.models import AuditEvent
from controlplane.api.params import RESUME_QUERY, resume_point, stream_refusal
from controlplane.identity import apitokens
from controlplane.identity.roles import can, refusal
from controlplane.keyset import Keyset, Position
from overview import feed as changes
from overview.limits import Place, admit, open_streams
from releases.models import FINISHED_STATES, RunLogEntry, WorkflowRun

RETRY_MS = 3000  # how long a client waits before reconnecting after a stream ends
KEEPALIVE = b": keep-alive\n\n"


def _refused(request, takes=(), where="this endpoint"):
    """401 or 403 for who is asking, then a 400 for the query (`controlplane.api.params`), or None."""
    if request.principal is None:
        response = JsonResponse({"detail": "Authentication credentials were not provided."}, status=401)
        response["WWW-Authenticate"] = 'Bearer realm="controlplane"'
        return response
    if not can(request.principal, "read"):
        return JsonResponse({"detail": refusal(request.principal, "read")}, status=403)
    return stream_refusal(request, takes, where)


def _beyond(resumed: tuple[str, int] | None, head: int, what: str) -> JsonResponse | None:
    """A resume point past the last id there is: no id the stream sent, so whatever comes next would never
    be sent either (it is not after the point). A 400 naming the parameter, as for a malformed one."""
    if resumed is None or resumed[1] <= head:
        return None
    name, _ = resumed
    return JsonResponse({name: [f"is after {what} ({head}): resume from an id the stream sent."]}, status=400)


def _over_limit(which: str) -> JsonResponse:
    limits = settings.CONTROLPLANE_STREAMS
    if which == "principal":
        detail = f"At most {limits['perPrincipal']} open streams per principal; close one, or retry later."
        response = JsonResponse({"detail": detail}, status=429)
    else:
        detail = "This server holds as many streams as it may; retry later."
        response = JsonResponse({"detail": detail}, status=503)
    response["Retry-After"] = str(int(limits["keepaliveSeconds"]) or 1)  # when closed streams have been noticed
    return response


def _headers(response):
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # proxies must not hold events back
    return response


def _let_go() -> None:
    """Close the request thread's database connection (the middleware's, the catch-up's): a stream may stay
    open for minutes and must not hold one while it waits. Inside a test's transaction it stays."""
    if not connection.in_atomic_block:
        connection.close()


def _release_request_thread() -> None:
    """Let the request's own thread go. Under ASGI, Django runs a request's sync code (middleware, the
    catch-up) in a thread kept for that request until it ends (asgiref's ThreadSensitiveContext): for a
    stream, for as long as it is open. Its work is done by now; sync code later in the request (Django
    closing the response) gets a new one, which asgiref creates on demand. Were asgiref to change these
    names, a stream would merely keep its thread (tests/workflows/test_streams.py counts them)."""
    contexts = getattr(SyncToAsync, "context_to_thread_executor", None)
    current = getattr(SyncToAsync, "thread_sensitive_context", None)
    context = current.get(None) if current is not None else None
    if contexts is None or context is None or getattr(context, "_executor", None) is not None:
        return  # no thread of its own, or one its owner manages
    executor = contexts.pop(context, None)
    if executor is not None:
        executor.shutdown(wait=False)


# A stream's catch-up reads the one pagination's order and batches (controlplane.keyset), from a resume point
# that stays a plain id: Server-Sent Events' Last-Event-ID is the client's, not a cursor this server signs.
LOG_ORDER = Keyset(RunLogEntry, ("id",), "stream:log")
TRAIL_ORDER = Keyset(AuditEvent, ("seq",), "stream:audit")


async def _pages(read_page, after: int):
    """(id, frame) pairs from `read_page(after)`, a page of at most BATCH at a time, so a client resuming
    far back is streamed its backlog without it all in memory."""
    while True:
        page = await sync_to_async(read_page)(after)
        for pair in page:
            yield pair
        if len(page) < changes.BATCH:
            return
        after = page[-1][0]


def preamble(start: int) -> bytes:
    """What a stream sends on connect: the reconnection delay, the id it starts after (a block without data
    is no event, but sets the client's last event id: an idle stream that ends resumes from here, not from
    the tail) and a comment."""
    return f"retry: {RETRY_MS}\nid: {start}\n: connected\n\n".encode()


def _open(request, subscription, start_of, catch_up):
    """The streaming response, or the refusal when a limit is reached. `start_of(feed)` is the id the
    stream starts after; `catch_up(start)` yields, as (id, frame) pairs, what the database holds after it,
    then (None, end frame) when nothing more will come. Read after subscribing, the catch-up overlaps what
    the feed hands out, never leaves a gap; the overlap is skipped by id."""
    if request.method == "HEAD":
        return _headers(HttpResponse(content_type="text/event-stream"))
    principal = request.principal.actor
    which = admit(principal)
    if which:
        return _over_limit(which)
    response = _headers(StreamingHttpResponse(content_type="text/event-stream"))
    place = Place(principal, response)
    response.streaming_content = _events(subscription, start_of, catch_up, place, request.principal)
    return response


async def _events(subscription, start_of, catch_up, place, principal):
    limits = settings.CONTROLPLANE_STREAMS
    feed = changes.feed()
    try:
        await feed.subscribe(subscription)  # before the first byte: once connected, nothing is missed
        sent = start_of(feed)
        yield preamble(sent)
        async for event_id, frame in catch_up(sent):
            yield frame
            if event_id is None:
                return
            sent = event_id
        await sync_to_async(_let_go)()
        _release_request_thread()  # from here on the stream is a coroutine waiting on its queue
        deadline = asyncio.get_running_loop().time() + limits["maxSeconds"]
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            try:
                item = await asyncio.wait_for(subscription.queue.get(), min(limits["keepaliveSeconds"], left))
            except TimeoutError:
                # An API token revoked (or expired) since the stream opened ends it here, within a keep-alive.
                if principal.token_id is not None and not await _still_valid(principal):
                    return
                yield KEEPALIVE  # a client that left is noticed when this write fails
                continue
            if item is changes.BEHIND or item is changes.CLOSING:
                return  # the client reconnects with Last-Event-ID and reads on from the database
            if isinstance(item, bytes):  # the run's end
                yield item
                return
            if item.id > sent:  # the catch-up may have read it already
                sent = item.id
                yield item.frame
    finally:
        feed.unsubscribe(subscription)
        place.give_back()


async def _still_valid(principal) -> bool:
    def ask():
        try:
            return apitokens.still_valid(principal)
        finally:
            connection.close()  # a pool thread's: the stream holds no connection while it waits

    return await sync_to_async(ask, thread_sensitive=False)()


@require_safe
async def run_log(request, id):
    run_id = id  # the path names every resource's own id `id`
    refused = _refused(request, (RESUME_QUERY,), "a run's log stream")
    if refused:
        return refused
    if not await WorkflowRun.objects.filter(pk=run_id).aexists():
        return JsonResponse({"detail": "No such workflow run."}, status=404)
    resumed = resume_point(request)
    if resumed and resumed[1]:
        beyond = _beyond(resumed, await sync_to_async(changes.log_head)(run_id), "the run's last log entry")
        if beyond:
            return beyond
    after = resumed[1] if resumed else 0  # by default the whole log

    async def catch_up(start):
        # The state first: every entry written before the run ended is read after it.
        state = await sync_to_async(_run_state)(run_id)

        def read_page(after):
            entries = LOG_ORDER.rows(RunLogEntry.objects.filter(run_id=run_id), changes.BATCH, Position([after]))
            return [(e.pk, changes.log_item(e).frame) for e in entries]

        async for pair in _pages(read_page, start):
            yield pair
        if state in FINISHED_STATES:
            yield None, changes.end_frame(state)

    return _open(request, changes.Subscription(run_id=run_id), lambda feed: after, catch_up)


def _run_state(run_id: str) -> str:
    return WorkflowRun.objects.filter(pk=run_id).values_list("state", flat=True).first()


@require_safe
async def audit_events(request):
    # `since` filters the list, not a stream of what is new: refused, not silently ignored.
    refused = _refused(request, (*audit_filters.STREAM_PARAMS, RESUME_QUERY), "the audit stream")
    if refused:
        return refused
    wanted = {param: request.GET[param] for param in audit_filters.STREAM_PARAMS if param in request.GET}
    # The list's own filters: in SQL for the catch-up, and the same definition matched in memory for the feed.
    filterset = audit_filters.AuditEventFilterSet(wanted, queryset=AuditEvent.objects.all())
    if not filterset.is_valid():
        return JsonResponse({k: [str(m) for m in v] for k, v in filterset.errors.items()}, status=400)
    events = filterset.qs
    resumed = resume_point(request)
    if resumed and resumed[1]:
        beyond = _beyond(resumed, await sync_to_async(changes.audit_head)(), "the audit trail's head")
        if beyond:
            return beyond

    def start_of(feed):
        # A new subscriber starts at the tail (the feed's position); a reconnecting one after its id.
        return resumed[1] if resumed else feed.audit_seq

    async def catch_up(start):
        def read_page(after):
            return [
                (e.seq, changes.audit_item(e).frame) for e in TRAIL_ORDER.rows(events, changes.BATCH, Position([after]))
            ]

        async for pair in _pages(read_page, start):
            yield pair

    match = audit_filters.matches(filterset.form.cleaned_data)
    return _open(request, changes.Subscription(audit_match=match), start_of, catch_up)


@require_safe
def status(request):
    """The caller's open streams in this web process and the limits; for admins, the process's own figures too
    (all its open streams, its change feed's subscriptions, its pid): operational internals, not a viewer's."""
    refused = _refused(request, (), "the streams' status")
    if refused:
        return refused
    total, by_principal = open_streams()
    limits = settings.CONTROLPLANE_STREAMS
    answer = {
        "yours": by_principal.get(request.principal.actor, 0),
        "perPrincipalLimit": limits["perPrincipal"],
        "serverLimit": limits["max"],
    }
    if can(request.principal, "admin.access"):
        answer |= {"open": total, "subscriptions": changes.subscriptions(), "pid": os.getpid()}
    return JsonResponse(answer)
