"""The queue of snapshot and clip files waiting to be uploaded to central (in the outbox DB)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from edge_agent.db import LockedDatabase
from edge_agent.errors import OutboxError
from fsv_contract.payloads import MEDIA_NAME_PATTERN

_NAME = re.compile(MEDIA_NAME_PATTERN)


@contextmanager
def write_transaction(ldb: LockedDatabase) -> Iterator[sqlite_utils.Database]:
    """A transaction that takes SQLite's write lock at once (BEGIN IMMEDIATE).

    Another process may write the same file (a tool, a test acting as detector): a
    deferred transaction that read first could not upgrade to a write after that
    process committed, and would fail at once instead of waiting for the lock.
    """
    with ldb.lock:
        conn = ldb.db.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield ldb.db
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass(frozen=True)
class MediaItem:
    """A file to upload as /api/v1/media/{event_id}/{name}."""

    id: int
    event_id: str
    name: str
    path: Path
    sha256: str
    content_type: str
    attempts: int


class MediaQueue:
    """Upload jobs: added by detectors, taken by the uploader, kept until central has them.

    A job that fails for a reason that may pass (network, central busy, event not yet at
    central) is retried later; one that can never succeed (file gone, too large, different
    content) is marked failed with its reason and kept for the operator to see.
    """

    def __init__(self, ldb: LockedDatabase, clock: Callable[[], float] = time.time) -> None:
        self._ldb = ldb
        self._clock = clock

    def add(self, event_id: str, name: str, path: Path, sha256: str, content_type: str) -> None:
        """Queue a file; re-queuing the same event/name replaces the job (new content wins)."""
        event_id = str(event_id).lower()
        if not _UUID.match(event_id):
            raise OutboxError(f"event id {event_id!r} is not a UUID")
        if not _NAME.match(name):
            raise OutboxError(f"media name {name!r} must match {MEDIA_NAME_PATTERN}")
        if not _SHA256.match(sha256):
            raise OutboxError("sha256 must be 64 lower-case hex digits")
        try:
            size = path.stat().st_size
        except OSError as e:
            raise OutboxError(f"media file {path} cannot be read: {e.strerror or e}") from e
        row = {
            "event_id": event_id,
            "name": name,
            "path": str(path.resolve()),
            "sha256": sha256,
            "content_type": content_type,
            "bytes": size,
            "queued_at": self._clock(),
            "attempts": 0,
            "next_try_at": 0.0,
            "last_error": None,
            "failed": 0,
        }
        with write_transaction(self._ldb) as db:
            db.table("media").upsert(row, pk=("event_id", "name"))

    def due(self, limit: int = 10) -> list[MediaItem]:
        """Jobs whose next try is due, oldest first."""
        with self._ldb.lock:
            rows = self._ldb.db.execute(
                "select id, event_id, name, path, sha256, content_type, attempts from media "
                "where failed = 0 and next_try_at <= ? order by id limit ?",
                [self._clock(), limit],
            ).fetchall()
        return [MediaItem(r[0], r[1], r[2], Path(r[3]), r[4], r[5], r[6]) for r in rows]

    def done(self, item_id: int) -> None:
        """Central has the file: forget the job."""
        with write_transaction(self._ldb) as db:
            db.execute("delete from media where id = ?", [item_id])

    def retry_later(self, item_id: int, delay_s: float, error: str) -> None:
        """The upload failed for now: try again after `delay_s`."""
        with write_transaction(self._ldb) as db:
            db.execute(
                "update media set attempts = attempts + 1, next_try_at = ?, last_error = ? "
                "where id = ?",
                [self._clock() + delay_s, error[:500], item_id],
            )

    def fail(self, item_id: int, error: str) -> None:
        """The upload can never succeed: keep the job, marked failed, with the reason."""
        with write_transaction(self._ldb) as db:
            db.execute(
                "update media set attempts = attempts + 1, failed = 1, last_error = ? where id = ?",
                [error[:500], item_id],
            )

    def pending_count(self) -> int:
        """Jobs not yet uploaded and not failed."""
        with self._ldb.lock:
            return int(
                self._ldb.db.execute("select count(*) from media where failed = 0").fetchone()[0]
            )

    def failed(self) -> list[tuple[str, str, str]]:
        """(event_id, name, reason) of the jobs that gave up."""
        with self._ldb.lock:
            rows = self._ldb.db.execute(
                "select event_id, name, last_error from media where failed = 1 order by id"
            ).fetchall()
        return [(r[0], r[1], r[2] or "") for r in rows]

    def next_due_in(self) -> float | None:
        """Seconds until the next job is due (0 if one is due now), None if none waits."""
        with self._ldb.lock:
            row = self._ldb.db.execute(
                "select min(next_try_at) from media where failed = 0"
            ).fetchone()
        return None if row[0] is None else max(0.0, row[0] - self._clock())
