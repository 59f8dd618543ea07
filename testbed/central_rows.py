"""Central's database as the test systems see it: which engine a started `central-server`
uses, and its rows read or written beside the running process on either engine.

A system fixture (security world, browser video system, model site) asks
`new_central_database()` for its database when it writes central's config: None means the
SQLite file under `data_dir` (the default), a URL means a fresh PostgreSQL database made by
the provider the test session installed with `use_databases` (tests/conftest.py does so when
$FSV_TEST_DATABASE is "postgres").
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

_provider: Callable[[], str] | None = None


def use_databases(provider: Callable[[], str] | None) -> None:
    """Install (or with None remove) the maker of PostgreSQL databases for system fixtures."""
    global _provider
    _provider = provider


def new_central_database() -> str | None:
    """A database URL for one central system, or None for SQLite under its data_dir."""
    return None if _provider is None else _provider()


def with_database(config: dict[str, Any], database: str | None) -> dict[str, Any]:
    """Central's config with its `database` set when one is given; the same dict."""
    if database is not None:
        config["database"] = database
    return config


class CentralRows:
    """Reads and writes central's rows beside a running process (`?` placeholders)."""

    def __init__(self, database: str | None, data_dir: Path) -> None:
        self.database = database
        self.path = data_dir / "central.db"

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """All rows of one statement."""
        if self.database is None:
            db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
            try:
                return db.execute(sql, list(params)).fetchall()
            finally:
                db.close()
        import psycopg

        with psycopg.connect(self.database, autocommit=True) as conn:
            return list(conn.execute(sql.replace("?", "%s"), list(params)).fetchall())

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """One write, committed."""
        if self.database is None:
            db = sqlite3.connect(self.path, timeout=30)
            try:
                with db:
                    db.execute(sql, list(params))
            finally:
                db.close()
            return
        import psycopg

        with psycopg.connect(self.database, autocommit=True) as conn:
            conn.execute(sql.replace("?", "%s"), list(params))
