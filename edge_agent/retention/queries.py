"""Read-only SQL over the segment index that retention needs and SegmentIndex does not offer.

Every function takes a sqlite-utils Database: the agent's own (under `SegmentIndex.reading()`)
or a read-only connection (the storage report). An index holds millions of rows after 90
days, so queries walk the (camera, start) index instead of loading every segment.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

import sqlite_utils

from edge_agent.recording.index import Hold, Segment
from edge_agent.retention.forecast import RATE_WINDOW_S, CameraStats
from fsv_contract.lanes import Lane, lane_id

# No segment is longer than this: it bounds index range scans that look for segments
# overlapping an instant (config caps segments at 600 s; repaired ones are shorter).
MAX_SEGMENT_S = 6 * 3600.0


def open_readonly(path: Path | str) -> sqlite_utils.Database:
    """A read-only connection to a database the agent may be writing (WAL lets both run).

    Usable from another thread than the one that opened it.
    """
    path = Path(path).resolve()
    uri = f"{path.as_uri()}?mode=ro"
    if not path.with_name(path.name + "-wal").exists():
        # No writer has it open (a writer keeps the -wal file). A plain read-only open would
        # create -wal and -shm files owned by whoever runs the report, which the agent,
        # running as another user, could not open afterwards.
        uri += "&immutable=1"
    conn = sqlite3.connect(uri, uri=True, timeout=30.0, check_same_thread=False)
    return sqlite_utils.Database(conn)


def camera_stats(
    db: sqlite_utils.Database, holds: Sequence[Hold], window_s: float = RATE_WINDOW_S
) -> dict[str, CameraStats]:
    """Per-camera counts, bytes, held bytes, time span and observed bitrate."""
    # A plain table scan beats walking the (camera, start) index for a full aggregate.
    rows = db.execute(
        'select camera, count(*), sum(bytes), min(start), max("end") '
        "from segments not indexed group by camera order by camera"
    ).fetchall()
    held = held_bytes_by_camera(db, holds)
    stats: dict[str, CameraStats] = {}
    for camera, count, size, oldest, newest in rows:
        stats[camera] = CameraStats(
            segments=count,
            bytes=size or 0,
            held_bytes=held.get(camera, 0),
            oldest_start=oldest,
            newest_end=newest,
            bytes_per_s=recent_rate(db, camera, newest, window_s),
        )
    return stats


def recent_rate(
    db: sqlite_utils.Database, camera: str, newest_end: float, window_s: float = RATE_WINDOW_S
) -> float | None:
    """Bytes per recorded second of a camera's segments that end in the window before newest_end."""
    since = newest_end - window_s
    size, seconds = db.execute(
        "select sum(bytes), sum(duration) from segments where camera = ? and start >= ? "
        'and "end" > ? and duration > 0',
        [camera, since - MAX_SEGMENT_S, since],
    ).fetchone()
    return size / seconds if seconds else None


def write_rate(db: sqlite_utils.Database, cameras: Iterable[str]) -> float:
    """Bytes per second the given cameras add to the disk, as recently observed."""
    total = 0.0
    for camera in cameras:
        row = db.execute(
            'select "end" from segments where camera = ? order by start desc, id desc limit 1',
            [camera],
        ).fetchone()
        if row is not None:
            total += recent_rate(db, camera, row[0]) or 0.0
    return total


def held_bytes_by_camera(db: sqlite_utils.Database, holds: Sequence[Hold]) -> dict[str, int]:
    """Bytes of segments overlapping any of the holds (both lanes of the held camera), each
    segment counted once."""
    sizes: dict[int, tuple[str, int]] = {}
    lanes: tuple[Lane, ...] = ("main", "sub")
    for hold, lane in ((h, lane) for h in holds for lane in lanes):
        rows = db.execute(
            "select id, camera, bytes from segments where camera = ? and start >= ? "
            'and start < ? and "end" > ?',
            [lane_id(hold.camera, lane), hold.start - MAX_SEGMENT_S, hold.end, hold.start],
        ).fetchall()
        sizes.update({seg_id: (camera, size) for seg_id, camera, size in rows})
    totals: dict[str, int] = {}
    for camera, size in sizes.values():
        totals[camera] = totals.get(camera, 0) + size
    return totals


def oldest_segments(
    db: sqlite_utils.Database, camera: str, after: Segment | None = None, limit: int = 500
) -> list[Segment]:
    """A camera's oldest segments (after `after`, in (start, id) order), one page at a time."""
    where = "camera = ?"
    args: list[object] = [camera]
    if after is not None:
        where += " and (start > ? or (start = ? and id > ?))"
        args += [after.start, after.start, after.id]
    rows = db.table("segments").rows_where(where, args, order_by="start, id", limit=limit)
    return [Segment(**r) for r in rows]
