"""Central's SQLite database: one file, WAL, one write connection, a pool of readers.

Writes go through the one write connection under `lock`. Reads that may take long (the live
wall, reports, listings) go through `read()`: a separate connection in `query_only` mode,
which under WAL reads a consistent snapshot without taking the lock ingest writes under,
so a regulator query never delays ingest.

Other parts of central (the regulator tables) keep their own migration set in the same
file; each set is applied at start-up by the component that owns it.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import sqlite_utils

migrations = sqlite_utils.Migrations("central.ingest")


def apply_migrations(
    migration_set: sqlite_utils.Migrations,
    db: sqlite_utils.Database,
    stop_before: str | None = None,
) -> None:
    """Apply a migration set on either engine (one history: the same functions, in order)."""
    from central.storage import pg

    if isinstance(db, pg.PgDatabase):
        pg.apply_migrations(migration_set, db, stop_before=stop_before)
    else:
        # Several nodes may start at once on one file: the whole run holds SQLite's write
        # lock, so one node migrates while the others wait, then find nothing left to do.
        # (Each migration is a savepoint inside it.) Run one by one, a migration that read
        # the schema before it wrote was refused at once when another node had written
        # meanwhile, and that node's start-up died on "database is locked".
        with immediate_transaction(db):
            migration_set.apply(db, stop_before=stop_before)


@contextmanager
def immediate_transaction(db: sqlite_utils.Database) -> Iterator[None]:
    """One transaction that takes SQLite's write lock first (`BEGIN IMMEDIATE`).

    A deferred transaction that reads before it writes cannot wait for a lock another
    process took meanwhile: SQLite refuses it at once ("database is locked"). Taken
    first, the lock is waited for (busy timeout) like any other. Nested: a savepoint.
    """
    conn = db.conn
    if conn.in_transaction:
        with db.atomic():
            yield
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


# Readers open on demand up to this many; a reader beyond it waits for a free one.
MAX_READERS = 4

# Set on a thread while it works for a live alert (the alert feed's live lane): its reads
# take a reader connection kept for them, never one queued behind the pages' reads.
_live_thread = threading.local()


@contextmanager
def live_reads() -> Iterator[None]:
    """Within the block, this thread's `read()` uses the reader reserved for live alerts."""
    before = getattr(_live_thread, "on", False)
    _live_thread.on = True
    try:
        yield
    finally:
        _live_thread.on = before


CLOSE_WAIT_S = 10.0  # how long close() waits for reads still running in other threads

log = logging.getLogger(__name__)
BUSY_TIMEOUT_S = 30.0


