"""Central's database, on SQLite and on PostgreSQL: writers wait for another process's
write lock; readers never do."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from central.storage.db import MAX_READERS, CentralDatabase, live_reads
from central.storage.pg import translate

pytestmark = pytest.mark.databases("sqlite", "postgres")


@pytest.fixture
def target(central_db_url: str | None, tmp_path: Path) -> str | Path:
    """What CentralDatabase opens: a SQLite file, or a fresh PostgreSQL database."""
    return central_db_url or tmp_path / "c.db"


class OtherWriter:
    """Another process's connection that takes the write lock of table t and holds it."""

    def __init__(self, target: str | Path) -> None:
        self.pg = isinstance(target, str)
        if self.pg:
            import psycopg

            self.conn: Any = psycopg.connect(str(target), autocommit=True)
            self.conn.execute("begin")
            self.conn.execute("lock table t in access exclusive mode")  # as BEGIN IMMEDIATE
        else:
            self.conn = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
            self.conn.execute("begin immediate")

    def execute(self, sql: str) -> None:
        self.conn.execute(sql)

    def close(self) -> None:
        self.conn.close()


def test_a_write_after_a_read_waits_for_another_process_and_succeeds(target: str | Path) -> None:
    db = CentralDatabase(target)
    with db.transaction() as t:
        t.execute("create table t (x integer)")
    other = OtherWriter(target)
    other.execute("insert into t values (1)")
    released = threading.Event()

    def release_soon() -> None:
        time.sleep(1.0)
        # Set before the commit: the waiting write can only finish after it, never before
        # this thread gets the CPU back (which a loaded box may delay).
        released.set()
        other.execute("commit")

    threading.Thread(target=release_soon, name="other-writer").start()
    # Read, then write, as recording alerts does: the write waits for the lock, not refused.
    with db.transaction() as t:
        n = t.execute("select count(*) from t").fetchone()[0]
        t.execute("insert into t values (?)", [n + 10])
    assert released.is_set()
    with db.read() as r:
        assert [row[0] for row in r.execute("select x from t order by x")] == [1, 11]
    other.close()
    db.close()


def test_readers_answer_while_the_write_lock_is_held(target: str | Path) -> None:
    db = CentralDatabase(target)
    with db.transaction() as t:
        t.execute("create table t (x integer)")
        t.execute("insert into t values (1)")
    with db.lock, db.transaction() if isinstance(target, str) else db.lock as t:
        # A long ingest batch: on SQLite another process holds the file's write lock, on
        # PostgreSQL the write connection holds an open transaction.
        if t is not None and not isinstance(t, bool):
            t.execute("insert into t values (2)")
        other = OtherWriter(target) if isinstance(target, Path) else None
        done: list[int] = []
        reader = threading.Thread(target=lambda: done.append(db_read(db)), name="reader")
        reader.start()
        reader.join(10)
        if other is not None:
            other.execute("rollback")
            other.close()
        assert done == [1]  # the snapshot from before the batch
    db.close()


def db_read(db: CentralDatabase) -> int:
    with db.read() as r:
        return int(r.execute("select count(*) from t").fetchone()[0])


def test_close_waits_for_a_read_running_in_another_thread(target: str | Path) -> None:
    db = CentralDatabase(target)
    reading = threading.Event()
    finished: list[int] = []

    def slow_read() -> None:
        with db.read() as reader:
            reading.set()
            time.sleep(0.5)
            finished.append(reader.execute("select count(*) from events").fetchone()[0])

    thread = threading.Thread(target=slow_read)
    thread.start()
    assert reading.wait(10)
    db.close()  # must not close the reader under the running statement
    thread.join(10)
    assert finished == [0]
    try:
        with db.read():
            raise AssertionError("a read after close must be refused")
    except sqlite3.ProgrammingError as e:
        assert "closed" in str(e)


def test_live_reads_do_not_queue_behind_busy_page_readers(target: str | Path) -> None:
    db = CentralDatabase(target)
    with db.transaction() as t:
        t.execute("create table t (x integer)")
        t.execute("insert into t values (7)")
    held, release = threading.Barrier(MAX_READERS + 1), threading.Event()

    def long_page_read() -> None:
        with db.read() as r:
            r.execute("select count(*) from t").fetchone()
            held.wait(10)
            release.wait(10)

    pages = [threading.Thread(target=long_page_read) for _ in range(MAX_READERS)]
    for p in pages:
        p.start()
    held.wait(10)  # every reader of the pool is taken
    answers: dict[str, int] = {}

    def read(name: str) -> None:
        with db.read() as r:
            answers[name] = r.execute("select x from t").fetchone()[0]

    def live_read() -> None:
        with live_reads():
            read("live")

    queued = threading.Thread(target=read, args=("page",))
    live = threading.Thread(target=live_read)
    queued.start()
    live.start()
    live.join(5)
    assert answers == {"live": 7}  # the live read answered, the page read still waits
    release.set()
    for t in [*pages, queued]:
        t.join(10)
    assert answers == {"live": 7, "page": 7}
    db.close()


