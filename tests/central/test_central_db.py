"""Central's database: writers wait for another process's write lock; readers never do."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from central.db import MAX_READERS, CentralDatabase, live_reads


def test_a_write_after_a_read_waits_for_another_process_and_succeeds(tmp_path: Path) -> None:
    db = CentralDatabase(tmp_path / "c.db")
    with db.transaction() as t:
        t.execute("create table t (x integer)")
    other = sqlite3.connect(tmp_path / "c.db", check_same_thread=False, isolation_level=None)
    other.execute("begin immediate")
    other.execute("insert into t values (1)")
    released = threading.Event()

    def release_soon() -> None:
        time.sleep(1.0)
        other.execute("commit")
        released.set()

    threading.Thread(target=release_soon, name="other-writer").start()
    # Read, then write, as record_event does: the write waits for the lock, not refused.
    with db.transaction() as t:
        n = t.execute("select count(*) from t").fetchone()[0]
        t.execute("insert into t values (?)", [n + 10])
    assert released.is_set()
    with db.read() as r:
        assert [row[0] for row in r.execute("select x from t order by x")] == [1, 11]
    other.close()
    db.close()


def test_readers_answer_while_the_write_lock_is_held(tmp_path: Path) -> None:
    db = CentralDatabase(tmp_path / "c.db")
    with db.transaction() as t:
        t.execute("create table t (x integer)")
        t.execute("insert into t values (1)")
    with db.lock:  # e.g. a long ingest batch
        other = sqlite3.connect(tmp_path / "c.db", isolation_level=None)
        other.execute("begin immediate")
        done: list[int] = []
        reader = threading.Thread(target=lambda: done.append(db_read(db)), name="reader")
        reader.start()
        reader.join(10)
        other.execute("rollback")
        other.close()
    assert done == [1]
    db.close()


def db_read(db: CentralDatabase) -> int:
    with db.read() as r:
        return int(r.execute("select count(*) from t").fetchone()[0])


def test_close_waits_for_a_read_running_in_another_thread(tmp_path: Path) -> None:
    db = CentralDatabase(tmp_path / "c.db")
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


def test_live_reads_do_not_queue_behind_busy_page_readers(tmp_path: Path) -> None:
    db = CentralDatabase(tmp_path / "c.db")
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