class CentralDatabase:
    """A sqlite-utils Database shared between worker threads, one statement group at a time.

    Ordinary transactions commit with `synchronous=NORMAL` (safe against a crash of the
    process). Ingest acknowledges messages to the broker only after its batch commits, so
    that commit goes through `durable_transaction()`, which syncs the WAL to disk, and with
    it every transaction committed before it.
    """

    def __new__(cls, path: Path | str) -> CentralDatabase:
        """A PostgreSQL URL (postgresql://...) opens `PgCentralDatabase`, anything else SQLite."""
        if (
            cls is CentralDatabase
            and isinstance(path, str)
            and path.startswith(("postgresql://", "postgres://"))
        ):
            from central.storage.pg_database import PgCentralDatabase

            return super().__new__(PgCentralDatabase)
        return super().__new__(cls)

    def __init__(self, path: Path | str) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = str(path)
        conn = sqlite3.connect(self.path, check_same_thread=False, timeout=BUSY_TIMEOUT_S)
        self.db = sqlite_utils.Database(conn)
        self._init_state()
        with self.lock:
            self._use_wal()
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            apply_migrations(migrations, self.db)

    def _use_wal(self) -> None:
        """Put the file in WAL mode. On a new file, nodes opening it at once race to switch
        it, and SQLite refuses the losers at once instead of waiting (busy timeout): they
        try again until the busy timeout has passed."""
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                self.db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _init_state(self) -> None:
        """The write lock and the reader pool, empty (readers open on demand)."""
        self.lock = threading.RLock()
        self._readers: queue.LifoQueue[sqlite_utils.Database] = queue.LifoQueue()
        self._opened: list[sqlite_utils.Database] = []
        self._open_lock = threading.Lock()
        self._live_reader: sqlite_utils.Database | None = None
        self._live_reader_lock = threading.RLock()
        self._closed = False

    @contextmanager
    def transaction(self) -> Iterator[sqlite_utils.Database]:
        """Hold the lock and run the block in one transaction."""
        with self.lock, self._immediate():
            yield self.db

    def _immediate(self) -> AbstractContextManager[None]:
        """The write connection's `immediate_transaction`."""
        return immediate_transaction(self.db)

    @contextmanager
    def durable_transaction(self) -> Iterator[sqlite_utils.Database]:
        """Like `transaction()`, but the commit is on disk (power cut included) on return."""
        with self.lock:
            self.db.execute("PRAGMA synchronous=FULL")
            try:
                with self._immediate():
                    yield self.db
            finally:
                self.db.execute("PRAGMA synchronous=NORMAL")

    @contextmanager
    def read(self) -> Iterator[sqlite_utils.Database]:
        """A read-only connection of the pool for the block (never the write lock).

        An in-memory database has no second connection: it reads under the lock instead.
        Under `live_reads()` it is the connection reserved for live alerts: the pool's
        readers may all be busy with long page reads (reports, walls) for seconds.
        """
        if self.path == ":memory:":
            with self.lock:
                yield self.db
            return
        if getattr(_live_thread, "on", False):
            with self._live_reader_lock:
                reader = self._reserved_reader()
                try:
                    yield reader
                finally:
                    self._release(reader)
            return
        reader = self._take_reader()
        try:
            yield reader
        finally:
            self._release(reader)
            self._readers.put(reader)

    def _reserved_reader(self) -> sqlite_utils.Database:
        if self._closed:
            raise sqlite3.ProgrammingError("the database is closed")
        if self._live_reader is None:
            self._live_reader = self._connect_reader()
        return self._live_reader

    def _connect_reader(self) -> sqlite_utils.Database:
        conn = sqlite3.connect(self.path, check_same_thread=False, timeout=BUSY_TIMEOUT_S)
        conn.execute("PRAGMA query_only=ON")
        return sqlite_utils.Database(conn)

    def _release(self, reader: sqlite_utils.Database) -> None:
        if reader.conn.in_transaction:
            reader.conn.rollback()

    def _take_reader(self) -> sqlite_utils.Database:
        if self._closed:
            raise sqlite3.ProgrammingError("the database is closed")
        try:
            return self._readers.get_nowait()
        except queue.Empty:
            pass
        with self._open_lock:
            if len(self._opened) < MAX_READERS:
                reader = self._connect_reader()
                self._opened.append(reader)
                return reader
        return self._readers.get()

    def close(self) -> None:
        """Close the write connection and every reader.

        A reader still in use by another thread (a background task's read that was running
        when the application stopped) is closed only once it is handed back: closing a
        connection under a running statement crashes the process.
        """
        with self.lock:
            self._closed = True
            self.db.close()
        with self._live_reader_lock:
            if self._live_reader is not None:
                self._live_reader.close()
                self._live_reader = None
        with self._open_lock:
            opened = len(self._opened)
            self._opened.clear()
        deadline = time.monotonic() + CLOSE_WAIT_S
        for _ in range(opened):
            try:
                reader = self._readers.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                log.warning("a read still runs at close; its connection is left to the process")
                return
            reader.close()


@migrations()
def m001_ingest(db: sqlite_utils.Database) -> None:
    """Events, agent and camera status, command log, ingest counters and rejects, media."""
    # AUTOINCREMENT keeps `id` in arrival order for good: per-camera order is read from it.
    db.execute(
        """create table events (
            id integer primary key autoincrement,
            event_id text not null unique,
            site text not null,
            camera text not null,
            kind text not null,
            station text not null,
            rule text not null,
            severity text not null,
            phase text not null,
            start float not null,
            "end" float,
            score float not null,
            boxes text not null,
            snapshot text,
            clip text,
            details text not null,
            created_at float,
            received_at float not null,
            ingested_at float not null,
            updated_at float not null
        )"""
    )
    db.table("events").create_index(["site", "camera", "id"])
    db.table("events").create_index(["site", "start"])
    db.table("agent_status").create(
        {
            "site": str,
            "state": str,
            "version": str,
            "started_at": float,
            "state_since": float,
            "state_received_at": float,
            "last_heartbeat_at": float,
            "heartbeat": str,
        },
        pk="site",
    )
    db.table("camera_status").create(
        {
            "site": str,
            "camera": str,
            "state": str,
            "since": float,
            "reason": str,
            "updated_at": float,
        },
        pk=("site", "camera"),
        not_null={"state", "since"},
    )
    db.table("camera_state_log").create(
        {
            "id": int,
            "site": str,
            "camera": str,
            "state": str,
            "since": float,
            "reason": str,
            "received_at": float,
        },
        pk="id",
        not_null={"site", "camera", "state", "since"},
    )
    db.table("camera_state_log").create_index(["site", "camera", "since", "state"], unique=True)
    db.table("commands").create(
        {
            "request_id": str,
            "site": str,
            "verb": str,
            "args": str,
            "issued_at": float,
            "expires_at": float,
            "ok": int,
            "result": str,
            "error": str,
            "replied_at": float,
        },
        pk="request_id",
        not_null={"site", "verb", "args", "issued_at"},
    )
    db.table("ingest_counters").create({"name": str, "value": int}, pk="name")
    db.table("ingest_rejects").create(
        {"id": int, "received_at": float, "topic": str, "reason": str, "bytes": int},
        pk="id",
        not_null={"received_at", "topic", "reason"},
    )
    db.table("media").create(
        {
            "event_id": str,
            "name": str,
            "site": str,
            "sha256": str,
            "bytes": int,
            "content_type": str,
            "path": str,
            "stored_at": float,
        },
        pk=("event_id", "name"),
        not_null={"site", "sha256", "bytes", "path", "stored_at"},
    )


