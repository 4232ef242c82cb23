"""crossread.sqlite: in a server process, commits leave WAL checkpoints to a background thread."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from django.db.utils import ConnectionHandler

from crossread import sqlite
from crossread.env import sqlite_database


@pytest.fixture(autouse=True)
def _own_databases(django_db_blocker: Any) -> Any:
    """These tests open connections of their own, to files of their own (not the test database)."""
    with django_db_blocker.unblock():
        yield


def rows_in_the_database_file(path: Path) -> int:
    """Rows of ``t`` in the database file itself: ``immutable`` reads it without looking at the WAL."""
    with sqlite3.connect(f"file:{path}?immutable=1", uri=True) as database:
        found = database.execute("SELECT name FROM sqlite_master WHERE name = 't'").fetchall()
        return database.execute("SELECT count(*) FROM t").fetchone()[0] if found else 0


def test_a_server_process_checkpoints_in_the_background_not_in_its_commits(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    sqlite.checkpoint_in_background()
    connection = ConnectionHandler({"default": sqlite_database(path)})["default"]
    try:
        with connection.cursor() as cursor:
            assert cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert cursor.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0  # no commit checkpoints
            cursor.execute("CREATE TABLE t (x INTEGER)")
            for x in range(20):
                cursor.execute("INSERT INTO t VALUES (%s)", [x])
        thread = sqlite.checkpoint_thread(str(path))
        assert thread is not None and thread.is_alive()
        # Twenty small commits are far from SQLite's own 1,000-page threshold: only the thread copies
        # them from the WAL into the database file.
        deadline = time.monotonic() + 10 * sqlite.CHECKPOINT_SECONDS
        while rows_in_the_database_file(path) < 20 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert rows_in_the_database_file(path) == 20
    finally:
        connection.close()


def test_other_databases_are_left_alone(tmp_path: Path) -> None:
    sqlite.checkpoint_in_background()
    connection = ConnectionHandler({"default": sqlite_database(Path(":memory:"))})["default"]
    try:
        with connection.cursor() as cursor:
            assert cursor.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000  # SQLite's default
        assert sqlite.checkpoint_thread(":memory:") is None
    finally:
        connection.close()
