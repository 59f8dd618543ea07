"""Snapshots and clips from the edges: idempotent PUT /api/v1/media/{event_id}/{name}.

A file is accepted only for an event central already has, under a name that event
announced, with the SHA-256 and size it announced; a second PUT of the same file is a
no-op (200), so the edge can retry blindly.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from central.errors import ConflictError, NotFoundError
from central.models.samples import announced_sample, record_sample
from central.storage.db import CentralDatabase


@dataclass(frozen=True)
class Announced:
    """What the event said about a media file."""

    sha256: str
    bytes: int
    content_type: str
    sample: dict[str, Any] | None = None  # a sample frame: its request row and time


class MediaStore:
    """Media files under `<root>/<site>/<event_id>/<name>` and their rows in `media`."""

    def __init__(self, database: CentralDatabase, root: Path, max_bytes: int) -> None:
        self.database = database
        self.root = root
        self.max_bytes = max_bytes

    def announced(self, site: str, event_id: str, name: str) -> Announced:
        """The event's announcement of `name`; NotFound/Conflict if it cannot be uploaded yet."""
        with self.database.lock:
            row = self.database.db.execute(
                "select site, snapshot, clip, first_clip, frame from events where event_id = ?",
                [event_id],
            ).fetchone()
        if row is None:
            return announced_sample(self.database, site, event_id, name)
        if row[0] != site:
            raise NotFoundError(f"event {event_id} is not known (yet) for site {site}")
        for ref_text in row[1:]:
            ref: dict[str, Any] | None = json.loads(ref_text) if ref_text else None
            if ref is not None and ref.get("name") == name:
                return Announced(ref["sha256"], int(ref["bytes"]), ref["content_type"])
        raise ConflictError(f"event {event_id} announces no media named {name!r} (yet)")

    def count_refused(self, reason: str) -> None:
        """Count an upload refused for its type (`type`) or its content (`content`)."""
        with self.database.transaction() as db:
            db.execute(
                "insert into ingest_counters (name, value) values (?, 1), (?, 1) "
                "on conflict (name) do update set value = ingest_counters.value + 1",
                ["media_refused", f"media_refused:{reason}"],
            )

    def stored_sha(self, event_id: str, name: str) -> str | None:
        """SHA-256 of the file already stored under this event and name, if any."""
        with self.database.lock:
            row = self.database.db.execute(
                "select sha256 from media where event_id = ? and name = ?", [event_id, name]
            ).fetchone()
        return None if row is None else str(row[0])

    def refuse(self, site: str, event_id: str, name: str, sha256: str) -> None:
        """Count and audit an upload that would replace an event's announced evidence."""
        from central.integrity.findings import audit_system

        detail: dict[str, object] = {
            "event_id": event_id,
            "name": name,
            "sha256": sha256,
            "refused": "upload differs from the announced SHA-256",
        }
        with self.database.transaction() as db:
            db.execute(
                "insert into ingest_counters (name, value) values ('evidence_refused', 1) "
                "on conflict (name) do update set value = ingest_counters.value + 1"
            )
            audit_system(db, "evidence_refused", site, f"event:{event_id}", detail, time.time())

    def path_for(self, site: str, event_id: str, name: str) -> Path:
        """Where a file is kept."""
        return self.root / site / event_id / name

    def temp_path(self, site: str, event_id: str, name: str) -> Path:
        """A fresh temporary name beside the final file."""
        final = self.path_for(site, event_id, name)
        final.parent.mkdir(parents=True, exist_ok=True)
        return final.with_name(f".{name}.{uuid.uuid4().hex}.part")

    def commit(self, site: str, event_id: str, name: str, temp: Path, ann: Announced) -> None:
        """Make an upload durable under its final name and record it."""
        final = self.path_for(site, event_id, name)
        with temp.open("rb") as f:
            os.fsync(f.fileno())
        temp.replace(final)
        with self.database.transaction() as db:
            db.table("media").upsert(
                {
                    "event_id": event_id,
                    "name": name,
                    "site": site,
                    "sha256": ann.sha256,
                    "bytes": ann.bytes,
                    "content_type": ann.content_type,
                    "path": str(final),
                    "stored_at": time.time(),
                },
                pk=("event_id", "name"),
            )
            if ann.sample is not None:
                record_sample(db, ann, name, time.time())
