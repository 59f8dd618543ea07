"""The segment index: segments with a per-camera SHA-256 chain, gaps, camera states, holds."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from edge_agent.db import LockedDatabase
from fsv_common.digest import file_sha256

migrations = sqlite_utils.Migrations("edge_agent.recording.index")

GENESIS = "0" * 64


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    """Segments, gaps, camera state changes and evidence holds."""
    db.table("segments").create(
        {
            "id": int,
            "camera": str,
            "path": str,
            "start": float,
            "end": float,
            "duration": float,
            "bytes": int,
            "codec": str,
            "width": int,
            "height": int,
            "audio_codec": str,
            "sha256": str,
            "prev_chain": str,
            "chain": str,
            "repaired": int,
            "indexed_at": float,
        },
        pk="id",
        not_null={"camera", "path", "start", "end", "sha256", "chain"},
    )
    db.table("segments").create_index(["path"], unique=True)
    db.table("segments").create_index(["camera", "start"])
    db.table("gaps").create(
        {"id": int, "camera": str, "start": float, "end": float, "reason": str},
        pk="id",
        not_null={"camera", "start", "reason"},
    )
    db.table("gaps").create_index(["camera", "start"])
    db.table("camera_states").create(
        {"id": int, "camera": str, "ts": float, "state": str, "reason": str},
        pk="id",
        not_null={"camera", "ts", "state"},
    )
    db.table("camera_states").create_index(["camera", "ts"])
    db.table("holds").create(
        {
            "id": int,
            "camera": str,
            "start": float,
            "end": float,
            "reason": str,
            "ref": str,
            "created_at": float,
            "released_at": float,
        },
        pk="id",
        not_null={"camera", "start", "end", "created_at"},
    )


@migrations()
def m002_removed_segments(db: sqlite_utils.Database) -> None:
    """Tombstones of deleted segments, so the hash chain stays verifiable across deletions."""
    db.execute(
        "create table removed_segments as select *, 0.0 as removed_at, '' as reason "
        "from segments where 0"
    )
    db.execute("create unique index idx_removed_segments_id on removed_segments (id)")
    db.execute("create index idx_removed_segments_camera on removed_segments (camera, id)")


@dataclass(frozen=True)
class SegmentInfo:
    """What the recorder knows of a finished segment file before it is indexed."""

    camera: str
    path: str  # relative to the storage root, POSIX separators
    start: float  # UTC epoch seconds of the first packet
    end: float  # UTC epoch seconds just after the last packet
    bytes: int
    codec: str
    width: int
    height: int
    audio_codec: str | None
    sha256: str
    repaired: bool = False

    @property
    def duration(self) -> float:
        """Seconds covered."""
        return self.end - self.start


@dataclass(frozen=True)
class Segment:
    """An indexed segment row."""

    id: int
    camera: str
    path: str
    start: float
    end: float
    duration: float
    bytes: int
    codec: str
    width: int
    height: int
    audio_codec: str | None
    sha256: str
    prev_chain: str
    chain: str
    repaired: int
    indexed_at: float


@dataclass(frozen=True)
class Gap:
    """A span without recording and why."""

    id: int
    camera: str
    start: float
    end: float | None
    reason: str


@dataclass(frozen=True)
class Hold:
    """An evidence hold on a camera's time range: its segments are never deleted meanwhile."""

    id: int
    camera: str
    start: float
    end: float
    reason: str
    ref: str | None
    created_at: float
    released_at: float | None


def chain_hash(prev_chain: str, info: SegmentInfo) -> str:
    """Link a segment to its predecessor: SHA-256 over the previous link and this file's facts."""
    facts = json.dumps(
        [
            prev_chain,
            info.camera,
            info.path,
            f"{info.start:.6f}",
            f"{info.end:.6f}",
            int(info.bytes),
            info.sha256,
        ],
        separators=(",", ":"),
    )
    return hashlib.sha256(facts.encode()).hexdigest()


