"""Retention events: evictions below the duty, risk changes, failures, kept in SQLite."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from edge_agent.db import LockedDatabase
from edge_agent.retention.queries import open_readonly

migrations = sqlite_utils.Migrations("edge_agent.retention.events")

# Kinds of event; the MQTT work publishes them as alerts under these names.
EVICTION_BELOW_DUTY = "eviction_below_duty"
RETENTION_AT_RISK = "retention_at_risk"
RETENTION_OK = "retention_ok"
SPACE_UNRECOVERABLE = "space_unrecoverable"
DELETE_FAILED = "delete_failed"
CLEANUP_FAILED = "cleanup_failed"

# Enough for years of incidents; the table must not grow without bound on an unattended box.
MAX_EVENTS = 10_000


@migrations()
def m001_events(db: sqlite_utils.Database) -> None:
    """The retention event log."""
    db.table("retention_events").create(
        {"id": int, "ts": float, "kind": str, "camera": str, "message": str, "details": str},
        pk="id",
        not_null={"ts", "kind", "message", "details"},
    )
    db.table("retention_events").create_index(["ts"])


@dataclass(frozen=True)
class RetentionEvent:
    """Something retention did or found that people must hear about.

    `camera` is None for site-wide events (retention at risk, space unrecoverable).
    `details` holds plain JSON values (numbers, strings, lists), ready for a payload.
    """

    kind: str
    ts: float
    camera: str | None
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "kind": self.kind,
            "ts": self.ts,
            "camera": self.camera,
            "message": self.message,
            "details": self.details,
        }


def _from_row(row: dict[str, Any]) -> RetentionEvent:
    return RetentionEvent(
        kind=row["kind"],
        ts=row["ts"],
        camera=row["camera"],
        message=row["message"],
        details=json.loads(row["details"]),
    )


class RetentionEventLog:
    """The durable record of retention events, in its own database file."""

    def __init__(self, path: Path | str) -> None:
        self._ldb = LockedDatabase(path)
        with self._ldb.lock:
            migrations.apply(self._ldb.db)

    def add(self, event: RetentionEvent) -> None:
        """Keep an event, dropping the oldest beyond MAX_EVENTS."""
        with self._ldb.transaction() as db:
            db.table("retention_events").insert(
                {
                    "ts": event.ts,
                    "kind": event.kind,
                    "camera": event.camera,
                    "message": event.message,
                    "details": json.dumps(event.details, sort_keys=True),
                }
            )
            db.execute(
                "delete from retention_events where id <= "
                "(select max(id) from retention_events) - ?",
                [MAX_EVENTS],
            )

    def recent(self, limit: int = 50) -> list[RetentionEvent]:
        """The newest events, newest first."""
        with self._ldb.lock:
            rows = self._ldb.db.table("retention_events").rows_where(
                order_by="id desc", limit=limit
            )
            return [_from_row(r) for r in rows]

    def last_kind(self, kinds: tuple[str, ...]) -> str | None:
        """The kind of the newest event among `kinds`, None if there is none."""
        marks = ",".join("?" * len(kinds))
        with self._ldb.lock:
            row = self._ldb.db.execute(
                f"select kind from retention_events where kind in ({marks}) "
                "order by id desc limit 1",
                list(kinds),
            ).fetchone()
        return None if row is None else str(row[0])

    def close(self) -> None:
        """Close the database."""
        self._ldb.close()


def read_recent_events(path: Path, limit: int = 20) -> list[RetentionEvent]:
    """Newest events from an event database opened read-only; [] if it does not exist yet."""
    if not path.exists():
        return []
    db = open_readonly(path)
    try:
        if not db.table("retention_events").exists():
            return []
        rows = db.table("retention_events").rows_where(order_by="id desc", limit=limit)
        return [_from_row(r) for r in rows]
    finally:
        db.close()
