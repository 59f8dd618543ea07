"""Nodes starting at once on a fresh database migrate it once: on PostgreSQL the migrations
run under a session-level advisory lock, on SQLite under the file's write lock; the other
nodes wait, then find them recorded."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlite_utils

from central import schema
from central.storage import pg
from central.storage.db import CentralDatabase, apply_migrations
from central.video import exports
from testbed.postgres import PostgresServer


def both_at_once(work: Callable[[], Any], n: int = 2) -> list[Any]:
    """Run `work` on `n` threads released together; their results (or exceptions)."""
    start = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = work()
        except Exception as e:  # noqa: BLE001 - the test reports it
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def history(url: str) -> list[tuple[str, str, int]]:
    database = CentralDatabase(url)
    try:
        with database.read() as db:
            return [
                (str(r[0]), str(r[1]), int(r[2]))
                for r in db.execute(
                    f"select migration_set, name, count(*) from {pg.MIGRATIONS_TABLE} "
                    "group by migration_set, name"
                )
            ]
    finally:
        database.close()


def test_two_nodes_starting_on_a_fresh_database_both_succeed_and_migrate_once(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.create_database()

    def start_node() -> str:
        database = CentralDatabase(url)  # ingest's migrations
        try:
            with database.lock:
                apply_migrations(schema.migrations, database.db)
                apply_migrations(exports.migrations, database.db)
            with database.read() as db:
                db.execute("select count(*) from node_leases").fetchone()  # the last one's table
            with database.lock:
                return str(database.db.execute("show lock_timeout").fetchone()[0])
        finally:
            database.close()

    try:
        results = both_at_once(start_node)
        assert results == ["30s", "30s"], results  # both started; lock_timeout as it was
        rows = history(url)
        assert all(count == 1 for _, _, count in rows), [r for r in rows if r[2] > 1]
        names = {(s, n) for s, n, _ in rows}
        assert {("central.regulators", m.__name__) for m in schema.MIGRATIONS} <= names
        assert len({s for s, _ in names}) == 3  # ingest, regulators, video exports
    finally:
        postgres_server.drop_database(url)


def test_nodes_starting_at_once_on_a_fresh_sqlite_file_all_succeed_and_migrate_once(
    tmp_path: Path,
) -> None:
    for round in range(5):  # without the write lock 3 runs of 3 failed, most nodes dying
        path = tmp_path / f"central-{round}.db"

        def start_node(path: Path = path) -> int:
            database = CentralDatabase(path)  # ingest's migrations
            try:
                with database.lock:
                    apply_migrations(schema.migrations, database.db)
                    apply_migrations(exports.migrations, database.db)
                with database.read() as db:
                    return int(db.execute("select count(*) from node_leases").fetchone()[0])
            finally:
                database.close()

        results = both_at_once(start_node, 6)
        assert results == [0] * 6, results
        with sqlite3.connect(path) as db:
            rows = db.execute(
                "select migration_set, name, count(*) from _sqlite_migrations "
                "group by migration_set, name"
            ).fetchall()
        assert all(count == 1 for _, _, count in rows), [r for r in rows if r[2] > 1]
        assert len({s for s, _, _ in rows}) == 3  # ingest, regulators, video exports
        names = {n for _, n, _ in rows}
        assert {m.__name__ for m in schema.MIGRATIONS} <= names


def test_the_second_migrator_waits_for_the_first_and_finds_the_step_done(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.create_database()
    slow = sqlite_utils.Migrations("test.slow")
    ran: list[float] = []

    @slow()
    def m001_slow(db: sqlite_utils.Database) -> None:
        ran.append(time.monotonic())
        db.execute("create table slow_step (id integer primary key)")
        db.execute("select pg_sleep(1.0)")  # another node starts meanwhile

    # Both nodes open the database (ingest's own migrations) before they meet at the slow
    # step: opening it waits for the lock too, so a node still opening it when the other
    # took the lock would begin only after the slow step.
    nodes = [CentralDatabase(url), CentralDatabase(url)]
    opened = iter(nodes)
    pick = threading.Lock()

    def migrate() -> tuple[float, float]:
        with pick:
            database = next(opened)
        with database.lock:
            began = time.monotonic()
            apply_migrations(slow, database.db)
            return began, time.monotonic()

    try:
        results = both_at_once(migrate)
        assert all(isinstance(r, tuple) for r in results), results
        assert len(ran) == 1, "the step ran on both nodes"
        first, second = sorted(results, key=lambda r: r[1])
        assert second[0] < first[1] - 0.5  # the second began while the first migrated ...
        assert second[1] >= first[1]  # ... and returned only after it
        assert ("test.slow", "m001_slow", 1) in history(url)
    finally:
        for node in nodes:
            node.close()
        postgres_server.drop_database(url)
