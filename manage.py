#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    from controlplane.identity.context import set_process_actor

    try:
        settings.INSTALLED_APPS  # noqa: B018 - reads the environment (and .env) now, once
    except ImproperlyConfigured as e:
        # A configuration mistake is one line naming the variable, not a traceback.
        sys.exit(f"{e}")

    # Changes made by a command are attributed to system:<command>.
    set_process_actor(sys.argv[1] if len(sys.argv) > 1 else "manage")

    execute_from_command_line(sys.argv)
