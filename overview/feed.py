"""The live streams' change feed: one per web process, however many streams are open.

While anyone listens, one task on the server's event loop reads what was appended since it last looked (new
audit events; new log entries of the runs someone follows) and hands each item to every subscriber that
wants it, in memory. An extra stream costs a queue, not a query.

How it learns of a change: SQLite cannot notify, so the feed looks every `pollSeconds` (one indexed range
query, empty when nothing is new). On PostgreSQL every append-only table notifies at commit
(`controlplane/triggers.py`) and the feed LISTENs, so an event reaches streams as soon as it commits, with
polling kept only as a slow safety net. LISTEN/NOTIFY rather than Redis pub/sub: the notification is sent
by the database in the same transaction as the row, so a writer that dies between its commit and a
publish cannot lose one, and it needs no server beyond the database.

Its database work runs in one thread of its own, never in a request's thread or on the event loop.
"""

import asyncio
import contextlib
import contextvars
import json
import logging
import operator
import signal
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import reduce

import psycopg
from django.conf import settings
from django.db import connection
from django.db.models import Q

from audit.filtersets import FIELDS as AUDIT_FIELDS
from audit.mirror import line as audit_line
from audit.models import AuditEvent
from audit.models import trail_head as audit_head
from controlplane.timestamps import rfc3339
from controlplane.triggers import APPENDED_CHANNEL
from releases.models import FINISHED_STATES, RunLogEntry, WorkflowRun

log = logging.getLogger(__name__)

BATCH = 500
BEHIND_LIMIT = 2000  # items a stream may fall behind by; then it ends, and its client resumes from the database
SAFETY_POLL_SECONDS = 5.0  # PostgreSQL: a look without a notification, in case the listener missed one
STATE_CHECK_EVERY = 20  # ticks: ended runs are found from their audit event, and by this check besides


def sse(kind: str, data: str, event_id: int | None = None) -> bytes:
    """One Server-Sent Event; `data` is JSON text (no newlines)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {data}\n\n".encode()


@dataclass(frozen=True)
class Item:
    kind: str  # "audit" or "log"
    id: int
    frame: bytes
    run_id: str | None  # a log entry's run; for an audit event, the run its metadata names (a run's end)
    fields: dict  # an audit event's values of the fields its filters read (audit.filtersets.FIELDS)


def audit_item(event: AuditEvent) -> Item:
    # The same record as the JSON Lines mirror (and the audit list), hash included.
    frame = sse("audit", audit_line(event).decode().strip(), event.seq)
    fields = {f: getattr(event, f) for f in AUDIT_FIELDS}
    return Item("audit", event.seq, frame, (event.metadata or {}).get("runId"), fields)


def log_item(entry: RunLogEntry) -> Item:
    data = {"ts": rfc3339(entry.ts), "level": entry.level, "message": entry.message, "meta": entry.meta}
    return Item("log", entry.pk, sse("log", json.dumps(data, separators=(",", ":")), entry.pk), entry.run_id, {})


def end_frame(state: str) -> bytes:
    return sse("end", json.dumps({"state": state}, separators=(",", ":")))


BEHIND = object()  # queued when a stream fell too far behind: it ends, and its client resumes
CLOSING = object()  # queued when the server is stopping: it ends, and its client reconnects to another


class Subscription:
    """One open stream: the audit trail (only the events `audit_match` admits, made from the audit list's
    filters by audit.filtersets.matches), or one run's log."""

    def __init__(self, audit_match: Callable[[dict], bool] | None = None, run_id: str | None = None):
        self.audit_match = audit_match or (lambda fields: True)
        self.run_id = run_id
        self.queue: asyncio.Queue = asyncio.Queue()
        self.behind = False

    def wants(self, item: Item) -> bool:
        if self.run_id is not None:
            return item.kind == "log" and item.run_id == self.run_id
        return item.kind == "audit" and self.audit_match(item.fields)

    def offer(self, entry) -> None:
        if self.behind:
            return
        if self.queue.qsize() >= BEHIND_LIMIT:
            self.behind = True
            entry = BEHIND
        self.queue.put_nowait(entry)


_subscribed = 0  # subscriptions of every feed in this process (changed on event loops, read anywhere)


def subscriptions() -> int:
    return _subscribed


# --- The feed ---


