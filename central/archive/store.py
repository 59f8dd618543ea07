"""The archive's own SQLite file (archive.db beside the footage): policies, segments, refusals.

The archive may sit on its own disk (or node); keeping its index beside its files means the
two are backed up, moved and rebuilt together, and central.db stays small.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from central.archive.policy import SitePolicy

migrations = sqlite_utils.Migrations("central.archive")


@migrations()
def m001_archive(db: sqlite_utils.Database) -> None:
    """Site policies, stored segments and refused transfers."""
    db.table("policies").create(
        {"site": str, "policy": str, "updated_at": float, "updated_by": str},
        pk="site",
        not_null={"policy", "updated_at"},
    )
    db.table("segments").create(
        {
            "id": int,
            "site": str,
            "camera": str,
            "path": str,
            "start": float,
            "end": float,
            "bytes": int,
            "sha256": str,
            "stored_at": float,
        },
        pk="id",
        not_null={"site", "camera", "path", "start", "end", "bytes", "sha256", "stored_at"},
    )
    db.table("segments").create_index(["site", "camera", "path"], unique=True)
    db.table("segments").create_index(["site", "camera", "start"])
    db.table("segments").create_index(["end"])
    db.table("refused").create(
        {"id": int, "site": str, "camera": str, "path": str, "reason": str, "at": float},
        pk="id",
        not_null={"site", "camera", "path", "reason", "at"},
    )
    db.table("refused").create_index(["site", "camera", "path"])


@dataclass(frozen=True)
class Stored:
    """A segment the archive holds."""

    site: str
    camera: str
    path: str
    start: float
    end: float
    bytes: int
    sha256: str


class ArchiveStore:
    """archive.db: one connection under a lock (the archive's writes are few and small)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30.0)
        self.db = sqlite_utils.Database(conn)
        self.lock = threading.RLock()
        with self.lock:
            self.db.execute("PRAGMA journal_mode=WAL")
            migrations.apply(self.db)

    @contextmanager
    def _tx(self) -> Iterator[sqlite_utils.Database]:
        with self.lock, self.db.atomic():
            yield self.db

    def close(self) -> None:
        """Close the file."""
        with self.lock:
            self.db.close()

    # --- policies --------------------------------------------------------------------------

    def policy(self, site: str) -> SitePolicy | None:
        """The site's policy, None if it has none (the configured default applies)."""
        with self.lock:
            row = self.db.execute("select policy from policies where site = ?", [site]).fetchone()
        return None if row is None else SitePolicy.model_validate_json(row[0])

    def set_policy(self, site: str, policy: SitePolicy, by: str) -> None:
        """Replace the site's policy."""
        with self._tx() as db:
            db.table("policies").upsert(
                {"site": site, "policy": policy.model_dump_json(), "updated_at": time.time(),
                 "updated_by": by},
                pk="site",
            )  # fmt: skip

    def policies(self) -> dict[str, SitePolicy]:
        """Every site's policy."""
        with self.lock:
            rows = self.db.execute("select site, policy from policies").fetchall()
        return {r[0]: SitePolicy.model_validate(json.loads(r[1])) for r in rows}

    # --- segments --------------------------------------------------------------------------

    def stored(self, site: str, camera: str, path: str) -> Stored | None:
        """The stored segment, if any."""
        with self.lock:
            row = self.db.execute(
                'select site, camera, path, start, "end", bytes, sha256 from segments '
                "where site = ? and camera = ? and path = ?",
                [site, camera, path],
            ).fetchone()
        return None if row is None else Stored(*row)

    def add(self, seg: Stored) -> None:
        """Record a stored segment (idempotent)."""
        with self._tx() as db:
            db.execute(
                'insert into segments (site, camera, path, start, "end", bytes, sha256, '
                "stored_at) values (?, ?, ?, ?, ?, ?, ?, ?) on conflict do nothing",
                [seg.site, seg.camera, seg.path, seg.start, seg.end, seg.bytes, seg.sha256,
                 time.time()],
            )  # fmt: skip

    def remove(self, seg: Stored) -> None:
        """Forget a segment (its file is gone)."""
        with self._tx() as db:
            db.execute(
                "delete from segments where site = ? and camera = ? and path = ?",
                [seg.site, seg.camera, seg.path],
            )

    def known_paths(self, site: str) -> set[tuple[str, str]]:
        """(camera, path) the archive holds or refused for the site: not to be asked again."""
        with self.lock:
            held = self.db.execute("select camera, path from segments where site = ?", [site])
            out = {(r[0], r[1]) for r in held.fetchall()}
            refused = self.db.execute("select camera, path from refused where site = ?", [site])
            out |= {(r[0], r[1]) for r in refused.fetchall()}
        return out

    def refuse(self, site: str, camera: str, path: str, reason: str) -> None:
        """Remember a refused transfer (a hash that differs from the anchored one)."""
        with self._tx() as db:
            db.execute(
                "insert into refused (site, camera, path, reason, at) values (?, ?, ?, ?, ?)",
                [site, camera, path, reason[:500], time.time()],
            )

    def refusals(self, site: str | None = None) -> list[dict[str, Any]]:
        """Refused transfers, newest first."""
        sql = "select site, camera, path, reason, at from refused"
        args: list[Any] = []
        if site is not None:
            sql, args = sql + " where site = ?", [site]
        with self.lock:
            rows = self.db.execute(sql + " order by id desc limit 1000", args).fetchall()
        return [dict(zip(("site", "camera", "path", "reason", "at"), r, strict=True)) for r in rows]

    def between(self, site: str, camera: str, start: float, end: float) -> list[Stored]:
        """Stored segments of a camera overlapping [start, end), by time."""
        with self.lock:
            rows = self.db.execute(
                'select site, camera, path, start, "end", bytes, sha256 from segments '
                'where site = ? and camera = ? and "end" > ? and start < ? order by start',
                [site, camera, start, end],
            ).fetchall()
        return [Stored(*r) for r in rows]

    def oldest(self, limit: int = 100) -> list[Stored]:
        """The oldest stored segments (retention and the free-space watermark take these)."""
        with self.lock:
            rows = self.db.execute(
                'select site, camera, path, start, "end", bytes, sha256 from segments '
                'order by "end" limit ?',
                [limit],
            ).fetchall()
        return [Stored(*r) for r in rows]

    def totals(self) -> dict[str, Any]:
        """Segments, bytes and the time span held, per site."""
        with self.lock:
            rows = self.db.execute(
                'select site, count(*), sum(bytes), min(start), max("end") from segments '
                "group by site order by site"
            ).fetchall()
        return {
            r[0]: {"segments": r[1], "bytes": r[2] or 0, "from": r[3], "to": r[4]} for r in rows
        }
