"""What a camera recorded: segments around a time, merged ranges and gaps for a timeline.

Queries go through the index's (camera, start) index: a segment is never longer than
LOOKBACK_S, so "segments overlapping T" is a bounded range scan even with 90 days indexed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from edge_agent.recording.index import Segment, SegmentIndex

LOOKBACK_S = 3600.0  # longer than any segment (segment_seconds <= 600 plus a long GOP)
JOIN_S = 1.0  # segments closer than this form one recorded range
MAX_RANGES = 2000  # keeps a reply under the MQTT payload limit


@dataclass(frozen=True)
class Range:
    """A stretch of continuous recording in one codec."""

    start: float
    end: float
    codec: str


def _rows(index: SegmentIndex, sql: str, args: list[Any]) -> list[Segment]:
    with index.reading() as db:
        return [Segment(**dict(row)) for row in db.query(sql, args)]


def segments_between(
    index: SegmentIndex, camera: str, start: float, end: float, limit: int = 10_000
) -> list[Segment]:
    """Segments of `camera` overlapping [start, end), in time order."""
    sql = (
        'select * from segments where camera = ? and start >= ? and start < ? and "end" > ? '
        "order by start, id limit ?"
    )
    return _rows(index, sql, [camera, start - LOOKBACK_S, end, start, limit])


def segments_after(
    index: SegmentIndex, camera: str, after: float, limit: int = 20
) -> list[Segment]:
    """The next `limit` segments of `camera` that end after `after`, in time order."""
    sql = (
        'select * from segments where camera = ? and start >= ? and "end" > ? '
        "order by start, id limit ?"
    )
    return _rows(index, sql, [camera, after - LOOKBACK_S, after, limit])


def chain_between(index: SegmentIndex, camera: str, first_id: int, last_id: int) -> list[Segment]:
    """A camera's segments in chain order from id `first_id` to `last_id` inclusive."""
    sql = "select * from segments where camera = ? and id >= ? and id <= ? order by id"
    return _rows(index, sql, [camera, first_id, last_id])


def merge_ranges(segments: Iterable[Segment], join_s: float = JOIN_S) -> list[Range]:
    """Join time-ordered segments into ranges; a hole over `join_s` or a codec change splits."""
    ranges: list[Range] = []
    for seg in segments:
        last = ranges[-1] if ranges else None
        if last is not None and last.codec == seg.codec and seg.start - last.end <= join_s:
            ranges[-1] = Range(last.start, max(last.end, seg.end), last.codec)
        else:
            ranges.append(Range(seg.start, seg.end, seg.codec))
    return ranges


def recorded(index: SegmentIndex, camera: str, start: float, end: float) -> dict[str, Any]:
    """The `recordings` reply: ranges clipped to [start, end) and the gaps the index knows."""
    ranges = merge_ranges(segments_between(index, camera, start, end, limit=200_000))
    truncated = len(ranges) > MAX_RANGES
    gaps = [
        {
            "start": max(g.start, start),
            "end": min(g.end, end) if g.end else None,
            "reason": g.reason[:100],
        }
        for g in index.gaps(camera, start, end)[:MAX_RANGES]
    ]
    return {
        "camera": camera,
        "start": start,
        "end": end,
        "ranges": [
            {"start": max(r.start, start), "end": min(r.end, end), "codec": r.codec}
            for r in ranges[:MAX_RANGES]
        ],
        "gaps": gaps,
        "truncated": truncated,
    }