@migrations()
def m002_change_seq(db: sqlite_utils.Database) -> None:
    """A global change counter on events, so the alerting feed can follow new and ended ones."""
    db.execute("alter table events add column change_seq integer")
    db.execute("update events set change_seq = id")
    db.table("events").create_index(["change_seq"])


@migrations()
def m003_integrity(db: sqlite_utils.Database) -> None:
    """Anchored chain links of the edges' segments, integrity findings and audits."""
    db.execute(
        """create table anchored_segments (
            id integer primary key autoincrement,
            site text not null,
            camera text not null,
            path text not null,
            start float not null,
            "end" float not null,
            bytes integer not null,
            sha256 text not null,
            prev_chain text not null,
            chain text not null,
            retention_days integer not null,
            anchored_at float not null,
            removed_at float,
            removed_reason text,
            audited integer not null default 0,
            last_audit_at float,
            last_audit_ok integer,
            unique (site, camera, path)
        )"""
    )
    db.table("anchored_segments").create_index(["site", "camera", "start"])
    db.table("chain_heads").create(
        {"site": str, "camera": str, "chain": str, "path": str, "updated_at": float},
        pk=("site", "camera"),
        not_null={"chain", "path", "updated_at"},
    )
    db.table("integrity_findings").create(
        {
            "id": int,
            "site": str,
            "camera": str,
            "path": str,
            "source": str,
            "problem": str,
            "event_id": str,
            "found_at": float,
        },
        pk="id",
        not_null={"site", "camera", "source", "problem", "found_at"},
    )
    db.table("integrity_findings").create_index(["site", "camera", "found_at"])
    db.table("integrity_audits").create(
        {
            "id": int,
            "site": str,
            "camera": str,
            "samples_wanted": int,
            "requested_by": str,
            "requested_at": float,
            "state": str,
            "request_id": str,
            "sent_at": float,
            "finished_at": float,
            "checked": int,
            "tampered": int,
            "result": str,
        },
        pk="id",
        not_null={"site", "samples_wanted", "requested_at", "state"},
    )
    db.table("integrity_audits").create_index(["state"])
    db.table("integrity_audits").create_index(["site", "finished_at"])


@migrations()
def m004_live_lane(db: sqlite_utils.Database) -> None:
    """Events by start time, for the alert feed's lane of live events."""
    db.table("events").create_index(["start", "change_seq"])


@migrations()
def m004_first_clip(db: sqlite_utils.Database) -> None:
    """An event's first clip, sent while it still runs."""
    db.execute("alter table events add column first_clip text")


@migrations()
def m005_frame_and_model(db: sqlite_utils.Database) -> None:
    """An event's clean frame (beside the snapshot) and the model that raised it."""
    db.execute("alter table events add column frame text")
    db.execute("alter table events add column model text")


@migrations()
def m005_anchor_checkpoints(db: sqlite_utils.Database) -> None:
    """The last anchored link pruned per camera: the chain goes on from it."""
    db.table("anchor_checkpoints").create(
        {
            "site": str,
            "camera": str,
            "through_id": int,
            "chain": str,
            "path": str,
            "end": float,
            "pruned": int,
            "pruned_at": float,
        },
        pk=("site", "camera"),
        not_null={"through_id", "chain", "path", "end", "pruned", "pruned_at"},
    )


@migrations()
def m006_shadow_days(db: sqlite_utils.Database) -> None:
    """Shadow models' daily agreement with the running ones, from the heartbeats."""
    db.table("shadow_days").create(
        {
            "site": str,
            "camera": str,
            "model": str,
            "day": str,
            "current": str,
            "frames": int,
            "errors": int,
            "classes": str,
            "updated_at": float,
        },
        pk=("site", "camera", "model", "day"),
        not_null={"frames", "errors", "classes", "updated_at"},
    )
