"""Tamper findings: each becomes a critical `footage_tampered` alert and an audit entry.

The alert is an event central stores itself (site and camera of the footage), so it takes
the ordinary path: the alert feed opens the alert in the enterprise's scope and pushes it.
A finding already reported (same site, camera, segment and problem) is not raised again.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlite_utils

from central.ingest.store import insert_central_event
from central.regulation.audit import AuditEntry, insert_entry
from central.storage.pg import has_table
from fsv_contract.payloads import EventPayload

log = logging.getLogger(__name__)

KIND = "footage_tampered"
MAX_PROBLEMS_PER_ALERT = 50


@dataclass(frozen=True)
class Finding:
    """One thing wrong with one camera's footage."""

    site: str
    camera: str
    path: str
    problem: str


def report(
    db: sqlite_utils.Database, findings: list[Finding], source: str, now: float
) -> list[EventPayload]:
    """Record new findings; one alert (and audit entry) per camera. Inside a transaction."""
    fresh = [f for f in findings if not _known(db, f)]
    by_camera: dict[tuple[str, str], list[Finding]] = {}
    for f in fresh:
        by_camera.setdefault((f.site, f.camera), []).append(f)
    events: list[EventPayload] = []
    for (site, camera), items in by_camera.items():
        event = _event(site, camera, items, source, now)
        insert_central_event(db, event, now)
        db.conn.executemany(
            "insert into integrity_findings (site, camera, path, source, problem, event_id, "
            "found_at) values (?, ?, ?, ?, ?, ?, ?)",
            [(site, camera, f.path, source, f.problem, str(event.event_id), now) for f in items],
        )
        _audit(db, site, camera, items, source, str(event.event_id), now)
        log.error(
            "footage tampered at %s/%s (%s): %s", site, camera, source,
            "; ".join(f"{f.path}: {f.problem}" for f in items[:5]),
        )  # fmt: skip
        events.append(event)
    return events


def _known(db: sqlite_utils.Database, f: Finding) -> bool:
    row = db.execute(
        "select 1 from integrity_findings where site = ? and camera = ? and path = ? "
        "and problem = ? limit 1",
        [f.site, f.camera, f.path, f.problem],
    ).fetchone()
    return row is not None


def _event(site: str, camera: str, items: list[Finding], source: str, now: float) -> EventPayload:
    at = datetime.fromtimestamp(now, UTC)
    return EventPayload(
        event_id=uuid.uuid4(),
        site=site,
        camera=camera,
        phase="end",
        kind=KIND,
        station="",
        rule=f"integrity_{source}",
        severity="critical",
        start=at,
        end=at,
        score=1.0,
        details={
            "source": source,
            "count": len(items),
            "problems": [
                {"path": f.path, "problem": f.problem} for f in items[:MAX_PROBLEMS_PER_ALERT]
            ],
        },
        created_at=at,
    )


def _audit(
    db: sqlite_utils.Database,
    site: str,
    camera: str,
    items: list[Finding],
    source: str,
    event_id: str,
    now: float,
) -> None:
    """An audit entry in the enterprise's scope (when the regulator tables exist)."""
    detail: dict[str, object] = {
        "source": source,
        "alert": event_id,
        "problems": [f"{f.path}: {f.problem}" for f in items[:MAX_PROBLEMS_PER_ALERT]],
    }
    audit_system(db, KIND, site, f"{site}/{camera}", detail, now)


def _has_table(db: sqlite_utils.Database, name: str) -> bool:
    return has_table(db, name)


def audit_system(
    db: sqlite_utils.Database, action: str, site: str, target: str, detail: dict[str, object],
    now: float,
) -> None:  # fmt: skip
    """An audit entry written by central itself (evidence refused, integrity audit run)."""
    if not _has_table(db, "audit_log"):
        return
    row = None
    if _has_table(db, "sites"):
        row = db.execute("select org_path from sites where id = ?", [site]).fetchone()
    entry = AuditEntry(
        action=action, target=target, detail=detail, username="central",
        org_path=row[0] if row else None,
    )  # fmt: skip
    insert_entry(db, entry, now)
