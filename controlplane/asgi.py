import os

from django.core.asgi import get_asgi_application

from controlplane.startup import load

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
application = load(get_asgi_application)