def test_table_calls_and_sql_mean_the_same_on_both_engines(target: str | Path) -> None:
    db = CentralDatabase(target)
    with db.transaction() as t:
        t.table("things").create(
            {"id": int, "name": str, "weight": float, "raw": bytes, "on": int},
            pk="id", not_null={"name"}, defaults={"on": 0},
        )  # fmt: skip
        t.table("things").create_index(["name"], unique=True)
        first = t.table("things").insert({"name": "a?%", "weight": 1.5, "raw": b"\x00"}).last_pk
        second = t.table("things").insert({"name": "b", "weight": 2.0, "on": True}).last_pk
        t.table("things").update(second, {"weight": 3.0})
        t.table("tags").create({"thing": int, "tag": str, "n": int}, pk=("thing", "tag"))
        t.table("tags").upsert({"thing": first, "tag": "x", "n": 1}, pk=("thing", "tag"))
        t.table("tags").upsert({"thing": first, "tag": "x", "n": 2}, pk=("thing", "tag"))
        t.conn.executemany("insert into tags (thing, tag, n) values (?, ?, ?)",
                           [(second, "y", 1), (second, "z", 1)])  # fmt: skip
        with pytest.raises(sqlite3.IntegrityError):
            with db.transaction() as nested:  # a savepoint: the outer transaction goes on
                nested.execute("insert into things (name) values (?)", ["b"])
    assert (first, second) == (1, 2)
    with db.read() as r:
        assert t.table("things").get(first)["name"] == "a?%"
        rows = list(r.query("select name, weight, on_ from (select name, weight, \"on\" as on_ "
                            "from things) x where name like 'a?%' or name = ? order by name",
                            ["b"]))  # fmt: skip
        assert rows == [{"name": "a?%", "weight": 1.5, "on_": 0},
                        {"name": "b", "weight": 3.0, "on_": 1}]  # fmt: skip
        assert r.execute("select tag, n from tags order by tag").fetchall() == [
            ("x", 2),
            ("y", 1),
            ("z", 1),
        ]
        assert r.execute("select raw from things where id = ?", [first]).fetchone()[0] == b"\x00"
        with pytest.raises((sqlite3.OperationalError, sqlite3.DatabaseError, Exception)):
            r.execute("insert into tags (thing, tag, n) values (9, 'w', 1)")
    with db.durable_transaction() as t:
        t.execute("delete from tags where tag = ?", ["z"])
    with db.read() as r:
        assert r.execute("select count(*) from tags").fetchone()[0] == 2
    db.close()


@pytest.mark.databases("sqlite")
def test_placeholders_are_translated_outside_literals_only() -> None:
    assert translate("select '?', \"a?\" from t where x = ? and y like '%b' -- ?\n") == (
        "select '?', \"a?\" from t where x = %s and y like '%%b' -- ?\n"
    )
    assert translate("select 'it''s ?' || ?") == "select 'it''s ?' || %s"


@pytest.mark.databases("postgres")
def test_a_postgresql_database_without_byte_order_is_refused(
    central_db_url: str | None, postgres_server: Any
) -> None:
    import psycopg

    assert central_db_url is not None
    with psycopg.connect(postgres_server.url(), autocommit=True) as conn:
        conn.execute(
            "create database linguistic template template0 locale_provider icu icu_locale 'en-US'"
        )
    try:
        with pytest.raises(sqlite3.OperationalError, match="collation 'ICU'.*--locale=C"):
            CentralDatabase(postgres_server.url("linguistic"))
    finally:
        postgres_server.drop_database(postgres_server.url("linguistic"))


@pytest.mark.databases("postgres")
def test_one_migration_history_on_both_engines(central_db_url: str | None, tmp_path: Path) -> None:
    from central import schema
    from central.storage.db import apply_migrations
    from central.video import exports

    histories = []
    for target in (tmp_path / "c.db", central_db_url):
        assert target is not None
        database = CentralDatabase(target)
        with database.lock:  # as the app applies them: ingest, regulators, video
            apply_migrations(schema.migrations, database.db)
            apply_migrations(exports.migrations, database.db)
        table = "schema_migrations" if isinstance(target, str) else "_sqlite_migrations"
        with database.read() as r:
            histories.append(
                [
                    tuple(row)
                    for row in r.execute(f"select migration_set, name from {table} order by id")
                ]
            )
        database.close()
    sqlite_history, pg_history = histories
    assert len(sqlite_history) >= 30 and pg_history == sqlite_history


@pytest.mark.databases("postgres")
def test_postgresql_commits_and_a_lost_connection(central_db_url: str | None) -> None:
    import psycopg

    assert central_db_url is not None
    db = CentralDatabase(central_db_url)
    with db.transaction() as t:
        t.execute("create table t (x integer)")
        assert t.execute("show synchronous_commit").fetchone()[0] == "off"
    with db.durable_transaction() as t:  # ingest's commit before it acknowledges the broker
        assert t.execute("show synchronous_commit").fetchone()[0] == "on"
        t.execute("insert into t values (1)")
    with db.read() as r:
        assert r.execute("select count(*) from t").fetchone()[0] == 1
    # The server drops every connection of central (a restart, a fail-over) ...
    with psycopg.connect(central_db_url, autocommit=True) as admin:
        admin.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity "
            "where datname = current_database() and pid <> pg_backend_pid()"
        )
    # ... the transaction that meets it fails as a retryable error, the next one goes through.
    with pytest.raises(sqlite3.OperationalError):
        with db.transaction() as t:
            t.execute("insert into t values (2)")
    with db.transaction() as t:
        t.execute("insert into t values (3)")
    with pytest.raises(sqlite3.OperationalError):
        with db.read() as r:
            r.execute("select count(*) from t").fetchone()
    with db.read() as r:
        assert [row[0] for row in r.execute("select x from t order by x")] == [1, 3]
    db.close()
