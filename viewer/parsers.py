"""Parser processes: files read and described (:func:`viewer.dicomfile.describe_all`) outside the
request's process, while it reads the next parts and writes the objects.

pydicom holds the interpreter lock while it parses: in the request's thread, a 120-slice series
spends most of its time there and the server's other cores wait. A pool of ``PARSE_PROCESSES``
processes (an option; 0 parses in the request's thread) takes groups of consecutive files; the
ingest reads ahead a bounded number of bytes (:data:`READ_AHEAD_BYTES`) and takes the answers in
order. The processes are started with ``spawn`` (nothing of the server's state is copied into them)
by :func:`warm` at the server's start, or by the first ingest; they import only ``viewer.dicomfile``
(pydicom). Should one die, the pool is made again and the files it held are parsed in the request's
thread.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from crossread.conf import option
from viewer import dicomfile

log = logging.getLogger(__name__)

T = TypeVar("T")

#: A group sent to a process at once closes at this many files or bytes (small files go together: one
#: message for many; a large file goes alone).
GROUP_FILES = 64
GROUP_BYTES = 256 * 1024
#: How many bytes of files are sent ahead of the one the ingest is at (at least one group): with the
#: ingest's batch, what a request holds.
READ_AHEAD_BYTES = 1024 * 1024

_pool: ProcessPoolExecutor | None = None
_lock = threading.Lock()


def pool() -> ProcessPoolExecutor | None:
    """The process's parser pool (made on first use), or None when ``PARSE_PROCESSES`` is 0."""
    global _pool
    processes = int(option("PARSE_PROCESSES"))
    if processes <= 0:
        return None
    with _lock:
        if _pool is None:
            _pool = ProcessPoolExecutor(max_workers=processes, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_start_parser, initargs=(os.getpid(),))
        return _pool


def _start_parser(parent: int) -> None:
    """A parser process's start: values are read without pydicom's validation (it only warns, and took
    a third of a phantom slice's parse and half of a small file's: the descriptions are the same), and
    the process follows its server's."""
    from pydicom import config

    config.settings.reading_validation_mode = config.IGNORE
    _follow_parent(parent)


def _follow_parent(parent: int) -> None:
    """In a parser process: exit when the server process is gone (killed, it cannot say so: the
    process would wait for work for ever)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(0)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


#: How often a parser process checks that its server process is alive.
PARENT_CHECK_SECONDS = 1.0


def warm(timeout: float = 60) -> None:
    """Start the parser processes now and wait until they answer (a server's start), so that the first
    request does not wait for them."""
    executor = pool()
    if executor is not None:
        started = [executor.submit(dicomfile.describe_all, []) for _ in range(int(option("PARSE_PROCESSES")))]
        wait(started, timeout)


def _broken(executor: ProcessPoolExecutor) -> None:
    global _pool
    with _lock:
        if _pool is executor:
            _pool = None
    executor.shutdown(wait=False, cancel_futures=True)


Described = dicomfile.Described | dicomfile.Refusal


def described(
    items: Iterable[tuple[str, T]], wanted: int | None = None
) -> Iterator[tuple[str, T, Described | None]]:
    """``items`` in order, each bytes item no larger than ``wanted`` (bytes) with its description made
    by the pool (None for the others, and for every item when there is no pool)."""
    executor = pool()
    if executor is None:
        for name, item in items:
            yield name, item, None
        return
    pending: deque[tuple[list[tuple[str, T]], list[int], Future[list[Described]] | None]] = deque()
    group: list[tuple[str, T]] = []
    group_bytes = 0
    ahead = 0

    def send() -> None:
        nonlocal group, group_bytes, ahead
        positions = [i for i, (_, item) in enumerate(group)
                     if isinstance(item, bytes) and (wanted is None or len(item) <= wanted)]
        future = None
        if positions:
            try:
                future = executor.submit(dicomfile.describe_all, [group[i][1] for i in positions])  # type: ignore[misc]
            except BrokenProcessPool:  # a process died since the last request: parsed here, a new pool next time
                _broken(executor)
        pending.append((group, positions, future))
        ahead += group_bytes
        group, group_bytes = [], 0

    def take() -> Iterator[tuple[str, T, Described | None]]:
        nonlocal ahead
        items_, positions, future = pending.popleft()
        ahead -= sum(len(item) for _, item in items_ if isinstance(item, bytes))
        answers: dict[int, Described] = {}
        if future is not None:
            try:
                answers = dict(zip(positions, future.result(), strict=True))
            except BrokenProcessPool:
                log.warning("ingest: a parser process died; its files are parsed in the request's thread")
                _broken(executor)
        for position, (name, item) in enumerate(items_):
            yield name, item, answers.get(position)

    try:
        for name, item in items:
            group.append((name, item))
            if isinstance(item, bytes):
                group_bytes += len(item)
            if len(group) >= GROUP_FILES or group_bytes >= GROUP_BYTES:
                send()
                while pending and ahead > READ_AHEAD_BYTES:
                    yield from take()
        if group:
            send()
        while pending:
            yield from take()
    finally:
        for _, _, future in pending:
            if future is not None:
                future.cancel()
