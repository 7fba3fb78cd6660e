import os

from django.core.wsgi import get_wsgi_application

from controlplane.startup import load

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
application = load(get_wsgi_application)
