"""The local event store: violation events and their evidence files, in SQLite."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from edge_agent.db import LockedDatabase

migrations = sqlite_utils.Migrations("edge_agent.detection.store")

# Event states: open (violation ongoing), ended (clip pending), complete (clip cut, failed
# or not wanted). The clip state says which of the last.
OPEN, ENDED, COMPLETE = "open", "ended", "complete"
CLIP_PENDING, CLIP_DONE, CLIP_FAILED, CLIP_NONE = "pending", "done", "failed", "none"


@migrations()
def m001_events(db: sqlite_utils.Database) -> None:
    """Events with their evidence."""
    db.table("events").create(
        {
            "id": str,
            "camera": str,
            "station": str,
            "rule": str,
            "kind": str,
            "severity": str,
            "state": str,
            "start": float,
            "end": float,
            "score": float,
            "boxes": str,
            "details": str,
            "snapshot": str,
            "clip": str,
            "clip_state": str,
            "clip_start": float,
            "clip_end": float,
            "clip_error": str,
            "retention_days": int,
            "sent": str,
            "created_at": float,
            "updated_at": float,
        },
        pk="id",
        not_null={"camera", "rule", "kind", "state", "start", "created_at"},
    )
    db.table("events").create_index(["camera", "start"])
    db.table("events").create_index(["state"])


@migrations()
def m002_first_clip(db: sqlite_utils.Database) -> None:
    """The first clip of an event, cut while it still runs."""
    db.execute("alter table events add column first_clip text")


@migrations()
def m003_frame_and_model(db: sqlite_utils.Database) -> None:
    """The clean frame beside the snapshot, and the model that raised the event."""
    db.execute("alter table events add column frame text")
    db.execute("alter table events add column model text")


@dataclass
class MediaInfo:
    """An evidence file kept with an event (relative to the event folder)."""

    name: str
    relpath: str
    sha256: str
    bytes: int
    content_type: str
    start: float | None = None
    end: float | None = None


@dataclass
class StoredEvent:
    """An event row, decoded."""

    id: str
    camera: str
    station: str
    rule: str
    kind: str
    severity: str
    state: str
    start: float
    end: float | None
    score: float
    boxes: list[dict[str, Any]]
    details: dict[str, Any]
    snapshot: MediaInfo | None
    clip: MediaInfo | None
    clip_state: str
    clip_start: float | None
    clip_end: float | None
    clip_error: str | None
    retention_days: int
    sent: str  # phases handed to the outbox so far: "", "start", "start,first", ...,end
    created_at: float
    updated_at: float
    first_clip: MediaInfo | None = None  # pre-roll and the first seconds, while it runs
    frame: MediaInfo | None = None  # the snapshot's frame without annotations
    model: str | None = None  # name@version of the model that raised it


def _media(text: str | None) -> MediaInfo | None:
    return MediaInfo(**json.loads(text)) if text else None


def _from_row(row: dict[str, Any]) -> StoredEvent:
    return StoredEvent(
        **{
            **row,
            "boxes": json.loads(row["boxes"] or "[]"),
            "details": json.loads(row["details"] or "{}"),
            "snapshot": _media(row["snapshot"]),
            "clip": _media(row["clip"]),
            "first_clip": _media(row.get("first_clip")),
            "frame": _media(row.get("frame")),
        }
    )


class EventStore:
    """Events and their evidence: rows in `<root>/events.db`, files under `<root>/files/`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files = root / "files"
        self.files.mkdir(parents=True, exist_ok=True)
        self._ldb = LockedDatabase(root / "events.db")
        with self._ldb.lock:
            migrations.apply(self._ldb.db)

    def close(self) -> None:
        """Close the database."""
        self._ldb.close()

    def folder(self, camera: str, event_id: str, start: float) -> tuple[Path, str]:
        """The folder of an event's files and its path relative to `files/`."""
        day = time.strftime("%Y-%m-%d", time.gmtime(start))
        rel = f"{camera}/{day}/{event_id}"
        return self.files / rel, rel

    def open_event(self, event: StoredEvent) -> None:
        """Record a new event."""
        row = self._row(event)
        with self._ldb.transaction() as db:
            db.table("events").insert(row)

    def save(self, event: StoredEvent) -> None:
        """Write an event's current fields back."""
        event.updated_at = time.time()
        with self._ldb.transaction() as db:
            db.table("events").update(event.id, self._row(event))

    @staticmethod
    def _row(event: StoredEvent) -> dict[str, Any]:
        row = dict(vars(event))
        row["boxes"] = json.dumps(event.boxes)
        row["details"] = json.dumps(event.details, default=str)
        row["snapshot"] = json.dumps(vars(event.snapshot)) if event.snapshot else None
        row["clip"] = json.dumps(vars(event.clip)) if event.clip else None
        row["first_clip"] = json.dumps(vars(event.first_clip)) if event.first_clip else None
        row["frame"] = json.dumps(vars(event.frame)) if event.frame else None
        return row

    def get(self, event_id: str) -> StoredEvent | None:
        """One event, or None."""
        with self._ldb.lock:
            rows = list(self._ldb.db.table("events").rows_where("id = ?", [event_id]))
        return _from_row(rows[0]) if rows else None

    def events(self, camera: str | None = None, state: str | None = None) -> list[StoredEvent]:
        """Events, oldest first, optionally of one camera or in one state."""
        where, args = ["1=1"], []
        if camera is not None:
            where.append("camera = ?")
            args.append(camera)
        if state is not None:
            where.append("state = ?")
            args.append(state)
        with self._ldb.lock:
            rows = self._ldb.db.table("events").rows_where(
                " and ".join(where), args, order_by="start, id"
            )
            return [_from_row(r) for r in rows]

    def expired(self, now: float) -> list[StoredEvent]:
        """Complete events older than their retention."""
        with self._ldb.lock:
            rows = self._ldb.db.table("events").rows_where(
                'state = ? and coalesce("end", start) < ? - retention_days * 86400.0',
                [COMPLETE, now],
            )
            return [_from_row(r) for r in rows]

    def unsent(self) -> list[StoredEvent]:
        """Events with a phase not yet handed to the outbox (it failed, or the agent died)."""
        with self._ldb.lock:
            rows = self._ldb.db.table("events").rows_where(
                "(sent not like 'start%') or (state = ? and sent not like '%end') or "
                "(state != ? and first_clip is not null and sent not like '%first%')",
                [COMPLETE, COMPLETE],
                order_by="start, id",
            )
            return [_from_row(r) for r in rows]

    def delete(self, event_id: str) -> None:
        """Forget an event (its files must already be gone)."""
        with self._ldb.transaction() as db:
            db.execute("delete from events where id = ?", [event_id])
