"""ASGI entry point: HTTP through Django (the EA heartbeat through its lean path), WebSockets through Channels."""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Under ASGI each request runs its sync code in a fresh thread-sensitive context, so a persistent
# connection (CONN_MAX_AGE) is never reused: every request would open a new PostgreSQL connection
# (~10 ms). The web process therefore uses a psycopg pool unless DATABASE_POOL_MAX says otherwise.
os.environ.setdefault("DATABASE_POOL_MAX", "8")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.urls import get_resolver  # noqa: E402
from django.utils.module_loading import import_string  # noqa: E402

from config.routing import websocket_urlpatterns  # noqa: E402

# As MIDDLEWARE does for Django's stack: each ASGI_HTTP_MIDDLEWARE entry wraps the ones after it, so an app that
# serves a path ahead of Django (the EA heartbeat, mt5bridge/ea/fast.py) is named in settings and this entry
# point, at the bottom layer, imports no app.
http_application = django_asgi_app
for middleware in reversed(settings.ASGI_HTTP_MIDDLEWARE):
    http_application = import_string(middleware)(http_application)

application = ProtocolTypeRouter(
    {
        "http": http_application,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)

# Everything loaded so far (Django, the apps, the URL map) lives as long as the process: moved out of the
# collector's generations, a full collection no longer walks it. Walking those ~220,000 objects took 83 ms on
# an idle machine, every few hundred requests, and showed as the tail latency of every request that waited.
URL_PATTERNS = get_resolver().url_patterns  # the URL map and its views, loaded now, not on the first request
gc.freeze()