class SegmentIndex:
    """The agent's recording index in SQLite; safe to share between threads."""

    def __init__(self, path: Path | str) -> None:
        self._ldb = LockedDatabase(path)
        self.db = self._ldb.db
        with self._ldb.lock:
            migrations.apply(self.db)

    def close(self) -> None:
        """Close the database."""
        self._ldb.close()

    @contextmanager
    def reading(self) -> Iterator[sqlite_utils.Database]:
        """The database under the index lock, for read-only queries of other modules."""
        with self._ldb.lock:
            yield self.db

    # --- segments -------------------------------------------------------------------------

    def add_segment(self, info: SegmentInfo) -> Segment:
        """Index a finished segment, linking it into its camera's hash chain.

        The link follows the camera's last chained segment, deleted or not: when retention
        has just evicted the newest segments (a full disk can take every one a camera has),
        the new link follows the newest tombstone, as `verify_chain` and central expect.
        Ids only grow, past every tombstone's as well: chain order is id order, and a row
        id SQLite would reuse after the newest row was deleted would share its tombstone's.
        """
        with self._ldb.transaction() as db:
            prev = self._chain_head(db, info.camera)
            row: dict[str, Any] = {
                "id": self._next_id(db),
                **{k: v for k, v in asdict(info).items() if k != "repaired"},
                "duration": info.duration,
                "prev_chain": prev,
                "chain": chain_hash(prev, info),
                "repaired": int(info.repaired),
                "indexed_at": time.time(),
            }
            db.table("segments").insert(row)
            row["id"] = db.execute("select last_insert_rowid()").fetchone()[0]
        return Segment(**row)

    @staticmethod
    def _chain_head(db: sqlite_utils.Database, camera: str) -> str:
        """The chain hash of a camera's last chained segment, live or tombstone; GENESIS if none.

        Two queries that each stop at their first row (the rowid and the tombstones'
        (camera, id) index), rather than one ordered union over every row of the camera.
        An older index may hold a tombstone and a live row with the same id (SQLite reused
        the id of a deleted newest row): the live row was chained later, so it wins a tie.
        """
        live = db.execute(
            "select id, chain from segments where camera = ? order by id desc limit 1", [camera]
        ).fetchone()
        gone = db.execute(
            "select id, chain from removed_segments where camera = ? order by id desc limit 1",
            [camera],
        ).fetchone()
        heads = [r for r in (live, gone) if r is not None]
        if not heads:
            return GENESIS
        return str(max(heads, key=lambda r: int(r[0]))[1])  # max keeps the first (live) on a tie

    @staticmethod
    def _next_id(db: sqlite_utils.Database) -> int:
        """An id above every segment's and every tombstone's, of all cameras."""
        row = db.execute(
            "select max(coalesce((select max(id) from segments), 0), "
            "coalesce((select max(id) from removed_segments), 0))"
        ).fetchone()
        return int(row[0]) + 1

    @staticmethod
    def _last_row(db: sqlite_utils.Database, camera: str) -> dict[str, Any] | None:
        rows = list(
            db.table("segments").rows_where("camera = ?", [camera], order_by="id desc", limit=1)
        )
        return rows[0] if rows else None

    def last_segment(self, camera: str) -> Segment | None:
        """The most recently indexed segment of a camera."""
        with self._ldb.lock:
            row = self._last_row(self.db, camera)
        return Segment(**row) if row else None

    def segments(
        self, camera: str | None = None, start: float | None = None, end: float | None = None
    ) -> list[Segment]:
        """Segments overlapping [start, end), oldest first."""
        where, args = _overlap_where(camera, start, end, '"end" > ?')
        with self._ldb.lock:
            rows = self.db.table("segments").rows_where(where, args, order_by="start, id")
            return [Segment(**r) for r in rows]

    def indexed_paths(self) -> set[str]:
        """Relative paths of every indexed segment."""
        with self._ldb.lock:
            return {r[0] for r in self.db.execute("select path from segments").fetchall()}

    def delete_segments(self, ids: Iterable[int], reason: str = "retention") -> None:
        """Forget segments (their files must already be gone), keeping a tombstone of each.

        The tombstone keeps the chain links, so `verify_chain` can tell a deletion the
        agent made (retention, repair) from a row removed behind its back.
        """
        ids = list(ids)
        if not ids:
            return
        marks = ",".join("?" * len(ids))
        with self._ldb.transaction() as db:
            db.execute(
                f"insert or replace into removed_segments select *, ?, ? from segments "
                f"where id in ({marks})",
                [time.time(), reason, *ids],
            )
            db.execute(f"delete from segments where id in ({marks})", ids)

    def cameras(self) -> list[str]:
        """Cameras that have at least one indexed segment."""
        with self._ldb.lock:
            rows = self.db.execute("select distinct camera from segments order by camera")
            return [r[0] for r in rows.fetchall()]

    def verify_chain(self, camera: str, storage: Path | None = None) -> list[str]:
        """Problems in a camera's chain (and file digests, given the storage root); [] if intact.

        Deleted segments take part through their tombstones: their links must still join,
        only their files are no longer checked.
        """
        problems: list[str] = []
        prev: str | None = None
        for seg, removed in self._chain_rows(camera):
            info = SegmentInfo(
                seg.camera,
                seg.path,
                seg.start,
                seg.end,
                seg.bytes,
                seg.codec,
                seg.width,
                seg.height,
                seg.audio_codec,
                seg.sha256,
            )
            if prev is not None and seg.prev_chain != prev:
                problems.append(f"{seg.path}: does not link to the previous segment")
            if chain_hash(seg.prev_chain, info) != seg.chain:
                problems.append(f"{seg.path}: chain hash does not match its facts")
            if storage is not None and not removed:
                file = storage / seg.path
                if not file.exists():
                    problems.append(f"{seg.path}: file is missing")
                elif file_sha256(file) != seg.sha256:
                    problems.append(f"{seg.path}: file content changed")
            prev = seg.chain
        return problems

    def _chain_rows(self, camera: str) -> list[tuple[Segment, bool]]:
        """Live segments and tombstones of a camera in chain order, each with `removed`."""
        with self._ldb.lock:
            live = self.db.table("segments").rows_where("camera = ?", [camera])
            rows = [(Segment(**r), False) for r in live]
            gone = self.db.table("removed_segments").rows_where("camera = ?", [camera])
            for r in gone:
                r.pop("removed_at")
                r.pop("reason")
                rows.append((Segment(**r), True))
        return sorted(rows, key=lambda pair: pair[0].id)

    def removed_segments(self, camera: str | None = None) -> list[dict[str, Any]]:
        """Tombstones of deleted segments (with `removed_at` and `reason`), oldest first."""
        where, args = ("camera = ?", [camera]) if camera else ("1=1", [])
        with self._ldb.lock:
            return list(self.db.table("removed_segments").rows_where(where, args, order_by="id"))

    def segments_by_id(self, camera: str) -> list[Segment]:
        """A camera's segments in the order they were chained."""
        with self._ldb.lock:
            rows = self.db.table("segments").rows_where("camera = ?", [camera], order_by="id")
            return [Segment(**r) for r in rows]

    # --- gaps and camera states ------------------------------------------------------------

    def open_gap(self, camera: str, start: float, reason: str) -> int:
        """Start a gap (recording stopped); returns its id."""
        with self._ldb.transaction() as db:
            db.table("gaps").insert(
                {"camera": camera, "start": start, "end": None, "reason": reason}
            )
            return int(db.execute("select last_insert_rowid()").fetchone()[0])

    def close_gap(self, gap_id: int, end: float) -> None:
        """End a gap (recording resumed)."""
        with self._ldb.transaction() as db:
            db.execute('update gaps set "end" = ? where id = ?', [end, gap_id])

    def reopen_gap(self, gap_id: int) -> None:
        """Make a closed gap open again (the outage it recorded turned out to go on)."""
        with self._ldb.transaction() as db:
            db.execute('update gaps set "end" = null where id = ?', [gap_id])

    def close_open_gaps(self, camera: str, end: float) -> None:
        """End every open gap of a camera (at start-up, after a crash)."""
        with self._ldb.transaction() as db:
            db.execute(
                'update gaps set "end" = ? where camera = ? and "end" is null', [end, camera]
            )

    def gaps(
        self, camera: str | None = None, start: float | None = None, end: float | None = None
    ) -> list[Gap]:
        """Gaps overlapping [start, end), oldest first; open gaps have end None."""
        where, args = _overlap_where(camera, start, end, '("end" is null or "end" > ?)')
        with self._ldb.lock:
            rows = self.db.table("gaps").rows_where(where, args, order_by="start, id")
            return [Gap(**r) for r in rows]

    def record_state(self, camera: str, state: str, reason: str, ts: float | None = None) -> None:
        """Keep a camera's online/offline change (the MQTT outbox reports them)."""
        with self._ldb.transaction() as db:
            db.table("camera_states").insert(
                {
                    "camera": camera,
                    "ts": time.time() if ts is None else ts,
                    "state": state,
                    "reason": reason,
                }
            )

    def states(self, camera: str) -> list[dict[str, Any]]:
        """A camera's state changes, oldest first."""
        with self._ldb.lock:
            return list(
                self.db.table("camera_states").rows_where("camera = ?", [camera], order_by="ts, id")
            )

    # --- evidence holds --------------------------------------------------------------------

    def add_hold(
        self, camera: str, start: float, end: float, reason: str, ref: str | None = None
    ) -> int:
        """Hold a camera's [start, end) as evidence; returns the hold id."""
        if end <= start:
            raise ValueError("a hold must end after it starts")
        with self._ldb.transaction() as db:
            db.table("holds").insert(
                {
                    "camera": camera,
                    "start": start,
                    "end": end,
                    "reason": reason,
                    "ref": ref,
                    "created_at": time.time(),
                    "released_at": None,
                }
            )
            return int(db.execute("select last_insert_rowid()").fetchone()[0])

    def release_hold(self, hold_id: int) -> bool:
        """Release a hold; False if it did not exist or was already released."""
        with self._ldb.transaction() as db:
            cur = db.execute(
                "update holds set released_at = ? where id = ? and released_at is null",
                [time.time(), hold_id],
            )
            return cur.rowcount == 1

    def release_holds_by_ref(self, ref: str) -> int:
        """Release every active hold made for `ref` (an alert or event id); returns how many."""
        with self._ldb.transaction() as db:
            cur = db.execute(
                "update holds set released_at = ? where ref = ? and released_at is null",
                [time.time(), ref],
            )
            return cur.rowcount

    def active_holds(self, camera: str | None = None) -> list[Hold]:
        """Holds not yet released."""
        where = "released_at is null"
        args: list[object] = []
        if camera is not None:
            where += " and camera = ?"
            args.append(camera)
        with self._ldb.lock:
            rows = self.db.table("holds").rows_where(where, args, order_by="id")
            return [Hold(**r) for r in rows]


def _overlap_where(
    camera: str | None, start: float | None, end: float | None, ends_after: str
) -> tuple[str, list[object]]:
    """A where clause (and its arguments) for rows of `camera` overlapping [start, end).

    `ends_after` is the test that a row's end lies after `start` (open rows may pass it).
    """
    where: list[str] = ["1=1"]
    args: list[object] = []
    if camera is not None:
        where.append("camera = ?")
        args.append(camera)
    if start is not None:
        where.append(ends_after)
        args.append(start)
    if end is not None:
        where.append("start < ?")
        args.append(end)
    return " and ".join(where), args