class ChangeFeed:
    def __init__(self):
        self.subscribers: set[Subscription] = set()
        self.audit_seq = 0  # the last audit event handed out
        self.run_seen: dict[str, int] = {}  # per followed run: the last log entry handed out
        self.task: asyncio.Task | None = None
        self.starting = asyncio.Lock()
        self.wake = asyncio.Event()
        self.listening = False  # PostgreSQL: notifications wake us, polling is only the safety net
        self.check_runs = False  # read every followed run's state on the next look
        self.executor: ThreadPoolExecutor | None = None

    async def _db(self, fn, *args):
        if self.executor is None:  # a thread (and a connection) of its own while anyone listens
            self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="change-feed")
        return await asyncio.get_running_loop().run_in_executor(self.executor, _closing_on_error, fn, *args)

    async def subscribe(self, sub: Subscription) -> None:
        """From this call's return on, `sub` is handed every item after `self.audit_seq` (an audit stream)
        or after `self.run_seen[run]` (a log stream); what came before is in the database."""
        _end_streams_on_stop()
        if stopping:
            sub.offer(CLOSING)
        async with self.starting:
            if self.task is None:
                self.audit_seq = await self._db(audit_head)
            if sub.run_id is not None and sub.run_id not in self.run_seen:
                self.run_seen[sub.run_id] = await self._db(log_head, sub.run_id)
            self._count(sub, +1)
            if self.task is None:
                self.task = asyncio.create_task(self._run(), context=contextvars.Context())

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self.subscribers:
            self._count(sub, -1)
        if sub.run_id is not None and not any(s.run_id == sub.run_id for s in self.subscribers):
            self.run_seen.pop(sub.run_id, None)
        if not self.subscribers and self.task is not None:
            self._stop()

    def _count(self, sub: Subscription, change: int) -> None:
        global _subscribed
        (self.subscribers.add if change > 0 else self.subscribers.discard)(sub)
        _subscribed += change

    def _stop(self) -> None:
        """Nobody listens: the task ends, and its thread closes its connection and goes. At once, not at
        the task's next look: the event loop may be gone by then (a test client's is)."""
        self.task.cancel()
        self.task, self.listening = None, False
        self.executor.submit(_close_connection)
        self.executor.shutdown(wait=False)
        self.executor = None

    async def _run(self) -> None:
        listener = asyncio.create_task(self._listen()) if connection.vendor == "postgresql" else None
        ticks, failing = 0, False
        try:
            # Until _stop(): it cancels this task, but one that was about to run again must not read on
            # (nor start another thread) after its feed stopped.
            while self.task is asyncio.current_task():
                ticks += 1
                check_all, self.check_runs = self.check_runs or ticks % STATE_CHECK_EVERY == 0, False
                try:
                    news = await self._db(_collect, self.audit_seq, dict(self.run_seen), check_all)
                    self._hand_out(news)
                except Exception:  # the feed must outlive any one failure, or every stream goes quiet
                    if not failing:
                        log.exception("the change feed could not read or hand out; trying again every second")
                    failing = True
                    await asyncio.sleep(1)
                    continue
                if failing:
                    log.warning("the change feed reads again")
                    failing = False
                if not news.more:
                    await self._wait()
        finally:
            if listener is not None:
                listener.cancel()

    def _hand_out(self, news: "News") -> None:
        if news.events:
            self.audit_seq = news.events[-1].id
        # A run followed since this look began may have ended in it: its state is read next time.
        self.check_runs |= any(e.run_id in self.run_seen and e.run_id not in news.run_seen for e in news.events)
        for run_id, seen in news.run_seen.items():
            if run_id in self.run_seen:  # still followed
                self.run_seen[run_id] = max(self.run_seen[run_id], seen)
        for sub in list(self.subscribers):
            for item in news.logs if sub.run_id is not None else news.events:
                if sub.wants(item):
                    sub.offer(item)
            if sub.run_id in news.ended:
                sub.offer(end_frame(news.ended[sub.run_id]))

    async def _wait(self) -> None:
        poll = settings.CONTROLPLANE_STREAMS["pollSeconds"]
        timeout = max(poll, SAFETY_POLL_SECONDS) if self.listening else poll
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), timeout)
        self.wake.clear()

    async def _listen(self) -> None:
        """PostgreSQL: wake the feed whenever an append commits. Reconnects after a lost connection; until
        then the feed polls at the usual pace."""
        # Django's own connection parameters (OPTIONS included: sslmode and the like), less its sync classes.
        params = {k: v for k, v in connection.get_connection_params().items() if k not in ("cursor_factory", "context")}
        params.setdefault("connect_timeout", 10)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(**params, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {APPENDED_CHANNEL}")
                    self.listening = True
                    self.wake.set()  # anything committed before LISTEN took effect
                    async for _ in conn.notifies():
                        self.wake.set()
            except (psycopg.Error, OSError):
                self.listening = False
                log.warning("the change feed lost its PostgreSQL listener; reconnecting in 1 s")
                await asyncio.sleep(1)


def _closing_on_error(fn, *args):
    try:
        return fn(*args)
    except Exception:
        _close_connection()  # a broken connection is replaced on the next call
        raise


def _close_connection() -> None:
    connection.close()  # the calling thread's (the feed's)


def log_head(run_id: str) -> int:
    return RunLogEntry.objects.filter(run_id=run_id).order_by("-pk").values_list("pk", flat=True).first() or 0


@dataclass
class News:
    events: list[Item]
    logs: list[Item]
    run_seen: dict[str, int]  # per followed run, the last log entry read
    ended: dict[str, str]  # followed runs that have ended, and their state
    more: bool  # a batch was full: look again at once


def _collect(audit_after: int, runs: dict[str, int], check_all_runs: bool) -> News:
    """What was appended since the feed last looked: audit events after `audit_after`; for each followed run,
    its log entries after the last one handed out (per run: on PostgreSQL, ids of different runs' entries
    may commit out of order); and which followed runs have ended."""
    events = [audit_item(e) for e in AuditEvent.objects.filter(seq__gt=audit_after).order_by("seq")[:BATCH]]
    if not runs:
        return News(events, [], {}, {}, len(events) == BATCH)
    # A run ends in the transaction that audits its release's move, naming the run.
    candidates = set(runs) if check_all_runs else set(runs) & {e.run_id for e in events}
    # The state is read before the log, so an end is never handed out ahead of the entries written before it.
    ended = (
        dict(WorkflowRun.objects.filter(pk__in=candidates).filter(state__in=FINISHED_STATES).values_list("pk", "state"))
        if candidates
        else {}
    )
    after_seen = reduce(operator.or_, (Q(run_id=run_id, pk__gt=last) for run_id, last in runs.items()))
    logs = [log_item(e) for e in RunLogEntry.objects.filter(after_seen).order_by("pk")[:BATCH]]
    seen = dict(runs)
    for item in logs:
        seen[item.run_id] = item.id
    full = len(logs) == BATCH
    if full:
        ended = {}  # no run ends before the rest of its log is out
    return News(events, logs, seen, ended, full or len(events) == BATCH)


_feeds: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ChangeFeed]" = weakref.WeakKeyDictionary()

