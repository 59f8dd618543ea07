"""The edge outbox: messages that must reach central, durable in SQLite until the broker acks.

Policy when the outbox is over its bounds (central unreachable for a long time):
1. messages older than `max_age_s` are dropped, then, while more than `max_messages` remain,
2. camera-state messages superseded by a newer state of the same camera go first (the
   retained topic only ever shows the latest), then command replies (central stopped
   waiting long ago), then `info` events, then the oldest of everything else;
3. dropping stops at the low watermark (90 % of `max_messages`) so it happens in chunks,
   and one critical `outbox_overflow` event (camera "") tells central what was dropped.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from edge_agent.db import LockedDatabase
from edge_agent.errors import OutboxError
from edge_agent.mqtt.media_queue import MediaQueue, write_transaction
from fsv_contract import topics
from fsv_contract.codec import encode
from fsv_contract.errors import ContractError
from fsv_contract.integrity import AnchorPayload
from fsv_contract.payloads import CameraStatePayload, EventPayload, Payload, ReplyPayload

log = logging.getLogger(__name__)

migrations = sqlite_utils.Migrations("edge_agent.mqtt.outbox")

LOW_WATERMARK = 0.9
# Order in which kinds of messages are sacrificed when the outbox is full (see module doc).
_DROP_ORDER = (
    "kind = 'camera_state' and superseded = 1",
    "kind = 'reply'",
    "kind = 'event' and severity = 'info'",
    "kind != 'anchor'",
    "1 = 1",
)


@migrations()
def m001_outbox(db: sqlite_utils.Database) -> None:
    """Pending messages and the media upload queue."""
    # AUTOINCREMENT: ids never go back after the table empties, so the publisher's cursor
    # ("everything above the last id sent") never skips a new row.
    db.execute(
        """create table outbox (
            id integer primary key autoincrement,
            topic text not null,
            payload blob not null,
            qos integer not null,
            retain integer not null,
            kind text not null,
            camera text,
            severity text,
            superseded integer not null default 0,
            created_at float not null
        )"""
    )
    db.table("outbox").create_index(["kind", "camera"])
    db.table("outbox").create_index(["created_at"])
    db.table("media").create(
        {
            "id": int,
            "event_id": str,
            "name": str,
            "path": str,
            "sha256": str,
            "content_type": str,
            "bytes": int,
            "queued_at": float,
            "attempts": int,
            "next_try_at": float,
            "last_error": str,
            "failed": int,
        },
        pk="id",
        not_null={"event_id", "name", "path", "sha256", "content_type", "queued_at"},
    )
    db.table("media").create_index(["event_id", "name"], unique=True)
    db.table("media").create_index(["failed", "next_try_at"])
    db.table("counters").create({"name": str, "value": int}, pk="name")


@migrations()
def m002_anchor_cursor(db: sqlite_utils.Database) -> None:
    """Per camera, the last chain link and tombstone put in the outbox as an anchor."""
    db.table("anchor_cursor").create(
        {"camera": str, "segment_id": int, "chain": str, "removed_rowid": int}, pk="camera"
    )


@dataclass(frozen=True)
class AnchorCursor:
    """How far a camera's chain was anchored: its last link and last tombstone sent."""

    camera: str
    segment_id: int = 0
    chain: str = ""
    removed_rowid: int = 0


@dataclass(frozen=True)
class OutboxLimits:
    """Bounds of the outbox (see the module docstring for what is dropped first)."""

    max_messages: int = 200_000
    max_age_s: float = 30 * 86400.0


@dataclass(frozen=True)
class OutboxMessage:
    """One pending message, in the order it must be published."""

    id: int
    topic: str
    payload: bytes
    qos: int
    retain: bool
    kind: str
    camera: str | None
    created_at: float


