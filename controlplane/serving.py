"""The web server: gunicorn's sync worker for ordinary requests, an event loop beside it for the streams.

Ordinary views are sync Django code: served through Django's WSGI handler by gunicorn's sync worker they run
at the framework's floor, which Django's ASGI handler costs about three times over (docs/performance.md,
"Serving"). The live streams are async views holding a connection open for minutes: on a sync worker each
would hold the process. So each worker process runs both. Its main thread accepts a connection, peeks at the
request line without consuming it, and serves it in place unless the path resolves to an async view; such a
connection goes, unread, to an event loop on a thread of the same process, where uvicorn's HTTP protocol
hands it to Django's ASGI handler. One port, one command, one process per worker, the streams' figures kept.
"""

import asyncio
import functools
import gc
import logging
import socket
import threading
import time

from asgiref.sync import iscoroutinefunction
from django.urls import Resolver404, resolve
from gunicorn import glogging
from gunicorn.app.base import BaseApplication
from gunicorn.workers.sync import SyncWorker

from controlplane import signals

GRACEFUL_SHUTDOWN_SECONDS = 5  # open streams are cut after this; clients reconnect with Last-Event-ID
REQUEST_LINE_LIMIT = 8192  # gunicorn's own limit on a request line (limit_request_line's default is 4094)
REQUEST_LINE_WAIT = 10.0  # seconds a client may take to send its request line before the sync path reads it


def request_path(client: socket.socket) -> str | None:
    """The path of the request waiting on `client`, read with MSG_PEEK so the connection is left as it came;
    None when the client sends no request line in time (gunicorn's parser then answers as it would)."""
    deadline = time.monotonic() + REQUEST_LINE_WAIT
    while True:
        data = client.recv(REQUEST_LINE_LIMIT, socket.MSG_PEEK)
        line, found, _ = data.partition(b"\r\n")
        if found or not data or len(data) >= REQUEST_LINE_LIMIT or time.monotonic() > deadline:
            break
        time.sleep(0.001)  # a request line split across packets: rare, and peeking again returns at once
    parts = line.split(b" ")
    if len(parts) != 3:
        return None
    return parts[1].split(b"?", 1)[0].decode("latin-1")


@functools.lru_cache(maxsize=1024)
def is_stream(path: str) -> bool:
    """Whether `path` resolves to an async view (the streams): those are served on the event loop."""
    try:
        return iscoroutinefunction(resolve(path).func)
    except Resolver404:
        return False


class StreamLoop:
    """An event loop on a thread of its own, serving the connections handed to it with uvicorn's protocol."""

    def __init__(self, asgi_app):
        import uvicorn
        from uvicorn.server import ServerState

        self.config = uvicorn.Config(
            asgi_app,
            loop="uvloop",
            http="httptools",
            lifespan="off",  # Django speaks no ASGI lifespan
            log_config=None,  # Django's LOGGING
            proxy_headers=False,  # Django's SECURE_PROXY_SSL_HEADER decides
            server_header=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        )
        self.config.load()
        self.state = ServerState()
        self.loop = None
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), name="streams", daemon=True)
        self.thread.start()
        ready.wait()

    def _run(self, ready):
        import uvloop

        self.loop = uvloop.new_event_loop()
        asyncio.set_event_loop(self.loop)
        ready.set()
        self.loop.run_forever()

    def serve(self, client: socket.socket) -> None:
        """From the accepting thread: the loop serves `client` from now on."""
        self.loop.call_soon_threadsafe(self._serve, client)

    def _serve(self, client):
        client.setblocking(False)
        protocol = functools.partial(
            self.config.http_protocol_class, config=self.config, server_state=self.state, app_state={}
        )
        self.loop.create_task(self.loop.connect_accepted_socket(protocol, sock=client))

    def stop(self) -> None:
        """End the streams, ask every connection to finish, cut what is left after the grace period, stop the
        loop."""
        asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop).result(GRACEFUL_SHUTDOWN_SECONDS + 5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    async def _shutdown(self):
        # The streams end themselves (overview.feed): their clients reconnect, to another process, instead of
        # waiting out the grace period.
        signals.server_stopping.send(sender=StreamLoop)
        for connection in list(self.state.connections):
            connection.shutdown()
        deadline = time.monotonic() + GRACEFUL_SHUTDOWN_SECONDS
        while self.state.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        for task in list(self.state.tasks):
            task.cancel()
        for connection in list(self.state.connections):
            connection.transport.close()


class Worker(SyncWorker):
    """gunicorn's sync worker, with the async views (the streams) passed to a StreamLoop of its own."""

    def init_process(self):
        from controlplane.identity.context import set_process_actor

        # What a web process does outside a request is the web server's.
        set_process_actor("web")
        super().init_process()

    def load_wsgi(self):
        super().load_wsgi()
        from controlplane.asgi import application

        self.streams = StreamLoop(application)
        # What is loaded now lives as long as the process: out of the collector's sight, so no collection during
        # a request walks it again (and none at exit).
        gc.freeze()

    def run(self):
        try:
            super().run()
        finally:
            self.streams.stop()

    def handle(self, listener, client, addr):
        try:
            path = request_path(client)
        except OSError:
            path = None
        if path is not None and is_stream(path):
            self.streams.serve(client)
        else:
            super().handle(listener, client, addr)


class Logger(glogging.Logger):
    """gunicorn's lines (loggers gunicorn.error and gunicorn.access) through Django's LOGGING, as uvicorn's
    lines for the streams are: one format, redacted like every other line."""

    def setup(self, cfg):
        self.cfg = cfg
        for log in (self.error_log, self.access_log):
            log.propagate = True  # to the "gunicorn" logger of settings.LOGGING
            log.setLevel(logging.NOTSET)
        # Read on every request: an access line costs its formatting only when it would be written.
        self._access_log_enabled = self.access_log.isEnabledFor(logging.INFO)


class Server(BaseApplication):
    """gunicorn, configured from `manage.py web`'s arguments instead of its own command line."""

    def __init__(self, options: dict):
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from controlplane.wsgi import application

        return application
