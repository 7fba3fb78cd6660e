"""Loading the ASGI/WSGI application with a configuration mistake reported as one line."""

import sys

from django.core.exceptions import ImproperlyConfigured

# Exit status for "this application cannot start": gunicorn's arbiter (`manage.py web`) halts instead of
# restarting a worker that exits with it (its WORKER_BOOT_ERROR), and so does uvicorn's parent.
STARTUP_FAILURE = 3


def load(get_application):
    try:
        return get_application()
    except ImproperlyConfigured as e:
        print(e, file=sys.stderr)
        sys.exit(STARTUP_FAILURE)