# --- Stopping: streams end at once, rather than hold the server until its graceful-shutdown timeout ---

stopping = False
_hooked_signals = False


def _end_streams_on_stop() -> None:
    """On the signals that stop the server, every open stream ends (its client reconnects, to another
    process), so the server can close its connections at once instead of cancelling them after its timeout.
    The server's own handler still runs. Only a loop on the main thread (an ASGI server run by itself,
    uvicorn say) can take signals; elsewhere (a test client's event loop) this does nothing, and
    `manage.py web`, whose loop runs on a thread of its worker, calls end_all_streams itself."""
    global _hooked_signals
    if _hooked_signals or threading.current_thread() is not threading.main_thread():
        return
    _hooked_signals = True
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(signum)

        def on_stop(signum, frame, previous=previous):
            loop.call_soon_threadsafe(end_all_streams)
            if callable(previous):
                previous(signum, frame)

        signal.signal(signum, on_stop)


def on_server_stopping(sender, **kwargs) -> None:
    end_all_streams()


def end_all_streams() -> None:
    """On an event loop of this process: every open stream ends, and streams opened from now on end at once."""
    global stopping
    stopping = True
    for feed in list(_feeds.values()):
        for sub in list(feed.subscribers):
            sub.offer(CLOSING)


def feed() -> ChangeFeed:
    """This process's feed (one per event loop: a server has one)."""
    loop = asyncio.get_running_loop()
    if loop not in _feeds:
        _feeds[loop] = ChangeFeed()
    return _feeds[loop]
