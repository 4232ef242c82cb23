"""SQLite in a server process: WAL checkpoints in a background thread, not in a request's commit.

In WAL mode SQLite appends each commit to the ``-wal`` file and, by default, the commit that takes the
WAL past 1,000 pages also copies it back into the database and syncs both files to disk (an automatic
checkpoint). Measured on this project's machine: one live annotation in 61 (about 16 pages each, its
indexes and its audit row included) took 16-21 ms instead of 3 ms, and which commit pays is chance: in
``bench/collab.py`` it was an annotation everyone was waiting for.

A server process (``crossread/asgi.py`` calls :func:`checkpoint_in_background`) turns the automatic
checkpoint off on its own connections to a database file and runs a passive checkpoint every
:data:`CHECKPOINT_SECONDS` in a thread with a connection of its own. Passive checkpoints never wait for
readers or writers, and SQLite releases the GIL while it copies and syncs, so no request waits for
them. Other processes (management commands, tests) keep SQLite's default, and whichever process closes
the database last still checkpoints it on its way out. Nothing here applies to PostgreSQL.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from typing import Any

from django.db.backends.signals import connection_created

log = logging.getLogger(__name__)

#: How often the background thread checkpoints; a checkpoint with nothing to copy costs nothing.
CHECKPOINT_SECONDS = 1.0

_lock = threading.Lock()
_checkpointed: dict[str, threading.Thread] = {}  # database file → its checkpoint thread


def checkpoint_in_background() -> None:
    """From now on, this process's SQLite connections to files leave checkpoints to a thread."""
    connection_created.connect(_on_connection_created, dispatch_uid="crossread.sqlite.checkpoints")


def checkpoint_thread(path: str) -> threading.Thread | None:
    """The thread that checkpoints the database file ``path`` in this process, if any."""
    return _checkpointed.get(path)


def _on_connection_created(sender: Any, connection: Any, **kwargs: Any) -> None:
    if connection.vendor != "sqlite" or connection.is_in_memory_db():
        return
    path = str(connection.settings_dict["NAME"])
    with _lock:
        if path not in _checkpointed:
            thread = threading.Thread(target=_checkpoint_forever, args=(path,), daemon=True,
                                      name=f"sqlite-checkpoint {path}")
            _checkpointed[path] = thread
            thread.start()
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_autocheckpoint=0")


def _checkpoint_forever(path: str) -> None:
    database: sqlite3.Connection | None = None
    while True:
        time.sleep(CHECKPOINT_SECONDS)
        try:
            if database is None:
                database = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
            database.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error:
            log.exception("sqlite: checkpointing %s failed; trying again in %s s", path, CHECKPOINT_SECONDS)
