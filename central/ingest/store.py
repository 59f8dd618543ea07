"""Writes decoded MQTT messages into central's database, one transaction per batch, deduped."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlite_utils
from pydantic import ValidationError

from central.ingest.evidence import KnownEvent, foreign_site, merge_evidence
from central.storage.db import CentralDatabase
from central.storage.pg import is_postgres
from fsv_contract.codec import Message
from fsv_contract.integrity import AnchorPayload
from fsv_contract.payloads import (
    AgentStatePayload,
    CameraStatePayload,
    EventPayload,
    HeartbeatPayload,
    ReplyPayload,
)

MAX_REJECTS_KEPT = 1000

_EVENT_COLUMNS = (
    "event_id", "site", "camera", "kind", "station", "rule", "severity", "phase", "start",
    "end", "score", "boxes", "snapshot", "clip", "first_clip", "details", "created_at",
    "received_at", "ingested_at", "updated_at", "frame", "model", "change_seq",
)  # fmt: skip
_INSERT_EVENT = (
    f"insert into events ({', '.join(chr(34) + c + chr(34) for c in _EVENT_COLUMNS)}) "
    f"values ({', '.join('?' * len(_EVENT_COLUMNS))}) on conflict do nothing"
)
_END_EVENT = (
    "update events set phase = 'end', \"end\" = ?, score = ?, boxes = ?, snapshot = ?, "
    "clip = ?, first_clip = ?, frame = ?, details = ?, updated_at = ?, change_seq = ? "
    "where event_id = ? and phase = 'start'"
)
_FIRST_CLIP = (
    "update events set first_clip = ?, updated_at = ?, change_seq = ? "
    "where event_id = ? and first_clip is null"
)
_CAMERA_STATE = (
    "insert into camera_status (site, camera, state, since, reason, updated_at) "
    "values (?, ?, ?, ?, ?, ?) on conflict (site, camera) do update set "
    "state = excluded.state, since = excluded.since, reason = excluded.reason, "
    "updated_at = excluded.updated_at where excluded.since >= camera_status.since"
)
_CAMERA_LOG = (
    "insert into camera_state_log (site, camera, state, since, reason, received_at) "
    "values (?, ?, ?, ?, ?, ?) on conflict do nothing"
)
_AGENT_STATE = (
    "insert into agent_status (site, state, version, started_at, state_since, "
    "state_received_at) values (?, ?, ?, ?, ?, ?) on conflict (site) do update set "
    "state = excluded.state, version = excluded.version, started_at = excluded.started_at, "
    "state_since = excluded.state_since, state_received_at = excluded.state_received_at"
)
_HEARTBEAT = (
    "insert into agent_status (site, last_heartbeat_at, heartbeat) values (?, ?, ?) "
    "on conflict (site) do update set last_heartbeat_at = excluded.last_heartbeat_at, "
    "heartbeat = excluded.heartbeat "
    "where excluded.last_heartbeat_at >= coalesce(agent_status.last_heartbeat_at, 0)"
)
# The edge's counts are today's totals so far: the newest beat replaces the row.
_SHADOW = (
    "insert into shadow_days (site, camera, model, day, current, frames, errors, classes, "
    "updated_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?) on conflict (site, camera, model, day) "
    "do update set current = excluded.current, frames = excluded.frames, "
    "errors = excluded.errors, classes = excluded.classes, updated_at = excluded.updated_at"
)
_REPLY = (
    "update commands set ok = ?, result = ?, error = ?, replied_at = ? "
    "where request_id = ? and site = ? and replied_at is null"
)


@dataclass(frozen=True)
class Received:
    """A decoded message and when central's MQTT thread received it."""

    message: Message
    received_at: float


@dataclass(frozen=True)
class Rejection:
    """A message that failed the contract, and why; `link`: one anchor link refused out of
    a message that was otherwise taken (not counted as a rejected message)."""

    topic: str
    reason: str
    size: int
    received_at: float
    link: bool = False


@dataclass
class BatchResult:
    """What one batch changed; `new_events`/`ended_events` feed alerting."""

    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    refused_links: int = 0  # anchor links refused out of accepted messages
    new_events: list[EventPayload] = field(default_factory=list)
    ended_events: list[EventPayload] = field(default_factory=list)
    # Messages that tried to change another site's event or replace announced evidence.
    refused: list[tuple[EventPayload, list[str]]] = field(default_factory=list)


