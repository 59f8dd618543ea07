"""Anchored chains: central keeps each camera's segment chain as the edge told it, link by link.

Checks on every anchor message (ingest's worker thread, inside the batch's transaction):
- each link's hash matches its facts (`fsv_contract.video.segment_link`);
- a new link follows the camera's last anchored link (its `prev_chain` is that link);
  the first link central ever sees of a camera starts the chain wherever it is;
- a segment sent again (same path) carries the same link, or its facts changed;
- a tombstone (the edge deleted a segment) is legitimate when the segment reached its
  retention date, or when it was evicted early under disk pressure and the edge raised
  `eviction_below_duty` about then; anything else is a deletion behind the duty's back.
Each failure is a `footage_tampered` finding (central.integrity.findings).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from central.integrity.findings import Finding
from fsv_contract.integrity import AnchorLink, AnchorPayload, CameraAnchor, Tombstone
from fsv_contract.video import ManifestSegment, segment_link

DAY_S = 86400.0
RETENTION_SLACK_S = 3600.0  # clocks and cleanup rounds: a deletion this early is still on time
EVICTION_WINDOW_S = DAY_S  # an eviction_below_duty event this close excuses an early deletion
EVICTION_KIND = "eviction_below_duty"


@dataclass(frozen=True)
class Head:
    """The last link central anchored for a camera."""

    chain: str
    path: str


def in_camera_folder(camera: str, path: str) -> bool:
    """Whether a segment path lies in its camera's (lane's) folder, as the edge records it."""
    return path.startswith(f"{camera}/")


def link_hash(camera: str, link: AnchorLink) -> str:
    """The chain link a segment's facts give (the edge index computes the same)."""
    seg = ManifestSegment(
        path=link.path, start=link.start, end=link.end, bytes=link.bytes, sha256=link.sha256,
        prev_chain=link.prev_chain, chain=link.chain,
    )  # fmt: skip
    return segment_link(link.prev_chain, camera, seg)


def apply_anchor(
    db: sqlite_utils.Database, site: str, payload: AnchorPayload, now: float
) -> list[Finding]:
    """Store an anchor message's links and tombstones; returns what is wrong."""
    findings: list[Finding] = []
    for cam in payload.cameras:
        findings += _apply_links(db, site, cam, now)
        findings += _apply_tombstones(db, site, cam)
    return findings


def _head(db: sqlite_utils.Database, site: str, camera: str) -> Head | None:
    row = db.execute(
        "select chain, path from chain_heads where site = ? and camera = ?", [site, camera]
    ).fetchone()
    return None if row is None else Head(row[0], row[1])


def _apply_links(
    db: sqlite_utils.Database, site: str, cam: CameraAnchor, now: float
) -> list[Finding]:
    findings: list[Finding] = []
    head = _head(db, site, cam.camera)
    moved = False
    for link in cam.links:
        problem = _check(db, site, cam.camera, link, head)
        if problem == "duplicate":
            continue
        if problem is not None:
            findings.append(Finding(site, cam.camera, link.path, problem))
            if problem.startswith(("sent again", "not under")):
                continue  # the first anchored facts stay; another camera's path is not taken
        db.execute(
            'insert into anchored_segments (site, camera, path, start, "end", bytes, sha256, '
            "prev_chain, chain, retention_days, anchored_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "?, ?)",
            [site, cam.camera, link.path, link.start, link.end, link.bytes, link.sha256,
             link.prev_chain, link.chain, cam.retention_days, now],
        )  # fmt: skip
        head = Head(link.chain, link.path)
        moved = True
    if moved and head is not None:
        db.execute(
            "insert into chain_heads (site, camera, chain, path, updated_at) values "
            "(?, ?, ?, ?, ?) on conflict (site, camera) do update set chain = excluded.chain, "
            "path = excluded.path, updated_at = excluded.updated_at",
            [site, cam.camera, head.chain, head.path, now],
        )
    return findings


def _check(
    db: sqlite_utils.Database, site: str, camera: str, link: AnchorLink, head: Head | None
) -> str | None:
    """None if the link is a good next link, "duplicate" if already anchored, else the problem."""
    if not in_camera_folder(camera, link.path):
        # Files are kept by path (the archive's, the edge's): another camera's path would
        # let one camera's link stand for, and replace, another camera's footage.
        return f"not under the camera's folder {camera}/"
    known = db.execute(
        'select chain, sha256, bytes, start, "end" from anchored_segments '
        "where site = ? and camera = ? and path = ?",
        [site, camera, link.path],
    ).fetchone()
    if known is not None:
        facts = (link.chain, link.sha256, link.bytes, link.start, link.end)
        if tuple(known) == facts:
            return "duplicate"
        if known[1] != link.sha256:
            return f"sent again with another SHA-256 ({link.sha256[:12]}, anchored {known[1][:12]})"
        if known[0] != link.chain:
            return "sent again with another chain link (its index row was rebuilt)"
        return "sent again with other facts (size or times) under the same link"
    if link_hash(camera, link) != link.chain:
        return "chain link does not match the segment's facts"
    if head is not None and link.prev_chain != head.chain:
        return f"does not follow the last anchored segment {head.path}"
    return None


def _apply_tombstones(db: sqlite_utils.Database, site: str, cam: CameraAnchor) -> list[Finding]:
    findings: list[Finding] = []
    for tomb in cam.removed:
        row = db.execute(
            'select id, "end", retention_days, removed_at from anchored_segments '
            "where site = ? and camera = ? and path = ? and chain = ?",
            [site, cam.camera, tomb.path, tomb.chain],
        ).fetchone()
        if row is None or row[3] is not None:
            continue  # never anchored, or already known as deleted
        seg_id, end, days = int(row[0]), float(row[1]), int(row[2])
        db.execute(
            "update anchored_segments set removed_at = ?, removed_reason = ? where id = ?",
            [tomb.removed_at, tomb.reason, seg_id],
        )
        problem = early_deletion(db, site, tomb, end, days)
        if problem is not None:
            findings.append(Finding(site, cam.camera, tomb.path, problem))
    return findings


def early_deletion(
    db: sqlite_utils.Database, site: str, tomb: Tombstone, end: float, retention_days: int
) -> str | None:
    """Why a deletion is not legitimate, or None if it is."""
    due = end + retention_days * DAY_S
    if tomb.reason != "retention":
        return f"deleted on the box ({tomb.reason or 'no reason'})"
    if tomb.removed_at >= due - RETENTION_SLACK_S:
        return None
    excused = db.execute(
        "select 1 from events where site = ? and kind = ? and start between ? and ? limit 1",
        [site, EVICTION_KIND, tomb.removed_at - EVICTION_WINDOW_S,
         tomb.removed_at + EVICTION_WINDOW_S],
    ).fetchone()  # fmt: skip
    if excused is not None:
        return None
    early_days = (due - tomb.removed_at) / DAY_S
    return f"deleted {early_days:.1f} days before its retention date, without a disk-full eviction"
