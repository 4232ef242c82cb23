"""One computation per key at a time (decodes and renders), shared by requests and the read-ahead."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

T = TypeVar("T")


class SingleFlight:
    """At most one computation per key at a time: a second caller for the same key waits for the
    first one's result (or its error) instead of doing the work again.

    Scrolling asks for the same slice from several places at once: the browser's requests in flight
    and the read-ahead (a fifth of the renders of the viewer's loading pattern were done twice).
    """

    def __init__(self) -> None:
        self._running: dict[object, Future[object]] = {}
        self._lock = threading.Lock()

    def run(self, key: object, work: Callable[[], T]) -> T:
        with self._lock:
            running = self._running.get(key)
            if running is None:
                mine: Future[object] = Future()
                self._running[key] = mine
        if running is not None:
            return running.result()  # type: ignore[return-value]
        try:
            result = work()
            mine.set_result(result)
            return result
        except BaseException as exc:
            mine.set_exception(exc)
            raise
        finally:
            with self._lock:
                del self._running[key]

    def __contains__(self, key: object) -> bool:
        return key in self._running


IN_FLIGHT = SingleFlight()