def _ts(value: Any) -> float | None:
    return None if value is None else float(value.timestamp())


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def _utc(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def _payload_of(row: dict[str, Any]) -> EventPayload | None:
    """The event payload a stored row holds (its latest phase)."""
    try:
        return EventPayload.model_validate(
            {
                **{k: row[k] for k in ("event_id", "site", "camera", "phase", "kind",
                                       "station", "rule", "severity", "score")},
                "model": row.get("model"),
                "start": _utc(row["start"]),
                "end": _utc(row["end"]),
                "created_at": _utc(row["created_at"]),
                **{k: json.loads(row[k]) if row[k] else None
                   for k in ("boxes", "snapshot", "clip", "first_clip", "frame", "details")
                   if k in row},
            }
        )  # fmt: skip
    except (ValidationError, ValueError):
        return None


# The advisory lock that numbers event changes on PostgreSQL (any constant unique to it).
CHANGE_SEQ_LOCK = 0x46535643


def last_change_seq(db: sqlite_utils.Database) -> int:
    """The highest change_seq so far, in a write transaction that will number new changes.

    The alert feed follows change_seq from its cursor, so numbers must be unique and
    committed in order. SQLite has one writer at a time. On PostgreSQL several nodes write
    at once: a transaction-level advisory lock makes each writer read the maximum only once
    the previous numbering transaction has committed (the lock is held until commit).
    """
    if is_postgres(db):
        db.execute("select pg_advisory_xact_lock(?)", [CHANGE_SEQ_LOCK])
    return int(db.execute("select coalesce(max(change_seq), 0) from events").fetchone()[0])


def insert_central_event(db: sqlite_utils.Database, payload: EventPayload, now: float) -> None:
    """Store an event central raised itself (e.g. `footage_tampered`) so the alert feed sees it."""
    seq = last_change_seq(db) + 1
    db.execute(_INSERT_EVENT, [*IngestStore._event_row(payload, now, now), seq])


def _adds_first_clip(held: KnownEvent, p: EventPayload, refs: dict[str, Any]) -> bool:
    """A repeated start phase that brings the event's first clip (while it still runs)."""
    return (
        held.phase == "start"
        and p.phase == "start"
        and held.refs.get("first_clip") is None
        and refs.get("first_clip") is not None
    )


class IngestStore:
    """The ingest tables: written by the ingest worker, read by the API and the CLI."""

    def __init__(self, database: CentralDatabase, clock: Any = time.time) -> None:
        self.database = database
        self._clock = clock

    # --- writing -------------------------------------------------------------------------

    def write_batch(self, items: Sequence[Received], rejects: Sequence[Rejection]) -> BatchResult:
        """Apply a batch in one transaction (arrival order kept); returns what changed."""
        links = sum(1 for r in rejects if r.link)
        result = BatchResult(rejected=len(rejects) - links, refused_links=links)
        now = self._clock()
        with self.database.durable_transaction() as db:
            self._write_events(db, items, now, result)
            self._write_states(db, items, now)
            result.new_events += self._write_anchors(db, items, now)
            result.accepted += sum(
                1 for it in items if not isinstance(it.message.payload, EventPayload)
            )
            self._write_rejects(db, rejects)
            self._write_refusals(db, result, now)
            self._count(db, result, items)
        return result

    def _write_events(
        self, db: sqlite_utils.Database, items: Sequence[Received], now: float,
        result: BatchResult,
    ) -> None:  # fmt: skip
        events = [
            (it, it.message.payload) for it in items if isinstance(it.message.payload, EventPayload)
        ]
        if not events:
            return
        known = self._known_events(db, [str(p.event_id) for _, p in events])
        seq = last_change_seq(db)
        inserts: list[tuple[Any, ...]] = []
        ends: list[tuple[Any, ...]] = []
        firsts: list[tuple[Any, ...]] = []
        for it, p in events:
            eid = str(p.event_id)
            held = known.get(eid)
            if held is None:
                seq += 1
                inserts.append((*self._event_row(p, it.received_at, now), seq))
                result.new_events.append(p)
                known[eid] = KnownEvent.from_payload(p)
                result.accepted += 1
                continue
            refusal = foreign_site(held, p)
            refs, refused = merge_evidence(held, p)
            if refusal is not None:
                refused = [refusal]
            if refused:
                result.refused.append((p, refused))
            if refusal is None and held.phase == "start" and p.phase == "end":
                seq += 1
                ends.append(self._end_row(p, refs, now, seq))
                result.ended_events.append(p)
                held.phase, held.refs = "end", refs
                result.accepted += 1
            elif refusal is None and _adds_first_clip(held, p, refs):
                seq += 1
                firsts.append((_json(refs["first_clip"]), now, seq, eid))
                held.refs = refs
                result.accepted += 1
            else:
                result.duplicates += 1
        db.conn.executemany(_INSERT_EVENT, inserts)
        db.conn.executemany(_END_EVENT, ends)
        db.conn.executemany(_FIRST_CLIP, firsts)

    @staticmethod
    def _known_events(db: sqlite_utils.Database, ids: list[str]) -> dict[str, KnownEvent]:
        found: dict[str, KnownEvent] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = db.execute(
                f"select event_id, site, phase, snapshot, clip, first_clip, frame from events "
                f"where event_id in ({marks})",
                chunk,
            )
            found.update({r[0]: KnownEvent.from_row(r[1], r[2], *r[3:]) for r in rows})
        return found

    @staticmethod
    def _event_row(p: EventPayload, received_at: float, now: float) -> tuple[Any, ...]:
        data = p.model_dump(
            mode="json", include={"boxes", "snapshot", "clip", "first_clip", "frame", "details"}
        )
        return (
            str(p.event_id), p.site, p.camera, p.kind, p.station, p.rule, p.severity, p.phase,
            _ts(p.start), _ts(p.end), p.score, _json(data["boxes"]), _json(data["snapshot"]),
            _json(data["clip"]), _json(data["first_clip"]), _json(data["details"]),
            _ts(p.created_at), received_at, now, now, _json(data["frame"]), p.model,
        )  # fmt: skip

    @staticmethod
    def _end_row(p: EventPayload, refs: dict[str, Any], now: float, seq: int) -> tuple[Any, ...]:
        data = p.model_dump(mode="json", include={"boxes", "details"})
        return (
            _ts(p.end), p.score, _json(data["boxes"]), _json(refs["snapshot"]),
            _json(refs["clip"]), _json(refs["first_clip"]), _json(refs["frame"]),
            _json(data["details"]), now, seq, str(p.event_id),
        )  # fmt: skip

    @staticmethod
    def _write_states(db: sqlite_utils.Database, items: Sequence[Received], now: float) -> None:
        for it in items:
            p, site = it.message.payload, it.message.topic.site
            if isinstance(p, CameraStatePayload):
                row = (site, p.camera, p.state, _ts(p.since), p.reason)
                db.execute(_CAMERA_STATE, [*row, now])
                db.execute(_CAMERA_LOG, [*row, it.received_at])
            elif isinstance(p, AgentStatePayload):
                db.execute(
                    _AGENT_STATE,
                    [site, p.state, p.version, _ts(p.started_at), _ts(p.since), it.received_at],
                )
            elif isinstance(p, HeartbeatPayload):
                db.execute(_HEARTBEAT, [site, _ts(p.ts), p.model_dump_json()])
                for shadow in p.shadow or []:
                    classes = _json([c.model_dump() for c in shadow.classes])
                    db.execute(_SHADOW, [site, shadow.camera, shadow.model, shadow.day,
                                         shadow.current, shadow.frames, shadow.errors, classes,
                                         now])  # fmt: skip
            elif isinstance(p, ReplyPayload):
                db.execute(
                    _REPLY,
                    [int(p.ok), _json(p.result), p.error, _ts(p.finished_at),
                     str(p.request_id), site],
                )  # fmt: skip

    @staticmethod
    def _write_anchors(
        db: sqlite_utils.Database, items: Sequence[Received], now: float
    ) -> list[EventPayload]:
        """Anchor chain links; tamper findings become `footage_tampered` events."""
        anchors = [it for it in items if isinstance(it.message.payload, AnchorPayload)]
        if not anchors:
            return []
        # Imported here: the integrity package stores its alerts through this module.
        from central.integrity.anchors import apply_anchor
        from central.integrity.findings import report

        found = []
        for it in anchors:
            assert isinstance(it.message.payload, AnchorPayload)
            found += apply_anchor(db, it.message.topic.site, it.message.payload, now)
        return report(db, found, "anchor", now) if found else []

    @staticmethod
    def _write_refusals(db: sqlite_utils.Database, result: BatchResult, now: float) -> None:
        """Audit every refused change of evidence or of another site's event."""
        if not result.refused:
            return
        from central.integrity.findings import audit_system

        for p, reasons in result.refused:
            detail: dict[str, object] = {"event_id": str(p.event_id), "phase": p.phase,
                                         "refused": reasons}  # fmt: skip
            audit_system(db, "evidence_refused", p.site, f"event:{p.event_id}", detail, now)

    @staticmethod
    def _write_rejects(db: sqlite_utils.Database, rejects: Sequence[Rejection]) -> None:
        if not rejects:
            return
        db.conn.executemany(
            "insert into ingest_rejects (received_at, topic, reason, bytes) values (?, ?, ?, ?)",
            [(r.received_at, r.topic[:500], r.reason[:1000], r.size) for r in rejects],
        )
        db.execute(
            "delete from ingest_rejects where id <= (select max(id) from ingest_rejects) - ?",
            [MAX_REJECTS_KEPT],
        )

    @staticmethod
    def _count(db: sqlite_utils.Database, result: BatchResult, items: Sequence[Received]) -> None:
        counts: Counter[str] = Counter(
            {
                "received": len(items) + result.rejected,
                "accepted": result.accepted,
                "duplicates": result.duplicates,
                "rejected": result.rejected,
                "evidence_refused": len(result.refused),
                "anchor_links_refused": result.refused_links,
            }
        )
        for it in items:
            counts[f"kind:{it.message.topic.kind.value}"] += 1
        db.conn.executemany(
            "insert into ingest_counters (name, value) values (?, ?) "
            "on conflict (name) do update set value = ingest_counters.value + excluded.value",
            [(k, v) for k, v in counts.items() if v],
        )

    # --- the alerting feed -----------------------------------------------------------------

    def feed_cursor(self) -> int:
        """The last event change (change_seq) the hooks have seen (committed; read without
        waiting for the write lock)."""
        with self.database.read() as db:
            row = db.execute(
                "select value from ingest_counters where name = 'feed_cursor'"
            ).fetchone()
        return int(row[0]) if row else 0

    def set_feed_cursor(self, seq: int) -> None:
        """Remember that the hooks have seen every change up to `seq`."""
        with self.database.transaction() as db:
            db.execute(
                "insert into ingest_counters (name, value) values ('feed_cursor', ?) "
                "on conflict (name) do update set value = excluded.value",
                [seq],
            )

    def changes_after(self, seq: int, limit: int) -> list[tuple[int, EventPayload | None]]:
        """Events created or ended after change `seq`, in change order (None: unreadable)."""
        rows = self._rows(
            "select * from events where change_seq > ? order by change_seq limit ?", [seq, limit]
        )
        return [(int(r["change_seq"]), _payload_of(r)) for r in rows]

    def live_changes_after(
        self, seq: int, started_since: float, limit: int
    ) -> list[tuple[int, EventPayload | None]]:
        """Changes after `seq` of events that started at `started_since` or later (live ones).

        Read on a reader connection: the live lane must not wait for a backlog batch that
        holds the write lock.
        """
        with self.database.read() as db:
            cur = db.execute(
                "select * from events where start >= ? and change_seq > ? "
                "order by change_seq limit ?",
                [started_since, seq, limit],
            )
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        return [(int(r["change_seq"]), _payload_of(r)) for r in rows]

    # --- reading -------------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """Ingest counters: received, accepted, duplicates, rejected, kind:<topic kind>."""
        with self.database.lock:
            rows = self.database.db.execute("select name, value from ingest_counters").fetchall()
        stats = {"received": 0, "accepted": 0, "duplicates": 0, "rejected": 0}
        stats.update({r[0]: int(r[1]) for r in rows})
        return stats

    def rejects(self, limit: int = 100) -> list[dict[str, Any]]:
        """The latest rejected messages with topic and reason, newest first."""
        return self._rows("select * from ingest_rejects order by id desc limit ?", [limit])

    def agents(self) -> list[dict[str, Any]]:
        """Every agent's online state and last heartbeat (decoded), by site."""
        rows = self._rows("select * from agent_status order by site", [])
        for row in rows:
            row["heartbeat"] = json.loads(row["heartbeat"]) if row["heartbeat"] else None
        return rows

    def cameras(self, site: str | None = None) -> list[dict[str, Any]]:
        """Cameras' online state, by site and camera."""
        if site is None:
            return self._rows("select * from camera_status order by site, camera", [])
        return self._rows("select * from camera_status where site = ? order by camera", [site])

    def events(
        self, site: str | None = None, camera: str | None = None, after_id: int = 0,
        limit: int = 100,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """Events in arrival order after `after_id`, JSON columns decoded."""
        where: list[str] = ["id > ?"]
        args: list[Any] = [after_id]
        for column, value in (("site", site), ("camera", camera)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        rows = self._rows(
            f"select * from events where {' and '.join(where)} order by id limit ?",
            [*args, limit],
        )
        for row in rows:
            for column in ("boxes", "snapshot", "clip", "first_clip", "frame", "details"):
                row[column] = json.loads(row[column]) if row[column] else None
        return rows

    def event(self, event_id: str) -> dict[str, Any] | None:
        """One event row (JSON columns as text), None if unknown."""
        rows = self._rows("select * from events where event_id = ?", [event_id])
        return rows[0] if rows else None

    def _rows(self, sql: str, args: list[Any]) -> list[dict[str, Any]]:
        with self.database.lock:
            cur = self.database.db.execute(sql, args)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
