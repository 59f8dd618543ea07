"""SQLite opening shared by the agent's databases: WAL, busy timeout, one lock per database."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils


class LockedDatabase:
    """A sqlite-utils Database used from several threads, one statement group at a time.

    The recorder threads, the retention cleaner and the CLI share one file; SQLite's own
    locking covers other processes, this lock covers threads sharing the connection.
    """

    def __init__(self, path: Path | str) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30.0)
        self.db = sqlite_utils.Database(conn)
        self.lock = threading.RLock()
        with self.lock:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")

    @contextmanager
    def transaction(self) -> Iterator[sqlite_utils.Database]:
        """Hold the lock and run the block in one transaction."""
        with self.lock, self.db.atomic():
            yield self.db

    def close(self) -> None:
        """Close the connection."""
        with self.lock:
            self.db.close()
