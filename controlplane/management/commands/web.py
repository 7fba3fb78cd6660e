"""Serve the control plane over HTTP with uvicorn (ASGI): the one web server, for `make run` and production.

Streams are async views, so an open stream costs a queue, not a thread; ordinary views run in Django's
thread pool. Uvicorn's own lines (startup, access) go through Django's LOGGING, so they are redacted like
every other line. Proxy headers are left to Django (`SECURE_PROXY_SSL_HEADER`): uvicorn would otherwise
trust `X-Forwarded-Proto` from loopback clients without being told to.
"""

import uvicorn
from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils.module_loading import import_string

from controlplane.portcheck import split_addrport

GRACEFUL_SHUTDOWN_SECONDS = 5  # open streams are cut after this; clients reconnect with Last-Event-ID


class Command(BaseCommand):
    help = __doc__.splitlines()[0]
    requires_system_checks = []  # checked once here, not again by each uvicorn worker process

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default=f"127.0.0.1:{settings.PORT}")
        parser.add_argument(
            "--workers", type=int, default=None, help="web processes (default: WEB_CONCURRENCY, or 1 with DEBUG on)"
        )

    def handle(self, *args, addrport, workers, **options):
        self.check(display_num_errors=False)
        # Loaded here first, so a configuration mistake is one line and a non-zero exit from this process
        # (controlplane.startup), before uvicorn starts any worker process.
        import_string(settings.ASGI_APPLICATION)
        host, port = split_addrport(addrport)
        uvicorn.run(
            "controlplane.asgi:application",
            host=host,
            port=port,
            workers=workers or settings.WEB_CONCURRENCY,
            log_config=None,  # Django's LOGGING, applied when the application loads
            lifespan="off",  # Django speaks no ASGI lifespan
            proxy_headers=False,
            server_header=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        )
