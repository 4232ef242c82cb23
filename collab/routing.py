"""Websocket URL routes (see docs/protocol.md). Any id reaches the consumer, which refuses unknown ones (4404)."""

from django.urls import re_path

from collab.consumers import SessionConsumer

websocket_urlpatterns = [
    re_path(r"^ws/sessions/(?P<session_id>[^/]{1,64})/$", SessionConsumer.as_asgi()),
]
