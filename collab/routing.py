"""Websocket URL routes (see docs/protocol.md). Any id reaches the consumer, which refuses unknown ones (4404).

Any other path is accepted and closed at once with 4404, as an unknown session is: without the last
route, Channels' router raises for an unmatched path, which the server logs as a traceback and
answers with HTTP 500.
"""

from typing import Any

from django.urls import re_path

from collab.consumers import SessionConsumer

NOT_FOUND = 4404


async def no_such_path(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Accept the handshake, close with 4404, and wait for the client's disconnect."""
    while True:
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": NOT_FOUND})
        elif message["type"] == "websocket.disconnect":
            return


websocket_urlpatterns = [
    re_path(r"^ws/sessions/(?P<session_id>[^/]{1,64})/$", SessionConsumer.as_asgi()),
    re_path(r"", no_such_path),  # type: ignore[arg-type]  # an ASGI app, as Channels routes take
]
