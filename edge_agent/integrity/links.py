"""Reads what must be anchored from the segment index: new links and tombstones per camera.

Only reads: the index belongs to the recorder. A cursor names the last link anchored by its
segment id *and* its chain hash, so an index rebuilt from scratch (ids start again, links
differ) is noticed and everything in it is sent again: central then sees the new chain not
follow the one it holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlite_utils

from edge_agent.mqtt.outbox import AnchorCursor
from fsv_contract.integrity import AnchorLink, Tombstone

_LINK_COLUMNS = 'id, path, start, "end", bytes, sha256, prev_chain, chain'


@dataclass
class CameraBatch:
    """What one camera has to anchor now, and the cursor once it is sent."""

    camera: str
    links: list[AnchorLink] = field(default_factory=list)
    removed: list[Tombstone] = field(default_factory=list)
    cursor: AnchorCursor | None = None

    @property
    def empty(self) -> bool:
        """Nothing new."""
        return not self.links and not self.removed


def anchored_cameras(db: sqlite_utils.Database) -> list[str]:
    """Cameras with segments or tombstones in the index."""
    rows = db.execute(
        "select camera from segments union select camera from removed_segments order by 1"
    ).fetchall()
    return [r[0] for r in rows]


def resume_after(db: sqlite_utils.Database, cursor: AnchorCursor) -> tuple[int, str] | None:
    """(segment id, chain) to continue after, or None to start the camera from scratch."""
    if not cursor.chain:
        return None
    for table in ("segments", "removed_segments"):
        row = db.execute(
            f"select chain from {table} where id = ? and camera = ?",
            [cursor.segment_id, cursor.camera],
        ).fetchone()
        if row is not None and row[0] == cursor.chain:
            return cursor.segment_id, cursor.chain
    # The id no longer holds that link (ids reused, or the index was rebuilt): find it.
    row = db.execute(
        "select id from segments where camera = ? and chain = ? "
        "union all select id from removed_segments where camera = ? and chain = ? limit 1",
        [cursor.camera, cursor.chain, cursor.camera, cursor.chain],
    ).fetchone()
    return None if row is None else (int(row[0]), cursor.chain)


def camera_batch(db: sqlite_utils.Database, cursor: AnchorCursor, limit: int) -> CameraBatch:
    """Up to `limit` new links and tombstones of one camera, in chain order."""
    batch = CameraBatch(cursor.camera)
    after = resume_after(db, cursor)
    last_id, last_chain = after if after is not None else (0, "")
    # Deleted segments keep their place in the chain (a link deleted before it was anchored
    # would otherwise leave the next one following a link central never saw).
    where = "camera = ? and id >= ? and chain != ?"
    rows = db.execute(
        f"select {_LINK_COLUMNS} from segments where {where} union all "
        f"select {_LINK_COLUMNS} from removed_segments where {where} order by id limit ?",
        [cursor.camera, last_id, last_chain] * 2 + [limit],
    ).fetchall()
    for r in rows:
        batch.links.append(
            AnchorLink(
                path=r[1], start=r[2], end=r[3], bytes=r[4], sha256=r[5], prev_chain=r[6],
                chain=r[7],
            )
        )  # fmt: skip
        last_id, last_chain = int(r[0]), str(r[7])
    # A fresh start also resends every tombstone: central ignores the ones it has.
    removed_after = cursor.removed_rowid if after is not None else 0
    gone = db.execute(
        "select rowid, path, chain, removed_at, reason from removed_segments "
        "where camera = ? and rowid > ? order by rowid limit ?",
        [cursor.camera, removed_after, limit],
    ).fetchall()
    for r in gone:
        batch.removed.append(
            Tombstone(path=r[1], chain=r[2], removed_at=r[3] or 0.0, reason=(r[4] or "")[:100])
        )
        removed_after = int(r[0])
    batch.cursor = AnchorCursor(cursor.camera, last_id, last_chain, removed_after)
    return batch
