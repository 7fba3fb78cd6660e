"""Loading the WSGI/ASGI application with a configuration mistake reported as one line."""

import sys

from django.core.exceptions import ImproperlyConfigured


def load(get_application):
    try:
        return get_application()
    except ImproperlyConfigured as e:
        if "gunicorn" in sys.modules:
            # gunicorn prints an AppImportError as its message alone and stops (a traceback otherwise).
            from gunicorn.errors import AppImportError

            raise AppImportError(str(e)) from None
        raise