class Outbox:
    """Durable, bounded, ordered queue of messages to central, plus the media queue.

    Writers (detectors, recorders, the command handler) call `put_*`, which return once the
    row is committed with `synchronous=FULL`, so a power cut after the return loses nothing.
    The publisher reads `pending()` in id order and calls `ack()` with what the broker took.
    """

    def __init__(
        self,
        path: Path | str,
        site: str,
        limits: OutboxLimits | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.site = topics.check_level(site, "site")
        self.limits = limits or OutboxLimits()
        self._clock = clock
        self._ldb = LockedDatabase(path)
        with self._ldb.lock:
            self._ldb.db.execute("PRAGMA synchronous=FULL")
            migrations.apply(self._ldb.db)
        self._count = self._count_rows()
        self._listeners: list[Callable[[], None]] = []
        self.media = MediaQueue(self._ldb, clock)

    def close(self) -> None:
        """Close the database."""
        self._ldb.close()

    # --- writers ---------------------------------------------------------------------------

    def put_event(self, payload: EventPayload) -> None:
        """Store an event (stamping `created_at` if unset); durable when this returns."""
        self.put_events([payload])

    def put_events(self, payloads: Sequence[EventPayload]) -> None:
        """Store several events in one transaction (one disk sync); all or none."""
        rows = [self._event_row(p) for p in payloads]
        with write_transaction(self._ldb) as db:
            db.table("outbox").insert_all(rows)
        self._after_put(len(rows))

    def _event_row(self, payload: EventPayload) -> dict[str, Any]:
        if not isinstance(payload, EventPayload):
            raise OutboxError(f"put_event needs an EventPayload, not {type(payload).__name__}")
        self._check_site(payload.site)
        if payload.created_at is None:
            payload = payload.model_copy(update={"created_at": self._now_utc()})
        camera = payload.camera
        topic = self._topic(lambda: topics.event_topic(self.site, camera))
        return self._row(topic, payload, "event", camera or None, payload.severity)

    def put_camera_state(self, payload: CameraStatePayload) -> None:
        """Store a camera online/offline change (retained on the broker)."""
        topic = self._topic(lambda: topics.camera_state(self.site, payload.camera))
        self._put(topic, payload, "camera_state", payload.camera, None, retain=True)

    def put_reply(self, payload: ReplyPayload) -> None:
        """Store the reply to a command."""
        topic = self._topic(lambda: topics.reply(self.site, str(payload.request_id)))
        self._put(topic, payload, "reply", None, None)

    def put_anchor(self, payload: AnchorPayload, cursors: Sequence[AnchorCursor]) -> None:
        """Store a batch of chain links and move the anchor cursors, in one transaction.

        Either both happen or neither: a crash never loses links nor sends them twice.
        """
        topic = self._topic(lambda: topics.anchor(self.site))
        row = self._row(topic, payload, "anchor", None, None)
        with write_transaction(self._ldb) as db:
            db.table("outbox").insert(row)
            db.conn.executemany(
                "insert or replace into anchor_cursor (camera, segment_id, chain, removed_rowid) "
                "values (?, ?, ?, ?)",
                [(c.camera, c.segment_id, c.chain, c.removed_rowid) for c in cursors],
            )
        self._after_put(1)

    def anchor_cursors(self) -> dict[str, AnchorCursor]:
        """The anchor cursor of every camera anchored so far."""
        with self._ldb.lock:
            rows = self._ldb.db.execute(
                "select camera, segment_id, chain, removed_rowid from anchor_cursor"
            ).fetchall()
        return {r[0]: AnchorCursor(r[0], int(r[1]), str(r[2]), int(r[3])) for r in rows}

    def queue_media(
        self, event_id: str, name: str, path: Path, sha256: str, content_type: str
    ) -> None:
        """Queue a snapshot or clip for upload to central under the event id."""
        self.media.add(event_id, name, Path(path), sha256, content_type)
        self._notify()

    def _put(
        self,
        topic: str,
        payload: Payload,
        kind: str,
        camera: str | None,
        severity: str | None,
        retain: bool = False,
    ) -> None:
        row = self._row(topic, payload, kind, camera, severity, retain)
        with write_transaction(self._ldb) as db:
            if kind == "camera_state":
                db.execute(
                    "update outbox set superseded = 1 where kind = 'camera_state' and camera = ?",
                    [camera],
                )
            db.table("outbox").insert(row)
        self._after_put(1)

    def _row(
        self,
        topic: str,
        payload: Payload,
        kind: str,
        camera: str | None,
        severity: str | None,
        retain: bool = False,
    ) -> dict[str, Any]:
        try:
            data = encode(payload)
        except ContractError as e:
            raise OutboxError(f"{kind} cannot be sent: {e}") from e
        return {
            "topic": topic,
            "payload": data,
            "qos": 1,
            "retain": int(retain),
            "kind": kind,
            "camera": camera,
            "severity": severity,
            "superseded": 0,
            "created_at": self._clock(),
        }

    def _after_put(self, added: int) -> None:
        self._count += added
        if self._count > self.limits.max_messages:
            self.enforce_limits()
        self._notify()

    def _check_site(self, site: str) -> None:
        if site != self.site:
            raise OutboxError(f"payload site {site!r} is not this agent's site {self.site!r}")

    @staticmethod
    def _topic(build: Callable[[], str]) -> str:
        try:
            return build()
        except ContractError as e:
            raise OutboxError(str(e)) from e

    def _now_utc(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def _notify(self) -> None:
        for listener in self._listeners:
            listener()

    # --- publisher side --------------------------------------------------------------------

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Call `callback` (it must not block) whenever something is put in this process."""
        self._listeners.append(callback)

    def pending(self, after_id: int = 0, limit: int = 100) -> list[OutboxMessage]:
        """Up to `limit` messages with an id above `after_id`, oldest first."""
        with self._ldb.lock:
            rows = self._ldb.db.execute(
                "select id, topic, payload, qos, retain, kind, camera, created_at from outbox "
                "where id > ? order by id limit ?",
                [after_id, limit],
            ).fetchall()
        return [
            OutboxMessage(r[0], r[1], bytes(r[2]), r[3], bool(r[4]), r[5], r[6], r[7]) for r in rows
        ]

    def ack(self, ids: Iterable[int]) -> int:
        """Delete messages the broker acknowledged; returns how many were still there."""
        ids = list(ids)
        if not ids:
            return 0
        deleted = 0
        with write_transaction(self._ldb) as db:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                cur = db.execute(
                    f"delete from outbox where id in ({','.join('?' * len(chunk))})", chunk
                )
                deleted += cur.rowcount
        self._count = max(0, self._count - deleted)
        return deleted

    def count(self) -> int:
        """Messages waiting, counted in the database (other processes may have written)."""
        self._count = self._count_rows()
        return self._count

    def _count_rows(self) -> int:
        with self._ldb.lock:
            return int(self._ldb.db.execute("select count(*) from outbox").fetchone()[0])

    def oldest_age_s(self) -> float | None:
        """Age in seconds of the oldest waiting message, None if empty."""
        with self._ldb.lock:
            row = self._ldb.db.execute("select min(created_at) from outbox").fetchone()
        return None if row[0] is None else max(0.0, self._clock() - row[0])

    def dropped_total(self) -> int:
        """Messages dropped by the bounds since the outbox was created."""
        with self._ldb.lock:
            row = self._ldb.db.execute(
                "select value from counters where name = 'dropped'"
            ).fetchone()
        return int(row[0]) if row else 0

    # --- bounds ----------------------------------------------------------------------------

    def enforce_limits(self) -> int:
        """Apply the drop policy of the module docstring; returns how many were dropped."""
        now = self._clock()
        dropped: dict[str, int] = {}
        oldest: float | None = None
        with write_transaction(self._ldb) as db:
            cutoff = now - self.limits.max_age_s
            oldest = _min_created(db, "created_at < ?", [cutoff], oldest)
            _add(dropped, _delete_where(db, "created_at < ?", [cutoff], None))
            remaining = int(db.execute("select count(*) from outbox").fetchone()[0])
            if remaining > self.limits.max_messages:
                target = int(self.limits.max_messages * LOW_WATERMARK)
                for where in _DROP_ORDER:
                    if remaining <= target:
                        break
                    oldest = _min_created(db, where, [], oldest)
                    counts = _delete_where(db, where, [], remaining - target)
                    _add(dropped, counts)
                    remaining -= sum(counts.values())
            total = sum(dropped.values())
            if total:
                db.execute(
                    "insert into counters (name, value) values ('dropped', ?) "
                    "on conflict(name) do update set value = value + excluded.value",
                    [total],
                )
        self._count = self._count_rows()
        if total:
            log.error("outbox over its bounds: dropped %d messages %s", total, dropped)
            self._report_drop(dropped, oldest, now)
        return total

    def _report_drop(self, dropped: dict[str, int], oldest: float | None, now: float) -> None:
        details: dict[str, Any] = {
            "dropped": sum(dropped.values()),
            "by_kind": dropped,
            "oldest_dropped": _iso(oldest),
            "max_messages": self.limits.max_messages,
            "max_age_s": self.limits.max_age_s,
        }
        event = EventPayload(
            event_id=uuid.uuid4(),
            site=self.site,
            camera="",
            phase="start",
            kind="outbox_overflow",
            station="",
            rule="outbox_bounds",
            severity="critical",
            start=datetime.fromtimestamp(now, UTC),
            score=1.0,
            details=details,
        )
        self.put_event(event)


def _add(total: dict[str, int], counts: dict[str, int]) -> None:
    for kind, n in counts.items():
        total[kind] = total.get(kind, 0) + n


def _min_created(
    db: sqlite_utils.Database, where: str, args: list[Any], current: float | None
) -> float | None:
    row = db.execute(f"select min(created_at) from outbox where {where}", args).fetchone()
    if row[0] is None:
        return current
    found = float(row[0])
    return found if current is None else min(current, found)


def _delete_where(
    db: sqlite_utils.Database, where: str, args: list[Any], limit: int | None
) -> dict[str, int]:
    """Delete the oldest rows matching `where` (at most `limit`); counts by kind."""
    sql_limit = "" if limit is None else f" order by id limit {int(limit)}"
    ids = [r[0] for r in db.execute(f"select id from outbox where {where}{sql_limit}", args)]
    counts: dict[str, int] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for kind, n in db.execute(
            f"select kind, count(*) from outbox where id in ({marks}) group by kind", chunk
        ):
            counts[kind] = counts.get(kind, 0) + n
        db.execute(f"delete from outbox where id in ({marks})", chunk)
    return counts


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()
