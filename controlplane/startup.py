"""Loading the ASGI/WSGI application with a configuration mistake reported as one line."""

import gc
import sys

from django.core.exceptions import ImproperlyConfigured

# Exit status for "this application cannot start": gunicorn's arbiter (`manage.py web`) halts instead of
# restarting a worker that exits with it (its WORKER_BOOT_ERROR), and so does uvicorn's parent.
STARTUP_FAILURE = 3


def load(get_application):
    try:
        application = get_application()
        from django.urls import get_resolver

        get_resolver().url_patterns  # every view imported now, not by the first request  # noqa: B018
    except ImproperlyConfigured as e:
        print(e, file=sys.stderr)
        sys.exit(STARTUP_FAILURE)
    settle()
    return application


def settle() -> None:
    """What a server process holds once loaded (Django, the apps, the URLconf, the schemas: some 130,000 objects)
    lives as long as the process: taken out of the garbage collector's walks (gc.freeze). Otherwise each full
    collection, every thousand requests or so, walks all of it (90 ms then), and younger collections scan more:
    0.1 ms of an index request's 1.4 on average (docs/performance.md, "Serving")."""
    gc.collect()
    gc.freeze()
