"""Serve the control plane over HTTP: the one web server, for `make run` and production.

gunicorn's sync worker serves the ordinary views through Django's WSGI handler, and each worker process runs
an event loop for the streams beside it (controlplane/serving.py; the figures that decided it are in
docs/performance.md). gunicorn's own lines (startup, access) go through Django's LOGGING, so they are redacted
like every other line.
"""

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils.module_loading import import_string

from controlplane.portcheck import split_addrport
from controlplane.serving import GRACEFUL_SHUTDOWN_SECONDS, Server

REQUEST_TIMEOUT = 120


class Command(BaseCommand):
    help = __doc__.splitlines()[0]
    requires_system_checks = []  # checked once here, not again by each worker process

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default=f"127.0.0.1:{settings.PORT}")
        parser.add_argument(
            "--workers", type=int, default=None, help="web processes (default: WEB_CONCURRENCY, or 1 with DEBUG on)"
        )

    def handle(self, *args, addrport, workers, **options):
        self.check(display_num_errors=False)
        # Loaded here first, so a configuration mistake is one line and a non-zero exit from this process
        # (controlplane.startup), before gunicorn starts any worker process.
        import_string(settings.WSGI_APPLICATION)
        import_string(settings.ASGI_APPLICATION)
        host, port = split_addrport(addrport)
        Server(
            {
                "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
                "workers": workers or settings.WEB_CONCURRENCY,
                "worker_class": "controlplane.serving.Worker",
                "logger_class": "controlplane.serving.Logger",
                # A request the sync worker spends longer on than this is cut and its worker restarted (the
                # streams, on the event loop, are not requests of the worker).
                "timeout": REQUEST_TIMEOUT,
                "graceful_timeout": GRACEFUL_SHUTDOWN_SECONDS + 5,
                "proc_name": "controlplane-web",
                "control_socket_disable": True,  # no socket in $HOME: `serve` and signals manage the server
            }
        ).run()
