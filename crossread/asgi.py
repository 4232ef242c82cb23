"""ASGI entry point: HTTP through Django, websockets through Channels' router."""

import gc
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crossread.settings")
django.setup(set_prefix=False)

from django.urls import get_resolver  # noqa: E402

from crossread.bodies import SpoolingASGIHandler  # noqa: E402

# Django's handler (as get_asgi_application gives it), spooling request bodies in large writes.
django_asgi_app = SpoolingASGIHandler()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from collab.routing import websocket_urlpatterns  # noqa: E402
from crossread.health import HealthRoutes  # noqa: E402
from crossread.security import SameOriginWebsockets  # noqa: E402
from crossread.sqlite import checkpoint_in_background  # noqa: E402
from crossread.staticfiles import StaticFiles  # noqa: E402
from viewer.fastpath import FastImageRoutes  # noqa: E402

# A commit never pays for an SQLite checkpoint in a server process (see crossread.sqlite).
checkpoint_in_background()

images = FastImageRoutes(django_asgi_app)

application = ProtocolTypeRouter(
    {
        # The health checks (crossread.health), static files (crossread.staticfiles, WhiteNoise) and
        # rendered images (viewer.fastpath) skip the middleware chain; the rest is plain Django.
        "http": HealthRoutes(StaticFiles(images, images.security_headers)),
        # Handshakes only from this site's pages (scheme, host and port); unknown paths close with 4404.
        "websocket": SameOriginWebsockets(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)

# The URLs and every view module are imported now, not by the first request (half a second, paid by
# whoever came first after a start: measured on a STOW-RS request).
get_resolver().url_patterns  # noqa: B018

# Everything imported so far (Django, the apps, pydicom, numpy) lives as long as the process: moved out
# of the collector's reach, a full collection walks only what requests and sockets allocate. Measured
# with 50 readers in a session (bench/collab.py): full collections paused a process 73-131 ms before,
# 12-33 ms after, and one of them falls in a load run's 20 s.
gc.freeze()
