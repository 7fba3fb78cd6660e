import os

from django.core.asgi import get_asgi_application

from controlplane.identity.context import set_process_actor
from controlplane.startup import load

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
application = load(get_asgi_application)
# What a web process does outside a request is the web server's (an ASGI server run by itself, uvicorn say,
# starts here, not through manage.py, which names the command; `manage.py web`'s workers name it too).
set_process_actor("web")
