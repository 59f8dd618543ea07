"""Central's database on a PostgreSQL server, behind CentralDatabase's interface.

The same shape as the SQLite store: one write connection under `lock` (ingest and the API
write through `transaction()`), and a pool of reader connections whose transactions are
READ ONLY, so a report or the live wall reads a snapshot and never waits for, nor holds,
what ingest writes under. Ordinary commits use `synchronous_commit = off` (a server crash
may lose the last fraction of a second of commits, never corrupt them: the counterpart of
SQLite's synchronous=NORMAL); `durable_transaction()` commits with `synchronous_commit =
on`, so its commit, and every one before it, is flushed to disk on return.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import sqlite_utils

from central.storage import pg
from central.storage.db import BUSY_TIMEOUT_S, CentralDatabase, apply_migrations, migrations

log = logging.getLogger(__name__)


class PgCentralDatabase(CentralDatabase):
    """CentralDatabase on PostgreSQL (made by `CentralDatabase("postgresql://...")`)."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        conn = self._connect_writer()
        _check_collation(conn, self.path)
        self.db = pg.PgDatabase(conn)
        self._init_state()
        with self.lock:
            apply_migrations(migrations, self.db)

    def _connect_writer(self) -> psycopg.Connection:
        """The write connection: asynchronous commits, SQLite's busy timeout as lock_timeout."""
        try:
            conn = pg.connect(self.path, autocommit=True)
        except psycopg.Error as e:
            where = pg.safe_url(self.path)
            raise sqlite3.OperationalError(f"cannot connect to {where}: {e}") from e
        conn.execute("set synchronous_commit = off")
        conn.execute(f"set lock_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        return conn

    @contextmanager
    def _immediate(self) -> Iterator[None]:
        """One transaction (nested: a savepoint). A write connection the server dropped
        (a restart, a fail-over) is opened again first: the transaction that met the drop
        failed with OperationalError, which ingest and the alert feed retry."""
        db = self.db
        assert isinstance(db, pg.PgDatabase)
        if (db.pg.broken or db.pg.closed) and not self._closed:
            log.warning("the database connection was lost; connecting again")
            db.reconnect(self._connect_writer())
        with db.atomic():
            yield

    def _release(self, reader: sqlite_utils.Database) -> None:
        assert isinstance(reader, pg.PgDatabase)
        if reader.pg.broken or reader.pg.closed:
            if not self._closed:
                try:
                    reader.reconnect(pg.connect(self.path, autocommit=False, read_only=True))
                except psycopg.Error as e:  # still down: the next read fails, and tries again
                    log.warning("a reader could not connect again: %s", e)
            return
        super()._release(reader)

    @contextmanager
    def durable_transaction(self) -> Iterator[sqlite_utils.Database]:
        """Like `transaction()`, but the commit is flushed to disk on return."""
        with self.lock:
            db = self.db
            assert isinstance(db, pg.PgDatabase)
            if db.pgconn.in_transaction:  # nested: the outer commit decides
                with self._immediate():
                    yield db
                return
            with self._immediate():
                db.pg.execute("set local synchronous_commit = on")
                yield db

    def _connect_reader(self) -> sqlite_utils.Database:
        conn = pg.connect(self.path, autocommit=False, read_only=True)
        return pg.PgDatabase(conn)


# Text must compare byte by byte, as in SQLite: org paths ("/1/2/") are scoped by range
# (org_path >= '/1/' and org_path < '/10'); a linguistic collation orders '/' differently and
# would let a range take in another org's rows.
BYTE_ORDER_COLLATIONS = {"C", "POSIX", "C.UTF-8", "C.utf8", "ucs_basic"}


def _check_collation(conn: psycopg.Connection, url: str) -> None:
    row = conn.execute(
        "select datcollate, datlocprovider from pg_database where datname = current_database()"
    ).fetchone()
    collation = row[0] if row else None
    if row is not None and row[1] == "i":  # ICU: a linguistic order whatever datcollate says
        collation = "ICU"
    if collation not in BYTE_ORDER_COLLATIONS:
        conn.close()
        raise sqlite3.OperationalError(
            f"database {pg.safe_url(url)} has collation {collation!r}: central needs byte order; "
            "create it with: createdb --locale=C --template=template0 NAME"
        )
